"""Monthly KPIs of a site, and of a group as the sum of its sites. Pure functions.

Per site and month: observed days, flaring days (observed with a flare), flaring days among the
last 30 days of the month, persistent (flaring on at least half of its observed days of those 30),
new flare site (an alert ``new_flare_site`` in the month), dark (flared in the previous month,
observed this month and never flaring). Volumes, CO2 and CO2e come from the gap-aware estimate.
"""

from __future__ import annotations

from datetime import date, timedelta

from flarewatch.analytics.series import SiteDay


def site_kpis(series: list[SiteDay], month: date, month_end: date, new_site: bool) -> dict:
    """``series``: the site's days, the previous month and the last 30 days included."""
    prev_start = (month - timedelta(days=1)).replace(day=1)
    in_month = [d for d in series if month <= d.day <= month_end]
    last30 = [d for d in series if month_end - timedelta(days=29) <= d.day <= month_end]
    prev = [d for d in series if prev_start <= d.day < month]
    observed = [d for d in in_month if d.observed]
    flaring = [d for d in observed if d.flaring]
    obs30 = [d for d in last30 if d.observed]
    flaring30 = [d for d in obs30 if d.flaring]
    return {
        "n_sites": 1,
        "observed_days": len(observed),
        "flaring_days": len(flaring),
        "flaring_days_last_30": len(flaring30),
        "persistent_sites": int(bool(obs30) and len(flaring30) * 2 >= len(obs30) and bool(flaring30)),
        "new_flare_sites": int(new_site),
        "dark_sites": int(any(d.flaring for d in prev) and bool(observed) and not flaring),
    }


KPI_COUNTS = ("n_sites", "observed_days", "flaring_days", "flaring_days_last_30", "persistent_sites",
              "new_flare_sites", "dark_sites")


def sum_kpis(rows: list[dict]) -> dict:
    return {k: sum(r[k] for r in rows) for k in KPI_COUNTS}
