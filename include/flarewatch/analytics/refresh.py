"""Refresh the analytics tables for some months: read the rollups, compute, write (one transaction).

Reads ``emissions_daily`` (with the day's flare temperature and FRP from ``flare_detections``),
``sites``, ``scenes`` (each site's first day) and
``calibration_measurements``; writes ``emissions_monthly_estimate``, ``kpi_monthly`` and
``reconciliation_monthly`` (the months' rows replaced: a rerun leaves the same rows) and upserts
``alerts`` on their natural key (status untouched). An open or acknowledged alert of those months
whose condition no longer holds (the day was reprocessed) is resolved by ``flarewatch``, saying so,
once the site's month has no pending or failed site-day; it reopens if its condition returns.
Nothing depends on the wall clock: the same rows give the same tables.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta

from flarewatch.analytics import alerts as alert_rules
from flarewatch.analytics import kpis, reconciliation, scenarios
from flarewatch.analytics.gapfill import METHOD, estimate_month, month_days
from flarewatch.analytics.series import SiteDay, observed_volumes
from flarewatch.config import Settings
from flarewatch.store.db import fetch_dicts, read_sql, transaction

LEVELS = ("field", "operator", "country")
HISTORY_DAYS = 62  # days before a month read for anomaly baselines, runs and the previous month


def month_end(month: date) -> date:
    return (month.replace(day=1) + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def read_inputs(conn, start: date, end: date) -> dict:
    """Sites, their series over ``start`` .. ``end``, calibration rows."""
    # each site's first day from the scenes' key (site_id, acquisition_date, ...): one index probe per
    # site, not a scan of every scene ever ingested
    sites = fetch_dicts(conn, "SELECT s.site_id, s.field, s.operator, s.country, (SELECT min(sc.acquisition_date)"
                         " FROM scenes sc WHERE sc.site_id = s.site_id) AS first_day"
                         " FROM sites s WHERE s.active ORDER BY s.site_id", ())
    daily = fetch_dicts(conn, read_sql("queries/analytics_daily.sql"), {"start": start, "end": end})
    series: dict[str, list[SiteDay]] = defaultdict(list)
    for r in daily:
        series[r["site_id"]].append(SiteDay(
            r["site_id"], r["day"], r["status"], bool(r["observed"]), r["n_flares"], r["volume_kscm"],
            r["volume_lo_kscm"], r["volume_hi_kscm"], r["temperature_k"], r["frp_mw"]))
    reported = fetch_dicts(conn, "SELECT site_id, source, period_start, period_end, volume_kscm FROM calibration_measurements"
                            " WHERE period_end >= %s AND period_start <= %s", (start, end))
    return {"sites": sites, "series": dict(series), "reported": reported}


def compute_month(month: date, inputs: dict, settings: Settings) -> dict:
    """The month's estimate, KPI, reconciliation and alert rows (pure, given ``read_inputs``)."""
    cfg, ef = settings.analytics, settings.emission_factors
    end = month_end(month)
    factors = scenarios.scenario_factors(ef, cfg)
    sources = scenarios.scenario_sources(ef, cfg)
    days_in_month = set(month_days(month))
    # the last day of this month with any site-day row: it depends on this month's data only (not
    # on the scheduler's own run for yesterday, months later)
    through = max((d.day for ser in inputs["series"].values() for d in ser if month <= d.day <= end), default=None)
    estimates, kpi_rows, recon, alerts = [], [], [], []
    site_est: dict[str, dict] = {}
    site_kpi: dict[str, dict] = {}
    reported_by_site: dict[str, list[dict]] = defaultdict(list)
    for r in inputs["reported"]:
        reported_by_site[r["site_id"]].append(r)
    for site in inputs["sites"]:
        sid = site["site_id"]
        series = sorted(inputs["series"].get(sid, []), key=lambda d: d.day)
        if site["first_day"] is None or site["first_day"] > end:
            continue  # not monitored yet
        observed = observed_volumes(series)
        cal_days = month_days(month, site["first_day"])
        est = estimate_month(cal_days, observed, cfg.gapfill_max_days)
        unprocessed = sum(1 for d in series if d.day in days_in_month and d.status != "processed")
        row = _estimate_row("site", sid, month, 1, est.calendar_days, est.observed_days, unprocessed,
                            est.volume_observed, est.estimate, est.lo, est.hi, through, factors,
                            sources, METHOD.format(k=cfg.gapfill_max_days))
        estimates.append(row)
        site_est[sid] = row
        upto = [d for d in series if d.day <= end]
        site_alerts = alert_rules.rule_alerts(upto, cfg, days_in_month) + \
            alert_rules.anomaly_alerts(upto, cfg, days_in_month)
        alerts += site_alerts
        site_kpi[sid] = kpis.site_kpis(upto, month, end, any(a["kind"] == "new_flare_site" for a in site_alerts))
        kpi_rows.append(_kpi_row("site", sid, month, site_kpi[sid], row))
        # reconciliation: reported periods prorated to the month, estimate over the same days
        by_source: dict[str, list] = defaultdict(lambda: [0.0, set()])
        for m in reported_by_site[sid]:
            vol, covered = reconciliation.prorate(m["period_start"], m["period_end"], m["volume_kscm"], month, end)
            if covered:
                by_source[m["source"]][0] += vol
                by_source[m["source"]][1] |= covered
        for source, (vol, covered) in sorted(by_source.items()):
            r_est = estimate_month(sorted(covered), observed, cfg.gapfill_max_days)
            recon.append(_recon_row("site", sid, month, source, vol, len(covered), r_est.estimate, r_est.lo, r_est.hi,
                                    r_est.observed_days / max(1, r_est.calendar_days), ef))
    for level in LEVELS:
        groups: dict[str, list[dict]] = defaultdict(list)
        for site in inputs["sites"]:
            if site["site_id"] in site_est:
                groups[site[level]].append(site)
        for value, members in sorted(groups.items()):
            rows = [site_est[s["site_id"]] for s in members]
            estimates.append(_group_estimate(level, value, month, rows, through, factors, sources,
                                             METHOD.format(k=cfg.gapfill_max_days)))
            krows = [site_kpi[s["site_id"]] for s in members]
            kpi_rows.append(_kpi_row(level, value, month, kpis.sum_kpis(krows), estimates[-1]))
    operators = {s["site_id"]: s["operator"] for s in inputs["sites"]}
    by_op: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in recon:
        by_op[(operators[r["group_value"]], r["source"])].append(r)
    for (op, source), rows in sorted(by_op.items()):
        ests = [r for r in rows if r["estimate_kscm"] is not None]
        est = sum(r["estimate_kscm"] for r in ests) if ests else None
        recon.append(_recon_row("operator", op, month, source, sum(r["reported_kscm"] for r in rows),
                                max(r["reported_days"] for r in rows), est,
                                sum(r["estimate_lo_kscm"] for r in ests) if ests else None,
                                sum(r["estimate_hi_kscm"] for r in ests) if ests else None,
                                sum(r["completeness"] for r in rows) / len(rows), ef))
    alerts += alert_rules.reconciliation_alerts([{**r, "month_end": end} for r in recon])
    return {"estimates": estimates, "kpis": kpi_rows, "reconciliation": recon, "alerts": alerts}


def _estimate_row(level, value, month, n_sites, cal, obs, unprocessed, vol_obs, est, lo, hi, through, factors, sources,
                  method) -> dict:
    d, m = factors["default"], factors["measured_ce"]
    return {"group_level": level, "group_value": value, "month": month, "n_sites": n_sites, "calendar_site_days": cal,
            "observed_site_days": obs, "unprocessed_site_days": unprocessed,
            "completeness": round(obs / cal, 4) if cal else 0.0, "data_through": through,
            "volume_observed_kscm": vol_obs, "volume_estimate_kscm": est, "volume_lo_kscm": lo, "volume_hi_kscm": hi,
            "co2_t": scenarios.co2(est, d), "co2e_t": scenarios.co2e(est, d), "co2e_lo_t": scenarios.co2e(lo, d),
            "co2e_hi_t": scenarios.co2e(hi, d), "co2e_measured_ce_t": scenarios.co2e(est, m),
            "co2e_measured_ce_lo_t": scenarios.co2e(lo, m), "co2e_measured_ce_hi_t": scenarios.co2e(hi, m),
            "scenario_sources": sources, "method": method}


def _group_estimate(level, value, month, rows, through, factors, sources, method) -> dict:
    ests = [r for r in rows if r["volume_estimate_kscm"] is not None]
    total = (lambda k: sum(r[k] for r in ests)) if ests else (lambda k: None)
    note = "" if len(ests) == len(rows) else f"; {len(rows) - len(ests)} site(s) without an observed day left out"
    return _estimate_row(level, value, month, len(rows), sum(r["calendar_site_days"] for r in rows),
                         sum(r["observed_site_days"] for r in rows), sum(r["unprocessed_site_days"] for r in rows),
                         sum(r["volume_observed_kscm"] for r in rows), total("volume_estimate_kscm"),
                         total("volume_lo_kscm"), total("volume_hi_kscm"), through, factors, sources,
                         "sum of the sites' estimates and bounds (bounds added: conservative)" + note + "; per site: "
                         + method)


def _kpi_row(level, value, month, counts: dict, est: dict) -> dict:
    return {"group_level": level, "group_value": value, "month": month, **counts,
            "volume_estimate_kscm": est["volume_estimate_kscm"], "co2_t": est["co2_t"], "co2e_t": est["co2e_t"],
            "co2e_measured_ce_t": est["co2e_measured_ce_t"]}


def _recon_row(level, value, month, source, reported, days, est, lo, hi, completeness, ef) -> dict:
    return {"group_level": level, "group_value": value, "month": month, "source": source,
            "reported_kscm": reported, "reported_days": days,
            "reported_co2_t": scenarios.co2(reported, ef), "estimate_kscm": est, "estimate_lo_kscm": lo,
            "estimate_hi_kscm": hi, "completeness": round(completeness, 4), "ratio": reconciliation.ratio(est, reported),
            "flag": reconciliation.flag(reported, est, lo, hi)}


_TABLES = {
    "emissions_monthly_estimate": ("estimates", (
        "group_level", "group_value", "month", "n_sites", "calendar_site_days", "observed_site_days",
        "unprocessed_site_days", "completeness", "data_through", "volume_observed_kscm", "volume_estimate_kscm",
        "volume_lo_kscm", "volume_hi_kscm", "co2_t", "co2e_t", "co2e_lo_t", "co2e_hi_t", "co2e_measured_ce_t",
        "co2e_measured_ce_lo_t", "co2e_measured_ce_hi_t", "scenario_sources", "method")),
    "kpi_monthly": ("kpis", (
        "group_level", "group_value", "month", "n_sites", "observed_days", "flaring_days", "flaring_days_last_30",
        "persistent_sites", "new_flare_sites", "dark_sites", "volume_estimate_kscm", "co2_t", "co2e_t",
        "co2e_measured_ce_t")),
    "reconciliation_monthly": ("reconciliation", (
        "group_level", "group_value", "month", "source", "reported_kscm", "reported_days", "reported_co2_t",
        "estimate_kscm", "estimate_lo_kscm", "estimate_hi_kscm", "completeness", "ratio", "flag")),
}
ALERT_COLUMNS = ("kind", "severity", "site_id", "period_start", "period_end", "metric", "value", "baseline",
                 "threshold", "message", "details")


def _value(v):
    return json.dumps(v, default=str) if isinstance(v, dict) else v


def write_months(conn, months: list[date], results: list[dict]) -> dict[str, int]:
    """Replace the months' rows of the three tables, upsert the alerts, resolve stale ones."""
    counts = {t: 0 for t in _TABLES} | {"alerts": 0, "alerts_resolved": 0}
    with transaction(conn) as cur:
        for table, (key, cols) in _TABLES.items():
            cur.execute(f"DELETE FROM {table} WHERE month = ANY(%s)", (months,))
            rows = [[_value(r[c]) for c in cols] for res in results for r in res[key]]
            if rows:
                cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})", rows)
            counts[table] = len(rows)
        keys = []
        for res in results:
            for a in res["alerts"]:
                cur.execute(
                    f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}) VALUES ({', '.join(['%s'] * len(ALERT_COLUMNS))})"
                    " ON CONFLICT (kind, site_id, period_start, metric) DO UPDATE SET severity = EXCLUDED.severity,"
                    " period_end = EXCLUDED.period_end, value = EXCLUDED.value, baseline = EXCLUDED.baseline,"
                    " threshold = EXCLUDED.threshold, message = EXCLUDED.message, details = EXCLUDED.details,"
                    " updated_at = now(),"
                    # an alert flarewatch resolved (its condition lapsed) whose condition holds again reopens;
                    # one a person resolved stays resolved
                    " status = CASE WHEN alerts.resolved_by = 'flarewatch' THEN 'open' ELSE alerts.status END,"
                    " resolved_at = CASE WHEN alerts.resolved_by = 'flarewatch' THEN NULL ELSE alerts.resolved_at END,"
                    " resolved_by = CASE WHEN alerts.resolved_by = 'flarewatch' THEN NULL ELSE alerts.resolved_by END"
                    " WHERE (alerts.severity, alerts.period_end, alerts.value, alerts.baseline, alerts.threshold,"
                    " alerts.message, alerts.details) IS DISTINCT FROM (EXCLUDED.severity, EXCLUDED.period_end,"
                    " EXCLUDED.value, EXCLUDED.baseline, EXCLUDED.threshold, EXCLUDED.message, EXCLUDED.details)"
                    " OR alerts.resolved_by = 'flarewatch'",
                    [_value(a[c]) for c in ALERT_COLUMNS])
                keys.append((a["kind"], a["site_id"], a["period_start"], a["metric"]))
            counts["alerts"] += len(res["alerts"])
        # an alert whose condition no longer holds is resolved, but only for sites whose month is settled
        # (no site-day pending or failed): a day being reprocessed must not make alerts flap
        settled = {(r["month"], r["group_value"]) for res in results for r in res["estimates"]
                   if r["group_level"] == "site" and r["unprocessed_site_days"] == 0}
        for m0, m1 in [(m, month_end(m)) for m in months]:
            sites = sorted(v for m, v in settled if m == m0)
            cur.execute(
                "UPDATE alerts SET status = 'resolved', resolved_by = 'flarewatch', resolved_at = now(),"
                " updated_at = now(), details = details || '{\"resolved\": \"the condition no longer holds\"}'::jsonb"
                " WHERE status <> 'resolved' AND period_start BETWEEN %s AND %s AND site_id = ANY(%s)"
                " AND NOT ((kind, site_id, period_start, metric) IN (SELECT * FROM unnest(%s::text[], %s::text[],"
                " %s::date[], %s::text[])))",
                (m0, m1, sites, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys], [k[3] for k in keys]))
            counts["alerts_resolved"] += cur.rowcount
    return counts


def refresh_analytics(conn, settings: Settings, months: list[date]) -> dict:
    """Recompute the analytics of ``months`` (first days); returns row counts per table."""
    months = sorted({m.replace(day=1) for m in months})
    if not months:
        return {"months": []}
    start = months[0] - timedelta(days=HISTORY_DAYS)
    end = month_end(months[-1]) + timedelta(days=settings.analytics.gapfill_max_days)
    inputs = read_inputs(conn, start, end)
    results = [compute_month(m, inputs, settings) for m in months]
    return {"months": [m.isoformat() for m in months], **write_months(conn, months, results)}
