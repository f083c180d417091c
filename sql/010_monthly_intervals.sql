-- Migration 010: emissions_monthly (observed-day sums) carries the 90 % interval of its volume, the
-- sum of its days' bounds (each the sum of its flares' bounds: errors taken as fully correlated).
-- The whole-month, gap-aware estimate and its interval are in emissions_monthly_estimate.
ALTER TABLE emissions_monthly ADD COLUMN IF NOT EXISTS volume_lo_kscm double precision;
ALTER TABLE emissions_monthly ADD COLUMN IF NOT EXISTS volume_hi_kscm double precision;
COMMENT ON COLUMN emissions_monthly.volume_lo_kscm IS '90 % interval of volume_kscm (observed days): sum of the daily bounds, conservative.';
