"""The ingest step of one site-day: fetch it from the scene source into ``rawdata``, record ``scenes``.

Idempotent: deterministic S3 keys (``store.objects``) and upserts on the scenes' natural key.
"""

from __future__ import annotations

import json
import logging
from datetime import date

from flarewatch.config import Settings
from flarewatch.ingest.sources import SceneSource
from flarewatch.sites import Site
from flarewatch.store import db
from flarewatch.store import objects as storage

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------
# Ingest
# ------------------------------------------------------------------------------------------
def ingest_site_day(site: Site, day: date, source: SceneSource, s3, conn, settings: Settings, *,
                    sensors: tuple[str, ...] = ("sentinel2", "viirs")) -> dict:
    """Fetch one site-day into ``rawdata`` and upsert its ``scenes`` rows; returns a summary.

    ``sensors``: the sensors to fetch (flare_ingest runs one task per provider and sensor, so each
    provider's Airflow pool limits its own requests); a source that fetches only some sensors
    takes them as ``fetch(site, day, sensors=...)``.

    Stored: the provider responses unchanged (``data.raw_objects``, keys with source, collection
    and processing baseline), the normalized tile and VNF CSV under the ``sentinel2/`` and
    ``viirs/`` keys processing reads, and one ``scenes`` row per sensor with ``status``
    (ingested / no_data / failed), ``outcome`` (ok, partial, no_scene, full_cloud, nodata,
    no_detections, error) and ``detail``. No scene, clouds or a missing night are outcomes, never a
    task failure; a fetch error is recorded as ``failed`` and then raised (the task retries).
    Rows of the same site-day and sensor from another source are removed (a site that moved
    provider keeps one row per sensor).
    """
    sensors = tuple(sensors)
    unknown = [s for s in sensors if s not in ("sentinel2", "viirs")]
    if unknown or not sensors:
        raise ValueError(f"sensors must be a non-empty subset of ('sentinel2', 'viirs'), got {sensors}")
    data = source.fetch(site, day) if sensors == ("sentinel2", "viirs") else source.fetch(site, day, sensors=sensors)
    bucket = settings.raw_bucket
    s2_src = data.s2_source or data.source
    vi_src = data.viirs_source or data.source
    summary = {"site_id": site.site_id, "acquisition_date": day.isoformat(), "source": data.source,
               "sensors": list(sensors), "outcomes": {}}

    # Provider responses, unchanged (processing can be re-run from them without downloading).
    for key, (body, content_type) in sorted(data.raw_objects.items()):
        storage.put_bytes(s3, bucket, key, body, content_type)
    summary["raw"] = sorted(set(data.raw_objects) | set(data.raw_keys))

    def record(sensor: str, src: str, status: str, outcome: str, **fields) -> None:
        # columns not given are stored as NULL (db.upsert_scene)
        db.upsert_scene(conn, {"site_id": site.site_id, "acquisition_date": day, "sensor": sensor,
                               "source": src, "status": status, "outcome": outcome, **fields})
        db.delete_scenes_from_other_sources(conn, site.site_id, day, sensor, src)
        summary["outcomes"][sensor] = outcome

    def error_detail(exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}"[:2000]

    if "sentinel2" in sensors:
        summary["sentinel2"] = None
        meta = {k: data.s2_meta.get(k) for k in
                ("acquired_at", "crs_epsg", "width_px", "height_px", "cloud_fraction", "valid_fraction")}
        if "sentinel2" in data.errors:
            record("sentinel2", s2_src, "failed", "error", detail=error_detail(data.errors["sentinel2"]))
        elif data.tile_geotiff is not None:
            key = storage.raw_tile_key(s2_src, day, site.site_id)
            storage.put_bytes(s3, bucket, key, data.tile_geotiff, "image/tiff")
            record("sentinel2", s2_src, "ingested", data.s2_outcome or "ok", s3_key=key,
                   detail=data.s2_detail or None, **meta)
            summary["sentinel2"] = key
        else:
            record("sentinel2", s2_src, "no_data", data.s2_outcome or "no_scene",
                   detail=data.s2_detail or "no scene for this date", **meta)
        if data.truth is not None:
            key = storage.raw_truth_key(s2_src, day, site.site_id)
            storage.put_bytes(s3, bucket, key, json.dumps(data.truth, default=str).encode(), "application/json")
            summary["truth"] = key

    if "viirs" in sensors:
        summary["viirs"] = None
        if "viirs" in data.errors:
            record("viirs", vi_src, "failed", "error", detail=error_detail(data.errors["viirs"]))
        elif data.viirs_csv is not None:
            key = storage.raw_viirs_key(vi_src, day, site.site_id)
            storage.put_bytes(s3, bucket, key, data.viirs_csv.encode(), "text/csv")
            n_records = max(0, len([ln for ln in data.viirs_csv.splitlines() if ln.strip()]) - 1)
            outcome = data.viirs_outcome or ("ok" if n_records else "no_detections")
            record("viirs", vi_src, "ingested", outcome, s3_key=key, n_records=n_records,
                   detail=data.viirs_detail or None)
            summary["viirs"] = key
        else:
            record("viirs", vi_src, "no_data", data.viirs_outcome or "nodata",
                   detail=data.viirs_detail or "night not observed")

    if data.errors:  # recorded above; now fail the task so Airflow retries it
        errors = list(data.errors.values())
        from flarewatch.ingest.sources.http import PermanentSourceError

        first = next((e for e in errors if isinstance(e, PermanentSourceError)), errors[0])
        log.error("site %s %s: %s", site.site_id, day, "; ".join(error_detail(e) for e in errors))
        raise first
    return summary


def ingested_since(conn, site_days: dict, sensors: tuple[str, ...], since) -> set:
    """(site_id, day) of ``site_days`` whose scenes of every one of ``sensors`` were written at or
    after ``since`` and did not fail: what an earlier try of the task already ingested."""
    if since is None:
        return set()
    rows = db.fetch_dicts(
        conn, "SELECT site_id, acquisition_date FROM scenes WHERE acquisition_date = ANY(%s) AND site_id = ANY(%s)"
              " AND sensor = ANY(%s) GROUP BY site_id, acquisition_date"
              " HAVING count(DISTINCT sensor) = %s AND bool_and(ingested_at >= %s AND status <> 'failed')",
        (sorted(site_days), sorted({s for ids in site_days.values() for s in ids}), list(sensors), len(set(sensors)),
         since))
    return {(r["site_id"], r["acquisition_date"]) for r in rows} & {(s, d) for d, ids in site_days.items() for s in ids}


# ------------------------------------------------------------------------------------------
# A batch of site-days (one flare_ingest mapped task)
# ------------------------------------------------------------------------------------------
class IngestBatchFailed(RuntimeError):
    """Site-days of an ingest batch failed; every other one was ingested. ``errors``:
    [(site_id, day, exception)]; ``permanent`` when each error cannot heal (a provider's 4xx such
    as bad credentials, ``flarewatch.errors.PermanentError``): retrying the task cannot help."""

    def __init__(self, errors: list[tuple[str, date, BaseException]], n_site_days: int, *, permanent: bool,
                 not_attempted: int = 0):
        self.errors, self.permanent, self.not_attempted = errors, permanent, not_attempted
        text = "; ".join(f"{s} {d}: {type(e).__name__}: {e}"[:500] for s, d, e in errors[:20])
        more = f"; and {len(errors) - 20} more" if len(errors) > 20 else ""
        rest = f"; {not_attempted} site-day(s) not attempted (the database connection is gone)" if not_attempted else ""
        super().__init__(f"{len(errors)} of {n_site_days} site-days failed to ingest: {text}{more}{rest}")


def ingest_site_days(site_days: dict[date, list[str]], sites: dict[str, Site], source: SceneSource, s3, conn,
                     settings: Settings, *, sensors: tuple[str, ...] = ("sentinel2", "viirs"),
                     done: set[tuple[str, date]] = frozenset(), cannot_heal=lambda exc: False) -> dict:
    """Ingest a batch of site-days ({day: [site_id, ...]}) with one source and one set of clients.

    Each site-day is ingested even when another fails (``ingest_site_day`` records a provider's
    failure in ``scenes``); then ``IngestBatchFailed`` names every failure, so the task fails and its
    retry redoes only those: ``done`` holds the (site_id, day) an earlier try already ingested,
    which are skipped. ``cannot_heal(exc)`` tells errors that no retry fixes (then
    ``IngestBatchFailed.permanent``). Returns small totals for the task's XCom: site-days ingested,
    skipped as done, and the outcomes per sensor.
    """
    from flarewatch.errors import PermanentError

    todo = [(sid, day) for day in sorted(site_days) for sid in site_days[day]]
    outcomes: dict[str, dict[str, int]] = {}
    errors: list[tuple[str, date, BaseException]] = []
    skipped = 0
    for i, (site_id, day) in enumerate(todo):
        if (site_id, day) in done:
            skipped += 1
            continue
        try:
            summary = ingest_site_day(sites[site_id], day, source, s3, conn, settings, sensors=sensors)
        except Exception as exc:  # noqa: BLE001 - the other site-days still run; IngestBatchFailed below
            log.error("%s %s: ingest failed: %s: %s", site_id, day, type(exc).__name__, exc)
            errors.append((site_id, day, exc))
            try:
                conn.rollback()
            except Exception as lost:  # noqa: BLE001 - the connection died: the retry does the rest
                log.error("the database connection is gone (%s); the task's retry ingests the rest", lost)
                raise IngestBatchFailed(errors, len(todo), permanent=False, not_attempted=len(todo) - i - 1) from exc
            continue
        for sensor, outcome in summary["outcomes"].items():
            per = outcomes.setdefault(sensor, {})
            per[outcome] = per.get(outcome, 0) + 1
    if errors:
        permanent = all(isinstance(e, PermanentError) or cannot_heal(e) for _, _, e in errors)
        raise IngestBatchFailed(errors, len(todo), permanent=permanent) from errors[0][2]
    log.info("ingested %d site-day(s)%s; outcomes %s", len(todo) - skipped,
             f" ({skipped} done by an earlier try, not redone)" if skipped else "",
             "; ".join(f"{s}: " + ", ".join(f"{k} {n}" for k, n in sorted(o.items())) for s, o in sorted(outcomes.items()))
             or "none")
    return {"site_days": len(todo), "ingested": len(todo) - skipped, "reused": skipped, "outcomes": outcomes}
