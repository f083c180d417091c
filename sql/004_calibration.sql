-- Migration 004: calibration measurements (metered or state-reported flared volumes per site and
-- period), the quarantine of rejected import rows, the well/lease -> site mapping, and the
-- import log. Written by flarewatch.calibration (the calibration_import DAG); statements are
-- safe to re-run.

-- Reported wells / leases / meters -> monitored site. source = the state code of a
-- reported-flares file (ND, NM, TX) or the source label of a native file; key_type = api,
-- lease, pending_lease_id, pending_api, meter, ...
CREATE TABLE IF NOT EXISTS calibration_site_map (
    source      text NOT NULL,
    key_type    text NOT NULL,
    key         text NOT NULL,
    site_id     text NOT NULL REFERENCES sites(site_id),
    notes       text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, key_type, key)
);
COMMENT ON TABLE calibration_site_map IS 'Maps reported wells/leases (source, key_type, key) to the monitored site whose flares burn their gas.';

-- One row per measured volume: the total flared over [period_start, period_end] (both days
-- included) at one site by one meter / well / lease, normalised to thousand standard m3.
CREATE TABLE IF NOT EXISTS calibration_measurements (
    site_id          text NOT NULL REFERENCES sites(site_id),
    period_start     date NOT NULL,
    period_end       date NOT NULL,
    volume_kscm      double precision NOT NULL CHECK (volume_kscm >= 0),
    volume_reported  double precision NOT NULL,
    unit_reported    text NOT NULL,
    source           text NOT NULL,                -- 'simulated-meter', 'NDIC', 'NMOCD', 'TXRRC', a user label
    source_key       text NOT NULL DEFAULT '',     -- meter id, 'api:<API>', 'lease:<id>'; '' when none
    operator         text,
    imported_from    text NOT NULL,                -- s3://bucket/key or a path
    import_batch     text NOT NULL,                -- sha256 of the file's bytes
    loaded_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, source_key, site_id, period_start, period_end),
    CHECK (period_end >= period_start)
);
CREATE INDEX IF NOT EXISTS calibration_measurements_site_idx
    ON calibration_measurements (site_id, period_start);
COMMENT ON TABLE calibration_measurements IS 'Metered or reported flared volume per site and inclusive period, thousand standard m3 over the whole period.';

-- Rows an import rejected, with the reason; one row per (file content, data line).
CREATE TABLE IF NOT EXISTS calibration_quarantine (
    id              bigserial PRIMARY KEY,
    imported_from   text NOT NULL,
    import_batch    text NOT NULL,
    row_number      integer NOT NULL,              -- data line: 1 = the first line after the header
    raw             jsonb NOT NULL,                -- the row as read (column -> text)
    kind            text NOT NULL,                 -- reason category, e.g. 'negative volume'
    reason          text NOT NULL,                 -- specific, e.g. 'negative volume -5.0'
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (import_batch, row_number)
);
COMMENT ON TABLE calibration_quarantine IS 'Calibration rows rejected on import, with the reason; nothing is dropped silently.';

-- Every imported file content (batch): lets the scheduled import skip what it has already read.
CREATE TABLE IF NOT EXISTS calibration_imports (
    import_batch    text NOT NULL,
    imported_from   text NOT NULL,
    etag            text,
    file_format     text NOT NULL,
    n_rows          integer NOT NULL,
    n_accepted_rows integer NOT NULL,
    n_quarantined   integer NOT NULL,
    summary         jsonb NOT NULL DEFAULT '{}'::jsonb,  -- what import_calibration returned
    first_imported_at timestamptz NOT NULL DEFAULT now(),
    last_imported_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (import_batch, imported_from)
);

-- Measurements per site and period, all sources and keys added up (several wells of one site,
-- or a meter and a state report of the same period: filter calibration_measurements by source
-- first when sources overlap).
CREATE OR REPLACE VIEW v_calibration_site_periods AS
SELECT site_id,
       period_start,
       period_end,
       sum(volume_kscm) AS volume_kscm,
       sum(volume_kscm) / (period_end - period_start + 1) AS volume_kscm_d,
       count(*) AS n_records,
       array_agg(DISTINCT source ORDER BY source) AS sources
FROM calibration_measurements
GROUP BY site_id, period_start, period_end;
