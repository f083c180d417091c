-- Recompute emissions_monthly for the months in %(months)s (first days of months) from
-- emissions_daily, at three grouping levels: field, operator, country. Upsert on
-- (group_level, group_value, month). Volumes are the sum of the observed site-days (no gap
-- filling): site_days_observed tells how complete a month is; site_days_unprocessed counts the
-- site-days whose processing is pending or failed (missing from the totals, not zero).
-- Sums run in (site, day) order: a float sum depends on the order of its terms (rollup_daily.sql).
-- A month's days are read as a day range (emissions_daily_day_idx, 014), not by truncating every
-- row's day: the cost follows the months refreshed, not the history.
INSERT INTO emissions_monthly AS t (
    group_level, group_value, month, n_sites, site_days, site_days_observed, site_days_unprocessed,
    volume_kscm, co2_t, co2e_t, volume_lo_kscm, volume_hi_kscm, refreshed_at)
SELECT g.group_level, g.group_value, g.month,
       count(DISTINCT g.site_id),
       count(*),
       count(*) FILTER (WHERE g.s2_observed OR g.viirs_observed),
       count(*) FILTER (WHERE g.status <> 'processed'),
       coalesce(sum(g.volume_kscm ORDER BY g.site_id, g.day), 0), coalesce(sum(g.co2_t ORDER BY g.site_id, g.day), 0),
       coalesce(sum(g.co2e_t ORDER BY g.site_id, g.day), 0),
       coalesce(sum(g.volume_lo_kscm ORDER BY g.site_id, g.day), 0),
       coalesce(sum(g.volume_hi_kscm ORDER BY g.site_id, g.day), 0), now()
FROM (
    SELECT lvl.group_level, lvl.group_value, m.month,
           d.site_id, d.day, d.s2_observed, d.viirs_observed, d.status, d.volume_kscm, d.volume_lo_kscm,
           d.volume_hi_kscm, d.co2_t, d.co2e_t
    FROM (SELECT DISTINCT unnest(%(months)s::date[])) AS m(month)
    JOIN emissions_daily d ON d.day >= m.month AND d.day < (m.month + interval '1 month')::date
    JOIN sites s USING (site_id)
    CROSS JOIN LATERAL (VALUES ('field', s.field), ('operator', s.operator), ('country', s.country))
        AS lvl(group_level, group_value)
    WHERE m.month = date_trunc('month', m.month)::date
) g
GROUP BY g.group_level, g.group_value, g.month
ON CONFLICT (group_level, group_value, month) DO UPDATE SET
    n_sites = EXCLUDED.n_sites,
    site_days = EXCLUDED.site_days,
    site_days_observed = EXCLUDED.site_days_observed,
    site_days_unprocessed = EXCLUDED.site_days_unprocessed,
    volume_kscm = EXCLUDED.volume_kscm,
    co2_t = EXCLUDED.co2_t,
    co2e_t = EXCLUDED.co2e_t,
    volume_lo_kscm = EXCLUDED.volume_lo_kscm,
    volume_hi_kscm = EXCLUDED.volume_hi_kscm,
    refreshed_at = EXCLUDED.refreshed_at;
