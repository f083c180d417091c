"""Dates of Airflow runs: the acquisition days a run works on, days carried by asset events, ranges.

Scheduled runs: a run with logical date D (the 06:00 UTC run of day D) works on acquisition date
D - 1 (the day's Sentinel-2 pass and the following night's VIIRS detections are complete by then).
So in Airflow's Backfill dialog, which speaks in logical dates, acquisition dates A..B are the
logical dates A + 1 .. B + 1. Manual runs name acquisition dates directly: ``acquisition_date``
(one day) or ``acquisition_start`` / ``acquisition_end`` (a range of at most
``MAX_ACQUISITION_DAYS``).

Imported at DAG parse time: the Airflow SDK and the standard library only.
"""

from __future__ import annotations

from datetime import date, timedelta

from airflow.sdk import Asset

from flarewatch.errors import BadParams

# the longest acquisition-date range one manual run takes (a leap year)
MAX_ACQUISITION_DAYS = 366


def acquisition_date_for_run(run_date: date) -> date:
    """The acquisition day a scheduled daily run processes: the day before the run (data latency)."""
    return run_date - timedelta(days=1)


def parse_day(value: str | date, name: str = "") -> date:
    """``value`` as a date; ``BadParams`` (a ValueError) naming the parameter ``name`` otherwise."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError as exc:
        raise BadParams(f"{name + ': ' if name else ''}expected a date as YYYY-MM-DD, got {value!r}") from exc


def requested_acquisition_dates(params: dict) -> list[date] | None:
    """The acquisition dates a manual run names, or None when it names none.

    ``acquisition_date`` (one day) or ``acquisition_start`` .. ``acquisition_end`` (inclusive;
    end defaults to start; at most ``MAX_ACQUISITION_DAYS``); both forms at once is an error.
    Raises ``BadParams`` with the parameter at fault.
    """
    one, start, end = (params.get(k) for k in ("acquisition_date", "acquisition_start", "acquisition_end"))
    if one and (start or end):
        raise BadParams("give either acquisition_date (one day) or acquisition_start / acquisition_end (a range), "
                        f"not both (got acquisition_date={one}, acquisition_start={start}, acquisition_end={end})")
    if one:
        return [parse_day(one, "acquisition_date")]
    if end and not start:
        raise BadParams(f"acquisition_end={end} needs acquisition_start (the first day of the range)")
    if not start:
        return None
    first = parse_day(start, "acquisition_start")
    last = parse_day(end, "acquisition_end") if end else first
    if last < first:
        raise BadParams(f"acquisition_end {last} is before acquisition_start {first}")
    n = (last - first).days + 1
    if n > MAX_ACQUISITION_DAYS:
        raise BadParams(f"acquisition_start..acquisition_end is {n} days ({first}..{last}); one run takes at most "
                        f"{MAX_ACQUISITION_DAYS}: split the range")
    return [first + timedelta(days=i) for i in range(n)]


def run_acquisition_dates(context) -> list[date]:
    """The acquisition dates a run works on.

    The dates the params name (``requested_acquisition_dates``: manual runs); otherwise the day
    before the run's logical date (a daily 06:00 UTC run processes yesterday's pass and night).
    Asset-triggered and manual runs may have no logical date: their ``run_after`` is used instead.
    """
    explicit = requested_acquisition_dates(context.get("params") or {})
    if explicit is not None:
        return explicit
    dag_run = context["dag_run"]
    when = context.get("logical_date") or dag_run.logical_date or dag_run.run_after
    return [acquisition_date_for_run(when.date())]


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
    """``start`` .. ``end`` inclusive; ``BadParams`` (a ValueError) when reversed or over a year."""
    if end < start:
        raise BadParams(f"end date {end} is before start date {start}")
    if (end - start).days > 366:
        raise BadParams(f"date range {start}..{end} is longer than a year; split it")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
