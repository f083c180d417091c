"""What a monthly report shows: read once per month from the results database (``read_month``),
then cut per group (``group_report``, pure).

The numbers are the analytics tables' own (``emissions_monthly_estimate``, ``kpi_monthly``,
``alerts``, ``reconciliation_monthly``); the daily series is the one ``analytics.gapfill`` adds
up to the month's estimate (``gapfill.fill_days``), so a report's daily values sum to its table.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, timedelta

from flarewatch.analytics.gapfill import Z90, estimate_month, fill_days, month_days
from flarewatch.analytics.refresh import month_end, read_inputs
from flarewatch.analytics.series import observed_volumes
from flarewatch.config import Settings
from flarewatch.store.db import fetch_dicts

LEVELS = ("operator", "field", "country")
FLARE_CLUSTER_M = 300.0  # detections of one month within this distance are drawn as one flare


@dataclass
class ReportData:
    """Everything one report (a group and a month) shows; built by ``group_report``."""

    month: date
    level: str
    value: str
    group: dict  # the group's emissions_monthly_estimate row (+ its kpi_monthly columns)
    sites: list[dict]  # per site: sites row + its estimate row + kpi columns, by site_id
    daily: list[dict]  # per site and calendar day (see ``site_days``)
    flares: list[dict]  # per flare location of the month: site_id, lat, lon, volume_kscm, days
    alerts: list[dict]
    reconciliation: list[dict]
    factors: dict  # emission factors and settings the numbers were made with
    data_through: date | None = None
    notes: list[str] = field(default_factory=list)


def _json(v) -> dict:
    return v if isinstance(v, dict) else json.loads(v or "{}")


def read_month(conn, month: date, settings: Settings) -> dict:
    """The month's rows of every table a report reads, for every group (one read per month)."""
    month = month.replace(day=1)
    end = month_end(month)
    k = settings.analytics.gapfill_max_days
    inputs = read_inputs(conn, month - timedelta(days=k), end + timedelta(days=k))
    drop = ("refreshed_at",)
    est = [{c: v for c, v in r.items() if c not in drop} for r in
           fetch_dicts(conn, "SELECT * FROM emissions_monthly_estimate WHERE month = %s"
                        " ORDER BY group_level, group_value", (month,))]
    for r in est:
        r["scenario_sources"] = _json(r["scenario_sources"])
    kpi = {(r["group_level"], r["group_value"]): r for r in
           fetch_dicts(conn, "SELECT * FROM kpi_monthly WHERE month = %s", (month,))}
    return {
        "month": month, "settings": settings, "inputs": inputs, "estimates": est, "kpis": kpi,
        "sites": fetch_dicts(conn, "SELECT site_id, name, field, operator, country, lat, lon, aoi_km FROM sites"
                              " WHERE active ORDER BY site_id"),
        "alerts": fetch_dicts(conn, "SELECT alert_id, kind, severity, status, site_id, period_start, period_end, metric,"
                               " value, baseline, threshold, message FROM alerts WHERE period_start <= %s"
                               " AND period_end >= %s ORDER BY period_start, site_id, kind, metric", (end, month)),
        "reconciliation": fetch_dicts(conn, "SELECT group_level, group_value, source, reported_kscm, reported_days,"
                                       " reported_co2_t, estimate_kscm, estimate_lo_kscm, estimate_hi_kscm,"
                                       " completeness, ratio, flag FROM reconciliation_monthly WHERE month = %s"
                                       " ORDER BY group_level DESC, group_value, source", (month,)),
        "detections": fetch_dicts(conn, "SELECT d.site_id, d.acquisition_date, d.lat, d.lon, e.volume_kscm_d"
                                   " FROM flare_detections d JOIN flare_emissions e"
                                   " USING (site_id, acquisition_date, detection_key)"
                                   " JOIN emissions_daily x ON x.site_id = d.site_id AND x.day = d.acquisition_date"
                                   " AND x.status = 'processed'"
                                   " WHERE d.acquisition_date BETWEEN %s AND %s"
                                   " ORDER BY d.site_id, d.acquisition_date, d.detection_key", (month, end)),
    }


def filter_groups(found: list[tuple[str, str]], month: date, level: str | None = None,
                  value: str | None = None) -> list[tuple[str, str]]:
    """The (level, value) pairs of ``found`` at ``level`` (all three when empty) named ``value``
    (all when empty); an unknown level or value is a ValueError naming the known ones."""
    if level and level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    found = [g for g in found if g[0] in LEVELS and (not level or g[0] == level)]
    if value:
        hits = [g for g in found if g[1] == value]
        if not hits:
            known = sorted({v for _, v in found})
            raise ValueError(f"no {level or 'group'} {value!r} in {month:%Y-%m}; known: " + ", ".join(known[:40]))
        found = hits
    return sorted(set(found), key=lambda g: (LEVELS.index(g[0]), g[1]))


def groups(month_data: dict, level: str | None = None, value: str | None = None) -> list[tuple[str, str]]:
    """(level, value) of the month's groups with an estimate row, optionally one level / one value."""
    return filter_groups([(r["group_level"], r["group_value"]) for r in month_data["estimates"]],
                         month_data["month"], level, value)


def list_groups(conn, month: date, level: str | None = None, value: str | None = None) -> list[tuple[str, str]]:
    """``groups`` straight from ``emissions_monthly_estimate`` (no other table read)."""
    rows = fetch_dicts(conn, "SELECT group_level, group_value FROM emissions_monthly_estimate WHERE month = %s",
                  (month.replace(day=1),))
    return filter_groups([(r["group_level"], r["group_value"]) for r in rows], month, level, value)


def latest_month(conn) -> date | None:
    """The latest month with estimates (a manual run without a month)."""
    return fetch_dicts(conn, "SELECT max(month) AS m FROM emissions_monthly_estimate")[0]["m"]


def site_days(site: dict, series: list, month: date, max_days: int) -> list[dict]:
    """One row per calendar day of the month for a site: status, what was observed and the value
    the month's estimate counts (observed, or filled with its daily 90 % band)."""
    by_day = {d.day: d for d in series}
    days = month_days(month, site["first_day"])
    observed = observed_volumes(series)
    values = fill_days(days, observed, max_days)
    sd = estimate_month(days, observed, max_days).fill_error_sd or 0.0
    rows = []
    for day in month_days(month):
        sd_row = by_day.get(day)
        if day not in days:
            status = "not monitored yet"
        elif sd_row is None:
            status = "no scene"
        else:
            status = sd_row.status
        obs = day in observed and day in days
        v = values.get(day)
        filled = v is not None and not obs
        rows.append({
            "day": day, "site_id": site["site_id"], "site_name": site["name"], "status": status, "observed": obs,
            "n_flares": sd_row.n_flares if sd_row is not None and sd_row.observed else None,
            "volume": observed[day].volume if obs else None, "lo": observed[day].lo if obs else None,
            "hi": observed[day].hi if obs else None,
            "estimate": v.volume if v else None,
            "est_lo": (max(v.lo - Z90 * sd, 0.0) if filled else v.lo) if v else None,
            "est_hi": (v.hi + Z90 * sd if filled else v.hi) if v else None,
            "filled": filled,
        })
    return rows


def _distance_m(a: dict, b: dict) -> float:
    dy = (a["lat"] - b["lat"]) * 111_320.0
    dx = (a["lon"] - b["lon"]) * 111_320.0 * math.cos(math.radians((a["lat"] + b["lat"]) / 2))
    return math.hypot(dx, dy)


def flare_locations(detections: list[dict], radius_m: float = FLARE_CLUSTER_M) -> list[dict]:
    """Detections of a month grouped into flare locations (greedy, largest first, within
    ``radius_m`` of a location's first detection): observed volume summed, days seen counted."""
    out: list[dict] = []
    for d in sorted(detections, key=lambda r: (-r["volume_kscm_d"], r["site_id"], r["acquisition_date"],
                                               r["lat"], r["lon"])):
        hit = next((f for f in out if f["site_id"] == d["site_id"] and _distance_m(f, d) <= radius_m), None)
        if hit is None:
            out.append({"site_id": d["site_id"], "lat": d["lat"], "lon": d["lon"], "volume_kscm": 0.0,
                        "days": set()})
            hit = out[-1]
        hit["volume_kscm"] += d["volume_kscm_d"]
        hit["days"].add(d["acquisition_date"])
    return [{**f, "days": len(f["days"])} for f in sorted(out, key=lambda f: (f["site_id"], -f["volume_kscm"]))]


def group_report(month_data: dict, level: str, value: str) -> ReportData:
    """The report of one group (pure, given ``read_month``)."""
    month, cfg = month_data["month"], month_data["settings"]
    est = {(r["group_level"], r["group_value"]): r for r in month_data["estimates"]}
    if (level, value) not in est:
        raise ValueError(f"no estimate for {level} {value!r} in {month:%Y-%m}: run emissions_analytics first")
    kpis = month_data["kpis"]
    first = {s["site_id"]: s["first_day"] for s in month_data["inputs"]["sites"]}
    sites = []
    for s in month_data["sites"]:
        if s[level] == value and ("site", s["site_id"]) in est:
            kpi = kpis.get(("site", s["site_id"]), {})
            sites.append({**s, "first_day": first.get(s["site_id"]), **est[("site", s["site_id"])],
                          **{f"kpi_{k}": v for k, v in kpi.items() if k not in ("group_level", "group_value",
                                                                                 "month", "refreshed_at")}})
    ids = {s["site_id"] for s in sites}
    series = month_data["inputs"]["series"]
    k = cfg.analytics.gapfill_max_days
    daily = [r for s in sites for r in site_days(s, series.get(s["site_id"], []), month, k)]
    group_kpi = kpis.get((level, value), {})
    recon = [r for r in month_data["reconciliation"]
             if (r["group_level"] == "site" and r["group_value"] in ids)
             or (level == "operator" and r["group_level"] == "operator" and r["group_value"] == value)]
    ef = cfg.emission_factors
    factors = {"co2_t_per_kscm": ef.co2_t_per_kscm, "combustion_efficiency": ef.combustion_efficiency,
               "measured_combustion_efficiency": cfg.analytics.measured_combustion_efficiency,
               "methane_fraction_vol": ef.methane_fraction_vol, "methane_density_kg_m3": ef.methane_density_kg_m3,
               "methane_gwp": ef.methane_gwp, "gapfill_max_days": k}
    return ReportData(
        month=month, level=level, value=value,
        group={**est[(level, value)], **{f"kpi_{c}": v for c, v in group_kpi.items()
                                          if c not in ("group_level", "group_value", "month", "refreshed_at")}},
        sites=sites, daily=daily,
        flares=flare_locations([d for d in month_data["detections"] if d["site_id"] in ids]),
        alerts=[a for a in month_data["alerts"] if a["site_id"] in ids],
        reconciliation=recon, factors=factors, data_through=est[(level, value)]["data_through"])
