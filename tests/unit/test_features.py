"""Per-detection features against hand-computed radiometry (flames placed with Planck's law)."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest
from affine import Affine

from flarewatch import physics
from flarewatch.config import S2_WAVELENGTH_UM, STEFAN_BOLTZMANN
from flarewatch.detect.threshold import Detection, detect_flares
from flarewatch.features.extract import (
    FEATURE_DOCS,
    VIIRS_NIGHTS_WINDOW,
    _colour_ratio,
    extract_features,
    share_viirs_radiant_heat,
    viirs_nights_seen,
)
from flarewatch.ingest.viirs import VNF_COLUMNS, parse_vnf_csv
from flarewatch.tiles import Tile

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
    # one pixel, no PSF wings: no unclipped flame pixel is left for the colour ratio
    assert f["saturated"] is True and f["temperature_k"] is None and f["b12_b11_ratio"] is None
    assert f["swir_frp_band"] == "B11" and f["swir_frp_lower_bound"] is False
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


# --- sub-pixel flames seen through a point-spread function, clipped like the sensor -------------
# Hand-computed (Planck with CODATA constants, Sentinel-2A E_sun, d = 1.01626 AU on 21 June,
# theta_s = 30 deg): a blackbody filling a 20 m pixel at 1800 K has rho12 = 2753.4, rho11 = 1180.6;
# L12/L11 = 0.8096 at 1800 K, 0.9490 at 1600 K, 0.7145 at 2000 K.
SAT = (1.8, 1.8, 1.6)  # saturation reflectance B8A, B11, B12 (as the simulator: B12 clips first)
PSF_SIGMA = 0.6  # px


def _psf_1d(center: float, n: int, sigma: float = PSF_SIGMA) -> np.ndarray:
    """Share of a point source at ``center`` (px) falling in each of ``n`` pixels (gaussian PSF)."""
    edges = (np.arange(n + 1) - center) / (sigma * math.sqrt(2.0))
    return np.diff([0.5 * (1.0 + math.erf(e)) for e in edges])


def make_psf_tile(temp_k, area_m2, row=20.3, col=20.6, size=40, bg=DESERT, pad=None, noise=0.003, seed=3) -> Tile:
    """One sub-pixel flame through the PSF on ``bg``, clipped at ``SAT``, DN = rho / 1e-4 + 1000.

    ``pad``: (B8A, B11, B12) reflectance added to a 7 x 7 well pad under the flame (a background
    brighter than the annulus).
    """
    rng = np.random.default_rng(seed)
    rho = np.stack([np.full((size, size), b) + rng.normal(0.0, noise, (size, size)) for b in bg])
    if pad is not None:
        r, c = int(row), int(col)
        for i, p in enumerate(pad):
            rho[i, r - 3 : r + 4, c - 3 : c + 4] += p
    frac = np.outer(_psf_1d(row, size), _psf_1d(col, size))
    for i, band in enumerate(("B8A", "B11", "B12")):
        rho[i] += frac * flame_reflectance(temp_k, area_m2, band)
        rho[i] = np.minimum(rho[i], SAT[i])
    dn = np.clip(np.round((rho + 0.1) / 1e-4), 1, 65535).astype(np.uint16)
    return Tile(
        dn=dn, transform=Affine(20.0, 0.0, 500000.0, 0.0, -20.0, 3400000.0), crs_epsg=32638,
        acquired_at=WHEN, sun_zenith_deg=SZA, scale=1e-4, offset=-0.1,
    )  # fmt: skip


def rh_mw(temp_k, area_m2):
    return STEFAN_BOLTZMANN * temp_k**4 * area_m2 / 1e6


def test_hand_computed_flame_reflectance():
    assert flame_reflectance(1800.0, 400.0, "B12") == pytest.approx(2753.4, rel=1e-3)
    assert flame_reflectance(1800.0, 400.0, "B11") == pytest.approx(1180.6, rel=1e-3)


def test_unsaturated_psf_flame():
    # 0.35 m2 at 1800 K on dark ground (an unclipped flame on the desert fails the detector's NHI
    # rule): peak rho12 ~ 0.06 + 0.84, below the 1.6 clip; RH = 0.208 MW
    tile = make_psf_tile(1800.0, 0.35, bg=(0.05, 0.08, 0.06))
    assert tile.dn[2].max() < 17000
    f = extract_features(tile, only_detection(tile), None)
    assert f["saturated"] is False and f["swir_frp_band"] == "B12" and f["swir_frp_lower_bound"] is False
    assert f["b12_b11_ratio"] == pytest.approx(0.8096, rel=0.05)
    assert f["temperature_k"] == pytest.approx(1800.0, abs=100.0)
    assert f["swir_frp_mw"] == pytest.approx(rh_mw(1800.0, 0.35), rel=0.20)


@pytest.mark.parametrize("temp_k, area_m2", [(1600.0, 2.5), (1800.0, 1.2), (2000.0, 0.8)])
def test_b12_clipped_core_keeps_its_temperature_and_frp(temp_k, area_m2):
    # The core pixels clip in B12 (rho12 held at 1.6), B11 stays intact: the summed-box ratio of
    # the old features was ~0.4-0.5 (-> None); the wings give the Planck ratio back.
    tile = make_psf_tile(temp_k, area_m2)
    dn11, dn12 = tile.dn[1], tile.dn[2]
    assert (dn12 == 17000).sum() >= 2 and dn11.max() < 19000
    f = extract_features(tile, only_detection(tile), None)
    assert f["saturated"] is True
    assert f["temperature_k"] == pytest.approx(temp_k, abs=100.0)
    assert f["ratio_pixels"] >= 3
    assert f["swir_frp_band"] == "B12+B11" and f["swir_frp_lower_bound"] is False
    assert f["swir_frp_mw"] == pytest.approx(rh_mw(temp_k, area_m2), rel=0.20)


@pytest.mark.parametrize("temp_k, area_m2", [(1800.0, 1.2), (1800.0, 4.0)])
def test_the_saturated_special_value_is_not_read_as_radiance(temp_k, area_m2):
    # Sentinel-2 products mark saturated pixels with DN 65535 (reflectance ~6.5 when decoded),
    # not with a plateau at the saturation level: the same flame must not gain FRP from it
    plateau = make_psf_tile(temp_k, area_m2)
    dn = plateau.dn.copy()
    dn[2][dn[2] == 17000] = 65535
    dn[1][dn[1] == 19000] = 65535
    special = Tile(dn=dn, transform=plateau.transform, crs_epsg=plateau.crs_epsg, acquired_at=plateau.acquired_at,
                   sun_zenith_deg=plateau.sun_zenith_deg)
    a = extract_features(plateau, only_detection(plateau), None)
    b = extract_features(special, only_detection(special), None)
    assert b["saturated"] is True
    assert b["swir_frp_mw"] <= 1.05 * a["swir_frp_mw"]
    assert b["swir_frp_mw"] < 1.25 * rh_mw(temp_k, area_m2)
    assert b["temperature_k"] == pytest.approx(a["temperature_k"], abs=1.0)


def test_core_clipped_in_both_bands():
    # 4 m2 at 1800 K (RH 2.38 MW): rho12 and rho11 both clip in the core; the wings still give
    # the temperature, and the FRP is a flagged lower bound (well above the clipped-value sums)
    tile = make_psf_tile(1800.0, 4.0)
    assert (tile.dn[1] == 19000).sum() >= 2
    f = extract_features(tile, only_detection(tile), None)
    assert f["saturated"] is True
    assert f["temperature_k"] == pytest.approx(1800.0, abs=100.0)
    assert f["swir_frp_lower_bound"] is True
    assert 0.5 * rh_mw(1800.0, 4.0) < f["swir_frp_mw"] < 1.05 * rh_mw(1800.0, 4.0)


def test_brighter_ground_under_the_flame_does_not_bias_the_temperature():
    # a gravel pad 0.05 brighter than the surrounding desert: as large as the B11 signal of the
    # wings, it would drive a ratio of background-subtracted sums to > 2000 K
    tile = make_psf_tile(1800.0, 1.2, pad=(0.05, 0.06, 0.05))
    f = extract_features(tile, only_detection(tile), None)
    assert f["temperature_k"] == pytest.approx(1800.0, abs=100.0)
    assert f["swir_frp_mw"] == pytest.approx(rh_mw(1800.0, 1.2), rel=0.20)


def test_colour_ratio_is_the_slope_over_a_background_offset():
    l11 = np.array([0.0, 1.0, 5.0, 12.0, 30.0])
    assert _colour_ratio(3.0 + 0.8 * l11, l11 - 2.0) == pytest.approx(0.8)
    assert _colour_ratio(np.array([1.0, 2.0]), np.array([1.0, 3.0])) is None  # < 3 pixels
    rng = np.random.default_rng(0)
    assert _colour_ratio(rng.normal(0, 1, 25), rng.normal(0, 1, 25)) is None  # noise only


# --- glint_flag: sun glint / specular bright surface near the detection ---------------------------
WATER = (0.02, 0.01, 0.005)  # open water, B8A, B11, B12 reflectance


def add_flat_patch(tile: Tile, rows: slice, cols: slice, level: float = 0.6) -> Tile:
    """``tile`` with a spectrally flat bright patch (glint: B12/B11 ~ 0.98) added."""
    rho = np.stack([tile.reflectance(b) for b in ("B8A", "B11", "B12")])
    for i, k in enumerate((1.02, 1.0, 0.98)):
        rho[i, rows, cols] += level * k
    dn = np.clip(np.round((rho - tile.offset) / tile.scale), 1, 65535).astype(np.uint16)
    return Tile(dn=dn, transform=tile.transform, crs_epsg=tile.crs_epsg, acquired_at=tile.acquired_at,
                sun_zenith_deg=tile.sun_zenith_deg, scale=tile.scale, offset=tile.offset, cloud_mask=tile.cloud_mask)


def test_glint_next_to_a_flame_is_flagged():
    tile = add_flat_patch(make_tile([(20, 20, 1800.0, 0.6)], bg=WATER), slice(22, 24), slice(21, 24))
    f = extract_features(tile, only_detection(tile), None)  # the flat patch is no candidate
    assert f["glint_flag"] is True


@pytest.mark.parametrize("bg", [WATER, DESERT])
def test_a_flame_alone_is_not_glint(bg):
    tile = make_tile([(20, 20, 1800.0, 0.6)], bg=bg)
    assert extract_features(tile, only_detection(tile), None)["glint_flag"] is False


@pytest.mark.parametrize("bg", [(0.02, 0.01, 0.005), (0.05, 0.08, 0.06), DESERT])
def test_saturated_flame_wings_are_not_glint(bg):
    # the wings' colour passes through B12/B11 ~ 1 between the background's and the flame's, but
    # only where the flame adds little: too faint (or too little above bright ground) to be glint
    tile = make_psf_tile(1800.0, 4.0, bg=bg)
    assert extract_features(tile, only_detection(tile), None)["glint_flag"] is False


def test_glint_far_from_the_flame_or_under_cloud_is_not_flagged():
    base = make_tile([(20, 20, 1800.0, 0.6)], bg=WATER)
    far = add_flat_patch(base, slice(28, 31), slice(28, 31))  # 8 px away
    assert extract_features(far, only_detection(far), None)["glint_flag"] is False
    near = add_flat_patch(base, slice(22, 24), slice(21, 24))
    cloud = np.zeros(near.shape, bool)
    cloud[22:24, 21:24] = True
    clouded = Tile(dn=near.dn, transform=near.transform, crs_epsg=near.crs_epsg, acquired_at=near.acquired_at,
                   sun_zenith_deg=near.sun_zenith_deg, scale=near.scale, offset=near.offset, cloud_mask=cloud)
    assert extract_features(clouded, only_detection(clouded), None)["glint_flag"] is False


def test_bright_diffuse_ground_is_not_glint():
    # a flat patch 0.2 brighter than the desert: bright and flat, but < 3x its background
    tile = add_flat_patch(make_tile([(20, 20, 1800.0, 0.6)]), slice(22, 24), slice(21, 24), level=0.2)
    assert extract_features(tile, only_detection(tile), None)["glint_flag"] is False


def test_a_detection_on_glint_itself_is_flagged():
    # e.g. a learned detector's false positive on a glint facet: no flame colour at all
    tile = add_flat_patch(make_tile([], bg=WATER), slice(10, 12), slice(10, 12), level=0.8)
    assert detect_flares(tile) == []  # the threshold detector rejects it by colour
    det = Detection(row=11.0, col=11.0, peak_row=10, peak_col=10, bbox=(8, 8, 14, 14), n_pixels=4,
                    confidence=0.6, saturated=False, cloud_flag=False, detector="yolo")
    assert extract_features(tile, det, None)["glint_flag"] is True


# --- viirs_nights_seen: persistence over the last VIIRS_NIGHTS_WINDOW nights -------------------------
def _night(lat, lon, *offsets_m, temp_k=1800):
    """VNF rows ``offsets_m`` metres north of (lat, lon)."""
    return vnf([{"id_Key": f"k{i}", "Lat_GMTCO": lat + d / M_PER_DEG_LAT, "Lon_GMTCO": lon, "Temp_BB": temp_k,
                 "RH": 2.0, "Area_BB": 3} for i, d in enumerate(offsets_m)])


def test_viirs_nights_seen_counts_matched_nights():
    lat, lon = 30.5, 47.3
    nights = [
        _night(lat, lon, 200.0),  # tonight
        _night(lat, lon, 2000.0),  # another flare, 2 km away
        _night(lat, lon, -600.0, 100.0),  # two rows: one night
        None,  # not ingested
        _night(lat, lon, 300.0, temp_k=900),  # a fire, not flare-like
        _night(lat, lon),  # nothing detected
        _night(lat, lon, 740.0),
    ]
    assert len(nights) == VIIRS_NIGHTS_WINDOW
    assert viirs_nights_seen(lat, lon, nights) == 3
    assert viirs_nights_seen(lat, lon, nights, min_temp_k=800.0) == 4  # the fire counts too
    assert viirs_nights_seen(lat + 2000.0 / M_PER_DEG_LAT, lon, nights) == 1  # the far flare's own position
    assert viirs_nights_seen(lat, lon, [None] * 7) == 0 and viirs_nights_seen(lat, lon, []) == 0
    assert viirs_nights_seen(None, None, nights) == 0 and viirs_nights_seen(float("nan"), lon, nights) == 0


def test_estimate_site_day_stores_viirs_nights_seen_on_every_detection():
    from flarewatch.config import Settings
    from flarewatch.estimate.site_day import estimate_site_day
    from flarewatch.ingest.viirs import flare_like
    from flarewatch.sites import Site

    tile = make_tile([(20, 20, 1800.0, 0.6)])
    det = only_detection(tile)
    lon, lat = tile.pixel_to_lonlat(det.row, det.col)
    site = Site("t", "t", "", "", "", lat, lon, 5.0)
    far = 1500.0 / M_PER_DEG_LAT  # a VIIRS-only flare 1.5 km north, inside the AOI
    tonight = flare_like(_night(lat, lon, 100.0, 1500.0))
    history = [flare_like(_night(lat, lon, 150.0)), None, flare_like(_night(lat, lon, 1450.0)),
               flare_like(_night(lat, lon, 50.0, 1550.0))]
    settings = Settings()
    rows = {r["sensor"]: r for r in estimate_site_day(site, WHEN.date(), tile, tonight, settings,
                                                      viirs_history=history).detection_rows}
    assert rows["sentinel2"]["features"]["viirs_nights_seen"] == 3
    assert rows["viirs"]["features"]["viirs_nights_seen"] == 3
    assert rows["viirs"]["lat"] == pytest.approx(lat + far, abs=1e-6)
    # no history: tonight only
    alone = estimate_site_day(site, WHEN.date(), tile, tonight, settings).detection_rows
    assert [r["features"]["viirs_nights_seen"] for r in alone] == [1, 1]
    assert [r["features"]["viirs_nights_seen"] for r in estimate_site_day(site, WHEN.date(), tile, None, settings)
            .detection_rows] == [0]
    assert {"glint_flag", "viirs_nights_seen"} <= set(FEATURE_DOCS)
