"""Check that the database, ``result.json`` and ``detections.geojson`` of processed site-days agree.

``process_site_day`` writes the objects first and the rows last, in one transaction that counts
what it wrote (``db.replace_site_day_results``) and records what it produced in
``site_day_processing``. This audit re-reads all three afterwards (``flarewatch audit``;
``emissions_rollup`` runs it on the days it is about to publish; the fault-injection tests after
every case): per processed site-day, the processing record,
the rows (detections, emissions, volume) and the two objects must give the same counts and volume.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from datetime import date

from flarewatch.config import Settings
from flarewatch.store import objects as storage
from flarewatch.store.processing import processing_records

_VOLUME_TOL = 1e-3  # kscm/d: result.json rounds totals to 4 decimals


def _db_totals(conn, start: date, end: date) -> dict[tuple[str, date], dict]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT d.site_id, d.acquisition_date, count(*), count(*) FILTER (WHERE d.sensor = 'sentinel2'),"
            " count(*) FILTER (WHERE d.sensor = 'viirs'), count(e.detection_key), coalesce(sum(e.volume_kscm_d), 0)"
            " FROM flare_detections d LEFT JOIN flare_emissions e USING (site_id, acquisition_date, detection_key)"
            " WHERE d.acquisition_date BETWEEN %s AND %s GROUP BY 1, 2",
            (start, end),
        )
        out = {(r[0], r[1]): {"n_detections": r[2], "n_sentinel2": r[3], "n_viirs_only": r[4], "n_emissions": r[5],
                              "volume_kscm_d": float(r[6])} for r in cur.fetchall()}
    conn.commit()
    return out


def _close(a, b) -> bool:
    return a is not None and b is not None and math.isclose(float(a), float(b), abs_tol=_VOLUME_TOL)


def audit_site_days(conn, s3, settings: Settings, start: date, end: date, days: Collection[date] | None = None,
                    ) -> dict:
    """``{"checked": n, "problems": [text, ...], "unrecorded": n}`` over acquisition dates ``start`` ..
    ``end`` (only those in ``days`` when given). ``unrecorded``: site-days with detection rows but no
    processing record (written before migration 006 recorded them): not audited."""
    problems: list[str] = []
    keep = (lambda d: True) if days is None else set(days).__contains__
    rows = {k: v for k, v in _db_totals(conn, start, end).items() if keep(k[1])}
    records = {(r["site_id"], r["acquisition_date"]): r for r in processing_records(conn, start, end)
               if r["processed_at"] is not None and keep(r["acquisition_date"])}
    # rows written before processing records existed (migration 006) or by hand: not audited, counted
    unrecorded = sorted(set(rows) - set(records))
    for (site_id, day), rec in sorted(records.items()):
        where = f"{site_id} {day}"
        got = rows.get((site_id, day), {"n_detections": 0, "n_sentinel2": 0, "n_viirs_only": 0, "n_emissions": 0,
                                         "volume_kscm_d": 0.0})
        for k in ("n_detections", "n_sentinel2", "n_viirs_only"):
            if got[k] != rec[k]:
                problems.append(f"{where}: database has {k} {got[k]}, the processing record {rec[k]}")
        if got["n_emissions"] != got["n_detections"]:
            problems.append(f"{where}: {got['n_detections']} detections but {got['n_emissions']} emission rows")
        if not _close(got["volume_kscm_d"], rec["volume_kscm_d"]):
            problems.append(f"{where}: database volume {got['volume_kscm_d']:.4f}, the processing record "
                            f"{rec['volume_kscm_d']}")
        keys = storage.processed_keys(day, site_id)
        try:
            result = json.loads(storage.get_bytes(s3, settings.processed_bucket, keys["result"]))
            geojson = json.loads(storage.get_bytes(s3, settings.processed_bucket, keys["geojson"]))
        except (FileNotFoundError, ValueError) as exc:
            problems.append(f"{where}: {exc}")
            continue
        for k in ("n_detections", "n_sentinel2", "n_viirs_only"):
            if result.get(k) != rec[k]:
                problems.append(f"{where}: result.json has {k} {result.get(k)}, the database {rec[k]}")
        if not _close(result.get("volume_kscm_d"), rec["volume_kscm_d"]):
            problems.append(f"{where}: result.json volume {result.get('volume_kscm_d')}, the database "
                            f"{rec['volume_kscm_d']}")
        features = geojson.get("features", [])
        if len(features) != rec["n_detections"]:
            problems.append(f"{where}: detections.geojson has {len(features)} features, the database "
                            f"{rec['n_detections']} detections")
        gj_volume = sum((f.get("properties") or {}).get("volume_kscm_d") or 0.0 for f in features)
        if not _close(gj_volume, rec["volume_kscm_d"]):
            problems.append(f"{where}: detections.geojson volume {gj_volume:.4f}, the database {rec['volume_kscm_d']}")
        gj_keys = [(f.get("properties") or {}).get("detection_key") for f in features]
        if len(set(gj_keys)) != len(gj_keys):
            problems.append(f"{where}: detections.geojson repeats a detection_key")
    return {"checked": len(records), "problems": problems, "unrecorded": len(unrecorded)}
