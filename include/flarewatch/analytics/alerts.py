"""Alert rules and anomalies of one site's daily series -> alert records. Pure functions.

Kinds (README "Alerts"; thresholds in ``config.AnalyticsConfig``):

| kind | one alert per | fires when |
|---|---|---|
| ``threshold`` | site-day | the day's volume exceeds ``alert_volume_kscm_d`` (critical above twice it) |
| ``consecutive_flaring`` | run of flaring days (its first day) | a flare on > ``consecutive_flaring_days`` observed days in a row |
| ``new_flare_site`` | site-day | a flare after at least ``new_site_quiet_days`` observed days without one |
| ``anomaly_robust`` | site-day | robust z of the volume against the site's recent observed days (``analytics.anomalies``) |
| ``anomaly_multivariate`` | site-day | local outlier factor over volume, flares, temperature and FRP |
| ``reported_gap`` | site-month and source | the reported volume lies outside the estimate's 90 % interval (``analytics.reconciliation``) |

In a run of flaring days, unobserved days neither break nor extend the run; an observed day
without a flare ends it, and so does a gap of more than ``gapfill_max_days`` without an observed day
(no data for weeks is not evidence of flaring every day). The natural key (kind, site_id,
period_start, metric) makes a rerun update the same alert; its status (open / acknowledged /
resolved) is the users', never reset here.
"""

from __future__ import annotations

from datetime import date, timedelta

from flarewatch.analytics.anomalies import multivariate_anomalies, robust_anomalies
from flarewatch.analytics.series import SiteDay
from flarewatch.config import AnalyticsConfig


def _alert(kind, severity, site_id, start, end, metric, value, baseline, threshold, message, **details) -> dict:
    return {"kind": kind, "severity": severity, "site_id": site_id, "period_start": start, "period_end": end,
            "metric": metric, "value": value, "baseline": baseline, "threshold": threshold, "message": message,
            "details": details}


def rule_alerts(series: list[SiteDay], cfg: AnalyticsConfig, days: set[date]) -> list[dict]:
    """Rule alerts whose period starts on one of ``days`` (``series``: the site's days in order,
    history before ``days`` included so runs and quiet periods are seen whole)."""
    out: list[dict] = []
    observed = [d for d in series if d.observed]
    limit = cfg.alert_volume_kscm_d
    for d in observed:
        if d.day in days and d.volume is not None and d.volume > limit:
            out.append(_alert("threshold", "critical" if d.volume > 2 * limit else "warning", d.site_id, d.day, d.day,
                              "volume_kscm_d", d.volume, None, limit,
                              f"{d.site_id} flared {d.volume:,.0f} thousand m3 on {d.day}, above the "
                              f"{limit:,.0f} thousand m3/day threshold"))
    # runs of flaring observed days
    run: list[SiteDay] = []
    gap = timedelta(days=cfg.gapfill_max_days)
    for d in [*observed, None]:
        if d is not None and d.flaring and (not run or d.day - run[-1].day <= gap):
            run.append(d)
            continue
        if len(run) > cfg.consecutive_flaring_days and any(r.day in days for r in run):
            text = (f"{run[0].site_id} flared on {len(run)} observed days in a row from {run[0].day} to "
                    f"{run[-1].day} (limit {cfg.consecutive_flaring_days})" + ("; ongoing" if d is None else ""))
            out.append(_alert("consecutive_flaring", "warning", run[0].site_id, run[0].day, run[-1].day,
                              "flaring_days_in_a_row", float(len(run)), None, float(cfg.consecutive_flaring_days),
                              text, ongoing=d is None))
        run = [d] if d is not None and d.flaring else []  # a flare after a long gap starts a new run
    # a flare after a quiet history
    quiet = 0
    for d in observed:
        if d.flaring:
            if quiet >= cfg.new_site_quiet_days and d.day in days:
                out.append(_alert("new_flare_site", "warning", d.site_id, d.day, d.day, "n_flares", float(d.n_flares),
                                  0.0, None, f"{d.site_id}: a flare on {d.day} after {quiet} observed days without one"))
            quiet = 0
        else:
            quiet += 1
    return out


def anomaly_alerts(series: list[SiteDay], cfg: AnalyticsConfig, days: set[date]) -> list[dict]:
    """Robust and multivariate (local outlier factor) anomalies of the observed days in ``days``."""
    observed = [d for d in series if d.observed and d.volume is not None]
    dates = [d.day for d in observed]
    vols = [d.volume for d in observed]
    out = []
    for a in robust_anomalies(dates, vols, window=cfg.anomaly_window_days, min_baseline=cfg.anomaly_min_baseline,
                              z=cfg.anomaly_robust_z, score_days=days):
        site = observed[0].site_id
        out.append(_alert("anomaly_robust", "warning", site, a.day, a.day, "volume_kscm_d", a.value, a.baseline,
                          cfg.anomaly_robust_z,
                          f"{site}: volume {a.value:,.0f} thousand m3 on {a.day} is a {a.direction} against the median "
                          f"{a.baseline:,.0f} of its previous observed days (robust z {a.score:+.1f})",
                          direction=a.direction, z=a.score))
    feats = [(d.volume, float(d.n_flares or 0), d.temperature_k if d.temperature_k is not None else float("nan"),
              d.frp_mw if d.frp_mw is not None else float("nan")) for d in observed]
    for a in multivariate_anomalies(dates, feats, contamination=cfg.anomaly_contamination, score_days=days):
        site = observed[0].site_id
        out.append(_alert("anomaly_multivariate", "info", site, a.day, a.day, "outlier_score", a.value, a.baseline,
                          None, f"{site}: {a.day} is unusual for this site in volume, flare count, temperature "
                          f"and FRP together against its previous months (local outlier factor score "
                          f"{a.score:+.3f}; volume {a.value:,.0f} vs median {a.baseline:,.0f})",
                          direction=a.direction, score=a.score))
    return out


def reconciliation_alerts(rows: list[dict]) -> list[dict]:
    """``reported_gap`` alerts for the site-level reconciliation rows flagged outside the interval."""
    out = []
    for r in rows:
        if r["group_level"] != "site" or r["flag"] not in ("under_reported", "over_reported"):
            continue
        under = r["flag"] == "under_reported"
        out.append(_alert(
            "reported_gap", "critical" if under else "warning", r["group_value"], r["month"], r["month_end"],
            f"reported_vs_estimate:{r['source']}", r["reported_kscm"], r["estimate_kscm"], None,
            f"{r['group_value']} {r['month']:%Y-%m}: {r['source']} reported {r['reported_kscm']:,.0f} thousand m3 over "
            f"{r['reported_days']} days, {'below' if under else 'above'} FlareWatch's 90 % interval "
            f"{r['estimate_lo_kscm']:,.0f}-{r['estimate_hi_kscm']:,.0f} (estimate {r['estimate_kscm']:,.0f})"
            + (": possible under-reporting" if under else ""), source=r["source"], flag=r["flag"]))
    return out
