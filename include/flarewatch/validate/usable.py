"""Is a Sentinel-2 scene usable for a site: clear where the site's flares are, not over the tile.

A scene 76 % cloudy over the tile can still show every flare, and one 10 % cloudy can hide the
only one. ``sentinel2_usable`` looks at the places flares burn: today's Sentinel-2 detections and
the flare-like VIIRS detections of this and the previous nights inside the AOI (from ``rawdata``,
so the answer does not depend on the order site-days are processed in). Around each place, a
disk of ``radius_m`` (375 m, the VIIRS position uncertainty: half its 750 m pixel) must be at
least ``min_clear`` cloud-free valid pixels; the scene is usable when at least ``min_clear`` of the
places are. Without any known place the whole AOI is judged the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from flarewatch.config import S2_PIXEL_M
from flarewatch.tiles import Tile

FLARE_RADIUS_M = 375.0  # half a VIIRS pixel (domain.md: VIIRS M-band ~750 m)
MIN_CLEAR = 0.5  # product choice: half the disk clear, half the places clear


def clear_mask(tile: Tile) -> np.ndarray:
    """Valid in every band and not cloud."""
    clear = tile.valid
    if tile.cloud_mask is not None:
        clear = clear & ~tile.cloud_mask
    return clear


def sentinel2_usable(tile: Tile, places_lonlat: Iterable[tuple[float, float]], *, radius_m: float = FLARE_RADIUS_M,
                     min_clear: float = MIN_CLEAR) -> tuple[bool, float, int]:
    """(usable, share of places clear (or of the AOI clear without places), number of places)."""
    clear = clear_mask(tile)
    h, w = clear.shape
    r = radius_m / S2_PIXEL_M
    rows, cols = np.ogrid[:h, :w]
    shares = []
    for lon, lat in places_lonlat:
        row, col = tile.lonlat_to_pixel(lon, lat)
        if not (-r <= row <= h + r and -r <= col <= w + r):
            continue
        disk = (rows + 0.5 - row) ** 2 + (cols + 0.5 - col) ** 2 <= r * r
        n = int(disk.sum())
        shares.append(float(clear[disk].sum()) / n if n else 0.0)
    if not shares:
        frac = float(clear.mean()) if clear.size else 0.0
        return frac >= min_clear, round(frac, 4), 0
    frac = sum(s >= min_clear for s in shares) / len(shares)
    return frac >= min_clear, round(frac, 4), len(shares)
