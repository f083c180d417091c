"""Dates of Airflow runs: the acquisition day a run works on, days carried by asset events, ranges.

Imported at DAG parse time: the Airflow SDK and the standard library only.
"""

from __future__ import annotations

from datetime import date, timedelta

from airflow.sdk import Asset


def acquisition_date_for_run(run_date: date) -> date:
    """The acquisition day a scheduled daily run processes: the day before the run (data latency)."""
    from datetime import timedelta

    return run_date - timedelta(days=1)


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
