-- Migration 007: the analytics layer (flarewatch.analytics, the emissions_analytics DAG): daily
-- intervals, gap-aware monthly estimates with their 90 % interval and CO2e scenarios, KPIs,
-- alerts, and the reconciliation of reported with observed volumes. Safe to re-run.

-- The day's 90 % interval: the sum of its flares' interval bounds (a flare without an interval,
-- e.g. from the published calibration, adds its point value to both). Summing bounds treats the
-- flares' errors as fully correlated (one model, one scene): conservative.
ALTER TABLE emissions_daily ADD COLUMN IF NOT EXISTS volume_lo_kscm double precision;
ALTER TABLE emissions_daily ADD COLUMN IF NOT EXISTS volume_hi_kscm double precision;
COMMENT ON COLUMN emissions_daily.volume_lo_kscm IS '90 % interval of volume_kscm: sum of the flares'' lower bounds (fully correlated errors, conservative).';

-- Gap-aware monthly estimate per site and per field / operator / country (analytics.gapfill).
-- volume_observed_kscm: the sum over observed site-days (as emissions_monthly); volume_estimate_kscm:
-- the whole calendar month, unobserved days filled from the site's neighbouring observed days;
-- volume_lo/hi_kscm: its 90 % interval (per-flare intervals + gap-filling error, method below).
-- CO2e under two combustion efficiencies side by side (scenario, source in scenario_sources).
CREATE TABLE IF NOT EXISTS emissions_monthly_estimate (
    group_level            text NOT NULL CHECK (group_level IN ('site', 'field', 'operator', 'country')),
    group_value            text NOT NULL,
    month                  date NOT NULL,
    n_sites                integer NOT NULL,
    calendar_site_days     integer NOT NULL,
    observed_site_days     integer NOT NULL,
    unprocessed_site_days  integer NOT NULL,
    completeness           double precision NOT NULL,   -- observed / calendar site-days
    data_through           date,                        -- last day of the month with any site-day row (the month may be open)
    volume_observed_kscm   double precision NOT NULL,
    volume_estimate_kscm   double precision,            -- NULL: no observed day to fill from
    volume_lo_kscm         double precision,
    volume_hi_kscm         double precision,
    co2_t                  double precision,
    co2e_t                 double precision,
    co2e_lo_t              double precision,
    co2e_hi_t              double precision,
    co2e_measured_ce_t     double precision,
    co2e_measured_ce_lo_t  double precision,
    co2e_measured_ce_hi_t  double precision,
    scenario_sources       jsonb NOT NULL DEFAULT '{}'::jsonb,
    method                 text NOT NULL,
    refreshed_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_level, group_value, month)
);
COMMENT ON TABLE emissions_monthly_estimate IS 'Whole-month volume estimate with 90 % interval (gaps filled from neighbouring observed days), observed-only sum beside it, completeness, CO2e under the default and a measured combustion efficiency.';

-- Monthly KPIs per site and group (analytics.kpis).
CREATE TABLE IF NOT EXISTS kpi_monthly (
    group_level            text NOT NULL CHECK (group_level IN ('site', 'field', 'operator', 'country')),
    group_value            text NOT NULL,
    month                  date NOT NULL,
    n_sites                integer NOT NULL,
    observed_days          integer NOT NULL,   -- site-days observed by a sensor
    flaring_days           integer NOT NULL,   -- observed site-days with a flare
    flaring_days_last_30   integer NOT NULL,   -- site-days with a flare among the last 30 days of the month
    persistent_sites       integer NOT NULL,   -- sites flaring on >= half their observed days of the last 30
    new_flare_sites        integer NOT NULL,   -- first flare after a quiet history (alert rule new_flare_site)
    dark_sites             integer NOT NULL,   -- flared last month, observed this month without a flare
    volume_estimate_kscm   double precision,
    co2_t                  double precision,
    co2e_t                 double precision,
    co2e_measured_ce_t     double precision,
    refreshed_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_level, group_value, month)
);

-- Alerts (analytics.alerts): rules and anomalies, one row per natural key, so a rerun updates
-- the same alert instead of adding one. status: open -> acknowledged -> resolved (CLI / UI).
CREATE TABLE IF NOT EXISTS alerts (
    alert_id         bigserial PRIMARY KEY,
    kind             text NOT NULL,        -- threshold, consecutive_flaring, new_flare_site, anomaly_robust,
                                           -- anomaly_multivariate, reported_gap
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    site_id          text NOT NULL REFERENCES sites(site_id),
    period_start     date NOT NULL,
    period_end       date NOT NULL,
    metric           text NOT NULL,
    value            double precision,
    baseline         double precision,
    threshold        double precision,
    message          text NOT NULL,
    details          jsonb NOT NULL DEFAULT '{}'::jsonb,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    acknowledged_by  text,
    acknowledged_at  timestamptz,
    resolved_by      text,
    resolved_at      timestamptz,
    UNIQUE (kind, site_id, period_start, metric)
);
CREATE INDEX IF NOT EXISTS alerts_status_idx ON alerts (status, period_start);

-- Reported (or metered) vs observed per site and per operator, month and reporting source
-- (analytics.reconciliation): reported periods prorated to the month by days; the FlareWatch
-- gap-aware estimate with its interval; flag under_reported when the reported volume is below the
-- interval, over_reported above it.
CREATE TABLE IF NOT EXISTS reconciliation_monthly (
    group_level          text NOT NULL CHECK (group_level IN ('site', 'operator')),
    group_value          text NOT NULL,
    month                date NOT NULL,
    source               text NOT NULL,
    reported_kscm        double precision NOT NULL,
    reported_days        integer NOT NULL,     -- days of the month the reports cover
    reported_co2_t       double precision NOT NULL,
    estimate_kscm        double precision,
    estimate_lo_kscm     double precision,
    estimate_hi_kscm     double precision,
    completeness         double precision,
    ratio                double precision,     -- estimate / reported
    flag                 text NOT NULL CHECK (flag IN ('under_reported', 'over_reported', 'consistent', 'no_estimate')),
    refreshed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_level, group_value, month, source)
);
COMMENT ON TABLE reconciliation_monthly IS 'Reported/metered vs FlareWatch gap-aware volume per site or operator, month and source; flag under_reported when the reported volume lies below the 90 % interval.';

-- Every flare with its 90 % interval and model versions (v_flares gains the interval columns).
CREATE OR REPLACE VIEW v_flares AS
SELECT d.site_id, s.name AS site_name, s.field, s.operator, s.country,
       d.acquisition_date, d.detection_key, d.sensor, d.lat, d.lon, d.confidence,
       d.hot_pixels, d.temperature_k, d.swir_frp_mw, d.viirs_rh_mw, d.cloud_flag,
       e.volume_kscm_d, e.rh_source, e.co2_t, e.co2e_t, e.model_version, d.detector_version,
       e.volume_lo_kscm_d, e.volume_hi_kscm_d
FROM flare_detections d
JOIN sites s USING (site_id)
LEFT JOIN flare_emissions e USING (site_id, acquisition_date, detection_key);

-- Per-site summary over a date range (v_site_summary covers every day, the scheduler's own
-- daily runs included): SELECT * FROM site_summary('2025-06-01', '2025-06-07').
-- Volumes are observed-day sums with their summed 90 % bounds; days = site-days with a row,
-- observed_days = those processed and seen by a sensor.
CREATE OR REPLACE FUNCTION site_summary(first_day date, last_day date)
RETURNS TABLE (site_id text, name text, field text, operator text, country text, days bigint,
               observed_days bigint, flares_seen bigint, volume_kscm numeric, volume_lo_kscm numeric,
               volume_hi_kscm numeric, co2_t numeric, co2e_t numeric, first_day_seen date, last_day_seen date)
LANGUAGE sql STABLE AS $$
    SELECT s.site_id, s.name, s.field, s.operator, s.country,
           count(d.day), count(d.day) FILTER (WHERE d.status = 'processed' AND (d.s2_observed OR d.viirs_observed)),
           coalesce(sum(d.n_flares), 0),
           round(coalesce(sum(d.volume_kscm), 0)::numeric, 1),
           round(coalesce(sum(d.volume_lo_kscm), 0)::numeric, 1),
           round(coalesce(sum(d.volume_hi_kscm), 0)::numeric, 1),
           round(coalesce(sum(d.co2_t), 0)::numeric, 1),
           round(coalesce(sum(d.co2e_t), 0)::numeric, 1),
           min(d.day), max(d.day)
    FROM sites s
    LEFT JOIN emissions_daily d ON d.site_id = s.site_id AND d.day BETWEEN first_day AND last_day
    GROUP BY s.site_id, s.name, s.field, s.operator, s.country
    ORDER BY s.site_id
$$;
