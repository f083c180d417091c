"""The independent scene generator (flarewatch.evaluation.independent): determinism, L1C DN
conventions, truth consistency, and a small harness run with the threshold detector."""

from __future__ import annotations

import numpy as np
import pytest

from flarewatch.evaluation.independent import generator as gen

SIZE = 192


@pytest.fixture(scope="module")
def scenes():
    return [gen.make_scene(7, i, size=SIZE) for i in range(40)]


def test_deterministic_per_seed_and_index():
    a, b = gen.make_scene(3, 5, size=SIZE), gen.make_scene(3, 5, size=SIZE)
    assert np.array_equal(a.dn, b.dn)
    assert a.truth == b.truth
    c = gen.make_scene(3, 6, size=SIZE)
    assert not np.array_equal(a.dn, c.dn)


def test_dn_conventions(scenes):
    saw_saturated = saw_nodata = saw_old = saw_new = False
    for s in scenes:
        assert s.dn.dtype == np.uint16 and s.dn.shape == (3, SIZE, SIZE)
        valid = (s.dn != gen.NODATA_DN) & (s.dn != gen.SATURATED_DN)
        assert s.dn[valid].max() <= gen.MAX_VALID_DN
        saw_saturated |= bool((s.dn == gen.SATURATED_DN).any())
        nod = s.dn == gen.NODATA_DN
        if nod.any():
            saw_nodata = True
            assert (nod.all(axis=0) == nod.any(axis=0)).all()  # nodata in every band together
        assert s.meta["scale"] == 0.0001
        if s.truth["processing_baseline"] >= "04.00":
            saw_new = True
            assert s.meta["offset"] == -0.1
            # reflectance = DN * 0.0001 - 0.1: dark water / land stays near its true level
            rho = s.dn[1][valid[1]] * 0.0001 - 0.1
            assert 0.0 < np.median(rho) < 0.8
        else:
            saw_old = True
            assert s.meta["offset"] == 0.0
    assert saw_saturated and saw_nodata and saw_old and saw_new


def _excess(s, band: int, row: float, col: float) -> float:
    r, c = int(row), int(col)
    rho = s.dn[band].astype(float) * s.meta["scale"] + s.meta["offset"]
    win = rho[max(r - 12, 0):r + 13, max(c - 12, 0):c + 13]
    return float(rho[r, c] - np.median(win))


def test_hot_flare_raises_b12_more_than_b11_and_roof_does_not(scenes):
    n_flare = n_roof = 0
    for s in scenes:
        for f in s.truth["flares"]:
            r, c = int(f["row"]), int(f["col"])
            if not f["visible"] or f["radiant_heat_mw"] < 0.05 or s.dn[2, r, c] in (0, 65535) or s.dn[1, r, c] == 65535:
                continue
            assert f["peak_excess"]["B12"] > f["peak_excess"]["B11"] > 0
            assert _excess(s, 2, f["row"], f["col"]) > _excess(s, 1, f["row"], f["col"])
            n_flare += 1
        for roof in s.truth["roofs"]:
            assert 0.85 < roof["b12_b11"] < 1.15
            r, c = int(roof["row"]), int(roof["col"])
            if s.dn[2, r, c] in (0, 65535) or s.cause[r, c] != gen.CAUSE_ROOF:
                continue
            rho = s.dn[:, r, c].astype(float) * s.meta["scale"] + s.meta["offset"]
            assert rho[2] / rho[1] < 1.25
            n_roof += 1
    assert n_flare >= 1 and n_roof >= 3


def test_truth_is_consistent(scenes):
    sigma = 5.670374419e-8
    for s in scenes:
        for f in s.truth["flares"]:
            rh = sigma * f["temperature_k"] ** 4 * f["area_m2"] / 1e6
            assert f["radiant_heat_mw"] == pytest.approx(rh, rel=1e-9)
            assert f["volume_kscm_d"] == pytest.approx(rh * 0.0115e9 / 365 / 1e3, rel=1e-9)
            assert 0 <= f["row"] < SIZE and 0 <= f["col"] < SIZE
        for w in s.truth["wildfires"]:
            if w["active"]:
                assert s.cause[int(w["row"]), int(w["col"])] in (gen.CAUSE_WILDFIRE, gen.CAUSE_NONE)
    assert {s.truth["spacecraft"] for s in scenes} == {"Sentinel-2A", "Sentinel-2B"}


def test_small_harness_run_threshold_only():
    from flarewatch.evaluation.independent.harness import evaluate

    res = evaluate(n_scenes=3, seed=11, size=160, detectors=("threshold",), volume=False)
    assert res["scenes"] == 3 and "yolo" not in res
    thr = res["threshold"]
    for key in ("overall", "false_positives_by_cause", "recall_with_neighbour_4px", "recall_isolated",
                "recall_by_rh_quartile", "per_spacecraft", "features", "volume_per_matched_flare", "volume_per_scene"):
        assert key in thr
    assert set(thr["overall"]) >= {"tp", "fp", "fn", "precision", "recall", "f1"}
    assert set(thr["false_positives_by_cause"]) == {"wildfire", "glint", "roof", "flare_duplicate", "elsewhere"}
    import json

    json.dumps(res)  # plain JSON-able


def test_feature_reference_separates_the_atmosphere_from_the_method():
    # a perfect TOA estimator (the flare's own noise-free radiance, all pixels) is off the flame's
    # temperature and radiant heat only by the generator's band transmittances and cloud
    # attenuation; with those divided out it recovers them (Fisher & Wooster's B12 constant: +/-6.3 %)
    from flarewatch.evaluation.independent.harness import evaluate

    res = evaluate(n_scenes=3, seed=11, size=160, detectors=("threshold",), volume=False)
    ref = res["feature_reference"]
    assert ref["n_visible_flares"] == ref["ideal_toa"]["n"] > 0
    surface = ref["ideal_surface"]
    assert abs(surface["temperature_bias_median_k"]) < 30.0
    assert 0.93 < surface["swir_frp_over_true_rh"]["p50"] < 1.08
    toa = ref["ideal_toa"]
    assert toa["temperature_bias_median_k"] > surface["temperature_bias_median_k"]  # tau12 < tau11 on average
    assert toa["swir_frp_over_true_rh"]["p50"] < surface["swir_frp_over_true_rh"]["p50"]  # tau12 < 1
    assert set(ref["features_at_true_position_by_saturation"]) <= {"none", "b11", "b12", "b12+b11"}
    assert "features_by_saturation" in res["threshold"]


def test_harness_tiles_carry_the_scenes_spacecraft():
    # every Sentinel-2B scene used to be decoded as Sentinel-2A (the spacecraft was only a free-form tag)
    from flarewatch.evaluation.independent.harness import scene_tile
    from flarewatch.tiles import band_constants

    seen = set()
    for i in range(8):
        scene = gen.make_scene(5, i, size=64)
        tile = scene_tile(scene)
        assert tile.spacecraft == scene.truth["spacecraft"]
        assert tile.wavelength_um == band_constants(scene.truth["spacecraft"])[0]
        seen.add(tile.spacecraft)
    assert seen == {"Sentinel-2A", "Sentinel-2B"}
