"""Per-detection features against hand-computed radiometry (flames placed with Planck's law)."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest
from affine import Affine

from flarewatch import physics
from flarewatch.config import S2_WAVELENGTH_UM, STEFAN_BOLTZMANN
from flarewatch.detection import detect_flares
from flarewatch.features import FEATURE_DOCS, extract_features, share_viirs_radiant_heat
from flarewatch.tiles import Tile
from flarewatch.viirs import VNF_COLUMNS, parse_vnf_csv

WHEN = datetime(2024, 6, 21, 7, 30)
SZA = 30.0
DOY = WHEN.timetuple().tm_yday
DESERT = (0.30, 0.35, 0.30)  # B8A, B11, B12 reflectance
M_PER_DEG_LAT = 111_195.08


def flame_reflectance(temp_k: float, area_m2: float, band: str) -> float:
    rad = area_m2 / 400.0 * physics.planck_radiance(S2_WAVELENGTH_UM[band], temp_k)
    return float(physics.radiance_to_reflectance(rad, band, SZA, DOY))


def make_tile(flames, h=40, w=40, bg=DESERT, noise=0.002, scale=1e-4, offset=-0.1, seed=1) -> Tile:
    rng = np.random.default_rng(seed)
    rho = np.stack([np.full((h, w), b) + rng.normal(0.0, noise, (h, w)) for b in bg])
    for row, col, temp_k, area_m2 in flames:
        for i, band in enumerate(("B8A", "B11", "B12")):
            rho[i, row, col] += flame_reflectance(temp_k, area_m2, band)
    dn = np.clip(np.round((rho - offset) / scale), 1, 65535).astype(np.uint16)
    return Tile(
        dn=dn, transform=Affine(20.0, 0.0, 500000.0, 0.0, -20.0, 3400000.0), crs_epsg=32638,
        acquired_at=WHEN, sun_zenith_deg=SZA, scale=scale, offset=offset,
    )  # fmt: skip


def only_detection(tile: Tile):
    dets = detect_flares(tile)
    assert len(dets) == 1
    return dets[0]


def vnf(rows: list[dict]):
    base = {c: 1 for c in VNF_COLUMNS}
    base.update({"Date_Mscan": "2024/06/21 22:31:05.000", "Temp_Bkg": 295})
    lines = [",".join(VNF_COLUMNS)]
    for r in rows:
        lines.append(",".join(str({**base, **r}[c]) for c in VNF_COLUMNS))
    return parse_vnf_csv("\n".join(lines))


def test_frp_and_temperature_of_a_5_m2_1800_k_flame():
    # 5 m2 at 1800 K adds rho12 ~ 34 to one pixel: a DN scale of 0.001 keeps it unclipped
    tile = make_tile([(20, 20, 1800.0, 5.0)], scale=1e-3, noise=0.0)
    f = extract_features(tile, only_detection(tile), None)
    rh = STEFAN_BOLTZMANN * 1800.0**4 * 5.0 / 1e6  # 2.976 MW
    assert f["swir_frp_mw"] == pytest.approx(rh, rel=0.10)
    assert f["swir_frp_band"] == "B12" and f["saturated"] is False
    assert f["temperature_k"] == pytest.approx(1800.0, rel=0.02)
    ratio = physics.planck_radiance(S2_WAVELENGTH_UM["B12"], 1800.0) / physics.planck_radiance(S2_WAVELENGTH_UM["B11"], 1800.0)
    assert f["b12_b11_ratio"] == pytest.approx(float(ratio), rel=0.02)
    assert f["b12_excess_peak"] == pytest.approx(flame_reflectance(1800.0, 5.0, "B12"), rel=0.01)
    assert f["hot_pixels"] == 1 and f["hot_area_m2"] == 400.0


def test_small_flame_at_the_standard_dn_scale():
    tile = make_tile([(20, 20, 1800.0, 0.5)])
    f = extract_features(tile, only_detection(tile), None)
    assert f["swir_frp_mw"] == pytest.approx(STEFAN_BOLTZMANN * 1800.0**4 * 0.5 / 1e6, rel=0.10)
    assert f["temperature_k"] == pytest.approx(1800.0, rel=0.05)
    assert f["b12_excess_sum"] == pytest.approx(flame_reflectance(1800.0, 0.5, "B12"), abs=0.03)
    assert f["b11_excess_sum"] == pytest.approx(flame_reflectance(1800.0, 0.5, "B11"), abs=0.03)


def test_cool_fire_has_a_low_colour_temperature():
    tile = make_tile([(20, 20, 1000.0, 4.0)])
    f = extract_features(tile, only_detection(tile), None)
    assert f["temperature_k"] == pytest.approx(1000.0, rel=0.05)
    assert f["b12_b11_ratio"] > 1.5  # flares are < 1 in radiance units


def test_clipped_b12_falls_back_to_b11_frp():
    # 1800 K, 1.5 m2: rho12 ~ 10 clips at DN 65535, rho11 ~ 4.3 does not
    tile = make_tile([(20, 20, 1800.0, 1.5)], noise=0.0)
    assert tile.dn[2, 20, 20] == 65535 and tile.dn[1, 20, 20] < 65535
    f = extract_features(tile, only_detection(tile), None)
    assert f["saturated"] is True and f["temperature_k"] is None
    assert f["swir_frp_band"] == "B11"
    assert f["swir_frp_mw"] == pytest.approx(STEFAN_BOLTZMANN * 1800.0**4 * 1.5 / 1e6, rel=0.15)


def test_position_and_no_nan_without_viirs():
    tile = make_tile([(12, 30, 1800.0, 0.6)])
    det = only_detection(tile)
    f = extract_features(tile, det, None)
    lon, lat = tile.pixel_to_lonlat(12.5, 30.5)
    assert f["lat"] == pytest.approx(lat, abs=1e-6) and f["lon"] == pytest.approx(lon, abs=1e-6)
    assert f["viirs_n"] == 0
    assert all(f[k] is None for k in ("viirs_id", "viirs_rh_mw", "viirs_temp_k", "viirs_area_m2", "viirs_distance_m"))
    assert not any(isinstance(v, float) and math.isnan(v) for v in f.values())
    assert set(f) <= set(FEATURE_DOCS)
    assert all(isinstance(u, str) and isinstance(s, str) for u, s in FEATURE_DOCS.values())


def test_nearest_flare_like_viirs_detection_is_used():
    tile = make_tile([(12, 30, 1800.0, 0.6)])
    det = only_detection(tile)
    lon, lat = tile.pixel_to_lonlat(det.row, det.col)
    df = vnf(
        [
            {"id_Key": "fire", "Lat_GMTCO": lat + 50 / M_PER_DEG_LAT, "Lon_GMTCO": lon, "Temp_BB": 900, "RH": 9.0, "Area_BB": 20},
            {"id_Key": "far", "Lat_GMTCO": lat + 2000 / M_PER_DEG_LAT, "Lon_GMTCO": lon, "Temp_BB": 1800, "RH": 5.0, "Area_BB": 8},
            {"id_Key": "b", "Lat_GMTCO": lat - 300 / M_PER_DEG_LAT, "Lon_GMTCO": lon, "Temp_BB": 1700, "RH": 2.0, "Area_BB": 4},
            {"id_Key": "a", "Lat_GMTCO": lat + 200 / M_PER_DEG_LAT, "Lon_GMTCO": lon, "Temp_BB": 1850, "RH": 1.5, "Area_BB": 2.5},
        ]
    )  # fmt: skip
    f = extract_features(tile, det, df)
    assert f["viirs_n"] == 2
    assert f["viirs_id"] == "a"
    assert (f["viirs_rh_mw"], f["viirs_temp_k"], f["viirs_area_m2"]) == (1.5, 1850.0, 2.5)
    assert f["viirs_distance_m"] == pytest.approx(200.0, abs=1.0)
    # the 900 K row counts when the caller lowers the flare threshold
    assert extract_features(tile, det, df, viirs_min_temp_k=800.0)["viirs_id"] == "fire"


def test_shared_viirs_detection_is_split_by_frp():
    feats = [
        {"viirs_id": "x", "viirs_rh_mw": 3.0, "viirs_area_m2": 6.0, "swir_frp_mw": 1.0},
        {"viirs_id": "x", "viirs_rh_mw": 3.0, "viirs_area_m2": 6.0, "swir_frp_mw": 2.0},
        {"viirs_id": "y", "viirs_rh_mw": 1.0, "viirs_area_m2": None, "swir_frp_mw": 0.5},
        {"viirs_id": None, "viirs_rh_mw": None, "swir_frp_mw": 0.5},
    ]
    out = share_viirs_radiant_heat(feats)
    assert [f["viirs_rh_mw"] for f in out[:3]] == pytest.approx([1.0, 2.0, 1.0])
    assert out[3]["viirs_rh_mw"] is None
    assert [f["viirs_share"] for f in out[:3]] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert out[3]["viirs_share"] is None
    assert out[1]["viirs_area_m2"] == pytest.approx(4.0)
    assert feats[0]["viirs_rh_mw"] == 3.0  # inputs untouched
