-- FlareWatch results schema, migration 014: indexes that keep the rollups and the analytics reads
-- proportional to the days they refresh, not to the history kept (issue 14, `make bench-scale`).
-- Measured with EXPLAIN ANALYZE on 600 sites x 1 year (benchmarks/bench_scale.py, README "Scale curve"):
-- without them the refresh of one week scanned every flare_emissions and site_day_processing row, the
-- monthly rollup every emissions_daily row, the analytics' daily read most of emissions_daily.
-- The queries (sql/queries/rollup_daily.sql, rollup_monthly.sql) restrict each table to the days or
-- months being refreshed so that these indexes apply.

-- rollup_daily: the refreshed days' emissions (the key starts with site_id, so a day's rows were not reachable)
CREATE INDEX IF NOT EXISTS flare_emissions_date_idx ON flare_emissions (acquisition_date);
-- rollup_daily: the refreshed days' processing state (same reason)
CREATE INDEX IF NOT EXISTS site_day_processing_date_idx ON site_day_processing (acquisition_date);
-- rollup_monthly (one month's days) and the analytics' daily series (a date range)
CREATE INDEX IF NOT EXISTS emissions_daily_day_idx ON emissions_daily (day);
