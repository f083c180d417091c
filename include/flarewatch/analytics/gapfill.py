"""Gap-aware monthly volume of one site: observed days as measured, unobserved days filled from the
site's neighbouring observed days, with a 90 % interval. Pure functions.

Method (``METHOD``; settings in ``config.AnalyticsConfig``):

1. The site's calendar days of the month: every day from the month's first day (or the site's
   first scene, when later) to its last. A day is observed when processing handled it and a sensor
   saw the site (``emissions_daily.status = 'processed'`` and ``s2_observed`` or ``viirs_observed``);
   cloud, no overpass, a failed or quarantined scene and unprocessed days are unobserved.
2. An unobserved day takes the mean volume (and mean interval bounds) of the nearest observed day
   before it and the nearest after it, each within ``gapfill_max_days``, or of the one that exists;
   with neither, the mean of the month's observed days (observed days of the neighbouring months
   count as neighbours).
3. The 90 % interval adds two parts: the measurement interval (the sum of the observed days' and
   the fills' bounds, themselves sums of per-flare bounds) and the gap-filling error, from the
   same rule's leave-one-out errors on the observed days: 1.645 x their standard deviation x
   sqrt(number of filled days) (day errors taken as independent). With fewer than 3
   leave-one-out errors the standard deviation is taken as the observed mean (100 %), on purpose
   wide. The lower bound never falls below the observed days' own lower bounds.
4. No observed day in reach: no estimate (NULL), never zero.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import date, timedelta

METHOD = ("observed days as measured; unobserved days = mean of the nearest observed day before and after "
          "(<= {k} days), else the month's observed mean; 90 % interval = sum of per-flare 90 % bounds + 1.645 x "
          "leave-one-out fill error sd x sqrt(filled days)")
Z90 = 1.6448536269514722  # two-sided 90 %: the 95th percentile of the standard normal


@dataclass(frozen=True)
class DayVolume:
    """An observed site-day: volume (thousand m3) and its 90 % bounds."""

    volume: float
    lo: float
    hi: float


@dataclass(frozen=True)
class MonthEstimate:
    calendar_days: int
    observed_days: int
    volume_observed: float
    estimate: float | None
    lo: float | None
    hi: float | None
    filled_days: int
    fill_error_sd: float | None


def month_days(month: date, first_day: date | None = None) -> list[date]:
    """Calendar days of ``month`` (its first day) from ``first_day`` on, when that is later."""
    start = month.replace(day=1)
    nxt = (start + timedelta(days=32)).replace(day=1)
    days = [start + timedelta(days=i) for i in range((nxt - start).days)]
    return [d for d in days if first_day is None or d >= first_day]


def _neighbours(day: date, observed: dict[date, DayVolume], max_days: int) -> list[DayVolume]:
    found = []
    for sign in (-1, 1):
        for i in range(1, max_days + 1):
            hit = observed.get(day + timedelta(days=sign * i))
            if hit is not None:
                found.append(hit)
                break
    return found


def _fill(day: date, observed: dict[date, DayVolume], max_days: int, fallback: DayVolume | None) -> DayVolume | None:
    near = _neighbours(day, observed, max_days)
    if not near:
        return fallback
    n = len(near)
    return DayVolume(sum(x.volume for x in near) / n, sum(x.lo for x in near) / n, sum(x.hi for x in near) / n)


def _mean(values: list[DayVolume]) -> DayVolume | None:
    if not values:
        return None
    n = len(values)
    return DayVolume(sum(x.volume for x in values) / n, sum(x.lo for x in values) / n, sum(x.hi for x in values) / n)


def estimate_month(days: list[date], observed: dict[date, DayVolume], max_days: int = 15) -> MonthEstimate:
    """The month's estimate over calendar ``days`` (``month_days``); ``observed``: the site's observed
    days, those of the neighbouring months within ``max_days`` included (they fill edge gaps)."""
    in_month = [d for d in days if d in observed]
    fallback = _mean([observed[d] for d in in_month])
    vol_obs = sum(observed[d].volume for d in in_month)
    if fallback is None and not any(_neighbours(d, observed, max_days) for d in days):
        return MonthEstimate(len(days), 0, 0.0, None, None, None, len(days), None)

    fills = {d: _fill(d, observed, max_days, fallback) for d in days if d not in observed}
    if any(f is None for f in fills.values()):  # a day out of every neighbour's reach and no month mean
        fallback = _mean([f for f in fills.values() if f is not None])
        fills = {d: f or fallback for d, f in fills.items()}
    # leave-one-out error of the same rule on the observed days of the month
    errors = []
    for d in in_month:
        others = {k: v for k, v in observed.items() if k != d}
        rest = _mean([observed[x] for x in in_month if x != d])
        pred = _fill(d, others, max_days, rest)
        if pred is not None:
            errors.append(observed[d].volume - pred.volume)
    n_fill = len(fills)
    if len(errors) >= 3:
        sd = statistics.stdev(errors)
    else:
        sd = (fallback.volume if fallback is not None else _mean(list(fills.values())).volume)
    half = Z90 * sd * math.sqrt(n_fill) if n_fill else 0.0
    obs_lo = sum(observed[d].lo for d in in_month)
    estimate = vol_obs + sum(f.volume for f in fills.values())
    lo = max(obs_lo, obs_lo + sum(f.lo for f in fills.values()) - half, 0.0)
    hi = sum(observed[d].hi for d in in_month) + sum(f.hi for f in fills.values()) + half
    return MonthEstimate(len(days), len(in_month), vol_obs, estimate, min(lo, estimate), max(hi, estimate), n_fill,
                         sd if n_fill else None)


def fill_days(days: list[date], observed: dict[date, DayVolume], max_days: int = 15) -> dict[date, DayVolume]:
    """The day-by-day values ``estimate_month`` adds up over ``days``: an observed day as measured,
    an unobserved one filled by the same rule (its bounds: the neighbours' mean bounds, without the
    gap-filling error, which ``estimate_month`` adds for the month). Empty when there is no estimate."""
    in_month = [d for d in days if d in observed]
    fallback = _mean([observed[d] for d in in_month])
    if fallback is None and not any(_neighbours(d, observed, max_days) for d in days):
        return {}
    fills = {d: _fill(d, observed, max_days, fallback) for d in days if d not in observed}
    if any(f is None for f in fills.values()):
        fallback = _mean([f for f in fills.values() if f is not None])
        fills = {d: f or fallback for d, f in fills.items()}
    return {d: observed[d] if d in observed else fills[d] for d in days}
