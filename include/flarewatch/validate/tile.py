"""Validate a Sentinel-2 tile against its site before processing uses it.

A tile that fails is never processed: ``TileRejected`` carries a reason code (stored in
``scenes.outcome``), a message naming what was found and what was expected (``scenes.detail``) and
whether the object is malformed or foreign (``quarantine = True``: ``process.site_day`` copies it
under ``quarantine/`` in ``rawdata``) or a well-formed tile that does not observe the site (no or
too few valid pixels over the AOI). Either way the day is not observed by Sentinel-2; it never
becomes an observed day with zero flares.

Checks, in order (the header ones before a single pixel is decoded, so a 20000 x 20000 "size bomb"
costs a header read, not gigabytes):

| reason | quarantine | check |
|---|---|---|
| ``unreadable`` | yes | GeoTIFF bytes that GDAL opens and reads (truncated, non-TIFF, other formats) |
| ``too_large`` | yes | width x height <= ``TileLimits.max_pixels`` |
| ``wrong_bands`` | yes | three bands (B8A, B11, B12) |
| ``wrong_dtype`` | yes | uint16 digital numbers (a float tile, NaNs and all, is not a Sentinel-2 product) |
| ``wrong_crs`` | yes | the site's UTM zone (``Site.utm_epsg``) |
| ``wrong_grid`` | yes | north-up 20 m pixels |
| ``no_nodata`` | yes | a nodata value of 0 or an internal mask (else nodata and dark pixels are one) |
| ``outside_site`` | yes | the footprint covers >= ``min_site_coverage`` of the site's AOI |
| ``bad_metadata`` | yes | acquisition time, sun zenith, spacecraft, reflectance scale (``tiles.decode_tile``) |
| ``nodata`` | no | some valid pixel over the AOI |
| ``low_coverage`` | no | valid share of the AOI >= ``min_valid_fraction`` |
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from flarewatch.config import S2_BANDS, S2_NODATA_DN, S2_PIXEL_M, TileLimits
from flarewatch.sites import Site
from flarewatch.tiles import Tile, decode_tile, default_size_px, gdal_message, site_grid

REASONS = ("unreadable", "too_large", "wrong_bands", "wrong_dtype", "wrong_crs", "wrong_grid", "no_nodata",
           "outside_site", "bad_metadata", "nodata", "low_coverage")
NOT_QUARANTINED = ("nodata", "low_coverage")


class TileRejected(ValueError):
    """A tile that processing must not use: ``reason`` (one of ``REASONS``), ``detail`` (why),
    ``quarantine`` (malformed or foreign: keep a copy aside for inspection)."""

    def __init__(self, reason: str, detail: str):
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        self.reason, self.detail = reason, detail
        self.quarantine = reason not in NOT_QUARANTINED
        super().__init__(f"tile rejected ({reason}): {detail}")


@dataclass(frozen=True)
class TileCheck:
    """A tile that passed: the decoded ``tile`` and the share of the site's AOI with valid data."""

    tile: Tile
    valid_fraction: float


def _aoi_bounds(site: Site) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of the site's AOI on its 20 m UTM grid."""
    grid, n = site_grid(site), default_size_px(site)
    left, top = grid.c, grid.f
    return left, top - n * S2_PIXEL_M, left + n * S2_PIXEL_M, top


def _header_checks(src, site: Site, limits: TileLimits) -> None:
    if src.driver != "GTiff":
        raise TileRejected("unreadable", f"not a GeoTIFF (GDAL reads it as {src.driver})")
    w, h = src.width, src.height
    if w * h > limits.max_pixels:
        raise TileRejected("too_large", f"{w} x {h} = {w * h:,} pixels exceeds the budget of {limits.max_pixels:,} "
                           "(FLAREWATCH_MAX_TILE_PIXELS); a site tile is its AOI at 20 m "
                           f"({default_size_px(site)} x {default_size_px(site)} for {site.site_id})")
    if src.count != len(S2_BANDS):
        raise TileRejected("wrong_bands", f"{src.count} band(s); expected {len(S2_BANDS)} ({', '.join(S2_BANDS)})")
    if set(src.dtypes) != {"uint16"}:
        raise TileRejected("wrong_dtype", f"bands of {', '.join(sorted(set(src.dtypes)))}; expected uint16 digital "
                           "numbers (reflectance = DN * scale + offset)")
    epsg = src.crs.to_epsg() if src.crs is not None else None
    if epsg != site.utm_epsg:
        found = "no CRS" if src.crs is None else f"EPSG:{epsg}" if epsg else f"CRS {src.crs.to_string()[:80]}"
        raise TileRejected("wrong_crs", f"{found}; expected the site's UTM grid EPSG:{site.utm_epsg}")
    t = src.transform
    if not (math.isclose(t.a, S2_PIXEL_M, abs_tol=1e-6) and math.isclose(t.e, -S2_PIXEL_M, abs_tol=1e-6)
            and abs(t.b) < 1e-9 and abs(t.d) < 1e-9):
        raise TileRejected("wrong_grid", f"pixel size {t.a:g} x {t.e:g} m (rotation {t.b:g}, {t.d:g}); expected "
                           f"north-up {S2_PIXEL_M:g} m pixels")
    has_mask = any(f.name == "per_dataset" for f in src.mask_flag_enums[0])
    if src.nodata is not None and src.nodata != S2_NODATA_DN:
        raise TileRejected("no_nodata", f"nodata value {src.nodata:g}; Sentinel-2 products use {S2_NODATA_DN}")
    if src.nodata is None and not has_mask:
        raise TileRejected("no_nodata", f"neither a nodata value ({S2_NODATA_DN}) nor an internal mask: nodata "
                           "cannot be told from dark pixels (gdal_edit.py -a_nodata 0)")
    left, bottom, right, top = _aoi_bounds(site)
    b = src.bounds
    overlap = max(0.0, min(right, b.right) - max(left, b.left)) * max(0.0, min(top, b.top) - max(bottom, b.bottom))
    coverage = overlap / ((right - left) * (top - bottom))
    if coverage < limits.min_site_coverage:
        raise TileRejected("outside_site", f"the tile covers {coverage:.0%} of {site.site_id}'s AOI; expected >= "
                           f"{limits.min_site_coverage:.0%} (FLAREWATCH_MIN_SITE_COVERAGE): a tile of another place?")


def valid_fraction_over_site(tile: Tile, site: Site) -> float:
    """Share of the site's AOI pixels (on the tile's grid) with data in every band; AOI pixels
    outside the tile count as nodata."""
    left, bottom, right, top = _aoi_bounds(site)
    inv = ~tile.transform
    c0, r0 = inv @ (left, top)
    c1, r1 = inv @ (right, bottom)
    r0, r1 = sorted((int(round(r0)), int(round(r1))))
    c0, c1 = sorted((int(round(c0)), int(round(c1))))
    total = max(1, (r1 - r0) * (c1 - c0))
    h, w = tile.shape
    window = tile.valid[max(r0, 0):min(r1, h), max(c0, 0):min(c1, w)]
    return float(np.count_nonzero(window)) / total


def validate_tile(data: bytes, site: Site, limits: TileLimits | None = None) -> TileCheck:
    """Check ``data`` (a tile's bytes from ``rawdata``) for ``site`` (``limits``: default ``TileLimits()``);
    ``TileRejected`` otherwise."""
    import rasterio
    from rasterio.io import MemoryFile

    limits = limits or TileLimits()
    if not data:
        raise TileRejected("unreadable", "the object is empty (0 bytes)")
    try:
        with MemoryFile(data) as mem, mem.open() as src:
            _header_checks(src, site, limits)
    except TileRejected:
        raise
    except (rasterio.errors.RasterioError, ValueError, OSError) as exc:
        raise TileRejected("unreadable", f"not a readable GeoTIFF: {gdal_message(exc)}") from exc
    try:
        tile = decode_tile(data)
    except ValueError as exc:
        reason = "unreadable" if "not a readable GeoTIFF" in str(exc) else "bad_metadata"
        raise TileRejected(reason, str(exc)) from exc
    except (rasterio.errors.RasterioError, OSError) as exc:  # e.g. a block cut off mid-file
        raise TileRejected("unreadable", f"not a readable GeoTIFF: {gdal_message(exc)}") from exc
    share = valid_fraction_over_site(tile, site)
    if share <= 0.0:
        raise TileRejected("nodata", f"no valid pixel over {site.site_id}'s AOI (every pixel is nodata in some band)")
    if share < limits.min_valid_fraction:
        raise TileRejected("low_coverage", f"{share:.1%} of {site.site_id}'s AOI has valid data; at least "
                           f"{limits.min_valid_fraction:.0%} needed to observe the site (FLAREWATCH_MIN_VALID_FRACTION)")
    return TileCheck(tile=tile, valid_fraction=share)

