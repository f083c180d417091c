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
Files may be gzip-compressed (recognised by their magic bytes). Each value carries its report
version (a reported line's ``run``, else the file's version): an older version never replaces a
newer stored value; every version read is kept in ``calibration_measurement_versions``
(migration ``sql/008_calibration_versions.sql``).

File formats, units and validation live in ``meters.formats``; the simulated demo meter in
``simulation.meters``. This module holds the DB and S3 side. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from importlib import resources
from pathlib import Path

from flarewatch.meters.formats import (
    Period,
    Series,
    ValidationResult,
    check_stored_overlaps,
    content_hash,
    detect_format,
    read_table,
    rejected_volume,
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

_STAGE_COLUMNS = ("site_id", "period_start", "period_end", "volume_kscm", "volume_reported", "unit_reported",
                  "source", "source_key", "operator", "report_version", "newest")
_MEASUREMENT_COLUMNS = ("site_id", "period_start", "period_end", "volume_kscm", "volume_reported", "unit_reported",
                        "source", "source_key", "operator", "report_version", "imported_from", "import_batch")

# Every version read goes to the history; a version already there is left as it is unless its
# value differs (the same version re-sent with another value: the later import wins).
_UPSERT_VERSIONS = f"""
INSERT INTO calibration_measurement_versions ({", ".join(_MEASUREMENT_COLUMNS)})
SELECT {", ".join(_MEASUREMENT_COLUMNS[:-2])}, %(imported_from)s, %(batch)s FROM _cal_stage
ON CONFLICT (source, source_key, site_id, period_start, period_end, report_version) DO UPDATE SET
    volume_kscm = EXCLUDED.volume_kscm, volume_reported = EXCLUDED.volume_reported,
    unit_reported = EXCLUDED.unit_reported, operator = EXCLUDED.operator,
    imported_from = EXCLUDED.imported_from, import_batch = EXCLUDED.import_batch, loaded_at = now()
WHERE (calibration_measurement_versions.volume_kscm, calibration_measurement_versions.volume_reported,
       calibration_measurement_versions.unit_reported, calibration_measurement_versions.operator)
   IS DISTINCT FROM (EXCLUDED.volume_kscm, EXCLUDED.volume_reported, EXCLUDED.unit_reported, EXCLUDED.operator)
"""

# The newest version in the file of each measurement whose stored value has a newer version:
# recorded above, not applied.
_COUNT_OLDER = """
SELECT count(*), max(m.report_version) FROM _cal_stage s
JOIN calibration_measurements m USING (source, source_key, site_id, period_start, period_end)
WHERE s.newest AND s.report_version < m.report_version
"""

# Applied only when the file's version is the same or newer than the stored one (an older
# report never replaces a newer value) and something differs (a rerun rewrites nothing).
_UPSERT_MEASUREMENTS = f"""
INSERT INTO calibration_measurements ({", ".join(_MEASUREMENT_COLUMNS)})
SELECT {", ".join(_MEASUREMENT_COLUMNS[:-2])}, %(imported_from)s, %(batch)s FROM _cal_stage WHERE newest
ON CONFLICT (source, source_key, site_id, period_start, period_end) DO UPDATE SET
    volume_kscm = EXCLUDED.volume_kscm, volume_reported = EXCLUDED.volume_reported,
    unit_reported = EXCLUDED.unit_reported, operator = EXCLUDED.operator,
    report_version = EXCLUDED.report_version,
    imported_from = EXCLUDED.imported_from, import_batch = EXCLUDED.import_batch, loaded_at = now()
WHERE EXCLUDED.report_version >= calibration_measurements.report_version
  AND (calibration_measurements.volume_kscm, calibration_measurements.volume_reported,
       calibration_measurements.unit_reported, calibration_measurements.operator,
       calibration_measurements.report_version)
   IS DISTINCT FROM (EXCLUDED.volume_kscm, EXCLUDED.volume_reported, EXCLUDED.unit_reported, EXCLUDED.operator,
                     EXCLUDED.report_version)
RETURNING (xmax = 0) AS inserted
"""

_UPSERT_QUARANTINE = """
INSERT INTO calibration_quarantine (imported_from, import_batch, row_number, raw, kind, reason, source, operator,
    volume_kscm)
VALUES %s
ON CONFLICT (import_batch, row_number) DO UPDATE SET
    raw = EXCLUDED.raw, kind = EXCLUDED.kind, reason = EXCLUDED.reason, source = EXCLUDED.source,
    operator = EXCLUDED.operator, volume_kscm = EXCLUDED.volume_kscm, quarantined_at = now()
WHERE (calibration_quarantine.kind, calibration_quarantine.reason, calibration_quarantine.raw,
       calibration_quarantine.source, calibration_quarantine.operator, calibration_quarantine.volume_kscm)
   IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.reason, EXCLUDED.raw, EXCLUDED.source, EXCLUDED.operator,
                     EXCLUDED.volume_kscm)
"""


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_cell(v) -> str:
    """One value in COPY's text format (``\\N`` for NULL, backslash escapes)."""
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, float):
        return repr(v)
    return (v.isoformat() if isinstance(v, date) else str(v)).translate(_COPY_ESCAPES)


def _copy_rows(cur, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """COPY ``rows`` into ``table`` (text format): much faster than INSERTs for large files."""
    buf = io.StringIO()
    buf.writelines("\t".join(map(_copy_cell, row)) + "\n" for row in rows)
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)


def _stage_lines(result: ValidationResult) -> Iterator[str]:
    """The staged measurements as COPY text lines (``_STAGE_COLUMNS``), written without the
    generic per-cell conversion: this is the hot path of a large file."""
    esc = _COPY_ESCAPES
    for newest, ms in (("t", result.accepted), ("f", result.superseded)):
        for m in ms:
            op = "\\N" if m.operator is None else m.operator.translate(esc)
            yield (f"{m.site_id.translate(esc)}\t{m.period_start}\t{m.period_end}\t{m.volume_kscm!r}\t"
                   f"{m.volume_reported!r}\t{m.unit_reported.translate(esc)}\t{m.source.translate(esc)}\t"
                   f"{m.source_key.translate(esc)}\t{op}\t{m.report_version.translate(esc)}\t{newest}\n")


def _stored_periods(cur, series: set[Series]) -> dict[Series, list[Period]]:
    if not series:
        return {}
    cur.execute("CREATE TEMP TABLE IF NOT EXISTS _cal_series (site_id text, source text, source_key text)"
                " ON COMMIT DROP")
    cur.execute("TRUNCATE _cal_series")
    _copy_rows(cur, "_cal_series", ("site_id", "source", "source_key"), series)
    cur.execute("ANALYZE _cal_series")
    cur.execute(
        "SELECT m.site_id, m.source, m.source_key, m.period_start, m.period_end FROM calibration_measurements m"
        " JOIN _cal_series s USING (site_id, source, source_key)"
    )
    out: dict[Series, list[Period]] = {}
    for site_id, source, key, start, end in cur.fetchall():
        out.setdefault((site_id, source, key), []).append((start, end))
    return out


def _write_measurements(cur, result: ValidationResult, imported_from: str, batch: str) -> dict:
    """Stage the file's measurements (newest and superseded versions), record every version,
    apply the newest where no newer version is stored; counts for the summary."""
    out = {"inserted": 0, "updated": 0, "older_not_applied": 0, "newest_stored_version": None,
           "versions_recorded": 0}
    if not result.accepted and not result.superseded:
        return out
    cur.execute("CREATE TEMP TABLE IF NOT EXISTS _cal_stage (site_id text, period_start date, period_end date,"
                " volume_kscm double precision, volume_reported double precision, unit_reported text,"
                " source text, source_key text, operator text, report_version text, newest boolean) ON COMMIT DROP")
    cur.execute("TRUNCATE _cal_stage")
    buf = io.StringIO()
    buf.writelines(_stage_lines(result))
    buf.seek(0)
    cur.copy_expert(f"COPY _cal_stage ({', '.join(_STAGE_COLUMNS)}) FROM STDIN", buf)
    cur.execute("ANALYZE _cal_stage")
    args = {"imported_from": imported_from, "batch": batch}
    cur.execute(_UPSERT_VERSIONS, args)
    out["versions_recorded"] = cur.rowcount
    cur.execute(_COUNT_OLDER)
    out["older_not_applied"], out["newest_stored_version"] = cur.fetchone()
    cur.execute(_UPSERT_MEASUREMENTS, args)
    returned = cur.fetchall()
    out["inserted"] = sum(1 for (ins,) in returned if ins)
    out["updated"] = len(returned) - out["inserted"]
    return out


QUARANTINE_BREAKDOWN_MAX = 50


def quarantined_volume(result: ValidationResult) -> tuple[dict, list[tuple]]:
    """The quarantined volume per source, operator and reason (largest first), and the
    ``(source, operator, volume_kscm)`` of each rejected line (same order as ``result.rejected``)."""
    details = [rejected_volume(result.fmt, r.raw) for r in result.rejected]
    quarantined = sum(v for _, _, v in details if v is not None)
    file_volume = (sum(m.volume_kscm for m in result.accepted) + sum(m.volume_kscm for m in result.superseded)
                   + quarantined)
    groups: dict[tuple, list] = {}
    for r, (source, operator, v) in zip(result.rejected, details):
        g = groups.setdefault((source or "", operator or "", r.kind), [0, 0.0, 0])
        g[0] += 1
        g[1] += v or 0.0
        g[2] += v is None
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1][1], -kv[1][0], kv[0]))

    def share(v: float) -> float | None:
        return round(100 * v / file_volume, 3) if file_volume else None

    breakdown = [{"source": s, "operator": o, "kind": k, "rows": n, "volume_kscm": round(v, 6),
                  "percent_of_file_volume": share(v), **({"rows_without_volume": nv} if nv else {})}
                 for (s, o, k), (n, v, nv) in ordered[:QUARANTINE_BREAKDOWN_MAX]]
    rest = ordered[QUARANTINE_BREAKDOWN_MAX:]
    if rest:
        v = sum(g[1] for _, g in rest)
        breakdown.append({"source": "", "operator": f"({len(rest)} more groups)", "kind": "", "rows":
                          sum(g[0] for _, g in rest), "volume_kscm": round(v, 6), "percent_of_file_volume": share(v)})
    by_kind: dict[str, float] = {}
    for r, (_, _, v) in zip(result.rejected, details):
        by_kind[r.kind] = by_kind.get(r.kind, 0.0) + (v or 0.0)
    summary = {
        "file_volume_kscm": round(file_volume, 6),
        "volume_kscm": round(quarantined, 6),
        "percent_of_file_volume": share(quarantined),
        "by_reason_kscm": {k: round(v, 6) for k, v in sorted(by_kind.items())},
        "by_operator_and_reason": breakdown,
    }
    return summary, details


def import_calibration(
    conn,
    data: bytes | str,
    *,
    imported_from: str,
    site_ids: Iterable[str] | None = None,
    site_map: Mapping[tuple[str, str, str], str] | None = None,
    fmt: str = "auto",
    etag: str | None = None,
    report_version: str | None = None,
) -> dict:
    """Validate a calibration file (CSV, plain or gzip) and write it in one transaction; returns a
    summary dict.

    ``site_ids`` / ``site_map`` default to the ``sites`` and ``calibration_site_map`` tables.
    ``report_version``: the file's report version for lines without a ``run`` (see
    ``formats.validate_calibration``). Every version read is recorded in
    ``calibration_measurement_versions``; the newest version of each measurement in the file is
    upserted into ``calibration_measurements`` on its natural key unless a newer version is
    stored (an unchanged row is left as it is, a changed value of the same or a newer version is
    updated). Rejected lines are upserted into ``calibration_quarantine`` keyed by (batch, line),
    with their source, operator and volume, and quarantine rows of this batch that now pass are
    removed; the file is logged in ``calibration_imports``. Raises ``CalibrationFileError``
    (nothing written) when the file is not a readable calibration CSV.

    Summary keys: imported_from, import_batch, format, compressed, notes, report_versions,
    version_source, rows, accepted_rows, accepted (measurements, newest version in the file),
    inserted, updated, unchanged, older_not_applied (a newer version is stored),
    superseded_in_file (older versions of a line resent in the file), versions_recorded,
    quarantined, by_reason ({kind: lines}), quarantined_volume (totals, by reason and per
    source / operator / reason).
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
        result = validate_calibration(data, name=imported_from, fmt=fmt, site_ids=site_ids, site_map=site_map,
                                      report_version=report_version, table=table)
        rows_by_number = {n: raw for n, raw, _ in table.rows}
        stored = _stored_periods(cur, {m.series for m in result.accepted})
        result = check_stored_overlaps(result, stored, rows_by_number)
        if result.accepted_rows + len(result.rejected) != result.n_rows:  # nothing may be dropped silently
            raise AssertionError(f"{imported_from}: {result.n_rows} rows read but {result.accepted_rows} accepted"
                                 f" and {len(result.rejected)} quarantined")

        written = _write_measurements(cur, result, imported_from, batch)
        qvolume, details = quarantined_volume(result)
        if result.rejected:
            values = [(imported_from, batch, r.row_number, json.dumps(r.raw, sort_keys=True), r.kind, r.reason,
                       source, operator, volume)
                      for r, (source, operator, volume) in zip(result.rejected, details)]
            execute_values(cur, _UPSERT_QUARANTINE, values,
                           template="(%s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s)", page_size=1000)
        cur.execute("DELETE FROM calibration_quarantine WHERE import_batch = %s AND NOT (row_number = ANY(%s))",
                    (batch, [r.row_number for r in result.rejected]))
        versions = sorted({m.report_version for m in (*result.accepted, *result.superseded)})
        summary = {
            "imported_from": imported_from,
            "import_batch": batch,
            "format": result.fmt,
            "compressed": table.compressed,
            "notes": list(result.notes),
            "report_versions": versions if len(versions) <= 10 else [*versions[:5], "...", *versions[-5:]],
            "version_source": result.version_source,
            "rows": result.n_rows,
            "accepted_rows": result.accepted_rows,
            "accepted": len(result.accepted),
            "inserted": written["inserted"],
            "updated": written["updated"],
            "unchanged": len(result.accepted) - written["inserted"] - written["updated"] - written["older_not_applied"],
            "older_not_applied": written["older_not_applied"],
            "newest_stored_version": written["newest_stored_version"],
            "superseded_in_file": len(result.superseded),
            "versions_recorded": written["versions_recorded"],
            "quarantined": len(result.rejected),
            "by_reason": result.by_kind(),
            "quarantined_volume": qvolume,
        }
        for note in result.notes:
            log.warning("%s: %s", imported_from, note)
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
    """One human line for logs (and a second with the quarantined volume by operator when any)."""
    if summary.get("skipped"):
        return f"{summary['imported_from']}: skipped, {summary['skipped']}"
    reasons = ", ".join(f"{k}: {n}" for k, n in summary.get("by_reason", {}).items()) or "none"
    versions = summary.get("report_versions") or []
    line = (f"{summary['imported_from']} ({summary['format']}"
            f"{', gzip' if summary.get('compressed') else ''}, batch {summary['import_batch'][:12]}"
            f"{', report version ' + '/'.join(v for v in versions if v) if any(versions) else ''}): "
            f"{summary['rows']} rows -> {summary['accepted']} measurements from {summary['accepted_rows']} rows "
            f"({summary['inserted']} new, {summary['updated']} updated, {summary['unchanged']} unchanged, "
            f"{summary.get('older_not_applied', 0)} older than stored: not applied, "
            f"{summary.get('superseded_in_file', 0)} older versions in the file: not applied), "
            f"{summary['quarantined']} rows quarantined ({reasons})")
    qv = summary.get("quarantined_volume") or {}
    if summary["quarantined"] and qv:
        top = "; ".join(f"{g['operator'] or '?'} [{g['source'] or '?'}] {g['kind']}: {g['rows']} rows,"
                        f" {g['volume_kscm']:,.1f} kscm" for g in qv["by_operator_and_reason"][:5])
        line += (f"; quarantined volume {qv['volume_kscm']:,.1f} thousand m3 = {qv['percent_of_file_volume']} % of"
                 f" the file's, largest: {top}")
    if summary.get("notes"):
        line += "; notes: " + "; ".join(summary["notes"])
    return line


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


def import_s3_object(conn, s3, bucket: str, key: str, *, fmt: str = "auto", force: bool = False,
                     report_version: str | None = None) -> dict:
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
    return import_calibration(conn, data, imported_from=uri, fmt=fmt, etag=etag, report_version=report_version)


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


def import_path(conn, path: str | Path, *, fmt: str = "auto", report_version: str | None = None) -> dict:
    """Import a local calibration file (always imported; a re-import is harmless)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"calibration file not found: {p}")
    return import_calibration(conn, p.read_bytes(), imported_from=str(p.resolve()), fmt=fmt,
                              report_version=report_version)
