"""Colour temperature and SWIR FRP of hand-made flames of known temperature and area.

A sub-pixel blackbody of T (K) and S (m2) over a known flat background, placed with Planck's law at
the band centres and the solar irradiance of the tile's spacecraft (Sentinel-2A or 2B,
``tiles.band_constants``), in one pixel or spread by a gaussian PSF, unclipped or clipped as the
Sentinel-2 SATURATED special value DN 65535. Truth: T and RH = sigma T^4 S. What these scenes do not
have (and the independent scenes do): B11/B12 misregistration and a bright well pad whose edge lies
inside the flame's footprint; README "Independent evaluation scenes" gives what those cost.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest
from affine import Affine

from flarewatch import physics
from flarewatch.config import STEFAN_BOLTZMANN
from flarewatch.detect.threshold import Detection
from flarewatch.features.extract import extract_features
from flarewatch.tiles import Tile, band_constants

WHEN = datetime(2024, 6, 21, 7, 30)
SZA = 30.0
DOY = WHEN.timetuple().tm_yday
BG = (0.12, 0.15, 0.11)  # B8A, B11, B12 reflectance: dry steppe
SIZE = 31
SPACECRAFT = ("Sentinel-2A", "Sentinel-2B")


def _psf_1d(center: float, n: int, sigma: float) -> np.ndarray:
    edges = (np.arange(n + 1) - center) / (sigma * math.sqrt(2.0))
    return np.diff([0.5 * (1.0 + math.erf(e)) for e in edges])


def known_flame_tile(spacecraft: str, temp_k: float, area_m2: float, psf_sigma: float | None = 0.5,
                     sat_rho: tuple[float, float, float] | None = None, row: float = 15.4, col: float = 15.7,
                     noise: float = 0.001, seed: int = 0) -> Tile:
    """The flame on ``BG`` (DN = rho / 1e-4 + 1000); ``sat_rho``: per-band reflectance at and above
    which a pixel is written as DN 65535; ``psf_sigma`` None: all of the flame in one pixel."""
    lam, esun = band_constants(spacecraft)
    rng = np.random.default_rng(seed)
    rho = np.stack([np.full((SIZE, SIZE), b) + rng.normal(0.0, noise, (SIZE, SIZE)) for b in BG])
    if psf_sigma is None:
        frac = np.zeros((SIZE, SIZE))
        frac[int(row), int(col)] = 1.0
    else:
        frac = np.outer(_psf_1d(row, SIZE, psf_sigma), _psf_1d(col, SIZE, psf_sigma))
    dn = np.empty((3, SIZE, SIZE), np.uint16)
    for i, band in enumerate(("B8A", "B11", "B12")):
        rad = area_m2 / 400.0 * physics.planck_radiance(lam[band], temp_k)
        rho[i] += frac * float(physics.radiance_to_reflectance(rad, band, SZA, DOY, esun))
        v = np.clip(np.round((rho[i] + 0.1) / 1e-4), 1, 32767)
        if sat_rho is not None:
            v[rho[i] >= sat_rho[i]] = 65535
        dn[i] = v.astype(np.uint16)
    return Tile(dn=dn, transform=Affine(20.0, 0.0, 500000.0, 0.0, -20.0, 3400000.0), crs_epsg=32638,
                acquired_at=WHEN, sun_zenith_deg=SZA, scale=1e-4, offset=-0.1, spacecraft=spacecraft)


def features_at_truth(tile: Tile, row: float = 15.4, col: float = 15.7) -> dict:
    r, c = int(row), int(col)
    det = Detection(row=row, col=col, peak_row=r, peak_col=c, bbox=(r - 1, c - 1, r + 2, c + 2), n_pixels=9,
                    confidence=1.0, saturated=bool((tile.dn == 65535).any()), cloud_flag=False)
    return extract_features(tile, det, None)


def rh_mw(temp_k: float, area_m2: float) -> float:
    return STEFAN_BOLTZMANN * temp_k**4 * area_m2 / 1e6


def test_tiles_carry_each_spacecrafts_constants():
    a = known_flame_tile("Sentinel-2A", 1800.0, 0.2)
    b = known_flame_tile("Sentinel-2B", 1800.0, 0.2)
    assert a.wavelength_um["B12"] == pytest.approx(2.2024) and b.wavelength_um["B12"] == pytest.approx(2.1857)
    assert a.solar_irradiance["B12"] == pytest.approx(85.25) and b.solar_irradiance["B12"] == pytest.approx(87.75)


@pytest.mark.parametrize("spacecraft", SPACECRAFT)
@pytest.mark.parametrize("temp_k, area_m2", [(1500.0, 0.5), (2000.0, 0.12)])
@pytest.mark.parametrize("psf_sigma", [None, 0.5])
def test_unsaturated_flame_temperature_and_frp(spacecraft, temp_k, area_m2, psf_sigma):
    tile = known_flame_tile(spacecraft, temp_k, area_m2, psf_sigma=psf_sigma)
    assert not (tile.dn == 65535).any()
    f = features_at_truth(tile)
    assert f["saturated"] is False and f["swir_frp_band"] == "B12" and f["swir_frp_lower_bound"] is False
    # one pixel: < 3 pixels for the colour slope unless the footprint's neighbours carry signal
    if psf_sigma is not None:
        assert f["temperature_k"] == pytest.approx(temp_k, abs=60.0)
    # Fisher & Wooster's B12 constant: +/-6.3 % over 1600-2200 K, ~+11 % at 1500 K (a drifts with T)
    assert f["swir_frp_mw"] == pytest.approx(rh_mw(temp_k, area_m2), rel=0.15)


@pytest.mark.parametrize("spacecraft", SPACECRAFT)
def test_reading_2b_with_2a_constants_would_bias_the_temperature(spacecraft):
    tile = known_flame_tile(spacecraft, 1800.0, 0.3)
    f = features_at_truth(tile)
    t_a = float(physics.ratio_temperature(f["b12_b11_ratio"], 1.0, band_constants("Sentinel-2A")[0]))
    assert f["temperature_k"] == pytest.approx(1800.0, abs=40.0)
    if spacecraft == "Sentinel-2B":
        assert abs(t_a - 1800.0) > abs(f["temperature_k"] - 1800.0)


@pytest.mark.parametrize("spacecraft", SPACECRAFT)
@pytest.mark.parametrize("temp_k, area_m2", [(1500.0, 6.0), (2000.0, 2.0)])
def test_saturated_flame_b12_clipped(spacecraft, temp_k, area_m2):
    # B12 clips as DN 65535 in the core, B11 stays intact: the colour comes from the unclipped
    # pixels and the clipped B12 radiance from ratio x L11, so the FRP is an estimate, not a bound
    tile = known_flame_tile(spacecraft, temp_k, area_m2, sat_rho=(9.0, 9.0, 1.0))
    assert (tile.dn[2] == 65535).sum() >= 2 and not (tile.dn[1] == 65535).any()
    f = features_at_truth(tile)
    assert f["saturated"] is True and f["swir_frp_band"] == "B12+B11" and f["swir_frp_lower_bound"] is False
    assert f["temperature_k"] == pytest.approx(temp_k, abs=100.0)
    assert f["swir_frp_mw"] == pytest.approx(rh_mw(temp_k, area_m2), rel=0.2)


@pytest.mark.parametrize("spacecraft", SPACECRAFT)
@pytest.mark.parametrize("temp_k, area_m2", [(1500.0, 12.0), (2000.0, 4.0)])
def test_saturated_flame_both_bands_clipped_is_a_flagged_lower_bound(spacecraft, temp_k, area_m2):
    # B12 and B11 both DN 65535 in the core (most flares of the independent scenes): the colour
    # still comes from the wings, the FRP is flagged as a lower bound and never above the truth
    tile = known_flame_tile(spacecraft, temp_k, area_m2, sat_rho=(9.0, 1.0, 1.0))
    assert (tile.dn[1] == 65535).any() and (tile.dn[2] == 65535).any()
    f = features_at_truth(tile)
    assert f["saturated"] is True and f["swir_frp_lower_bound"] is True
    assert f["temperature_k"] == pytest.approx(temp_k, abs=100.0)
    assert 0.1 * rh_mw(temp_k, area_m2) < f["swir_frp_mw"] <= 1.05 * rh_mw(temp_k, area_m2)
