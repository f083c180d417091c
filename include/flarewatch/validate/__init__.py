"""Checks that raw inputs must pass before processing uses them (the step between ingest and process).

- ``tile``: a Sentinel-2 tile against its site (format, size budget, bands, CRS and grid, nodata,
  footprint and valid share over the AOI); ``TileRejected`` says what failed and whether the object
  goes to quarantine.
"""
