"""Calibration measurements: metered or state-reported flared volumes per site and period.

A calibration measurement is the total gas flared at one site over an inclusive period
``[period_start, period_end]``, by one meter, well or lease, normalised to thousand standard m3
(``volume_kscm``). The regressor aligns them with detections through the view
``v_calibration_site_periods`` (migration ``sql/004_calibration.sql``).

Two CSV formats are accepted, recognised from the header (``detect_format``):

* **native**: ``site_id,period_start,period_end,volume,unit,source[,source_key][,operator]``;
  ``volume`` in ``unit`` (``UNITS``; a ``/d`` suffix makes it a daily rate multiplied by the
  period's days).
* **reported**: the state-reported monthly volumes of ``tests/fixtures/reported-flares/``
  (``run,state,key_type,key,month,operator,flared``; ``flared`` in Mcf for the whole month),
  mapped to sites through ``calibration_site_map`` (``source`` = state code, ``key_type``, ``key``).

Validation (``validate_calibration``) splits the rows into accepted measurements and rejected
rows, each with a specific reason; rejected rows go to ``calibration_quarantine`` and nothing is
dropped: every data line of a file is either part of an accepted measurement or quarantined.
``import_calibration`` writes both in one transaction and is idempotent (upsert on the natural key
``(source, source_key, site_id, period_start, period_end)``; an unchanged row is not rewritten).

File formats, units and validation live in ``meters.formats``; the simulated demo meter in
``simulation.meters``. This module holds the DB and S3 side. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path

from flarewatch.meters.formats import (
    Period,
    Series,
    check_stored_overlaps,
    content_hash,
    detect_format,
    read_table,
    validate_calibration,
)
from flarewatch.store import db

log = logging.getLogger(__name__)



# --------------------------------------------------------------------------------------------
# Site mapping (reported wells / leases -> sites)
# --------------------------------------------------------------------------------------------
SITE_MAP_COLUMNS = ("source", "key_type", "key", "site_id", "notes")


def load_site_map(path: str | Path | None = None) -> list[dict]:
    """Rows of a site-map CSV (``SITE_MAP_COLUMNS``; '#' lines are comments); the packaged,
    illustrative ``data/calibration_site_map.csv`` when ``path`` is None."""
    if path is None:
        text = resources.files("flarewatch").joinpath("data/calibration_site_map.csv").read_text()
    else:
        text = Path(path).read_text()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(lines)
    missing = [c for c in SITE_MAP_COLUMNS[:4] if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"site map CSV is missing columns {missing}")
    return [{c: (row.get(c) or "").strip() for c in SITE_MAP_COLUMNS} for row in reader]


def seed_site_map(conn, rows: Iterable[Mapping]) -> int:
    """Upsert ``calibration_site_map`` rows (dicts with ``SITE_MAP_COLUMNS``); returns the count."""

    values = [(r["source"], r["key_type"], r["key"], r["site_id"], r.get("notes") or None) for r in rows]
    with db.transaction(conn) as cur:
        cur.executemany(
            "INSERT INTO calibration_site_map (source, key_type, key, site_id, notes) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (source, key_type, key) DO UPDATE SET site_id = EXCLUDED.site_id, notes = EXCLUDED.notes,"
            " updated_at = now()"
            " WHERE (calibration_site_map.site_id, calibration_site_map.notes)"
            " IS DISTINCT FROM (EXCLUDED.site_id, EXCLUDED.notes)",
            values,
        )
    return len(values)


def fetch_site_map(conn) -> dict[tuple[str, str, str], str]:
    with conn.cursor() as cur:
        cur.execute("SELECT source, key_type, key, site_id FROM calibration_site_map")
        out = {(s, t, k): site for s, t, k, site in cur.fetchall()}
    conn.commit()
    return out


# --------------------------------------------------------------------------------------------
# Database import
# --------------------------------------------------------------------------------------------
# Serialises imports (the overlap check reads what an import is about to write).
_IMPORT_LOCK_ID = 0x43616C6962

_UPSERT_MEASUREMENTS = """
INSERT INTO calibration_measurements (site_id, period_start, period_end, volume_kscm, volume_reported,
    unit_reported, source, source_key, operator, imported_from, import_batch)
VALUES %s
ON CONFLICT (source, source_key, site_id, period_start, period_end) DO UPDATE SET
    volume_kscm = EXCLUDED.volume_kscm, volume_reported = EXCLUDED.volume_reported,
    unit_reported = EXCLUDED.unit_reported, operator = EXCLUDED.operator,
    imported_from = EXCLUDED.imported_from, import_batch = EXCLUDED.import_batch, loaded_at = now()
WHERE (calibration_measurements.volume_kscm, calibration_measurements.volume_reported,
       calibration_measurements.unit_reported, calibration_measurements.operator)
   IS DISTINCT FROM (EXCLUDED.volume_kscm, EXCLUDED.volume_reported, EXCLUDED.unit_reported, EXCLUDED.operator)
RETURNING (xmax = 0) AS inserted
"""

_UPSERT_QUARANTINE = """
INSERT INTO calibration_quarantine (imported_from, import_batch, row_number, raw, kind, reason)
VALUES %s
ON CONFLICT (import_batch, row_number) DO UPDATE SET
    raw = EXCLUDED.raw, kind = EXCLUDED.kind, reason = EXCLUDED.reason, quarantined_at = now()
WHERE (calibration_quarantine.kind, calibration_quarantine.reason, calibration_quarantine.raw)
   IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.reason, EXCLUDED.raw)
"""


def _stored_periods(cur, series: set[Series]) -> dict[Series, list[Period]]:
    if not series:
        return {}
    sites, sources, keys = (sorted({s[i] for s in series}) for i in range(3))
    cur.execute(
        "SELECT site_id, source, source_key, period_start, period_end FROM calibration_measurements"
        " WHERE site_id = ANY(%s) AND source = ANY(%s) AND source_key = ANY(%s)",
        (sites, sources, keys),
    )
    out: dict[Series, list[Period]] = {}
    for site_id, source, key, start, end in cur.fetchall():
        if (site_id, source, key) in series:
            out.setdefault((site_id, source, key), []).append((start, end))
    return out


def import_calibration(
    conn,
    data: bytes | str,
    *,
    imported_from: str,
    site_ids: Iterable[str] | None = None,
    site_map: Mapping[tuple[str, str, str], str] | None = None,
    fmt: str = "auto",
    etag: str | None = None,
) -> dict:
    """Validate a calibration file and write it in one transaction; returns a summary dict.

    ``site_ids`` / ``site_map`` default to the ``sites`` and ``calibration_site_map`` tables.
    Accepted measurements are upserted on their natural key (an unchanged row is left as it
    is, a changed value is updated); rejected lines are upserted into ``calibration_quarantine``
    keyed by (batch, line), and quarantine rows of this batch that now pass are removed; the file
    is logged in ``calibration_imports``. Raises ``CalibrationFileError`` (nothing written) when
    the file is not a readable calibration CSV.

    Summary keys: imported_from, import_batch, format, rows, accepted_rows, accepted
    (measurements), inserted, updated, unchanged, quarantined, by_reason ({kind: lines}).
    """
    from psycopg2.extras import execute_values


    batch = content_hash(data)
    table = read_table(data, imported_from)  # fail before touching the database
    detect_format(table.header, fmt, imported_from)
    with db.transaction(conn) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_IMPORT_LOCK_ID,))
        if site_ids is None:
            cur.execute("SELECT site_id FROM sites")
            site_ids = [r[0] for r in cur.fetchall()]
        if site_map is None:
            cur.execute("SELECT source, key_type, key, site_id FROM calibration_site_map")
            site_map = {(s, t, k): site for s, t, k, site in cur.fetchall()}
        result = validate_calibration(data, name=imported_from, fmt=fmt, site_ids=site_ids, site_map=site_map)
        rows_by_number = {n: raw for n, raw, _ in table.rows}
        stored = _stored_periods(cur, {m.series for m in result.accepted})
        result = check_stored_overlaps(result, stored, rows_by_number)
        if result.accepted_rows + len(result.rejected) != result.n_rows:  # nothing may be dropped silently
            raise AssertionError(f"{imported_from}: {result.n_rows} rows read but {result.accepted_rows} accepted"
                                 f" and {len(result.rejected)} quarantined")

        inserted = updated = 0
        if result.accepted:
            values = [(m.site_id, m.period_start, m.period_end, m.volume_kscm, m.volume_reported, m.unit_reported,
                       m.source, m.source_key, m.operator, imported_from, batch) for m in result.accepted]
            returned = execute_values(cur, _UPSERT_MEASUREMENTS, values, page_size=1000, fetch=True)
            inserted = sum(1 for (ins,) in returned if ins)
            updated = len(returned) - inserted
        if result.rejected:
            values = [(imported_from, batch, r.row_number, json.dumps(r.raw, sort_keys=True), r.kind, r.reason)
                      for r in result.rejected]
            execute_values(cur, _UPSERT_QUARANTINE, values, template="(%s, %s, %s, %s::jsonb, %s, %s)",
                           page_size=1000)
        cur.execute("DELETE FROM calibration_quarantine WHERE import_batch = %s AND NOT (row_number = ANY(%s))",
                    (batch, [r.row_number for r in result.rejected]))
        summary = {
            "imported_from": imported_from,
            "import_batch": batch,
            "format": result.fmt,
            "rows": result.n_rows,
            "accepted_rows": result.accepted_rows,
            "accepted": len(result.accepted),
            "inserted": inserted,
            "updated": updated,
            "unchanged": len(result.accepted) - inserted - updated,
            "quarantined": len(result.rejected),
            "by_reason": result.by_kind(),
        }
        cur.execute(
            "INSERT INTO calibration_imports (import_batch, imported_from, etag, file_format, n_rows,"
            " n_accepted_rows, n_quarantined, summary) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)"
            " ON CONFLICT (import_batch, imported_from) DO UPDATE SET etag = EXCLUDED.etag,"
            " file_format = EXCLUDED.file_format, n_rows = EXCLUDED.n_rows,"
            " n_accepted_rows = EXCLUDED.n_accepted_rows, n_quarantined = EXCLUDED.n_quarantined,"
            " summary = EXCLUDED.summary, last_imported_at = now()",
            (batch, imported_from, etag, result.fmt, result.n_rows, result.accepted_rows, len(result.rejected),
             json.dumps(summary)),
        )
    return summary


def format_summary(summary: dict) -> str:
    """One human line for logs."""
    if summary.get("skipped"):
        return f"{summary['imported_from']}: skipped, {summary['skipped']}"
    reasons = ", ".join(f"{k}: {n}" for k, n in summary.get("by_reason", {}).items()) or "none"
    return (f"{summary['imported_from']} ({summary['format']}, batch {summary['import_batch'][:12]}): "
            f"{summary['rows']} rows -> {summary['accepted']} measurements from {summary['accepted_rows']} rows "
            f"({summary['inserted']} new, {summary['updated']} updated, {summary['unchanged']} unchanged), "
            f"{summary['quarantined']} rows quarantined ({reasons})")


# --------------------------------------------------------------------------------------------
# Files: S3 objects and local paths
# --------------------------------------------------------------------------------------------
CALIBRATION_PREFIX = "calibration/"


def parse_s3_uri(value: str, default_bucket: str) -> tuple[str, str]:
    """``'s3://bucket/key'`` or a bare key (in ``default_bucket``) -> ``(bucket, key)``."""
    value = value.strip()
    if value.startswith("s3://"):
        bucket, _, key = value[5:].partition("/")
        if not bucket or not key:
            raise ValueError(f"expected s3://bucket/key, got {value!r}")
        return bucket, key
    return default_bucket, value.lstrip("/")


def read_s3_object(s3, bucket: str, key: str) -> tuple[bytes, str | None]:
    """The object's bytes and ETag; ``FileNotFoundError`` when it does not exist."""
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey as exc:
        raise FileNotFoundError(f"s3://{bucket}/{key} does not exist") from exc
    return obj["Body"].read(), (obj.get("ETag") or "").strip('"') or None


def list_calibration_objects(s3, bucket: str, prefix: str = CALIBRATION_PREFIX) -> list[dict]:
    """``[{key, etag, size}]`` of the objects under ``prefix`` (folders markers excluded), by key."""
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith("/"):
                out.append({"key": obj["Key"], "etag": (obj.get("ETag") or "").strip('"'), "size": obj.get("Size")})
    return sorted(out, key=lambda o: o["key"])


def new_objects(conn, bucket: str, objects: Sequence[dict]) -> list[dict]:
    """The objects not yet imported with this ETag from this URI (``calibration_imports``)."""
    with conn.cursor() as cur:
        cur.execute("SELECT imported_from, etag FROM calibration_imports WHERE etag IS NOT NULL")
        done = set(cur.fetchall())
    conn.commit()
    return [o for o in objects if (f"s3://{bucket}/{o['key']}", o["etag"]) not in done]


def batch_imported(conn, batch: str) -> str | None:
    """Where a batch (file content) was first imported from, or None."""
    with conn.cursor() as cur:
        cur.execute("SELECT imported_from FROM calibration_imports WHERE import_batch = %s"
                    " ORDER BY first_imported_at LIMIT 1", (batch,))
        row = cur.fetchone()
    conn.commit()
    return row[0] if row else None


def import_s3_object(conn, s3, bucket: str, key: str, *, fmt: str = "auto", force: bool = False) -> dict:
    """Import ``s3://bucket/key``. Unless ``force``, content already imported (same hash, under
    any key) is not imported again: the URI is logged as an alias and the summary says skipped."""
    data, etag = read_s3_object(s3, bucket, key)
    uri = f"s3://{bucket}/{key}"
    batch = content_hash(data)
    if not force:
        first = batch_imported(conn, batch)
        if first is not None:
            _log_alias(conn, batch, uri, etag, first)
            return {"imported_from": uri, "import_batch": batch, "skipped": f"same content as {first}"}
    return import_calibration(conn, data, imported_from=uri, fmt=fmt, etag=etag)


def _log_alias(conn, batch: str, uri: str, etag: str | None, first: str) -> None:

    with db.transaction(conn) as cur:
        cur.execute(
            "INSERT INTO calibration_imports (import_batch, imported_from, etag, file_format, n_rows,"
            " n_accepted_rows, n_quarantined, summary)"
            " SELECT import_batch, %s, %s, file_format, n_rows, n_accepted_rows, n_quarantined,"
            " summary || jsonb_build_object('same_content_as', %s::text)"
            " FROM calibration_imports WHERE import_batch = %s AND imported_from = %s"
            " ON CONFLICT (import_batch, imported_from) DO UPDATE SET etag = EXCLUDED.etag",
            (uri, etag, first, batch, first),
        )


def import_path(conn, path: str | Path, *, fmt: str = "auto") -> dict:
    """Import a local calibration file (always imported; a re-import is harmless)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"calibration file not found: {p}")
    return import_calibration(conn, p.read_bytes(), imported_from=str(p.resolve()), fmt=fmt)
