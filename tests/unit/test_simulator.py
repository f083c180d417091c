"""Realism and contract checks for the demo scene simulator (flarewatch.simulator)."""

from __future__ import annotations

import csv
import io
import json
import math
import time
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from flarewatch import physics
from flarewatch.config import STEFAN_BOLTZMANN, VNF_FILL_VALUE
from flarewatch.simulation.flares import FlareTruth, site_flares
from flarewatch.simulation.landscape import LAND_COVER_REFLECTANCE
from flarewatch.simulation.scene import (
    SATURATION_REFLECTANCE,
    SIMULATOR_VERSION,
    SimulatedScene,
    simulate_scene,
)
from flarewatch.simulation.viirs import VNF_COLUMNS
from flarewatch.sites import load_sites
from flarewatch.tiles import Tile, decode_tile, encode_tile

DAY = date(2025, 6, 1)
SITES = {s.site_id: s for s in load_sites()}
DESERT, SAND, VEG, CROP, WATER = "rumaila-n", "hassi-messaoud", "ebocha", "parshall", "cantarell"


def _days(n: int, start: date = date(2025, 3, 1), step: int = 1) -> list[date]:
    return [start + timedelta(days=step * k) for k in range(n)]


@pytest.fixture(scope="module")
def series() -> dict[str, list[SimulatedScene]]:
    """30 consecutive days at a few sites (reused by the statistical tests)."""
    return {sid: [simulate_scene(SITES[sid], d) for d in _days(30)] for sid in (DESERT, SAND, VEG, WATER)}


def _flare_b(tile: Tile):
    return tile.reflectance("B8A"), tile.reflectance("B11"), tile.reflectance("B12")


# ------------------------------------------------------------------------------------------------
# contract
# ------------------------------------------------------------------------------------------------
def test_deterministic_bytes_and_csv():
    a = simulate_scene(SITES[DESERT], DAY)
    b = simulate_scene(SITES[DESERT], DAY)
    assert a.tile.dn.tobytes() == b.tile.dn.tobytes()
    assert np.array_equal(a.tile.cloud_mask, b.tile.cloud_mask)
    assert a.viirs_csv == b.viirs_csv
    assert json.dumps(a.truth, sort_keys=True) == json.dumps(b.truth, sort_keys=True)
    assert a.tile.acquired_at == b.tile.acquired_at


def test_different_dates_and_sites_differ():
    a = simulate_scene(SITES[DESERT], DAY)
    b = simulate_scene(SITES[DESERT], DAY + timedelta(days=1))
    c = simulate_scene(SITES["ahvaz-w"], DAY)
    assert a.tile.dn.tobytes() != b.tile.dn.tobytes()
    assert a.truth["flares"] != b.truth["flares"]
    assert [f.flare_id for f in site_flares(SITES[DESERT])] != [f.flare_id for f in site_flares(SITES["ahvaz-w"])]
    assert a.tile.dn.tobytes() != c.tile.dn.tobytes()


def test_tile_grid_dtype_crs_and_time():
    site = SITES[DESERT]
    scene = simulate_scene(site, DAY)
    tile = scene.tile
    assert isinstance(scene, SimulatedScene) and scene.site_id == site.site_id and scene.acquisition_date == DAY
    assert tile.dn.shape == (3, 250, 250) and tile.dn.dtype == np.uint16
    assert tile.crs_epsg == site.utm_epsg == 32638
    t = tile.transform
    assert (t.a, t.b, t.d, t.e) == (20.0, 0.0, 0.0, -20.0)
    assert t.c % 20 == 0 and t.f % 20 == 0
    lon, lat = tile.pixel_to_lonlat(125.0, 125.0)  # tile centre = site centre (within a pixel)
    assert abs(lat - site.lat) * 111_000 < 20 and abs(lon - site.lon) * 111_000 * math.cos(math.radians(lat)) < 20
    assert tile.cloud_mask is not None and tile.cloud_mask.shape == (250, 250) and tile.cloud_mask.dtype == bool
    assert (tile.scale, tile.offset) == (0.0001, -0.1)
    # 10:30 local mean solar time, in UTC
    assert tile.acquired_at.tzinfo is not None and tile.acquired_at.utcoffset() == timedelta(0)
    local_h = (tile.acquired_at.hour + tile.acquired_at.minute / 60 + site.lon / 15.0) % 24
    assert abs(local_h - 10.5) < 0.05
    assert 5.0 < tile.sun_zenith_deg < 40.0  # Iraq, June, mid-morning


def test_size_px_and_flares_outside_small_tile():
    site = SITES["ahvaz-w"]
    scene = simulate_scene(site, DAY, size_px=32)
    assert scene.tile.dn.shape == (3, 32, 32)
    for f in scene.truth["flares"]:
        inside = 0 <= f["row"] < 32 and 0 <= f["col"] < 32
        assert f["in_scene"] == inside or (inside and scene.truth["nodata_fraction"] > 0)
    with pytest.raises(ValueError):
        simulate_scene(site, DAY, size_px=4)


def test_truth_json_and_fields():
    scene = simulate_scene(SITES[WATER], DAY)
    truth = json.loads(json.dumps(scene.truth))
    for key in ("site_id", "acquisition_date", "flares", "fires", "glint", "cloud_fraction", "simulator_version"):
        assert key in truth
    assert truth["simulator_version"] == SIMULATOR_VERSION
    assert truth["acquisition_date"] == DAY.isoformat()
    assert truth["cloud_fraction"] == pytest.approx(scene.cloud_fraction, abs=1e-6)
    fields = set(FlareTruth.__dataclass_fields__)
    for f in truth["flares"]:
        assert fields == set(f)
        if not f["active"]:
            assert f["flow_kscm_d"] == 0 and f["radiant_heat_mw"] == 0
        else:  # RH = sigma T^4 S
            rh = STEFAN_BOLTZMANN * f["temperature_k"] ** 4 * f["flame_area_m2"] / 1e6
            assert rh == pytest.approx(f["radiant_heat_mw"], rel=1e-3)
            assert 1500 <= f["temperature_k"] <= 2100


def test_geotiff_roundtrip():
    scene = simulate_scene(SITES[VEG], DAY)
    back = decode_tile(encode_tile(scene.tile))
    assert np.array_equal(back.dn, scene.tile.dn)
    assert back.crs_epsg == scene.tile.crs_epsg


# ------------------------------------------------------------------------------------------------
# geometry of the flares
# ------------------------------------------------------------------------------------------------
def test_site_flares_stable_and_spaced():
    pairs = 0
    for site in SITES.values():
        stacks = site_flares(site)
        assert stacks == site_flares(site)
        assert 2 <= len(stacks) <= 7
        assert len({s.flare_id for s in stacks}) == len(stacks)
        for s in stacks:
            assert 2.0 <= s.base_flow_kscm_d <= 400.0 and 1600 <= s.temperature_k <= 2000
        d = sorted(math.hypot(a.x_m - b.x_m, a.y_m - b.y_m) / 20 for i, a in enumerate(stacks) for b in stacks[i + 1 :])
        close = [x for x in d if x < 10]
        assert all(3 <= x <= 5 for x in close) and len(close) <= 1
        pairs += len(close)
    assert pairs >= 1  # at least one demo site has two stacks 3-5 px apart


def test_truth_pixel_position_maps_back_to_lonlat():
    for sid in (DESERT, WATER, CROP):
        scene = simulate_scene(SITES[sid], DAY)
        for f in scene.truth["flares"]:
            lon, lat = scene.tile.pixel_to_lonlat(f["row"], f["col"])
            dy = (lat - f["lat"]) * 111_000
            dx = (lon - f["lon"]) * 111_000 * math.cos(math.radians(lat))
            assert math.hypot(dx, dy) < 20.0  # within one pixel
            r, c = scene.tile.lonlat_to_pixel(f["lon"], f["lat"])
            assert abs(r - f["row"]) < 0.05 and abs(c - f["col"]) < 0.05


# ------------------------------------------------------------------------------------------------
# radiometry
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sid", [DESERT, SAND, VEG, CROP, WATER])
def test_background_reflectance_matches_land_cover(sid):
    site = SITES[sid]
    tile = None
    for d in _days(40):  # a mostly clear day
        scene = simulate_scene(site, d)
        if scene.cloud_fraction < 0.1 and scene.truth["nodata_fraction"] == 0:
            tile = scene.tile
            break
    assert tile is not None
    rho = tile.dn.astype(float) * tile.scale + tile.offset
    assert np.allclose(rho[2], tile.reflectance("B12"))
    clear = ~tile.cloud_mask
    expected = LAND_COVER_REFLECTANCE[site.land_cover]
    tol = {"water": 0.02, "cropland": 0.12}.get(site.land_cover, 0.07)
    for b in range(3):
        med = float(np.median(rho[b][clear]))
        assert abs(med - expected[b]) < tol, (sid, b, med, expected[b])
    assert (tile.dn > 0).all()  # DN 0 is reserved for nodata


def test_nodata_strip_is_dn_zero():
    site = SITES[DESERT]
    scene = next(s for s in (simulate_scene(site, d) for d in _days(200, step=1)) if s.truth["nodata_fraction"] > 0)
    nod = ~scene.tile.valid
    assert nod.mean() == pytest.approx(scene.truth["nodata_fraction"], abs=1e-6)
    assert (scene.tile.dn[:, nod] == 0).all()
    assert 0.05 < nod.mean() < 0.6
    # the strip touches the left or right edge
    assert nod[:, 0].all() or nod[:, -1].all()


def _clear_active_flares(scenes, min_rh=0.2):
    for scene in scenes:
        for f in scene.truth["flares"]:
            if f["active"] and f["in_scene"] and not f["cloud_covered"] and f["radiant_heat_mw"] >= min_rh:
                yield scene, f


def test_unsaturated_flare_pixel_is_hot_by_tai_and_ratio(series):
    scenes = series[DESERT] + series[SAND] + [simulate_scene(SITES["ahvaz-w"], d) for d in _days(30)]
    checked = 0
    for scene, f in _clear_active_flares(scenes):
        if f["saturated"]:
            continue
        b8, b11, b12 = _flare_b(scene.tile)
        r, c = int(f["row"]), int(f["col"])
        win = b12[r - 1 : r + 2, c - 1 : c + 2]
        i, j = np.unravel_index(np.nanargmax(win), win.shape)
        rr, cc = r - 1 + i, c - 1 + j
        bg = np.nanmedian(b12[r - 15 : r + 16, c - 15 : c + 16])
        # far above the background (bright sand caps the contrast of an unsaturated flare)
        assert b12[rr, cc] >= 1.5 * bg and b12[rr, cc] >= bg + 0.4
        assert b12[rr, cc] / b11[rr, cc] > 1.3
        assert (b12[rr, cc] - b11[rr, cc]) / b8[rr, cc] >= 0.15
        checked += 1
    assert checked >= 5


def test_saturated_flare_core_follows_saturation_pattern(series):
    checked = 0
    for scene, f in _clear_active_flares(series[DESERT] + series[WATER], min_rh=1.0):
        assert f["saturated"]
        b8, b11, b12 = _flare_b(scene.tile)
        r, c = int(f["row"]), int(f["col"])
        win12 = b12[r - 1 : r + 2, c - 1 : c + 2]
        assert np.nanmax(win12) == pytest.approx(SATURATION_REFLECTANCE[2], abs=2e-4)
        i, j = np.unravel_index(np.nanargmax(b11[r - 1 : r + 2, c - 1 : c + 2]), win12.shape)
        # Marchese saturated-pixel rule: rho12 > 1 and rho11 > rho12
        assert b12[r - 1 + i, c - 1 + j] > 1.0 and b11[r - 1 + i, c - 1 + j] > b12[r - 1 + i, c - 1 + j]
        checked += 1
    assert checked >= 10


def test_swir_radiance_recovers_temperature_and_radiant_heat(series):
    """Physics round trip: the B12/B11 colour temperature and the Fisher & Wooster SWIR FRP of an
    unsaturated flare give back the simulated flame temperature and radiant heat."""
    scenes = series[SAND] + [simulate_scene(SITES["ahvaz-w"], d) for d in _days(30)]
    dt, ratio = [], []
    for scene, f in _clear_active_flares(scenes):
        if f["saturated"]:
            continue
        tile = scene.tile
        _, b11, b12 = _flare_b(tile)
        r, c = int(f["row"]), int(f["col"])
        ring = np.ones((7, 7), bool)
        ring[1:6, 1:6] = False
        radiance = {}
        for band, rho in (("B12", b12), ("B11", b11)):
            bg = np.nanmedian(rho[r - 3 : r + 4, c - 3 : c + 4][ring])
            excess = rho[r - 1 : r + 2, c - 1 : c + 2] - bg
            doy = scene.acquisition_date.timetuple().tm_yday
            radiance[band] = float(physics.reflectance_to_radiance(excess, band, tile.sun_zenith_deg, doy).sum())
        dt.append(float(physics.ratio_temperature(radiance["B12"], radiance["B11"])) - f["temperature_k"])
        ratio.append(float(physics.swir_frp_mw(radiance["B12"])) / f["radiant_heat_mw"])
    assert len(dt) >= 5
    assert abs(np.median(dt)) < 100
    assert 0.8 < np.median(ratio) < 1.15


def test_glint_is_spectrally_flat():
    site = SITES[WATER]
    scene = next(s for s in (simulate_scene(site, d) for d in _days(60)) if s.truth["glint"])
    tile = scene.tile
    _, b11, b12 = _flare_b(tile)
    rows, cols = np.mgrid[0:250, 0:250]
    far = np.ones((250, 250), bool)
    for f in scene.truth["flares"]:
        far &= np.hypot(rows - f["row"], cols - f["col"]) > 6
    glint = (b11 > 0.3) & far & ~tile.cloud_mask
    assert glint.sum() > 20
    assert float(np.nanmax(b11[glint])) > 0.6
    ratio = b12[glint] / b11[glint]
    assert 0.9 < np.median(ratio) < 1.1
    assert np.mean((ratio > 0.8) & (ratio < 1.2)) > 0.95


def test_flares_are_often_under_cloud_in_the_tropics(series):
    seen = 0
    for scene in series[VEG]:
        for f in scene.truth["flares"]:
            if f["active"] and f["cloud_covered"] and f["in_scene"]:
                seen += 1
    assert seen >= 3  # cloudy tropics hide flares under cloud regularly


def test_wildfire_is_recorded_and_cooler_than_flares():
    """A biomass fire: 800-1100 K front of 3-15 px; cooler than a flame, so its B12/B11 ratio is
    higher than a flare's, and VIIRS (if it still burns at night) fits a temperature < 1200 K."""
    fires = []
    for site in (SITES[VEG], SITES[CROP]):
        for scene in (simulate_scene(site, d, size_px=96) for d in _days(100)):
            fires += [(scene, f) for f in scene.truth["fires"] if not f["cloud_covered"]]
    assert len(fires) >= 3
    viirs_fire_temps = []
    for scene, fire in fires:
        assert 700 <= fire["temperature_k"] <= 1200 and 3 <= fire["extent_px"] <= 15
        json.dumps(scene.truth)
        _, b11, b12 = _flare_b(scene.tile)
        r, c = int(fire["row"]), int(fire["col"])
        w = int(fire["extent_px"]) + 2
        win12, win11 = b12[r - w : r + w + 1, c - w : c + w + 1], b11[r - w : r + w + 1, c - w : c + w + 1]
        i = np.nanargmax(win12 - np.nanmedian(win12))
        assert win12.flat[i] - np.nanmedian(win12) > 0.1
        assert win12.flat[i] / win11.flat[i] > 1.5
        df = pd.read_csv(io.StringIO(scene.viirs_csv))
        for det in scene.truth["viirs"]["detections"]:
            if fire["fire_id"] in det["fire_ids"]:
                viirs_fire_temps += list(df.loc[df["id_Key"] == det["id_Key"], "Temp_BB"])
    assert all(t < 1300 for t in viirs_fire_temps)


# ------------------------------------------------------------------------------------------------
# weather and activity statistics
# ------------------------------------------------------------------------------------------------
def test_activity_and_flow_vary_over_30_days(series):
    scenes = series[SAND]
    by_flare: dict[str, list] = {}
    for s in scenes:
        for f in s.truth["flares"]:
            by_flare.setdefault(f["flare_id"], []).append(f)
    active = [f["active"] for fs in by_flare.values() for f in fs]
    assert 0.6 < np.mean(active) < 0.98  # mostly lit, some unlit days
    assert not all(active)
    for fs in by_flare.values():
        flows = [f["flow_kscm_d"] for f in fs if f["active"]]
        assert len(flows) > 10 and np.std(flows) > 0.05 * np.mean(flows)
    assert {tuple(sorted(f.flare_id for f in site_flares(SITES[SAND])))} == {tuple(sorted(by_flare))}


def test_cloud_climates(series):
    veg = [s.cloud_fraction for s in series[VEG]]
    desert = [s.cloud_fraction for s in series[DESERT]]
    assert max(veg) > 0.5
    assert np.mean(veg) > np.mean(desert) + 0.2
    assert min(desert) == 0.0  # clear desert days exist
    for s in series[VEG]:  # cloud mask fraction reported consistently
        assert s.cloud_fraction == pytest.approx(float(s.tile.cloud_mask[s.tile.valid].mean()), abs=1e-6)


# ------------------------------------------------------------------------------------------------
# VIIRS Nightfire CSV
# ------------------------------------------------------------------------------------------------
def test_vnf_csv_schema_and_physics(series):
    header_checked = False
    rows, flare_rows = 0, []
    m07_fill = 0
    for scene in series[DESERT] + series[WATER] + series[VEG]:
        text = scene.viirs_csv
        assert text.splitlines()[0] == ",".join(VNF_COLUMNS)
        header = next(csv.reader(io.StringIO(text)))
        assert header == list(VNF_COLUMNS)
        header_checked = True
        df = pd.read_csv(io.StringIO(text))
        assert list(df.columns) == list(VNF_COLUMNS)
        if df.empty:
            continue
        rows += len(df)
        assert df["id_Key"].is_unique
        assert df["RH"].to_numpy() == pytest.approx(
            (STEFAN_BOLTZMANN * df["Temp_BB"] ** 4 * df["Area_BB"] / 1e6).to_numpy(), rel=0.02, abs=1e-3
        )
        assert df["ESF_BB"].to_numpy() == pytest.approx((df["Area_BB"] / (df["Area_Pixel"] * 1e6)).to_numpy(), rel=1e-3)
        assert df["RHI"].to_numpy() == pytest.approx((df["RH"] / df["Area_Pixel"]).to_numpy(), rel=1e-3, abs=1e-3)
        assert df["Area_Pixel"].between(0.4, 0.8).all()
        assert df["Temp_Bkg"].between(240, 320).all()
        assert set(df["Cloud_Mask"]) <= {0, 1}
        assert df["QF_Detect"].between(1, 8).all() and df["QF_Fit"].between(0, 9).all()
        m07_fill += int((df["Rad_M07"] == VNF_FILL_VALUE).sum())
        assert (df["Rad_M10"] != VNF_FILL_VALUE).all()
        # the night after the daytime pass: ~01:30 local mean solar time on the next day
        lon0 = SITES[scene.site_id].lon
        for ts, lat, lon in zip(df["Date_Mscan"], df["Lat_GMTCO"], df["Lon_GMTCO"]):
            t = datetime.strptime(ts, "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=UTC)
            local = t + timedelta(hours=lon0 / 15.0)
            assert local.date() == scene.acquisition_date + timedelta(days=1)
            assert 0.5 <= local.hour + local.minute / 60 <= 2.5
            # within ~1 km of a true source
            d = min(
                math.hypot((lat - f["lat"]) * 111_000, (lon - f["lon"]) * 111_000 * math.cos(math.radians(lat)))
                for f in scene.truth["flares"] + scene.truth["fires"]
            )
            assert d < 1200
        dets = {d["id_Key"]: d for d in scene.truth["viirs"]["detections"]}
        assert set(dets) == set(df["id_Key"])
        flare_rows += [t for k, t in zip(df["id_Key"], df["Temp_BB"]) if dets[k]["flare_ids"]]
    assert header_checked and rows > 30
    assert np.mean(np.array(flare_rows) >= 1200) > 0.95
    assert m07_fill > 0  # M07 sometimes not detected (fill value)


def test_vnf_detects_only_lit_flares_and_misses_some():
    site = SITES[VEG]
    lit, detected = 0, 0
    for scene in (simulate_scene(site, d, size_px=16) for d in _days(40)):
        active = {f["flare_id"] for f in scene.truth["flares"] if f["active"]}
        lit += len(active)
        for det in scene.truth["viirs"]["detections"]:
            assert set(det["flare_ids"]) <= active
            detected += len(det["flare_ids"])
    assert 0.2 * lit < detected < lit  # cloudy tropics: many, not all, lit flares are seen at night


def test_empty_night_is_header_only():
    site = SITES[VEG]
    scenes = (simulate_scene(site, d, size_px=16) for d in _days(60))
    scene = next(s for s in scenes if not s.truth["viirs"]["detections"])
    assert scene.viirs_csv.strip() == ",".join(VNF_COLUMNS)


# ------------------------------------------------------------------------------------------------
# performance
# ------------------------------------------------------------------------------------------------
def test_simulate_scene_is_fast():
    site = SITES[CROP]
    simulate_scene(site, DAY)  # warm the per-site cache
    times = []
    for d in _days(5, start=date(2024, 7, 1)):
        t0 = time.perf_counter()
        simulate_scene(site, d)
        times.append(time.perf_counter() - t0)
    assert min(times) < 0.3
