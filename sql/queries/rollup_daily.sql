-- Recompute emissions_daily (site x day) for the days in %(days)s, for every active site that
-- has a scene that day. Upsert on (site_id, day); a site-day whose flares all disappeared on
-- reprocessing gets zeros, not a stale total.
-- Only processed site-days carry numbers: a site-day is processed when every scene of it was
-- handled since its last ingest (processed_at >= ingested_at). Otherwise its status is 'failed'
-- (site_day_processing gave up on it) or 'pending', its counts and totals are NULL and neither
-- sensor counts as observed: missing, never zero. A processed day that no sensor observed
-- (quarantined tile, failed fetch, no scene) has NULL totals too. A sensor observed the day when
-- its scene was processed: not no_data, failed (at ingest) or quarantined (failed validation).
-- s2_usable: observed and clear over the site's flares (scenes.usable; NULL from before 009 = usable).
-- Sums run in detection-key order: a float sum depends on the order of its terms, and without an
-- ORDER BY that order follows the plan and where the rows lie on disk (rewritten rows move): the
-- same site-day rolled up under the CeleryExecutor and in-process differed in the last bit.
-- Every table is restricted to %(days)s (the emissions and processing state too, although the joins
-- imply it), so that their date indexes (014) apply: the cost follows the days refreshed, not the history.
INSERT INTO emissions_daily AS t (
    site_id, day, n_flares, n_flares_s2, n_flares_viirs_only, volume_kscm, co2_t, co2e_t,
    s2_observed, viirs_observed, cloud_fraction, status, volume_lo_kscm, volume_hi_kscm, s2_usable, refreshed_at)
SELECT sc.site_id,
       sc.acquisition_date,
       CASE WHEN sc.numbers THEN coalesce(f.n_flares, 0) END,
       CASE WHEN sc.numbers THEN coalesce(f.n_s2, 0) END,
       CASE WHEN sc.numbers THEN coalesce(f.n_viirs, 0) END,
       CASE WHEN sc.numbers THEN coalesce(f.volume, 0) END,
       CASE WHEN sc.numbers THEN coalesce(f.co2, 0) END,
       CASE WHEN sc.numbers THEN coalesce(f.co2e, 0) END,
       sc.processed AND sc.s2_observed,
       sc.processed AND sc.viirs_observed,
       sc.cloud_fraction,
       CASE WHEN sc.processed THEN 'processed' WHEN p.state = 'failed' THEN 'failed' ELSE 'pending' END,
       CASE WHEN sc.numbers THEN coalesce(f.volume_lo, 0) END,
       CASE WHEN sc.numbers THEN coalesce(f.volume_hi, 0) END,
       sc.processed AND sc.s2_usable,
       now()
FROM (
    SELECT x.*, x.processed AND (x.s2_observed OR x.viirs_observed) AS numbers
    FROM (
    SELECT s.site_id, s.acquisition_date,
           bool_and(s.processed_at IS NOT NULL AND s.processed_at >= s.ingested_at) AS processed,
           bool_or(s.sensor = 'sentinel2' AND s.status = 'processed') AS s2_observed,
           bool_or(s.sensor = 'viirs' AND s.status = 'processed') AS viirs_observed,
           bool_or(s.sensor = 'sentinel2' AND s.status = 'processed' AND coalesce(s.usable, true)) AS s2_usable,
           max(s.cloud_fraction) FILTER (WHERE s.sensor = 'sentinel2') AS cloud_fraction
    FROM scenes s
    JOIN sites USING (site_id)
    WHERE s.acquisition_date = ANY(%(days)s::date[]) AND sites.active
    GROUP BY s.site_id, s.acquisition_date
    ) x
) sc
LEFT JOIN (
    SELECT site_id, acquisition_date, state FROM site_day_processing
    WHERE acquisition_date = ANY(%(days)s::date[])
) p ON p.site_id = sc.site_id AND p.acquisition_date = sc.acquisition_date
LEFT JOIN (
    SELECT d.site_id, d.acquisition_date,
           count(*) AS n_flares,
           count(*) FILTER (WHERE d.sensor = 'sentinel2') AS n_s2,
           count(*) FILTER (WHERE d.sensor = 'viirs') AS n_viirs,
           sum(e.volume_kscm_d ORDER BY d.detection_key) AS volume,
           sum(coalesce(e.volume_lo_kscm_d, e.volume_kscm_d) ORDER BY d.detection_key) AS volume_lo,
           sum(coalesce(e.volume_hi_kscm_d, e.volume_kscm_d) ORDER BY d.detection_key) AS volume_hi,
           sum(e.co2_t ORDER BY d.detection_key) AS co2,
           sum(e.co2e_t ORDER BY d.detection_key) AS co2e
    FROM flare_detections d
    JOIN flare_emissions e USING (site_id, acquisition_date, detection_key)
    WHERE d.acquisition_date = ANY(%(days)s::date[]) AND e.acquisition_date = ANY(%(days)s::date[])
    GROUP BY d.site_id, d.acquisition_date
) f ON f.site_id = sc.site_id AND f.acquisition_date = sc.acquisition_date
ON CONFLICT (site_id, day) DO UPDATE SET
    n_flares = EXCLUDED.n_flares,
    n_flares_s2 = EXCLUDED.n_flares_s2,
    n_flares_viirs_only = EXCLUDED.n_flares_viirs_only,
    volume_kscm = EXCLUDED.volume_kscm,
    co2_t = EXCLUDED.co2_t,
    co2e_t = EXCLUDED.co2e_t,
    s2_observed = EXCLUDED.s2_observed,
    viirs_observed = EXCLUDED.viirs_observed,
    cloud_fraction = EXCLUDED.cloud_fraction,
    status = EXCLUDED.status,
    volume_lo_kscm = EXCLUDED.volume_lo_kscm,
    volume_hi_kscm = EXCLUDED.volume_hi_kscm,
    s2_usable = EXCLUDED.s2_usable,
    refreshed_at = EXCLUDED.refreshed_at;
