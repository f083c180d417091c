"""What the FlareWatch page and API read from the results database: one function per question.

Every function takes an open psycopg2 connection (``web.access`` opens it read-only, as the
``flarewatch_api`` role) and returns plain dicts with JSON-ready values. Date windows are relative
to the data (the last day with a processed site-day), never to the clock, so the page shows the
same numbers as ``flarewatch summary`` for the same days.
"""

from __future__ import annotations

from datetime import date, timedelta

from flarewatch.store.db import fetch_dicts

LEVELS = ("operator", "field", "country")
ALERT_STATUSES = ("open", "acknowledged", "resolved")


def data_range(conn) -> dict:
    """First and last day with a site-day row, and the last processed one (None on an empty DB)."""
    row = fetch_dicts(conn, "SELECT min(day) AS first_day, max(day) AS last_day,"
                            " max(day) FILTER (WHERE status = 'processed') AS last_processed_day"
                            " FROM emissions_daily")[0]
    return row


def site_ids(conn) -> list[str]:
    return [r["site_id"] for r in fetch_dicts(conn, "SELECT site_id FROM sites ORDER BY site_id")]


def sites(conn, last_day: date | None, window_days: int = 30, period: tuple[date, date] | None = None) -> list[dict]:
    """Every site with its totals over all days (or over ``period``, first and last day included) and
    over the ``window_days`` days up to ``last_day`` (the data's last day), and its open alerts."""
    last = last_day or date(1970, 1, 1)
    first = last - timedelta(days=window_days - 1)
    p_first, p_last = period or (None, None)
    return fetch_dicts(conn, """
        SELECT s.site_id, s.name, s.field, s.operator, s.country, s.lat, s.lon, s.active,
               count(d.day) AS days,
               count(d.day) FILTER (WHERE d.status = 'processed' AND (d.s2_observed OR d.viirs_observed))
                   AS observed_days,
               coalesce(sum(d.n_flares), 0) AS flares,
               coalesce(sum(d.n_flares_s2), 0) AS flares_s2,
               coalesce(sum(d.n_flares_viirs_only), 0) AS flares_viirs_only,
               coalesce(sum(d.volume_kscm), 0) AS volume_kscm,
               coalesce(sum(d.volume_lo_kscm), 0) AS volume_lo_kscm,
               coalesce(sum(d.volume_hi_kscm), 0) AS volume_hi_kscm,
               coalesce(sum(d.co2_t), 0) AS co2_t,
               coalesce(sum(d.co2e_t), 0) AS co2e_t,
               min(d.day) AS first_day, max(d.day) AS last_day,
               coalesce(sum(d.volume_kscm) FILTER (WHERE d.day BETWEEN %(first)s AND %(last)s), 0)
                   AS volume_30d_kscm,
               count(d.day) FILTER (WHERE d.day BETWEEN %(first)s AND %(last)s
                                    AND d.status = 'processed' AND (d.s2_observed OR d.viirs_observed))
                   AS observed_days_30d,
               (SELECT count(*) FROM alerts a WHERE a.site_id = s.site_id AND a.status = 'open') AS open_alerts
        FROM sites s
        LEFT JOIN emissions_daily d ON d.site_id = s.site_id
             AND (%(p_first)s::date IS NULL OR d.day BETWEEN %(p_first)s AND %(p_last)s)
        GROUP BY s.site_id
        ORDER BY s.site_id
    """, {"first": first, "last": last, "p_first": p_first, "p_last": p_last})


def totals(conn, first: date, last: date) -> dict:
    """All sites' totals over ``first`` .. ``last``: volume with its summed 90 % bounds, CO2, CO2e,
    and how complete the observations are (observed / calendar site-days of the active sites)."""
    row = fetch_dicts(conn, """
        SELECT count(d.day) AS site_days,
               count(d.day) FILTER (WHERE d.status = 'processed' AND (d.s2_observed OR d.viirs_observed))
                   AS observed_site_days,
               count(d.day) FILTER (WHERE d.status <> 'processed') AS unprocessed_site_days,
               coalesce(sum(d.n_flares), 0) AS flares,
               coalesce(sum(d.volume_kscm), 0) AS volume_kscm,
               coalesce(sum(d.volume_lo_kscm), 0) AS volume_lo_kscm,
               coalesce(sum(d.volume_hi_kscm), 0) AS volume_hi_kscm,
               coalesce(sum(d.co2_t), 0) AS co2_t,
               coalesce(sum(d.co2e_t), 0) AS co2e_t,
               (SELECT count(*) FROM sites WHERE active) AS active_sites
        FROM emissions_daily d
        WHERE d.day BETWEEN %s AND %s
    """, (first, last))[0]
    calendar = row["active_sites"] * ((last - first).days + 1)
    row.update(first_day=first, last_day=last, calendar_site_days=calendar,
               completeness=(row["observed_site_days"] / calendar) if calendar else None)
    return row


def month_estimate(conn, month: date) -> dict | None:
    """All sites' gap-aware estimate for ``month`` (sum of the site-level rows of
    ``emissions_monthly_estimate``; bounds summed, as the daily ones)."""
    row = fetch_dicts(conn, """
        SELECT count(*) AS n_sites, sum(calendar_site_days) AS calendar_site_days,
               sum(observed_site_days) AS observed_site_days,
               sum(volume_observed_kscm) AS volume_observed_kscm,
               sum(volume_estimate_kscm) AS volume_estimate_kscm,
               sum(volume_lo_kscm) AS volume_lo_kscm, sum(volume_hi_kscm) AS volume_hi_kscm,
               sum(co2e_t) AS co2e_t, sum(co2e_lo_t) AS co2e_lo_t, sum(co2e_hi_t) AS co2e_hi_t,
               max(data_through) AS data_through
        FROM emissions_monthly_estimate WHERE group_level = 'site' AND month = %s
    """, (month,))[0]
    if not row["n_sites"]:
        return None
    row["month"] = month
    row["completeness"] = (row["observed_site_days"] / row["calendar_site_days"]
                           if row["calendar_site_days"] else None)
    return row


def daily(conn, site_id: str, first: date, last: date, *, limit: int, offset: int) -> tuple[int, list[dict]]:
    """A site's days in ``first`` .. ``last`` (oldest first): totals with the 90 % interval, whether
    a sensor observed the day, the processing state and the model versions that produced it."""
    args = {"site": site_id, "first": first, "last": last, "limit": limit, "offset": offset}
    total = fetch_dicts(conn, "SELECT count(*) AS n FROM emissions_daily WHERE site_id = %(site)s"
                              " AND day BETWEEN %(first)s AND %(last)s", args)[0]["n"]
    rows = fetch_dicts(conn, """
        SELECT d.day, d.status, d.n_flares, d.n_flares_s2, d.n_flares_viirs_only,
               d.volume_kscm, d.volume_lo_kscm, d.volume_hi_kscm, d.co2_t, d.co2e_t,
               d.s2_observed, d.s2_usable, d.viirs_observed, d.cloud_fraction,
               (d.status = 'processed' AND (d.s2_observed OR d.viirs_observed)) AS observed,
               p.detector_version, p.volume_model_version, p.processed_at, p.attempts, p.state AS processing_state,
               p.sentinel2_outcome, p.viirs_outcome, p.result_key, p.dag_id, p.dag_run_id
        FROM emissions_daily d
        LEFT JOIN site_day_processing p ON p.site_id = d.site_id AND p.acquisition_date = d.day
        WHERE d.site_id = %(site)s AND d.day BETWEEN %(first)s AND %(last)s
        ORDER BY d.day LIMIT %(limit)s OFFSET %(offset)s
    """, args)
    return total, rows


def detections(conn, site_id: str, day: date) -> list[dict]:
    """A site-day's flares with their features, volume interval and model versions (``v_flares``)."""
    return fetch_dicts(conn, """
        SELECT detection_key, sensor, lat, lon, confidence, hot_pixels, temperature_k, swir_frp_mw,
               viirs_rh_mw, cloud_flag, volume_kscm_d, volume_lo_kscm_d, volume_hi_kscm_d, rh_source,
               co2_t, co2e_t, model_version, detector_version
        FROM v_flares WHERE site_id = %s AND acquisition_date = %s ORDER BY detection_key
    """, (site_id, day))


def reconciliation(conn, site_id: str) -> list[dict]:
    """Reported (or metered) vs observed volumes per month for a site."""
    return fetch_dicts(conn, """
        SELECT month, source, reported_kscm, reported_days, estimate_kscm, estimate_lo_kscm,
               estimate_hi_kscm, completeness, ratio, flag
        FROM reconciliation_monthly WHERE group_level = 'site' AND group_value = %s
        ORDER BY month DESC, source
    """, (site_id,))


def monthly(conn, level: str, month: date | None, *, limit: int, offset: int) -> tuple[int, list[dict]]:
    """Monthly totals per ``level`` group: the observed sums (``emissions_monthly``) beside the
    gap-aware estimate with its interval (``emissions_monthly_estimate``); one month or all."""
    where, args = "m.group_level = %(level)s", {"level": level, "limit": limit, "offset": offset}
    if month is not None:
        where += " AND m.month = %(month)s"
        args["month"] = month
    total = fetch_dicts(conn, f"SELECT count(*) AS n FROM emissions_monthly m WHERE {where}", args)[0]["n"]
    rows = fetch_dicts(conn, f"""
        SELECT m.group_level AS level, m.group_value AS value, m.month, m.n_sites, m.site_days,
               m.site_days_observed, m.site_days_unprocessed, m.volume_kscm, m.volume_lo_kscm,
               m.volume_hi_kscm, m.co2_t, m.co2e_t,
               e.completeness, e.volume_estimate_kscm, e.volume_lo_kscm AS estimate_lo_kscm,
               e.volume_hi_kscm AS estimate_hi_kscm, e.co2e_t AS estimate_co2e_t,
               e.co2e_lo_t AS estimate_co2e_lo_t, e.co2e_hi_t AS estimate_co2e_hi_t, e.data_through
        FROM emissions_monthly m
        LEFT JOIN emissions_monthly_estimate e
          ON e.group_level = m.group_level AND e.group_value = m.group_value AND e.month = m.month
        WHERE {where}
        ORDER BY m.month DESC, m.group_value LIMIT %(limit)s OFFSET %(offset)s
    """, args)
    return total, rows


def alerts(conn, status: str | None, site_id: str | None, *, limit: int, offset: int) -> tuple[int, list[dict]]:
    """Alerts, newest period first, filtered by status and site."""
    where, args = "true", {"limit": limit, "offset": offset}
    if status:
        where += " AND status = %(status)s"
        args["status"] = status
    if site_id:
        where += " AND site_id = %(site)s"
        args["site"] = site_id
    total = fetch_dicts(conn, f"SELECT count(*) AS n FROM alerts WHERE {where}", args)[0]["n"]
    rows = fetch_dicts(conn, f"""
        SELECT alert_id, kind, severity, site_id, period_start, period_end, metric, value, baseline,
               threshold, message, status, created_at, updated_at, acknowledged_by, acknowledged_at,
               resolved_by, resolved_at
        FROM alerts WHERE {where}
        ORDER BY period_start DESC, alert_id DESC LIMIT %(limit)s OFFSET %(offset)s
    """, args)
    return total, rows


def alerts_by_id(conn, alert_id: int) -> dict | None:
    rows = fetch_dicts(conn, "SELECT alert_id, site_id, kind, status, acknowledged_by, acknowledged_at"
                             " FROM alerts WHERE alert_id = %s", (alert_id,))
    return rows[0] if rows else None


def acknowledge(conn, alert_id: int, by: str) -> dict | None:
    """Mark an open alert acknowledged by ``by`` (who and when recorded); the alert row after it,
    None for an unknown id. Acknowledging twice keeps the first acknowledgement."""
    with conn.cursor() as cur:
        cur.execute("UPDATE alerts SET status = 'acknowledged', acknowledged_by = %s, acknowledged_at = now(),"
                    " updated_at = now() WHERE alert_id = %s AND status = 'open'", (by, alert_id))
    conn.commit()
    return alerts_by_id(conn, alert_id)
