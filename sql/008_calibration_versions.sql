-- Migration 008: report versions of calibration measurements, and the quarantined volume per
-- operator and reason. Written by flarewatch.meters.importer (the calibration_import DAG);
-- statements are safe to re-run. (Numbered 008: 007 is reserved for the analytics work.)

-- The report version of the value a row holds: the file's `run` (YYYYMMDDhhmmss), else the date
-- given or found in the file name, '' when unknown (older than any version). An import applies a
-- value only when its version is the same or newer than the stored one.
ALTER TABLE calibration_measurements ADD COLUMN IF NOT EXISTS report_version text NOT NULL DEFAULT '';
COMMENT ON COLUMN calibration_measurements.report_version IS 'Report version (run YYYYMMDDhhmmss) of the value held; an older report never replaces it. '''' = unknown.';

-- Every version of every measurement an import read, applied or not (an older release imported
-- after a newer one, or an older `run` of a line resent in the same file, is recorded here and
-- not applied to calibration_measurements).
CREATE TABLE IF NOT EXISTS calibration_measurement_versions (
    source           text NOT NULL,
    source_key       text NOT NULL,
    site_id          text NOT NULL REFERENCES sites(site_id),
    period_start     date NOT NULL,
    period_end       date NOT NULL,
    report_version   text NOT NULL,
    volume_kscm      double precision NOT NULL,
    volume_reported  double precision NOT NULL,
    unit_reported    text NOT NULL,
    operator         text,
    imported_from    text NOT NULL,
    import_batch     text NOT NULL,
    loaded_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, source_key, site_id, period_start, period_end, report_version)
);
COMMENT ON TABLE calibration_measurement_versions IS 'Each report version of a calibration measurement seen on import; calibration_measurements holds the newest.';
INSERT INTO calibration_measurement_versions (source, source_key, site_id, period_start, period_end, report_version,
    volume_kscm, volume_reported, unit_reported, operator, imported_from, import_batch, loaded_at)
SELECT source, source_key, site_id, period_start, period_end, report_version, volume_kscm, volume_reported,
       unit_reported, operator, imported_from, import_batch, loaded_at
FROM calibration_measurements
ON CONFLICT DO NOTHING;

-- What a quarantined line would have contributed: its source (regulator or meter source),
-- operator and volume (thousand m3; null when the volume or unit cannot be read).
ALTER TABLE calibration_quarantine ADD COLUMN IF NOT EXISTS source text;
ALTER TABLE calibration_quarantine ADD COLUMN IF NOT EXISTS operator text;
ALTER TABLE calibration_quarantine ADD COLUMN IF NOT EXISTS volume_kscm double precision;
UPDATE calibration_quarantine SET operator = nullif(btrim(raw->>'operator'), '')
WHERE operator IS NULL AND nullif(btrim(raw->>'operator'), '') IS NOT NULL;
UPDATE calibration_quarantine SET volume_kscm = (raw->>'flared')::double precision * 0.028316846592  -- Mcf
WHERE volume_kscm IS NULL AND raw ? 'flared' AND raw ? 'state'
  AND btrim(raw->>'flared') ~ '^[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?$';

-- Quarantined lines and volume per file, source, operator and reason, with the share of the
-- file's readable volume (from the import summary) they hold.
CREATE OR REPLACE VIEW v_calibration_quarantine_summary AS
SELECT q.imported_from,
       q.import_batch,
       coalesce(q.source, '') AS source,
       coalesce(q.operator, '') AS operator,
       q.kind,
       count(*) AS n_rows,
       count(*) FILTER (WHERE q.volume_kscm IS NULL) AS n_rows_without_volume,
       coalesce(sum(q.volume_kscm), 0) AS volume_kscm,
       coalesce(sum(q.volume_kscm), 0)
           / nullif((i.summary->'quarantined_volume'->>'file_volume_kscm')::double precision, 0) AS share_of_file_volume
FROM calibration_quarantine q
LEFT JOIN calibration_imports i ON i.import_batch = q.import_batch AND i.imported_from = q.imported_from
GROUP BY q.imported_from, q.import_batch, coalesce(q.source, ''), coalesce(q.operator, ''), q.kind,
         i.summary->'quarantined_volume'->>'file_volume_kscm';
COMMENT ON VIEW v_calibration_quarantine_summary IS 'Quarantined calibration lines and volume (thousand m3) per file, source, operator and reason.';
