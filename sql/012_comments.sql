-- Migration 012: a comment on every table, view and column of the results schema, with its unit,
-- so `\d+ <table>` in psql (`make psql ANALYST=1`) documents the schema where analysts look.
-- Comments given by earlier migrations are kept; this adds the missing ones. Units: volumes in
-- thousand standard m3 (kscm; `_kscm_d` = thousand m3 per day), CO2 / CH4 / CO2e in tonnes (t),
-- temperatures in kelvin (K), radiant heat / FRP in MW, areas in m2, fractions 0..1, times UTC.
-- A later migration must comment its new tables and columns (tests/integration/test_schema_comments.py).
-- Statements are safe to re-run.

-- ------------------------------------------------------------------ bookkeeping
COMMENT ON TABLE schema_migrations IS 'Numbered migrations (sql/NNN_name.sql) applied to this database by `flarewatch migrate`.';
COMMENT ON COLUMN schema_migrations.version IS 'Migration number (NNN).';
COMMENT ON COLUMN schema_migrations.name IS 'File name of the migration.';
COMMENT ON COLUMN schema_migrations.applied_at IS 'When it was applied.';

-- ------------------------------------------------------------------ sites
COMMENT ON COLUMN sites.site_id IS 'Site identifier (e.g. rumaila-n); the key every other table refers to.';
COMMENT ON COLUMN sites.name IS 'Site name.';
COMMENT ON COLUMN sites.field IS 'Oil or gas field the site belongs to (a grouping level of the monthly tables).';
COMMENT ON COLUMN sites.operator IS 'Operator of the site (a grouping level of the monthly tables).';
COMMENT ON COLUMN sites.country IS 'Country of the site (a grouping level of the monthly tables).';
COMMENT ON COLUMN sites.lat IS 'AOI centre latitude, degrees north (WGS84).';
COMMENT ON COLUMN sites.lon IS 'AOI centre longitude, degrees east (WGS84).';
COMMENT ON COLUMN sites.aoi_km IS 'Side of the square area of interest around lat/lon, km (0.5 to 50).';
COMMENT ON COLUMN sites.land_cover IS 'Background surface (desert, sand, vegetation, cropland, water); used by the demo scene simulator.';
COMMENT ON COLUMN sites.notes IS 'Free-text notes (e.g. how the position was chosen).';
COMMENT ON COLUMN sites.active IS 'Monitored: inactive sites are neither ingested nor rolled up.';
COMMENT ON COLUMN sites.updated_at IS 'When the row was last upserted.';

-- ------------------------------------------------------------------ scenes
COMMENT ON COLUMN scenes.site_id IS 'Site (sites.site_id).';
COMMENT ON COLUMN scenes.acquisition_date IS 'Acquisition date (UTC day of the Sentinel-2 pass, or the VIIRS night).';
COMMENT ON COLUMN scenes.sensor IS 'sentinel2 (tile) or viirs (Nightfire night file).';
COMMENT ON COLUMN scenes.source IS 'Provider the scene came from (e.g. demo, earth-search, sentinel-hub, firms, nightfire).';
COMMENT ON COLUMN scenes.s3_key IS 'Key of the stored object in the rawdata bucket (sentinel2/.../B8A_B11_B12.tif or viirs/.../nightfire.csv); NULL when nothing was stored.';
COMMENT ON COLUMN scenes.acquired_at IS 'Sentinel-2 sensing time (UTC); NULL for VIIRS.';
COMMENT ON COLUMN scenes.crs_epsg IS 'Sentinel-2: EPSG code of the tile''s projection (UTM zone); NULL for VIIRS.';
COMMENT ON COLUMN scenes.width_px IS 'Sentinel-2: tile width, 20 m pixels.';
COMMENT ON COLUMN scenes.height_px IS 'Sentinel-2: tile height, 20 m pixels.';
COMMENT ON COLUMN scenes.cloud_fraction IS 'Sentinel-2: share of the tile''s valid pixels that are cloud (0..1).';
COMMENT ON COLUMN scenes.valid_fraction IS 'Sentinel-2: share of the site''s tile with valid data (0..1).';
COMMENT ON COLUMN scenes.n_records IS 'VIIRS: detection records in the stored night file for the site; NULL for Sentinel-2.';
COMMENT ON COLUMN scenes.detail IS 'What ingest or validation found (error message, what was expected, where a quarantined copy is).';
COMMENT ON COLUMN scenes.ingested_at IS 'When the scene was last ingested.';
COMMENT ON COLUMN scenes.processed_at IS 'When processing last handled it; NULL or older than ingested_at = waiting for processing.';

-- ------------------------------------------------------------------ site_day_processing
COMMENT ON COLUMN site_day_processing.site_id IS 'Site (sites.site_id).';
COMMENT ON COLUMN site_day_processing.acquisition_date IS 'Acquisition date of the site-day.';
COMMENT ON COLUMN site_day_processing.state IS 'processed (last attempt succeeded), retrying (failed, will be retried), failed (gave up until `flarewatch requeue` or a new ingest).';
COMMENT ON COLUMN site_day_processing.attempts IS 'Failed attempts since the last success, ingest or re-queue.';
COMMENT ON COLUMN site_day_processing.last_error IS 'Error of the last failed attempt.';
COMMENT ON COLUMN site_day_processing.last_attempt_at IS 'When processing last tried the site-day.';
COMMENT ON COLUMN site_day_processing.processed_at IS 'When it last succeeded.';
COMMENT ON COLUMN site_day_processing.n_detections IS 'Flares written by the last success (n_sentinel2 + n_viirs_only).';
COMMENT ON COLUMN site_day_processing.n_sentinel2 IS 'Flares found in the Sentinel-2 tile.';
COMMENT ON COLUMN site_day_processing.n_viirs_only IS 'Flare-like VIIRS detections without a Sentinel-2 counterpart.';
COMMENT ON COLUMN site_day_processing.volume_kscm_d IS 'Flared volume of the site-day written, thousand m3/day (sum over its flares).';
COMMENT ON COLUMN site_day_processing.co2_t IS 'CO2 of the site-day written, t.';
COMMENT ON COLUMN site_day_processing.co2e_t IS 'CO2e (CO2 + methane slip x GWP) of the site-day written, t.';
COMMENT ON COLUMN site_day_processing.detector_version IS 'Detector version that produced the flares.';
COMMENT ON COLUMN site_day_processing.volume_model_version IS 'Volume model version that estimated them.';
COMMENT ON COLUMN site_day_processing.sentinel2_outcome IS 'Outcome of the Sentinel-2 scene (scenes.outcome) at the last success.';
COMMENT ON COLUMN site_day_processing.viirs_outcome IS 'Outcome of the VIIRS night (scenes.outcome) at the last success.';
COMMENT ON COLUMN site_day_processing.result_key IS 'Key of the site-day''s result.json in the processed bucket.';
COMMENT ON COLUMN site_day_processing.requeued_at IS 'When `flarewatch requeue` last put it back into the pending set.';
COMMENT ON COLUMN site_day_processing.requeued_by IS 'Who re-queued it.';

-- ------------------------------------------------------------------ flare_detections
COMMENT ON TABLE flare_detections IS 'One row per flare seen on a site-day: sentinel2 = found in the Sentinel-2 tile; viirs = a flare-like VIIRS detection with no Sentinel-2 counterpart.';
COMMENT ON COLUMN flare_detections.site_id IS 'Site (sites.site_id).';
COMMENT ON COLUMN flare_detections.acquisition_date IS 'Acquisition date.';
COMMENT ON COLUMN flare_detections.detection_key IS 'Key within the site-day: s2:<row>:<col> of the peak pixel, or viirs:<lat>:<lon>; a repeat gets ~2, ~3.';
COMMENT ON COLUMN flare_detections.sensor IS 'sentinel2 or viirs (night-only detection).';
COMMENT ON COLUMN flare_detections.detector IS 'Detector name (e.g. yolo, threshold-tai-nhi, viirs-nightfire).';
COMMENT ON COLUMN flare_detections.detector_version IS 'Detector version that found the flare.';
COMMENT ON COLUMN flare_detections.lat IS 'Flare latitude, degrees north (WGS84): B12-excess-weighted centroid, or the VIIRS position.';
COMMENT ON COLUMN flare_detections.lon IS 'Flare longitude, degrees east (WGS84).';
COMMENT ON COLUMN flare_detections.pixel_row IS 'Sentinel-2: centroid row in the tile, fractional 20 m pixels (a pixel centre is index + 0.5).';
COMMENT ON COLUMN flare_detections.pixel_col IS 'Sentinel-2: centroid column in the tile, fractional 20 m pixels.';
COMMENT ON COLUMN flare_detections.bbox_px IS 'Sentinel-2: bounding box {row0, col0, row1, col1} in tile pixels, row1 / col1 exclusive.';
COMMENT ON COLUMN flare_detections.confidence IS 'Detector score, 0..1.';
COMMENT ON COLUMN flare_detections.hot_pixels IS 'Pixels in the detection, count.';
COMMENT ON COLUMN flare_detections.hot_area_m2 IS 'hot_pixels x 400 m2 (20 m SWIR pixel), m2: pixel area, not flame area.';
COMMENT ON COLUMN flare_detections.b12_excess_sum IS 'Sum over the flame footprint of B12 reflectance minus the background median (reflectance, dimensionless).';
COMMENT ON COLUMN flare_detections.b12_excess_peak IS 'Largest single-pixel B12 reflectance excess (dimensionless).';
COMMENT ON COLUMN flare_detections.b11_excess_sum IS 'Sum over the flame footprint of B11 reflectance minus the background median (reflectance, dimensionless).';
COMMENT ON COLUMN flare_detections.b11_excess_peak IS 'Largest single-pixel B11 reflectance excess (dimensionless).';
COMMENT ON COLUMN flare_detections.b12_b11_ratio IS 'L12/L11 excess TOA radiance ratio over unclipped footprint pixels (dimensionless; Planck: 0.95 at 1600 K, 0.71 at 2000 K).';
COMMENT ON COLUMN flare_detections.temperature_k IS 'Two-band B12/B11 colour temperature of b12_b11_ratio, K; NULL without a usable ratio.';
COMMENT ON COLUMN flare_detections.swir_frp_mw IS 'Fire radiative power from the SWIR radiance method (Fisher & Wooster 2018), MW; a lower bound where both bands clip.';
COMMENT ON COLUMN flare_detections.cloud_flag IS 'Cloud within 2 pixels of the detection.';
COMMENT ON COLUMN flare_detections.saturated IS 'Saturated-pixel rule met (or a clipped pixel in the box).';
COMMENT ON COLUMN flare_detections.viirs_n IS 'Flare-like VIIRS Nightfire detections (Temp_BB >= 1200 K) within 750 m, count.';
COMMENT ON COLUMN flare_detections.viirs_rh_mw IS 'Radiant heat of the matched VIIRS detection, MW (shared between Sentinel-2 flares in one VIIRS pixel by their FRP).';
COMMENT ON COLUMN flare_detections.viirs_temp_k IS 'Temp_BB of the nearest matched VIIRS detection, K.';
COMMENT ON COLUMN flare_detections.viirs_area_m2 IS 'Area_BB (Planck-fit source area) of the nearest matched VIIRS detection, m2.';
COMMENT ON COLUMN flare_detections.viirs_distance_m IS 'Distance to the nearest matched VIIRS detection, m.';
COMMENT ON COLUMN flare_detections.features IS 'Every feature of the flare (the columns above and more, e.g. glint_flag, viirs_nights_seen, swir_frp_band); README, "Flare features".';
COMMENT ON COLUMN flare_detections.processed_at IS 'When the row was last written.';

-- ------------------------------------------------------------------ flare_emissions
COMMENT ON TABLE flare_emissions IS 'Volume, CO2 and CO2e estimate of each flare (1:1 with flare_detections).';
COMMENT ON COLUMN flare_emissions.site_id IS 'Site (sites.site_id).';
COMMENT ON COLUMN flare_emissions.acquisition_date IS 'Acquisition date.';
COMMENT ON COLUMN flare_emissions.detection_key IS 'The flare (flare_detections.detection_key).';
COMMENT ON COLUMN flare_emissions.volume_kscm_d IS 'Estimated flared volume, thousand m3/day.';
COMMENT ON COLUMN flare_emissions.volume_method IS 'How the volume was estimated: regressor, linear or power (published calibrations).';
COMMENT ON COLUMN flare_emissions.radiant_heat_mw IS 'Radiant heat the estimate used, MW (VIIRS RH, else the Sentinel-2 SWIR FRP).';
COMMENT ON COLUMN flare_emissions.rh_source IS 'Where radiant_heat_mw came from: viirs or s2_swir_frp (none: no usable radiant heat).';
COMMENT ON COLUMN flare_emissions.co2_t IS 'CO2 of the day''s volume, t (volume x 1.935 t per thousand m3 x combustion efficiency).';
COMMENT ON COLUMN flare_emissions.ch4_slip_t IS 'Unburnt methane of the day''s volume, t.';
COMMENT ON COLUMN flare_emissions.co2e_t IS 'CO2 + methane slip x GWP, t.';
COMMENT ON COLUMN flare_emissions.volume_lo_kscm_d IS 'Lower bound of the 90 % prediction interval of volume_kscm_d, thousand m3/day; NULL without an interval.';
COMMENT ON COLUMN flare_emissions.volume_hi_kscm_d IS 'Upper bound of the 90 % prediction interval of volume_kscm_d, thousand m3/day; NULL without an interval.';
COMMENT ON COLUMN flare_emissions.model_version IS 'Volume model version (e.g. regressor-v3, calibration-linear-v1).';
COMMENT ON COLUMN flare_emissions.emission_factors IS 'Emission factors used (CO2 per volume, combustion efficiency, methane fraction, density, GWP).';
COMMENT ON COLUMN flare_emissions.processed_at IS 'When the row was last written.';

-- ------------------------------------------------------------------ emissions_daily
COMMENT ON TABLE emissions_daily IS 'Site x day totals of the flares, refreshed by the rollup; pending / failed days have NULL numbers (missing, not zero).';
COMMENT ON COLUMN emissions_daily.site_id IS 'Site (sites.site_id).';
COMMENT ON COLUMN emissions_daily.day IS 'Day (acquisition date).';
COMMENT ON COLUMN emissions_daily.n_flares IS 'Flares that day (n_flares_s2 + n_flares_viirs_only); NULL unless processed and observed.';
COMMENT ON COLUMN emissions_daily.n_flares_s2 IS 'Flares found by Sentinel-2.';
COMMENT ON COLUMN emissions_daily.n_flares_viirs_only IS 'Flare-like VIIRS detections without a Sentinel-2 counterpart.';
COMMENT ON COLUMN emissions_daily.volume_kscm IS 'Flared volume that day, thousand m3 (sum of the flares'' volume_kscm_d).';
COMMENT ON COLUMN emissions_daily.co2_t IS 'CO2 that day, t.';
COMMENT ON COLUMN emissions_daily.co2e_t IS 'CO2e that day, t.';
COMMENT ON COLUMN emissions_daily.s2_observed IS 'A processed Sentinel-2 scene saw the site that day (not no_data, failed or quarantined).';
COMMENT ON COLUMN emissions_daily.viirs_observed IS 'A processed VIIRS night file covered the site.';
COMMENT ON COLUMN emissions_daily.cloud_fraction IS 'Cloud share of the Sentinel-2 tile''s valid pixels (scenes.cloud_fraction), 0..1.';
COMMENT ON COLUMN emissions_daily.refreshed_at IS 'When the rollup last wrote the row.';
COMMENT ON COLUMN emissions_daily.volume_hi_kscm IS '90 % interval of volume_kscm: sum of the flares'' upper bounds, thousand m3 (fully correlated errors, conservative).';

-- ------------------------------------------------------------------ emissions_monthly
COMMENT ON TABLE emissions_monthly IS 'Field / operator / country x month sums of the observed site-days, thousand m3 and t; no gap filling (see emissions_monthly_estimate).';
COMMENT ON COLUMN emissions_monthly.group_level IS 'Grouping level: field, operator or country.';
COMMENT ON COLUMN emissions_monthly.group_value IS 'The field, operator or country.';
COMMENT ON COLUMN emissions_monthly.month IS 'First day of the month.';
COMMENT ON COLUMN emissions_monthly.n_sites IS 'Sites of the group with a day row in the month.';
COMMENT ON COLUMN emissions_monthly.site_days IS 'Site-days with a row in emissions_daily.';
COMMENT ON COLUMN emissions_monthly.site_days_observed IS 'Site-days that a sensor observed: how complete the month is.';
COMMENT ON COLUMN emissions_monthly.volume_kscm IS 'Flared volume of the observed site-days, thousand m3.';
COMMENT ON COLUMN emissions_monthly.co2_t IS 'CO2 of the observed site-days, t.';
COMMENT ON COLUMN emissions_monthly.co2e_t IS 'CO2e of the observed site-days, t.';
COMMENT ON COLUMN emissions_monthly.refreshed_at IS 'When the rollup last wrote the row.';
COMMENT ON COLUMN emissions_monthly.volume_hi_kscm IS '90 % interval of volume_kscm (observed days): sum of the daily upper bounds, thousand m3, conservative.';

-- ------------------------------------------------------------------ model_versions
COMMENT ON TABLE model_versions IS 'Model registry: every registered version of the detector and the volume regressor, its metrics and the champion alias.';
COMMENT ON COLUMN model_versions.model_name IS 'detector or regressor.';
COMMENT ON COLUMN model_versions.version IS 'Version number (1, 2, ...).';
COMMENT ON COLUMN model_versions.s3_prefix IS 'Where its files are: s3://<bucket>/models/<model_name>/v<version>/.';
COMMENT ON COLUMN model_versions.metrics IS 'Evaluation metrics (held-out data) the promotion gate compared.';
COMMENT ON COLUMN model_versions.params IS 'Training parameters.';
COMMENT ON COLUMN model_versions.data_snapshot IS 'Identifies the training data (hash, or simulator seed and chip count).';
COMMENT ON COLUMN model_versions.library_versions IS 'Library versions it was trained with.';
COMMENT ON COLUMN model_versions.alias IS 'champion on the version in use (at most one per model), else NULL.';
COMMENT ON COLUMN model_versions.decision IS 'Why it was or was not promoted.';
COMMENT ON COLUMN model_versions.created_at IS 'When it was registered.';

-- ------------------------------------------------------------------ calibration
COMMENT ON COLUMN calibration_site_map.source IS 'State code of a reported-flares file (ND, NM, TX) or the source label of a native file.';
COMMENT ON COLUMN calibration_site_map.key_type IS 'Kind of key: api, lease, pending_lease_id, pending_api, meter, ...';
COMMENT ON COLUMN calibration_site_map.key IS 'Well API number, lease id or meter id as reported.';
COMMENT ON COLUMN calibration_site_map.site_id IS 'Monitored site whose flares burn that gas (sites.site_id).';
COMMENT ON COLUMN calibration_site_map.notes IS 'Free-text notes.';
COMMENT ON COLUMN calibration_site_map.updated_at IS 'When the row was last upserted.';

COMMENT ON COLUMN calibration_measurements.site_id IS 'Site (sites.site_id).';
COMMENT ON COLUMN calibration_measurements.period_start IS 'First day of the period (included).';
COMMENT ON COLUMN calibration_measurements.period_end IS 'Last day of the period (included).';
COMMENT ON COLUMN calibration_measurements.volume_kscm IS 'Volume flared over the whole period, thousand m3 (normalised from volume_reported).';
COMMENT ON COLUMN calibration_measurements.volume_reported IS 'Volume as received, in unit_reported.';
COMMENT ON COLUMN calibration_measurements.unit_reported IS 'Unit as received (e.g. Mcf, kscm, kscm/d, m3).';
COMMENT ON COLUMN calibration_measurements.source IS 'Who measured or reported it: simulated-meter, NDIC, NMOCD, TXRRC or a user label.';
COMMENT ON COLUMN calibration_measurements.source_key IS 'Meter id, api:<API> or lease:<id>; '''' when none.';
COMMENT ON COLUMN calibration_measurements.operator IS 'Operator as reported.';
COMMENT ON COLUMN calibration_measurements.imported_from IS 'File it was imported from (s3://bucket/key or a path).';
COMMENT ON COLUMN calibration_measurements.import_batch IS 'sha256 of the imported file''s bytes.';
COMMENT ON COLUMN calibration_measurements.loaded_at IS 'When the row was loaded.';

COMMENT ON COLUMN calibration_measurement_versions.source IS 'As calibration_measurements.source.';
COMMENT ON COLUMN calibration_measurement_versions.source_key IS 'As calibration_measurements.source_key.';
COMMENT ON COLUMN calibration_measurement_versions.site_id IS 'Site (sites.site_id).';
COMMENT ON COLUMN calibration_measurement_versions.period_start IS 'First day of the period (included).';
COMMENT ON COLUMN calibration_measurement_versions.period_end IS 'Last day of the period (included).';
COMMENT ON COLUMN calibration_measurement_versions.report_version IS 'Report version (run YYYYMMDDhhmmss, or a date); '''' = unknown.';
COMMENT ON COLUMN calibration_measurement_versions.volume_kscm IS 'Volume this version gave for the whole period, thousand m3.';
COMMENT ON COLUMN calibration_measurement_versions.volume_reported IS 'Volume as received, in unit_reported.';
COMMENT ON COLUMN calibration_measurement_versions.unit_reported IS 'Unit as received.';
COMMENT ON COLUMN calibration_measurement_versions.operator IS 'Operator as reported.';
COMMENT ON COLUMN calibration_measurement_versions.imported_from IS 'File it was read from.';
COMMENT ON COLUMN calibration_measurement_versions.import_batch IS 'sha256 of that file''s bytes.';
COMMENT ON COLUMN calibration_measurement_versions.loaded_at IS 'When it was read.';

COMMENT ON COLUMN calibration_quarantine.id IS 'Row id.';
COMMENT ON COLUMN calibration_quarantine.imported_from IS 'File the line came from.';
COMMENT ON COLUMN calibration_quarantine.import_batch IS 'sha256 of that file''s bytes.';
COMMENT ON COLUMN calibration_quarantine.row_number IS 'Data line: 1 = the first line after the header.';
COMMENT ON COLUMN calibration_quarantine.raw IS 'The line as read (column -> text).';
COMMENT ON COLUMN calibration_quarantine.kind IS 'Reason category, e.g. negative volume, unknown unit.';
COMMENT ON COLUMN calibration_quarantine.reason IS 'Specific reason, e.g. negative volume -5.0.';
COMMENT ON COLUMN calibration_quarantine.quarantined_at IS 'When it was quarantined.';
COMMENT ON COLUMN calibration_quarantine.source IS 'Regulator or meter source of the line, when readable.';
COMMENT ON COLUMN calibration_quarantine.operator IS 'Operator of the line, when readable.';
COMMENT ON COLUMN calibration_quarantine.volume_kscm IS 'Volume the line would have added, thousand m3; NULL when the volume or unit cannot be read.';

COMMENT ON TABLE calibration_imports IS 'Every calibration file content imported (one row per content and location), so the scheduled import skips what it has read.';
COMMENT ON COLUMN calibration_imports.import_batch IS 'sha256 of the file''s bytes.';
COMMENT ON COLUMN calibration_imports.imported_from IS 'Where it was read (s3://bucket/key or a path).';
COMMENT ON COLUMN calibration_imports.etag IS 'S3 ETag of the object when read from S3.';
COMMENT ON COLUMN calibration_imports.file_format IS 'native or reported.';
COMMENT ON COLUMN calibration_imports.n_rows IS 'Data lines read.';
COMMENT ON COLUMN calibration_imports.n_accepted_rows IS 'Lines accepted.';
COMMENT ON COLUMN calibration_imports.n_quarantined IS 'Lines quarantined (calibration_quarantine).';
COMMENT ON COLUMN calibration_imports.summary IS 'What the import returned (counts by outcome and reason, quarantined volume).';
COMMENT ON COLUMN calibration_imports.first_imported_at IS 'First import of this content from here.';
COMMENT ON COLUMN calibration_imports.last_imported_at IS 'Last import of it.';

COMMENT ON VIEW v_calibration_site_periods IS 'Measurements per site and period, all sources and keys added up (filter calibration_measurements by source first when sources overlap).';
COMMENT ON COLUMN v_calibration_site_periods.site_id IS 'Site (sites.site_id).';
COMMENT ON COLUMN v_calibration_site_periods.period_start IS 'First day of the period (included).';
COMMENT ON COLUMN v_calibration_site_periods.period_end IS 'Last day of the period (included).';
COMMENT ON COLUMN v_calibration_site_periods.volume_kscm IS 'Volume over the period, thousand m3.';
COMMENT ON COLUMN v_calibration_site_periods.volume_kscm_d IS 'Mean daily volume over the period, thousand m3/day.';
COMMENT ON COLUMN v_calibration_site_periods.n_records IS 'Measurements added up.';
COMMENT ON COLUMN v_calibration_site_periods.sources IS 'Their sources.';

COMMENT ON COLUMN v_calibration_quarantine_summary.imported_from IS 'File.';
COMMENT ON COLUMN v_calibration_quarantine_summary.import_batch IS 'sha256 of the file''s bytes.';
COMMENT ON COLUMN v_calibration_quarantine_summary.source IS 'Source of the lines ('''' when unreadable).';
COMMENT ON COLUMN v_calibration_quarantine_summary.operator IS 'Operator of the lines ('''' when unreadable).';
COMMENT ON COLUMN v_calibration_quarantine_summary.kind IS 'Reason category.';
COMMENT ON COLUMN v_calibration_quarantine_summary.n_rows IS 'Quarantined lines.';
COMMENT ON COLUMN v_calibration_quarantine_summary.n_rows_without_volume IS 'Of those, lines whose volume could not be read.';
COMMENT ON COLUMN v_calibration_quarantine_summary.volume_kscm IS 'Volume of the lines, thousand m3.';
COMMENT ON COLUMN v_calibration_quarantine_summary.share_of_file_volume IS 'Share of the file''s readable volume, 0..1.';

-- ------------------------------------------------------------------ analytics (migration 007)
COMMENT ON COLUMN emissions_monthly_estimate.group_level IS 'site, field, operator or country.';
COMMENT ON COLUMN emissions_monthly_estimate.group_value IS 'The site_id, field, operator or country.';
COMMENT ON COLUMN emissions_monthly_estimate.month IS 'First day of the month.';
COMMENT ON COLUMN emissions_monthly_estimate.n_sites IS 'Sites in the group.';
COMMENT ON COLUMN emissions_monthly_estimate.calendar_site_days IS 'Calendar days of the month x sites, each site counted from its first scene.';
COMMENT ON COLUMN emissions_monthly_estimate.observed_site_days IS 'Site-days a sensor observed usably.';
COMMENT ON COLUMN emissions_monthly_estimate.unprocessed_site_days IS 'Site-days whose processing is pending or failed.';
COMMENT ON COLUMN emissions_monthly_estimate.completeness IS 'observed_site_days / calendar_site_days, 0..1.';
COMMENT ON COLUMN emissions_monthly_estimate.data_through IS 'Last day of the month with any site-day row (the month may be open).';
COMMENT ON COLUMN emissions_monthly_estimate.volume_observed_kscm IS 'Volume of the observed days, thousand m3.';
COMMENT ON COLUMN emissions_monthly_estimate.volume_estimate_kscm IS 'Whole-month volume, unobserved days filled from neighbouring observed days, thousand m3; NULL without an observed day.';
COMMENT ON COLUMN emissions_monthly_estimate.volume_lo_kscm IS 'Lower bound of the 90 % interval of volume_estimate_kscm, thousand m3.';
COMMENT ON COLUMN emissions_monthly_estimate.volume_hi_kscm IS 'Upper bound of the 90 % interval of volume_estimate_kscm, thousand m3.';
COMMENT ON COLUMN emissions_monthly_estimate.co2_t IS 'CO2 of volume_estimate_kscm at the default combustion efficiency (0.98), t.';
COMMENT ON COLUMN emissions_monthly_estimate.co2e_t IS 'CO2e of volume_estimate_kscm at the default combustion efficiency, t.';
COMMENT ON COLUMN emissions_monthly_estimate.co2e_lo_t IS 'CO2e of volume_lo_kscm (default efficiency), t.';
COMMENT ON COLUMN emissions_monthly_estimate.co2e_hi_t IS 'CO2e of volume_hi_kscm (default efficiency), t.';
COMMENT ON COLUMN emissions_monthly_estimate.co2e_measured_ce_t IS 'CO2e of volume_estimate_kscm at the measured combustion efficiency (0.91, Plant et al. 2022), t.';
COMMENT ON COLUMN emissions_monthly_estimate.co2e_measured_ce_lo_t IS 'CO2e of volume_lo_kscm at the measured efficiency, t.';
COMMENT ON COLUMN emissions_monthly_estimate.co2e_measured_ce_hi_t IS 'CO2e of volume_hi_kscm at the measured efficiency, t.';
COMMENT ON COLUMN emissions_monthly_estimate.scenario_sources IS 'Factors and sources of the two CO2e scenarios (default, measured_ce).';
COMMENT ON COLUMN emissions_monthly_estimate.method IS 'How the estimate and its interval were computed.';
COMMENT ON COLUMN emissions_monthly_estimate.refreshed_at IS 'When the analytics last wrote the row.';

COMMENT ON TABLE kpi_monthly IS 'Monthly KPIs per site, field, operator and country (analytics.kpis); a group''s counts are the sum of its sites''.';
COMMENT ON COLUMN kpi_monthly.group_level IS 'site, field, operator or country.';
COMMENT ON COLUMN kpi_monthly.group_value IS 'The site_id, field, operator or country.';
COMMENT ON COLUMN kpi_monthly.month IS 'First day of the month.';
COMMENT ON COLUMN kpi_monthly.n_sites IS 'Sites in the group.';
COMMENT ON COLUMN kpi_monthly.observed_days IS 'Site-days of the month a sensor observed usably.';
COMMENT ON COLUMN kpi_monthly.flaring_days IS 'Observed site-days with a flare.';
COMMENT ON COLUMN kpi_monthly.flaring_days_last_30 IS 'Site-days with a flare among the last 30 days of the month.';
COMMENT ON COLUMN kpi_monthly.persistent_sites IS 'Sites flaring on at least half their observed days of those 30.';
COMMENT ON COLUMN kpi_monthly.new_flare_sites IS 'Sites with a new_flare_site alert in the month (a flare after a quiet history).';
COMMENT ON COLUMN kpi_monthly.dark_sites IS 'Sites that flared last month and were observed this month without a flare.';
COMMENT ON COLUMN kpi_monthly.volume_estimate_kscm IS 'Gap-aware whole-month volume (emissions_monthly_estimate), thousand m3.';
COMMENT ON COLUMN kpi_monthly.co2_t IS 'CO2 of that volume, t.';
COMMENT ON COLUMN kpi_monthly.co2e_t IS 'CO2e at the default combustion efficiency, t.';
COMMENT ON COLUMN kpi_monthly.co2e_measured_ce_t IS 'CO2e at the measured combustion efficiency, t.';
COMMENT ON COLUMN kpi_monthly.refreshed_at IS 'When the analytics last wrote the row.';

COMMENT ON TABLE alerts IS 'Alerts of the analytics (rules and anomalies), one per kind, site, start day and metric; status open -> acknowledged -> resolved (`flarewatch ack`).';
COMMENT ON COLUMN alerts.alert_id IS 'Alert id (`flarewatch ack ALERT_ID`).';
COMMENT ON COLUMN alerts.kind IS 'threshold, consecutive_flaring, new_flare_site, anomaly_robust, anomaly_multivariate or reported_gap.';
COMMENT ON COLUMN alerts.severity IS 'info, warning or critical.';
COMMENT ON COLUMN alerts.site_id IS 'Site (sites.site_id).';
COMMENT ON COLUMN alerts.period_start IS 'First day the alert covers.';
COMMENT ON COLUMN alerts.period_end IS 'Last day the alert covers.';
COMMENT ON COLUMN alerts.metric IS 'What value measures: volume_kscm_d (thousand m3/day), flaring_days_in_a_row, n_flares, outlier_score, reported_vs_estimate:<source> (thousand m3).';
COMMENT ON COLUMN alerts.value IS 'The observed value, in the unit of metric.';
COMMENT ON COLUMN alerts.baseline IS 'What it was compared with (median, estimate), in the unit of metric; NULL when none.';
COMMENT ON COLUMN alerts.threshold IS 'The limit it crossed (a volume, a day count or a robust z), NULL when none.';
COMMENT ON COLUMN alerts.message IS 'Human-readable explanation.';
COMMENT ON COLUMN alerts.details IS 'Details of the rule (direction, score, source, flag, ...).';
COMMENT ON COLUMN alerts.status IS 'open, acknowledged or resolved.';
COMMENT ON COLUMN alerts.created_at IS 'When the alert was first raised.';
COMMENT ON COLUMN alerts.updated_at IS 'When it last changed.';
COMMENT ON COLUMN alerts.acknowledged_by IS 'Who acknowledged it.';
COMMENT ON COLUMN alerts.acknowledged_at IS 'When it was acknowledged.';
COMMENT ON COLUMN alerts.resolved_by IS 'Who resolved it (flarewatch when its condition no longer holds).';
COMMENT ON COLUMN alerts.resolved_at IS 'When it was resolved.';

COMMENT ON COLUMN reconciliation_monthly.group_level IS 'site or operator.';
COMMENT ON COLUMN reconciliation_monthly.group_value IS 'The site_id or operator.';
COMMENT ON COLUMN reconciliation_monthly.month IS 'First day of the month.';
COMMENT ON COLUMN reconciliation_monthly.source IS 'Reporting source (calibration_measurements.source).';
COMMENT ON COLUMN reconciliation_monthly.reported_kscm IS 'Reported or metered volume prorated to the month by days, thousand m3.';
COMMENT ON COLUMN reconciliation_monthly.reported_days IS 'Days of the month the reports cover.';
COMMENT ON COLUMN reconciliation_monthly.reported_co2_t IS 'CO2 of reported_kscm at the default combustion efficiency, t.';
COMMENT ON COLUMN reconciliation_monthly.estimate_kscm IS 'FlareWatch''s gap-aware estimate over the same days, thousand m3; NULL without an observed day.';
COMMENT ON COLUMN reconciliation_monthly.estimate_lo_kscm IS 'Lower bound of its 90 % interval, thousand m3.';
COMMENT ON COLUMN reconciliation_monthly.estimate_hi_kscm IS 'Upper bound of its 90 % interval, thousand m3.';
COMMENT ON COLUMN reconciliation_monthly.completeness IS 'Share of those days observed, 0..1.';
COMMENT ON COLUMN reconciliation_monthly.ratio IS 'estimate_kscm / reported_kscm.';
COMMENT ON COLUMN reconciliation_monthly.flag IS 'under_reported (report below the interval), over_reported (above), consistent or no_estimate.';
COMMENT ON COLUMN reconciliation_monthly.refreshed_at IS 'When the analytics last wrote the row.';

-- ------------------------------------------------------------------ views for analysts
COMMENT ON VIEW v_flares IS 'Every flare with its site, field, operator, country, emission estimate (90 % interval) and model versions.';
COMMENT ON COLUMN v_flares.site_id IS 'Site (sites.site_id).';
COMMENT ON COLUMN v_flares.site_name IS 'Site name.';
COMMENT ON COLUMN v_flares.field IS 'Field of the site.';
COMMENT ON COLUMN v_flares.operator IS 'Operator of the site.';
COMMENT ON COLUMN v_flares.country IS 'Country of the site.';
COMMENT ON COLUMN v_flares.acquisition_date IS 'Acquisition date.';
COMMENT ON COLUMN v_flares.detection_key IS 'Key of the flare within the site-day (flare_detections.detection_key).';
COMMENT ON COLUMN v_flares.sensor IS 'sentinel2 or viirs (night-only detection).';
COMMENT ON COLUMN v_flares.lat IS 'Latitude, degrees north (WGS84).';
COMMENT ON COLUMN v_flares.lon IS 'Longitude, degrees east (WGS84).';
COMMENT ON COLUMN v_flares.confidence IS 'Detector score, 0..1.';
COMMENT ON COLUMN v_flares.hot_pixels IS 'Pixels in the detection, count.';
COMMENT ON COLUMN v_flares.temperature_k IS 'B12/B11 colour temperature, K.';
COMMENT ON COLUMN v_flares.swir_frp_mw IS 'Sentinel-2 SWIR fire radiative power, MW.';
COMMENT ON COLUMN v_flares.viirs_rh_mw IS 'Matched VIIRS radiant heat, MW.';
COMMENT ON COLUMN v_flares.cloud_flag IS 'Cloud within 2 pixels.';
COMMENT ON COLUMN v_flares.volume_kscm_d IS 'Estimated flared volume, thousand m3/day.';
COMMENT ON COLUMN v_flares.rh_source IS 'Radiant heat used: viirs or s2_swir_frp.';
COMMENT ON COLUMN v_flares.co2_t IS 'CO2, t (that day).';
COMMENT ON COLUMN v_flares.co2e_t IS 'CO2e, t (that day).';
COMMENT ON COLUMN v_flares.model_version IS 'Volume model version.';
COMMENT ON COLUMN v_flares.detector_version IS 'Detector version.';
COMMENT ON COLUMN v_flares.volume_lo_kscm_d IS 'Lower bound of the 90 % interval of volume_kscm_d, thousand m3/day.';
COMMENT ON COLUMN v_flares.volume_hi_kscm_d IS 'Upper bound of the 90 % interval of volume_kscm_d, thousand m3/day.';

COMMENT ON VIEW v_site_summary IS 'Per-site totals over every day in emissions_daily (the scheduler''s own runs included); site_summary(first_day, last_day) for a date range.';
COMMENT ON COLUMN v_site_summary.site_id IS 'Site (sites.site_id).';
COMMENT ON COLUMN v_site_summary.name IS 'Site name.';
COMMENT ON COLUMN v_site_summary.field IS 'Field.';
COMMENT ON COLUMN v_site_summary.operator IS 'Operator.';
COMMENT ON COLUMN v_site_summary.country IS 'Country.';
COMMENT ON COLUMN v_site_summary.days IS 'Site-days with a row in emissions_daily (pending and failed included).';
COMMENT ON COLUMN v_site_summary.flares_seen IS 'Flares counted over those days.';
COMMENT ON COLUMN v_site_summary.volume_kscm IS 'Flared volume of the observed days, thousand m3 (rounded to 0.1).';
COMMENT ON COLUMN v_site_summary.co2_t IS 'CO2, t (rounded to 0.1).';
COMMENT ON COLUMN v_site_summary.co2e_t IS 'CO2e, t (rounded to 0.1).';
COMMENT ON COLUMN v_site_summary.first_day IS 'First day with a row.';
COMMENT ON COLUMN v_site_summary.last_day IS 'Last day with a row.';

COMMENT ON FUNCTION site_summary(date, date) IS 'Per-site summary over first_day .. last_day: days, observed_days, flares_seen, volume_kscm with its summed 90 % bounds (thousand m3), co2_t, co2e_t (t).';
