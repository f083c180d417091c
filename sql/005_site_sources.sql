-- Migration 005: per-site data-source overrides and the outcome of each ingested scene.
-- Written by flarewatch.db (upsert_sites, upsert_scene); statements are safe to re-run.

-- Provider per sensor for one site; NULL/'' = the deployment default (FLAREWATCH_S2_SOURCE,
-- FLAREWATCH_VIIRS_SOURCE). Values are validated by flarewatch.sites.Site (config.S2_SOURCES,
-- config.VIIRS_SOURCES) so that adding a provider needs no migration.
ALTER TABLE sites ADD COLUMN IF NOT EXISTS s2_source text;
ALTER TABLE sites ADD COLUMN IF NOT EXISTS viirs_source text;
COMMENT ON COLUMN sites.s2_source IS 'Sentinel-2 provider for this site (demo, earth-search, sentinel-hub); NULL = deployment default.';
COMMENT ON COLUMN sites.viirs_source IS 'VIIRS provider for this site (demo, firms, nightfire); NULL = deployment default.';

-- What the provider had for the site-day, next to status (ingested / no_data / failed):
-- ok, partial (tile with nodata over part of the AOI, or one of two VNF files missing),
-- no_scene (no acquisition), full_cloud (scene fully clouded over the AOI), nodata (no valid
-- pixels / nightly file not published), no_detections (VIIRS observed nothing in the AOI),
-- error (the fetch failed; detail has the message).
ALTER TABLE scenes ADD COLUMN IF NOT EXISTS outcome text;
COMMENT ON COLUMN scenes.outcome IS 'Ingest outcome: ok, partial, no_scene, full_cloud, nodata, no_detections, error (detail says more).';
