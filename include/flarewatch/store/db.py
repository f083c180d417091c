"""Results database: connections, numbered SQL migrations, and idempotent writes.

Every write is an ``INSERT ... ON CONFLICT`` upsert on the table's natural key, so a retried or
cleared-and-rerun task leaves the tables as one clean run would. SQL files live in ``sql/`` at the
repository root (``FLAREWATCH_SQL_DIR`` overrides, e.g. in the Docker image).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from flarewatch import resources
from flarewatch.sites import Site

log = logging.getLogger(__name__)

_MIGRATION_RE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
# Arbitrary constant so concurrent `migrate` calls (several workers starting) serialize.
_MIGRATION_LOCK_ID = 0x466C617265


def sql_dir() -> Path:
    return resources.sql_dir()


def read_sql(name: str) -> str:
    """Text of ``sql/<name>`` (e.g. ``queries/rollup_daily.sql``)."""
    path = sql_dir() / name
    if not path.exists():
        raise FileNotFoundError(f"SQL file not found: {path} (set FLAREWATCH_SQL_DIR?)")
    return path.read_text()


def connect(dsn: str | None = None, **kwargs):
    """psycopg2 connection from a libpq DSN/URI or keyword arguments (host may be a socket dir)."""
    import psycopg2

    if dsn:
        return psycopg2.connect(dsn)
    return psycopg2.connect(**{k: v for k, v in kwargs.items() if v not in (None, "")})


@contextmanager
def transaction(conn) -> Iterator[object]:
    """Cursor inside one transaction: commit on success, roll back on any error."""
    try:
        with conn.cursor() as cur:
            yield cur
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def fetch_dicts(conn, sql: str, args=()) -> list[dict]:
    """Rows of a query as dicts (column name -> value); ends the read transaction."""
    with conn.cursor() as cur:
        cur.execute(sql, args)
        cols = [c.name for c in cur.description]
        rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    conn.commit()
    return rows


def migrations(directory: Path | None = None) -> list[tuple[str, Path]]:
    directory = directory or sql_dir()
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION_RE.match(path.name)
        if m:
            found.append((m.group(1), path))
    if not found:
        raise FileNotFoundError(f"no numbered migrations (NNN_name.sql) in {directory}")
    return found


# Privileges of the read-only roles (sql/011_analyst_role.sql), re-applied by every migrate.
GRANTS_FILE = "grants.sql"
ANALYST_ROLE = "flarewatch_analyst"  # LOGIN, SELECT on every table and view
API_ROLE = "flarewatch_api"  # NOLOGIN, the web API's SET ROLE: ANALYST_ROLE + acknowledging alerts


def migrate(conn, directory: Path | None = None) -> list[str]:
    """Apply pending numbered migrations in order, then ``grants.sql``; returns the versions applied now.

    ``grants.sql`` (when the folder has one) runs on every call, in the same transaction: it grants
    the analyst roles what they lack, so a table of a later migration, or a role an administrator
    created after 011 ran, needs no migration of its own to become readable. What a migration
    could not do for lack of privileges (011 without CREATEROLE) it says in a NOTICE starting
    ``flarewatch:``; those are logged as warnings.
    """
    directory = directory or sql_dir()
    applied_now: list[str] = []
    seen = len(conn.notices)
    with transaction(conn) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cur.execute("SELECT version FROM schema_migrations")
        done = {r[0] for r in cur.fetchall()}
        for version, path in migrations(directory):
            if version in done:
                continue
            cur.execute(path.read_text())
            cur.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, path.name))
            applied_now.append(version)
        grants = directory / GRANTS_FILE
        if grants.is_file():
            cur.execute(grants.read_text())
    for notice in conn.notices[seen:]:
        if "flarewatch:" in notice:
            log.warning("%s", notice.split("flarewatch:", 1)[1].strip())
    return applied_now


def upsert_sites(conn, sites: Iterable[Site]) -> int:
    rows = [
        (s.site_id, s.name, s.field, s.operator, s.country, s.lat, s.lon, s.aoi_km, s.land_cover, s.notes,
         s.s2_source or None, s.viirs_source or None)
        for s in sites
    ]
    with transaction(conn) as cur:
        cur.executemany(
            """
            INSERT INTO sites (site_id, name, field, operator, country, lat, lon, aoi_km, land_cover, notes,
                               s2_source, viirs_source)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (site_id) DO UPDATE SET
              name = EXCLUDED.name, field = EXCLUDED.field, operator = EXCLUDED.operator,
              country = EXCLUDED.country, lat = EXCLUDED.lat, lon = EXCLUDED.lon, aoi_km = EXCLUDED.aoi_km,
              land_cover = EXCLUDED.land_cover, notes = EXCLUDED.notes, s2_source = EXCLUDED.s2_source,
              viirs_source = EXCLUDED.viirs_source, updated_at = now()
            """,
            rows,
        )
    return len(rows)


def fetch_sites(conn, site_ids: Sequence[str] | None = None) -> list[Site]:
    """Active sites (all, or those in ``site_ids``; unknown ids raise ValueError)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT site_id, name, field, operator, country, lat, lon, aoi_km, coalesce(land_cover, ''),"
            " coalesce(notes, ''), coalesce(s2_source, ''), coalesce(viirs_source, '')"
            " FROM sites WHERE active ORDER BY site_id"
        )
        sites = [Site(*row) for row in cur.fetchall()]
    conn.commit()
    if site_ids:
        known = {s.site_id for s in sites}
        unknown = sorted(set(site_ids) - known)
        if unknown:
            raise ValueError(f"unknown or inactive site_id(s): {unknown}; known: {sorted(known)}")
        wanted = set(site_ids)
        sites = [s for s in sites if s.site_id in wanted]
    return sites


SCENE_COLUMNS = (
    "site_id", "acquisition_date", "sensor", "source", "status", "s3_key", "acquired_at", "crs_epsg",
    "width_px", "height_px", "cloud_fraction", "valid_fraction", "n_records", "detail", "outcome",
)


def upsert_scene(conn, scene: dict) -> None:
    """Record an ingested scene (natural key: site, date, sensor, source); resets processed_at.

    Columns missing from ``scene`` are stored as NULL.
    """
    values = [scene.get(c) for c in SCENE_COLUMNS]
    cols = ", ".join(SCENE_COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in SCENE_COLUMNS[4:])
    with transaction(conn) as cur:
        cur.execute(
            f"INSERT INTO scenes ({cols}) VALUES ({', '.join(['%s'] * len(values))})"
            f" ON CONFLICT (site_id, acquisition_date, sensor, source) DO UPDATE SET {updates},"
            " ingested_at = now(), processed_at = NULL",
            values,
        )


def delete_scenes_from_other_sources(conn, site_id: str, day: date, sensor: str, source: str) -> int:
    """Remove the site-day's ``sensor`` rows recorded from another source (the site moved to
    another provider), so ``fetch_scenes`` sees one row per sensor. Returns the rows removed."""
    with transaction(conn) as cur:
        cur.execute(
            "DELETE FROM scenes WHERE site_id = %s AND acquisition_date = %s AND sensor = %s AND source <> %s",
            (site_id, day, sensor, source),
        )
        return cur.rowcount


def fetch_scenes(conn, site_id: str, day: date) -> dict[str, dict]:
    """Scenes of a site-day keyed by sensor."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join(SCENE_COLUMNS)} FROM scenes WHERE site_id = %s AND acquisition_date = %s"
            " ORDER BY sensor, source",
            (site_id, day),
        )
        rows = [dict(zip(SCENE_COLUMNS, r)) for r in cur.fetchall()]
    conn.commit()
    return {r["sensor"]: r for r in rows}


def viirs_night_keys(conn, site_id: str, start: date, end: date) -> dict[date, str]:
    """``rawdata`` keys of a site's VIIRS nights with ``start <= acquisition_date <= end``, by date.

    Nights recorded as ``no_data`` or without an object (a ``failed`` fetch) are left out; any
    source counts. Should a night hold rows from several sources (``ingest_site_day`` keeps one),
    the first source in name order is taken, so the answer is deterministic.
    """
    with conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT ON (acquisition_date) acquisition_date, s3_key FROM scenes"
            " WHERE site_id = %s AND sensor = 'viirs' AND status <> 'no_data' AND s3_key IS NOT NULL"
            " AND acquisition_date BETWEEN %s AND %s ORDER BY acquisition_date, source",
            (site_id, start, end),
        )
        rows = {r[0]: r[1] for r in cur.fetchall()}
    conn.commit()
    return rows


DETECTION_COLUMNS = (
    "site_id", "acquisition_date", "detection_key", "sensor", "detector", "detector_version", "lat", "lon",
    "pixel_row", "pixel_col", "bbox_px", "confidence", "hot_pixels", "hot_area_m2", "b12_excess_sum",
    "b12_excess_peak", "b11_excess_sum", "b11_excess_peak", "b12_b11_ratio", "temperature_k", "swir_frp_mw",
    "cloud_flag", "saturated", "viirs_n", "viirs_rh_mw", "viirs_temp_k", "viirs_area_m2", "viirs_distance_m",
    "features",
)
EMISSION_COLUMNS = (
    "site_id", "acquisition_date", "detection_key", "volume_kscm_d", "volume_method", "radiant_heat_mw",
    "rh_source", "co2_t", "ch4_slip_t", "co2e_t", "volume_lo_kscm_d", "volume_hi_kscm_d", "model_version",
    "emission_factors",
)
_JSON_COLUMNS = {"features", "emission_factors"}
_KEY = ("site_id", "acquisition_date", "detection_key")


def _upsert_sql(table: str, columns: Sequence[str]) -> str:
    placeholders = ", ".join("%s::jsonb" if c in _JSON_COLUMNS else "%s" for c in columns)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in _KEY)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
        f" ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {updates}, processed_at = now()"
    )


def _row(record: dict, columns: Sequence[str]) -> list:
    missing = [c for c in columns if c not in record]
    if missing:
        raise KeyError(f"record is missing columns {missing}")
    return [json.dumps(record[c], default=str) if c in _JSON_COLUMNS else record[c] for c in columns]


PROCESSING_COLUMNS = (
    "n_detections", "n_sentinel2", "n_viirs_only", "volume_kscm_d", "co2_t", "co2e_t", "detector_version",
    "volume_model_version", "sentinel2_outcome", "viirs_outcome", "result_key", "dag_id", "dag_run_id",
)


def airflow_run() -> dict:
    """The Airflow DAG and run this process works for (the task runner exports them as
    ``AIRFLOW_CTX_*``); empty values outside Airflow."""
    return {"dag_id": os.environ.get("AIRFLOW_CTX_DAG_ID"), "dag_run_id": os.environ.get("AIRFLOW_CTX_DAG_RUN_ID")}


class WriteMismatch(RuntimeError):
    """The rows in the database after a site-day's write differ from what processing produced."""


def replace_site_day_results(
    conn, site_id: str, day: date, detections: list[dict], emissions: list[dict], scene_sensors: Iterable[str],
    *, scene_states: dict[str, tuple[str, str | None, str | None]] | None = None, record: dict | None = None,
    scene_usable: dict[str, tuple[bool, float]] | None = None,
) -> None:
    """Write one site-day's detections and emissions in one transaction.

    Upserts every row on its natural key, deletes rows of that site-day whose key is no longer
    produced (a rerun with a changed detector leaves no stale flares), marks the scenes processed
    and records the outcome in ``site_day_processing``. ``scene_states``: sensor -> (status,
    outcome, detail) for scenes whose validation decided otherwise (``quarantined``); a scene that
    is ``no_data`` or ``failed`` (at ingest) keeps its status. ``record``: the
    ``PROCESSING_COLUMNS`` of ``site_day_processing`` (what was written). ``scene_usable``: sensor ->
    (usable, usable_fraction) (``validate.usable``). Before committing, the
    site-day's rows are counted: a duplicate key or a lost row raises ``WriteMismatch`` and rolls
    everything back, so the database never holds less or other than what processing produced.
    """
    keys = [d["detection_key"] for d in detections]
    if len(set(keys)) != len(keys):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise WriteMismatch(f"{site_id} {day}: detection keys produced twice: {dupes}")
    scene_states = dict(scene_states or {})
    with transaction(conn) as cur:
        if detections:
            cur.executemany(_upsert_sql("flare_detections", DETECTION_COLUMNS), [_row(d, DETECTION_COLUMNS) for d in detections])
        if emissions:
            cur.executemany(_upsert_sql("flare_emissions", EMISSION_COLUMNS), [_row(e, EMISSION_COLUMNS) for e in emissions])
        cur.execute(
            "DELETE FROM flare_detections WHERE site_id = %s AND acquisition_date = %s"
            " AND NOT (detection_key = ANY(%s))",
            (site_id, day, keys),
        )
        cur.execute(
            "SELECT count(*), count(e.detection_key), coalesce(sum(e.volume_kscm_d), 0) FROM flare_detections d"
            " LEFT JOIN flare_emissions e USING (site_id, acquisition_date, detection_key)"
            " WHERE d.site_id = %s AND d.acquisition_date = %s",
            (site_id, day),
        )
        n_det, n_em, volume = cur.fetchone()
        produced = sum(e["volume_kscm_d"] or 0.0 for e in emissions)
        if n_det != len(detections) or n_em != len(emissions) or abs(volume - produced) > 1e-6 * max(1.0, produced):
            raise WriteMismatch(f"{site_id} {day}: wrote {len(detections)} detections / {len(emissions)} emissions "
                                f"({produced:.4f} kscm/d) but the database holds {n_det} / {n_em} ({volume:.4f})")
        for sensor, (status, outcome, detail) in scene_states.items():
            cur.execute(
                "UPDATE scenes SET processed_at = now(), status = %s, outcome = %s, detail = %s"
                " WHERE site_id = %s AND acquisition_date = %s AND sensor = %s",
                (status, outcome, detail, site_id, day, sensor),
            )
        others = [s for s in scene_sensors if s not in scene_states]
        cur.execute(
            "UPDATE scenes SET processed_at = now(),"
            " status = CASE WHEN status IN ('ingested', 'quarantined') THEN 'processed' ELSE status END,"
            " outcome = CASE WHEN status = 'quarantined' THEN 'ok' ELSE outcome END,"  # it passed validation now
            " detail = CASE WHEN status = 'quarantined' THEN NULL ELSE detail END"
            " WHERE site_id = %s AND acquisition_date = %s AND sensor = ANY(%s)",
            (site_id, day, others),
        )
        for sensor, (ok, frac) in (scene_usable or {}).items():
            cur.execute("UPDATE scenes SET usable = %s, usable_fraction = %s WHERE site_id = %s"
                        " AND acquisition_date = %s AND sensor = %s", (ok, frac, site_id, day, sensor))
        if record is not None:
            record = {**airflow_run(), **record}
            cols = ", ".join(PROCESSING_COLUMNS)
            cur.execute(
                f"INSERT INTO site_day_processing (site_id, acquisition_date, state, attempts, last_error,"
                f" last_attempt_at, processed_at, {cols})"
                f" VALUES (%s, %s, 'processed', 0, NULL, now(), now(), {', '.join(['%s'] * len(PROCESSING_COLUMNS))})"
                " ON CONFLICT (site_id, acquisition_date) DO UPDATE SET state = 'processed', attempts = 0,"
                " last_error = NULL, last_attempt_at = now(), processed_at = now(), "
                + ", ".join(f"{c} = EXCLUDED.{c}" for c in PROCESSING_COLUMNS),
                (site_id, day, *[record.get(c) for c in PROCESSING_COLUMNS]),
            )


def upsert_reestimated_emissions(conn, emissions: Sequence[dict], site_days: Sequence[tuple[str, date]]) -> None:
    """Upsert re-estimated ``flare_emissions`` rows (a new volume model on existing detections) and
    mark their site-days' processed scenes as processed now, where nothing is pending, so the
    rollup sweep (``stale_rollup_days``) refreshes their daily and monthly rows. One transaction."""
    with transaction(conn) as cur:
        if emissions:
            cur.executemany(_upsert_sql("flare_emissions", EMISSION_COLUMNS), [_row(e, EMISSION_COLUMNS) for e in emissions])
        for site_id, day in site_days:
            cur.execute("UPDATE scenes SET processed_at = now() WHERE site_id = %s AND acquisition_date = %s"
                        " AND processed_at IS NOT NULL AND processed_at >= ingested_at", (site_id, day))


def scene_site_days(conn, days: Iterable[date]) -> list[tuple[str, date]]:
    """(site_id, day) pairs with at least one recorded scene on one of ``days``."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT site_id, acquisition_date FROM scenes WHERE acquisition_date = ANY(%s)"
            " ORDER BY acquisition_date, site_id",
            (sorted(set(days)),),
        )
        rows = [(r[0], r[1]) for r in cur.fetchall()]
    conn.commit()
    return rows


def pending_site_days(conn) -> list[tuple[str, date]]:
    """Site-days ingested but not processed since (processed_at missing or older than ingested_at),
    less those that processing gave up on after their last ingest (``site_day_processing.state =
    'failed'``: they wait for ``flarewatch requeue`` or a new ingest).

    Asset events can coalesce or, under a scheduler race, go missing; planning from this state
    as well as from the events makes ``flare_process`` self-healing.
    """
    with conn.cursor() as cur:
        cur.execute(
            "SELECT sc.site_id, sc.acquisition_date FROM scenes sc"
            " LEFT JOIN site_day_processing p USING (site_id, acquisition_date)"
            " GROUP BY sc.site_id, sc.acquisition_date, p.state, p.last_attempt_at"
            " HAVING bool_or(sc.processed_at IS NULL OR sc.processed_at < sc.ingested_at)"
            " AND NOT (p.state IS NOT DISTINCT FROM 'failed' AND p.last_attempt_at >= max(sc.ingested_at))"
            " ORDER BY sc.acquisition_date, sc.site_id"
        )
        rows = [(r[0], r[1]) for r in cur.fetchall()]
    conn.commit()
    return rows


def stale_rollup_days(conn) -> list[date]:
    """Days whose ``emissions_daily`` rows are missing or older than the latest processing of that
    day, or than a failed processing attempt (the day's row must say 'failed', not 'pending')."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT DISTINCT sc.acquisition_date
            FROM scenes sc
            LEFT JOIN emissions_daily d ON d.site_id = sc.site_id AND d.day = sc.acquisition_date
            WHERE sc.processed_at IS NOT NULL AND (d.refreshed_at IS NULL OR d.refreshed_at < sc.processed_at)
            UNION
            SELECT p.acquisition_date
            FROM site_day_processing p
            LEFT JOIN emissions_daily d ON d.site_id = p.site_id AND d.day = p.acquisition_date
            WHERE p.state = 'failed' AND (d.refreshed_at IS NULL OR d.refreshed_at < p.last_attempt_at)
            ORDER BY 1
            """
        )
        rows = [r[0] for r in cur.fetchall()]
    conn.commit()
    return rows


def refresh_rollups(conn, days: Sequence[date]) -> dict[str, int]:
    """Recompute ``emissions_daily`` for ``days`` (all active sites) and ``emissions_monthly`` for their months."""
    days = sorted(set(days))
    if not days:
        return {"daily_rows": 0, "monthly_rows": 0}
    months = sorted({d.replace(day=1) for d in days})
    with transaction(conn) as cur:
        cur.execute(read_sql("queries/rollup_daily.sql"), {"days": days})
        daily = cur.rowcount
        cur.execute(read_sql("queries/rollup_monthly.sql"), {"months": months})
        monthly = cur.rowcount
    return {"daily_rows": daily, "monthly_rows": monthly}
