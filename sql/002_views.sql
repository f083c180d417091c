-- Migration 002: analyst-friendly views.

CREATE OR REPLACE VIEW v_flares AS
SELECT d.site_id, s.name AS site_name, s.field, s.operator, s.country,
       d.acquisition_date, d.detection_key, d.sensor, d.lat, d.lon, d.confidence,
       d.hot_pixels, d.temperature_k, d.swir_frp_mw, d.viirs_rh_mw, d.cloud_flag,
       e.volume_kscm_d, e.rh_source, e.co2_t, e.co2e_t, e.model_version, d.detector_version
FROM flare_detections d
JOIN sites s USING (site_id)
LEFT JOIN flare_emissions e USING (site_id, acquisition_date, detection_key);

CREATE OR REPLACE VIEW v_site_summary AS
SELECT s.site_id, s.name, s.field, s.operator, s.country,
       count(dly.day) AS days, coalesce(sum(dly.n_flares), 0) AS flares_seen,
       round(coalesce(sum(dly.volume_kscm), 0)::numeric, 1) AS volume_kscm,
       round(coalesce(sum(dly.co2_t), 0)::numeric, 1) AS co2_t,
       round(coalesce(sum(dly.co2e_t), 0)::numeric, 1) AS co2e_t,
       min(dly.day) AS first_day, max(dly.day) AS last_day
FROM sites s
LEFT JOIN emissions_daily dly USING (site_id)
GROUP BY s.site_id, s.name, s.field, s.operator, s.country;
