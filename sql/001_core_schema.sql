-- FlareWatch results schema, migration 001: sites, scenes, detections, emissions, rollups.
-- Applied once by `flarewatch migrate` (tracked in schema_migrations); statements are also
-- written to be safe to re-run.

CREATE TABLE IF NOT EXISTS sites (
    site_id      text PRIMARY KEY,
    name         text NOT NULL,
    field        text NOT NULL,
    operator     text NOT NULL,
    country      text NOT NULL,
    lat          double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon          double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    aoi_km       double precision NOT NULL CHECK (aoi_km > 0),
    land_cover   text,
    notes        text,
    active       boolean NOT NULL DEFAULT true,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE sites IS 'Monitored oil and gas sites: an AOI of aoi_km x aoi_km centred on lat/lon (WGS84).';

-- One row per (site, acquisition date, sensor, source): what ingest fetched and what processing did.
CREATE TABLE IF NOT EXISTS scenes (
    site_id          text NOT NULL REFERENCES sites(site_id),
    acquisition_date date NOT NULL,
    sensor           text NOT NULL CHECK (sensor IN ('sentinel2', 'viirs')),
    source           text NOT NULL,
    status           text NOT NULL CHECK (status IN ('ingested', 'no_data', 'processed', 'failed')),
    s3_key           text,
    acquired_at      timestamptz,
    crs_epsg         integer,
    width_px         integer,
    height_px        integer,
    cloud_fraction   double precision,
    valid_fraction   double precision,
    n_records        integer,
    detail           text,
    ingested_at      timestamptz NOT NULL DEFAULT now(),
    processed_at     timestamptz,
    PRIMARY KEY (site_id, acquisition_date, sensor, source)
);
CREATE INDEX IF NOT EXISTS scenes_date_idx ON scenes (acquisition_date);
COMMENT ON TABLE scenes IS 'Ingested tiles (Sentinel-2) and night detection files (VIIRS) per site and acquisition date.';

-- One row per detected flare per site-day. sensor = sentinel2: found in the S2 tile (peak pixel
-- is the natural key); sensor = viirs: a flare-like VIIRS detection with no S2 counterpart
-- (e.g. S2 clouded), keyed by its rounded position.
CREATE TABLE IF NOT EXISTS flare_detections (
    site_id           text NOT NULL REFERENCES sites(site_id),
    acquisition_date  date NOT NULL,
    detection_key     text NOT NULL,
    sensor            text NOT NULL CHECK (sensor IN ('sentinel2', 'viirs')),
    detector          text NOT NULL,
    detector_version  text NOT NULL,
    lat               double precision NOT NULL,
    lon               double precision NOT NULL,
    pixel_row         double precision,
    pixel_col         double precision,
    bbox_px           integer[],
    confidence        double precision,
    hot_pixels        integer,
    hot_area_m2       double precision,
    b12_excess_sum    double precision,
    b12_excess_peak   double precision,
    b11_excess_sum    double precision,
    b11_excess_peak   double precision,
    b12_b11_ratio     double precision,
    temperature_k     double precision,
    swir_frp_mw       double precision,
    cloud_flag        boolean,
    saturated         boolean,
    viirs_n           integer,
    viirs_rh_mw       double precision,
    viirs_temp_k      double precision,
    viirs_area_m2     double precision,
    viirs_distance_m  double precision,
    features          jsonb NOT NULL DEFAULT '{}'::jsonb,
    processed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, acquisition_date, detection_key)
);
CREATE INDEX IF NOT EXISTS flare_detections_date_idx ON flare_detections (acquisition_date);

-- Volume and CO2 estimate per detection (1:1 with flare_detections).
CREATE TABLE IF NOT EXISTS flare_emissions (
    site_id            text NOT NULL,
    acquisition_date   date NOT NULL,
    detection_key      text NOT NULL,
    volume_kscm_d      double precision NOT NULL CHECK (volume_kscm_d >= 0),
    volume_method      text NOT NULL,
    radiant_heat_mw    double precision,
    rh_source          text NOT NULL,
    co2_t              double precision NOT NULL,
    ch4_slip_t         double precision NOT NULL,
    co2e_t             double precision NOT NULL,
    volume_lo_kscm_d   double precision,
    volume_hi_kscm_d   double precision,
    model_version      text NOT NULL,
    emission_factors   jsonb NOT NULL DEFAULT '{}'::jsonb,
    processed_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, acquisition_date, detection_key),
    FOREIGN KEY (site_id, acquisition_date, detection_key)
        REFERENCES flare_detections (site_id, acquisition_date, detection_key) ON DELETE CASCADE
);

-- Site x day totals (environmental staff); refreshed by emissions_rollup for the affected days.
CREATE TABLE IF NOT EXISTS emissions_daily (
    site_id           text NOT NULL REFERENCES sites(site_id),
    day               date NOT NULL,
    n_flares          integer NOT NULL,
    n_flares_s2       integer NOT NULL,
    n_flares_viirs_only integer NOT NULL,
    volume_kscm       double precision NOT NULL,
    co2_t             double precision NOT NULL,
    co2e_t            double precision NOT NULL,
    s2_observed       boolean NOT NULL,
    viirs_observed    boolean NOT NULL,
    cloud_fraction    double precision,
    refreshed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site_id, day)
);

-- Field / operator / country x month totals; one table, one grouping level per row.
CREATE TABLE IF NOT EXISTS emissions_monthly (
    group_level       text NOT NULL CHECK (group_level IN ('field', 'operator', 'country')),
    group_value       text NOT NULL,
    month             date NOT NULL,  -- first day of the month
    n_sites           integer NOT NULL,
    site_days         integer NOT NULL,
    site_days_observed integer NOT NULL,
    volume_kscm       double precision NOT NULL,
    co2_t             double precision NOT NULL,
    co2e_t            double precision NOT NULL,
    refreshed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_level, group_value, month)
);
