"""The report's tables as rows with real column headers (units in brackets), shared by the
workbook, the CSVs and the PDF (pure functions of ``data.ReportData``)."""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import date

from flarewatch.reports.data import ReportData

KSCM = "thousand m3"


def month_words(month: date) -> str:
    return f"{calendar.month_name[month.month]} {month.year}"


def _yes(v: bool | None) -> str | None:
    return None if v is None else ("yes" if v else "no")


def _pct(v: float | None) -> float | None:
    return None if v is None else round(100.0 * v, 1)


# (header, key, number format for the workbook); a key is read from the row dict
DAILY = [("date", "day", "yyyy-mm-dd"), ("site_id", "site_id", None), ("site", "site_name", None),
         ("status", "status", None), ("observed", "observed", None), ("flares (count)", "n_flares", "0"),
         (f"observed volume [{KSCM}/day]", "volume", "#,##0.0"),
         (f"observed 90 % low [{KSCM}/day]", "lo", "#,##0.0"), (f"observed 90 % high [{KSCM}/day]", "hi", "#,##0.0"),
         (f"volume counted in the month [{KSCM}/day]", "estimate", "#,##0.0"),
         (f"daily 90 % low [{KSCM}/day]", "est_lo", "#,##0.0"), (f"daily 90 % high [{KSCM}/day]", "est_hi", "#,##0.0"),
         ("filled from neighbouring days", "filled", None)]

_ESTIMATE = [("calendar site-days", "calendar_site_days", "0"), ("observed site-days", "observed_site_days", "0"),
             ("completeness [%]", "completeness_pct", "0.0"),
             (f"observed volume [{KSCM}]", "volume_observed_kscm", "#,##0"),
             (f"month estimate [{KSCM}]", "volume_estimate_kscm", "#,##0"),
             (f"estimate 90 % low [{KSCM}]", "volume_lo_kscm", "#,##0"),
             (f"estimate 90 % high [{KSCM}]", "volume_hi_kscm", "#,##0"),
             ("CO2 [t] (combustion efficiency 0.98)", "co2_t", "#,##0"),
             ("CO2e [t] (combustion efficiency 0.98)", "co2e_t", "#,##0"),
             ("CO2e 90 % low [t] (0.98)", "co2e_lo_t", "#,##0"), ("CO2e 90 % high [t] (0.98)", "co2e_hi_t", "#,##0"),
             ("CO2e [t] (measured efficiency 0.91)", "co2e_measured_ce_t", "#,##0"),
             ("CO2e 90 % low [t] (0.91)", "co2e_measured_ce_lo_t", "#,##0"),
             ("CO2e 90 % high [t] (0.91)", "co2e_measured_ce_hi_t", "#,##0")]

SITES = [("site_id", "site_id", None), ("site", "name", None), ("field", "field", None),
         ("operator", "operator", None), ("country", "country", None), ("latitude [deg]", "lat", "0.000"),
         ("longitude [deg]", "lon", "0.000"), *_ESTIMATE, ("flaring days", "kpi_flaring_days", "0")]

MONTHLY = [("level", "group_level", None), ("group", "group_value", None), ("month", "month", "yyyy-mm"),
           ("sites", "n_sites", "0"), *_ESTIMATE, ("unprocessed site-days", "unprocessed_site_days", "0"),
           ("data through", "data_through", "yyyy-mm-dd"), ("flaring days", "kpi_flaring_days", "0"),
           ("flaring days among the last 30", "kpi_flaring_days_last_30", "0"),
           ("persistent sites", "kpi_persistent_sites", "0"), ("new flare sites", "kpi_new_flare_sites", "0"),
           ("sites gone dark", "kpi_dark_sites", "0"), ("method", "method", None)]

ALERTS = [("alert_id", "alert_id", "0"), ("kind", "kind", None), ("severity", "severity", None),
          ("status", "status", None), ("site_id", "site_id", None), ("first day", "period_start", "yyyy-mm-dd"),
          ("last day", "period_end", "yyyy-mm-dd"), ("metric", "metric", None), ("value", "value", "#,##0.0"),
          ("baseline", "baseline", "#,##0.0"), ("threshold", "threshold", "#,##0.0"), ("message", "message", None)]

RECONCILIATION = [("level", "group_level", None), ("site or operator", "group_value", None),
                  ("reporting source", "source", None), (f"reported volume [{KSCM}]", "reported_kscm", "#,##0"),
                  ("days covered by the report", "reported_days", "0"),
                  ("CO2 of the reported volume [t]", "reported_co2_t", "#,##0"),
                  (f"FlareWatch estimate, same days [{KSCM}]", "estimate_kscm", "#,##0"),
                  (f"estimate 90 % low [{KSCM}]", "estimate_lo_kscm", "#,##0"),
                  (f"estimate 90 % high [{KSCM}]", "estimate_hi_kscm", "#,##0"),
                  ("completeness [%]", "completeness_pct", "0.0"), ("ratio estimate / reported", "ratio", "0.00"),
                  ("flag", "flag", None)]


def _with_pct(r: dict) -> dict:
    return {**r, "completeness_pct": _pct(r.get("completeness"))}


def rows(columns: list[tuple], records: list[dict]) -> list[list]:
    out = []
    for r in records:
        out.append([_yes(r.get(key)) if isinstance(r.get(key), bool) else r.get(key) for _, key, _ in columns])
    return out


def headers(columns: list[tuple]) -> list[str]:
    return [h for h, _, _ in columns]


def table_records(data: ReportData) -> dict[str, tuple[list[tuple], list[dict]]]:
    """sheet / CSV name -> (columns, records)."""
    return {
        "daily": (DAILY, data.daily),
        "monthly": (MONTHLY, [_with_pct(data.group), *[_with_pct(s) for s in data.sites]]),
        "sites": (SITES, [_with_pct(s) for s in data.sites]),
        "alerts": (ALERTS, data.alerts),
        "reconciliation": (RECONCILIATION, [_with_pct(r) for r in data.reconciliation]),
    }


def group_daily(data: ReportData) -> list[dict]:
    """Per calendar day of the month, the group's total: the volume counted (observed + filled),
    its band (the sites' daily bounds added), how many of its monitored sites were observed."""
    by_day: dict[date, list[dict]] = defaultdict(list)
    for r in data.daily:
        by_day[r["day"]].append(r)
    out = []
    for day in sorted(by_day):
        rs = [r for r in by_day[day] if r["estimate"] is not None]
        monitored = [r for r in by_day[day] if r["status"] != "not monitored yet"]
        out.append({
            "day": day, "sites": len(monitored), "observed_sites": sum(1 for r in monitored if r["observed"]),
            "estimate": sum(r["estimate"] for r in rs) if rs else None,
            "lo": sum(r["est_lo"] for r in rs) if rs else None, "hi": sum(r["est_hi"] for r in rs) if rs else None,
            "observed_volume": sum(r["volume"] for r in monitored if r["observed"]),
        })
    return out


def completeness_words(data: ReportData) -> str:
    """How complete the month is, in a sentence or three."""
    g = data.group
    cal, obs = g["calendar_site_days"], g["observed_site_days"]
    pct = 100.0 * obs / cal if cal else 0.0
    n = g["n_sites"]
    what = "this site" if n == 1 else f"these {n} sites"
    quality = ("well observed" if pct >= 80 else "partly observed" if pct >= 50 else
               "sparsely observed: read the interval, not only the estimate")
    text = (f"Satellites observed {what} on {obs} of {cal} site-days ({pct:.0f} %), {quality}. "
            f"The other {cal - obs} site-days (cloud, no overpass, a scene not usable or not processed yet) are "
            "filled from each site's nearest observed days.")
    if g.get("unprocessed_site_days"):
        text += f" {g['unprocessed_site_days']} site-day(s) have scenes that are not processed yet."
    through = g.get("data_through")
    if through is not None and through < date(data.month.year, data.month.month,
                                              calendar.monthrange(data.month.year, data.month.month)[1]):
        text += (f" Data through {through:%d %B %Y}: the month is not over in the data, the estimate will change as "
                 "days arrive.")
    return text
