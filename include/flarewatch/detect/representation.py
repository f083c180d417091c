"""The detector's input representation: one documented mapping from a tile to an 8-bit image.

Used identically for training chips and for inference, so a model never sees a different
encoding than the one it was trained on. Channels (R, G, B) = (B12, B11, B8A) reflectance with a
fixed radiometric stretch: ``v = 255 * sqrt(clip(rho / RHO_MAX, 0, 1))``. The square root keeps
background texture (rho 0.05-0.5) and dim sub-pixel flares distinguishable while the saturated
flare cores (rho >= RHO_MAX) map to 255. Nodata is 0. The stretch is fixed (not per-scene) so a
pixel's colour means the same thing in every tile.
"""

from __future__ import annotations

import numpy as np

from flarewatch.tiles import Tile

REPRESENTATION_VERSION = "b12-b11-b8a-sqrt1.6-v1"
CHANNEL_BANDS = ("B12", "B11", "B8A")
RHO_MAX = 1.6  # reflectance mapped to 255; around the B12 saturation level of Sentinel-2 flares


def detector_image(tile: Tile) -> np.ndarray:
    """uint8 (H, W, 3) array of the tile in the detector's representation (RGB order)."""
    rho = np.stack([tile.reflectance(b) for b in CHANNEL_BANDS], axis=-1)
    rho = np.nan_to_num(rho, nan=0.0)
    v = np.sqrt(np.clip(rho / RHO_MAX, 0.0, 1.0)) * 255.0
    return np.round(v).astype(np.uint8)


def chip_windows(height: int, width: int, chip: int, overlap: int) -> list[tuple[int, int]]:
    """Upper-left (row, col) of square chips covering an H x W tile with at least ``overlap`` px overlap.

    The last row/column of chips is aligned to the tile edge, so every pixel is covered and no
    chip extends past the tile (tiles smaller than ``chip`` give one window at (0, 0); the caller pads).
    """
    if chip <= overlap:
        raise ValueError(f"chip size {chip} must exceed the overlap {overlap}")

    def starts(n: int) -> list[int]:
        if n <= chip:
            return [0]
        step = chip - overlap
        s = list(range(0, n - chip, step))
        s.append(n - chip)
        return sorted(set(s))

    return [(r, c) for r in starts(height) for c in starts(width)]
