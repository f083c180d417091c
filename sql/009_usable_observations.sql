-- Migration 009: whether a Sentinel-2 scene was usable for its site (validate.usable): clear where
-- the site's flares burn (today's detections and the recent VIIRS nights), not over the tile.
ALTER TABLE scenes ADD COLUMN IF NOT EXISTS usable boolean;
ALTER TABLE scenes ADD COLUMN IF NOT EXISTS usable_fraction double precision;
COMMENT ON COLUMN scenes.usable IS 'Sentinel-2: at least half the places where the site''s flares burn are cloud-free and valid (375 m disks); NULL before processing or for VIIRS.';
COMMENT ON COLUMN scenes.usable_fraction IS 'Share of those places that are clear (of the AOI when no place is known).';
ALTER TABLE emissions_daily ADD COLUMN IF NOT EXISTS s2_usable boolean;
COMMENT ON COLUMN emissions_daily.s2_usable IS 'Sentinel-2 observed the day and was clear over the site''s flares (scenes.usable); a cloudy scene can be observed but not usable.';
