"""Reported (or metered) volumes against FlareWatch's gap-aware estimate, per site or operator,
month and reporting source. Pure functions.

A reported period is prorated to the months it overlaps by days (a monthly state report falls in
its month; a meter's period spanning two months is split by its days in each). The estimate is
taken over the same days the reports cover (``analytics.gapfill.estimate_month`` on those days),
so a meter that reports half a month is compared with half a month. ``flag``:
``under_reported`` when the reported volume lies below the estimate's 90 % interval (satellites
see more than was reported), ``over_reported`` above it, ``consistent`` inside it, ``no_estimate``
without an observed day to estimate from. ``ratio`` = estimate / reported.
"""

from __future__ import annotations

from datetime import date, timedelta


def prorate(period_start: date, period_end: date, volume: float, month: date, month_end: date) -> tuple[float, set]:
    """(volume falling in the month, the month's days covered) of an inclusive reported period."""
    start, end = max(period_start, month), min(period_end, month_end)
    if end < start:
        return 0.0, set()
    total_days = (period_end - period_start).days + 1
    days = {start + timedelta(days=i) for i in range((end - start).days + 1)}
    return volume * len(days) / total_days, days


def flag(reported: float, estimate: float | None, lo: float | None, hi: float | None) -> str:
    if estimate is None or lo is None or hi is None:
        return "no_estimate"
    if reported < lo:
        return "under_reported"
    if reported > hi:
        return "over_reported"
    return "consistent"


def ratio(estimate: float | None, reported: float) -> float | None:
    return None if estimate is None or reported <= 0 else estimate / reported
