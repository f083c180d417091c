-- Migration 006: what processing made of each site-day, quarantined inputs, and rollups that count
-- unprocessed site-days as missing (never as zero). Statements are safe to re-run.

-- A raw object that failed validation (validate.tile: malformed, foreign, or not covering the
-- site) is 'quarantined': outcome says why (unreadable, too_large, wrong_crs, nodata, ...), detail
-- says what was found and expected; a malformed one is copied under quarantine/ in rawdata.
ALTER TABLE scenes DROP CONSTRAINT IF EXISTS scenes_status_check;
ALTER TABLE scenes ADD CONSTRAINT scenes_status_check
    CHECK (status IN ('ingested', 'no_data', 'processed', 'failed', 'quarantined'));
COMMENT ON COLUMN scenes.status IS 'ingested (waiting for processing), processed, no_data (nothing to fetch), failed (the fetch failed), quarantined (the object failed validation; outcome and detail say why).';

-- One row per site-day that processing has tried: the outcome of the last success (what it
-- wrote: counts, totals, versions, the result object) and of the failures since.
-- state: processed (last attempt succeeded), retrying (failed fewer than max_process_attempts
-- times since the last success, ingest or re-queue), failed (gave up: the site-day leaves the
-- pending set until `flarewatch requeue` or a new ingest).
CREATE TABLE IF NOT EXISTS site_day_processing (
    site_id               text NOT NULL REFERENCES sites(site_id),
    acquisition_date      date NOT NULL,
    state                 text NOT NULL CHECK (state IN ('processed', 'retrying', 'failed')),
    attempts              integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error            text,
    last_attempt_at       timestamptz,
    processed_at          timestamptz,
    n_detections          integer,
    n_sentinel2           integer,
    n_viirs_only          integer,
    volume_kscm_d         double precision,
    co2_t                 double precision,
    co2e_t                double precision,
    detector_version      text,
    volume_model_version  text,
    sentinel2_outcome     text,
    viirs_outcome         text,
    result_key            text,
    requeued_at           timestamptz,
    requeued_by           text,
    PRIMARY KEY (site_id, acquisition_date)
);
CREATE INDEX IF NOT EXISTS site_day_processing_state_idx ON site_day_processing (state) WHERE state <> 'processed';
COMMENT ON TABLE site_day_processing IS 'Per site-day: what the last successful processing wrote (counts, totals, model versions, result object) and failed attempts since (state processed / retrying / failed).';

-- emissions_daily: status says whether the site-day's numbers exist. 'pending' (not processed
-- yet) and 'failed' (processing gave up) rows have NULL counts and totals and are not observed:
-- missing, never zero. A processed day that neither sensor observed has NULL totals as well.
ALTER TABLE emissions_daily ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'processed';
ALTER TABLE emissions_daily DROP CONSTRAINT IF EXISTS emissions_daily_status_check;
ALTER TABLE emissions_daily ADD CONSTRAINT emissions_daily_status_check
    CHECK (status IN ('processed', 'pending', 'failed'));
ALTER TABLE emissions_daily ALTER COLUMN n_flares DROP NOT NULL;
ALTER TABLE emissions_daily ALTER COLUMN n_flares_s2 DROP NOT NULL;
ALTER TABLE emissions_daily ALTER COLUMN n_flares_viirs_only DROP NOT NULL;
ALTER TABLE emissions_daily ALTER COLUMN volume_kscm DROP NOT NULL;
ALTER TABLE emissions_daily ALTER COLUMN co2_t DROP NOT NULL;
ALTER TABLE emissions_daily ALTER COLUMN co2e_t DROP NOT NULL;
COMMENT ON COLUMN emissions_daily.status IS 'processed: the numbers are the pipeline''s; pending / failed: the site-day has scenes but no processed result (numbers NULL, not observed).';

ALTER TABLE emissions_monthly ADD COLUMN IF NOT EXISTS site_days_unprocessed integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN emissions_monthly.site_days_unprocessed IS 'Site-days with scenes whose processing is pending or failed: missing from the totals, not zero.';
