"""Airflow glue shared by the DAG files: assets, default args, clients from connections, dates.

Imported at DAG parse time, so it imports only the Airflow SDK at module level; everything heavy
is imported inside the functions tasks call.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from airflow.sdk import Asset

from .config import Settings

# Assets couple the DAGs: ingest -> process -> rollup.
RAW_SCENES = Asset(name="flarewatch_raw_scenes")
FLARE_EMISSIONS = Asset(name="flarewatch_flare_emissions")
EMISSION_ROLLUPS = Asset(name="flarewatch_emission_rollups")

START_DATE = datetime(2025, 1, 1)

DEFAULT_ARGS = {
    "owner": "flarewatch",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}


def settings() -> Settings:
    return Settings.from_env()


def s3_client(cfg: Settings):
    """boto3 S3 client for the ``FLAREWATCH_S3_CONN_ID`` Airflow connection (endpoint from its extra)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=cfg.s3_conn_id).get_conn()


def db_connection(cfg: Settings):
    """psycopg2 connection for the ``FLAREWATCH_DB_CONN_ID`` Airflow connection (host may be a socket dir)."""
    from airflow.sdk import BaseHook

    from . import db

    c = BaseHook.get_connection(cfg.db_conn_id)
    extra = c.extra_dejson or {}
    return db.connect(
        host=c.host, port=c.port, user=c.login, password=c.password, dbname=c.schema,
        sslmode=extra.get("sslmode"), application_name="flarewatch",
    )


def parse_day(value: str | date) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise ValueError(f"expected a date as YYYY-MM-DD, got {value!r}") from exc


def run_acquisition_date(context) -> date:
    """The acquisition date a run works on.

    ``params.acquisition_date`` when given (manual runs); otherwise the day before the run's
    logical date (a daily 06:00 UTC run processes yesterday's pass and night). Asset-triggered
    and manual runs may have no logical date: their ``run_after`` is used instead.
    """
    from .pipeline import acquisition_date_for_run

    explicit = (context.get("params") or {}).get("acquisition_date")
    if explicit:
        return parse_day(explicit)
    dag_run = context["dag_run"]
    when = context.get("logical_date") or dag_run.logical_date or dag_run.run_after
    return acquisition_date_for_run(when.date())


def days_from_events(context, asset: Asset, key: str = "days") -> list[date]:
    """Acquisition days carried in the ``extra`` of the asset events that triggered this run."""
    events = context.get("triggering_asset_events") or {}
    days: set[date] = set()
    try:
        evs = events[asset]
    except KeyError:
        evs = []
    for ev in evs:
        for d in (ev.extra or {}).get(key, []):
            days.add(parse_day(d))
    return sorted(days)


def date_range(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"end date {end} is before start date {start}")
    if (end - start).days > 366:
        raise ValueError(f"date range {start}..{end} is longer than a year; split it")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def batch_site_days(site_days, size: int) -> list[dict]:
    """(site_id, day) pairs -> mapped-task inputs: per acquisition day, batches of at most ``size``
    sites, sorted by day then site: ``{"acquisition_date": "YYYY-MM-DD", "site_ids": [...]}``."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    by_day: dict = {}
    for site_id, day in sorted(set(site_days), key=lambda x: (x[1], x[0])):
        by_day.setdefault(day, []).append(site_id)
    return [{"acquisition_date": day.isoformat(), "site_ids": ids[i:i + size]}
            for day, ids in by_day.items() for i in range(0, len(ids), size)]
