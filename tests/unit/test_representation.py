from datetime import datetime

import numpy as np
from affine import Affine

from flarewatch.detect.representation import RHO_MAX, chip_windows, detector_image
from flarewatch.tiles import Tile


def _tile(rho12, rho11, rho8a, shape=(4, 4)):
    dn = np.empty((3, *shape), np.uint16)
    for i, rho in enumerate((rho8a, rho11, rho12)):  # tile band order B8A, B11, B12
        dn[i] = round((rho + 0.1) / 0.0001)
    return Tile(dn, Affine(20, 0, 0, 0, -20, 0), 32638, datetime(2025, 1, 1), 30.0)


def test_fixed_sqrt_stretch_and_channel_order():
    img = detector_image(_tile(RHO_MAX, 0.4, 0.0))
    assert img.dtype == np.uint8 and img.shape == (4, 4, 3)
    assert tuple(img[0, 0]) == (255, 128, 0)  # R=B12 saturated, G=B11 sqrt(0.25)=0.5, B=B8A 0


def test_nodata_is_black():
    t = _tile(0.3, 0.3, 0.3)
    t.dn[:, 1, 1] = 0
    assert tuple(detector_image(t)[1, 1]) == (0, 0, 0)


def test_chip_windows_cover_the_tile_with_overlap():
    wins = chip_windows(250, 250, 128, 32)
    assert wins[0] == (0, 0) and (122, 122) in wins
    covered = np.zeros((250, 250), bool)
    for r, c in wins:
        covered[r:r + 128, c:c + 128] = True
    assert covered.all()
    assert chip_windows(100, 100, 128, 32) == [(0, 0)]
