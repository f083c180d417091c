"""flarewatch.evaluation: matching rule, P/R/F1 edge cases, volume metrics, a small evaluation."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date

import pytest

from flarewatch.config import Settings, VolumeCalibration
from flarewatch.evaluation import baseline as ev
from flarewatch.sites import load_sites


# ------------------------------------------------------------------------------------------
# match_detections
# ------------------------------------------------------------------------------------------
def test_two_predictions_one_truth_nearest_wins():
    pairs, fp, fn = ev.match_detections([(10.0, 10.0), (10.5, 10.0)], [(10.6, 10.0)])
    assert pairs == [(1, 0)]
    assert fp == [0]
    assert fn == []


def test_exactly_max_distance_matches_just_beyond_does_not():
    assert ev.match_detections([(0.0, 2.0)], [(0.0, 0.0)]) == ([(0, 0)], [], [])
    assert ev.match_detections([(2.0, 0.0)], [(0.0, 0.0)]) == ([(0, 0)], [], [])
    assert ev.match_detections([(0.0, 2.01)], [(0.0, 0.0)]) == ([], [0], [0])
    # the radius is a parameter
    assert ev.match_detections([(0.0, 2.01)], [(0.0, 0.0)], max_dist_px=2.5) == ([(0, 0)], [], [])


def test_empty_inputs():
    assert ev.match_detections([], []) == ([], [], [])
    assert ev.match_detections([(1.0, 1.0), (5.0, 5.0)], []) == ([], [0, 1], [])
    assert ev.match_detections([], [(1.0, 1.0)]) == ([], [], [0])


def test_one_to_one_greedy_by_distance():
    # truth 0 is nearest to pred 0 (0.5) and pred 1 (1.0); truth 1 only reachable by pred 1 (1.5)
    pairs, fp, fn = ev.match_detections([(0.0, 0.0), (0.0, 1.5)], [(0.0, 0.5), (0.0, 3.0)])
    assert pairs == [(0, 0), (1, 1)]
    assert fp == [] and fn == []
    # a single prediction between two truths takes the nearer one only
    pairs, fp, fn = ev.match_detections([(0.0, 1.2)], [(0.0, 0.0), (0.0, 3.0)])
    assert pairs == [(0, 0)] and fp == [] and fn == [1]


def test_equal_distance_tie_is_deterministic():
    pairs, fp, fn = ev.match_detections([(0.0, 1.0)], [(0.0, 0.0), (0.0, 2.0)])
    assert pairs == [(0, 0)] and fp == [] and fn == [1]


# ------------------------------------------------------------------------------------------
# prf / volume_metrics
# ------------------------------------------------------------------------------------------
def test_prf_regular_and_edge_cases():
    assert ev.prf(8, 2, 2) == pytest.approx({"precision": 0.8, "recall": 0.8, "f1": 0.8})
    assert ev.prf(0, 0, 0) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}  # nothing to find, nothing claimed
    assert ev.prf(0, 3, 0) == {"precision": 0.0, "recall": 1.0, "f1": 0.0}  # claims on an empty scene
    assert ev.prf(0, 0, 4) == {"precision": 1.0, "recall": 0.0, "f1": 0.0}  # found nothing
    assert ev.prf(0, 2, 3) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}  # 0/0 F1 -> 0
    with pytest.raises(ValueError):
        ev.prf(-1, 0, 0)


def test_volume_metrics_hand_computed():
    m = ev.volume_metrics([110.0, 90.0, 0.0], [100.0, 100.0, 0.0])
    assert m["n"] == 3
    assert m["mae"] == pytest.approx(20.0 / 3)
    assert m["rmse"] == pytest.approx(math.sqrt(200.0 / 3))
    assert m["bias"] == pytest.approx(0.0)
    assert m["median_ratio"] == pytest.approx(1.0)  # true = 0 left out
    assert m["total_ratio"] == pytest.approx(1.0)
    ss_tot = sum((t - 200.0 / 3) ** 2 for t in (100.0, 100.0, 0.0))
    assert m["r2"] == pytest.approx(1.0 - 200.0 / ss_tot)
    single = ev.volume_metrics([5.0], [4.0])
    assert math.isnan(single["r2"]) and single["bias"] == pytest.approx(1.0)
    assert math.isnan(ev.volume_metrics([], [])["mae"])


# ------------------------------------------------------------------------------------------
# evaluate_site_day / evaluate (simulator + pipeline.estimate_site_day, 2 sites x 2 days)
# ------------------------------------------------------------------------------------------
SITES = load_sites()[:2]
DAYS = [date(2025, 6, 1), date(2025, 6, 2)]


@pytest.fixture(scope="module")
def result():
    return ev.evaluate(SITES, DAYS, include_site_days=True)


def _finite_in(x, lo, hi):
    return isinstance(x, float) and math.isfinite(x) and lo <= x <= hi


def test_evaluate_returns_finite_scores_in_range(result):
    assert result["n_site_days"] == 4 and len(result["site_days"]) == 4
    det = result["detection"]
    for scope in ("all", "clear_sky"):
        for k in ("precision", "recall", "f1"):
            assert _finite_in(det[scope][k], 0.0, 1.0)
    assert set(det["per_site"]) == {s.site_id for s in SITES}
    assert det["all"]["tp"] + det["all"]["fn"] == sum(r["detection"]["n_pos"] for r in result["site_days"])
    assert det["all"]["tp"] + det["all"]["fp"] == sum(r["detection"]["n_pred"] for r in result["site_days"])
    assert sum(det["fp_causes"].values()) == det["all"]["fp"]
    assert det["all"]["tp"] > 0  # the baseline finds flares in clear desert scenes
    for method in ev.CALIBRATION_METHODS:
        v = result["volume"][method]
        assert v["n"] == 4
        for k in ("mae", "rmse", "median_ratio", "total_ratio"):
            assert _finite_in(v[k], 0.0, 1e5)
        assert _finite_in(v["bias"], -1e5, 1e5)
        assert _finite_in(v["r2"], -1e6, 1.0)
        assert v["rmse"] >= v["mae"]


def test_site_day_consistent_with_pipeline_volumes(result):
    from flarewatch.estimate.site_day import estimate_site_day
    from flarewatch.ingest.viirs import flare_like, parse_vnf_csv
    from flarewatch.simulation.scene import simulate_scene

    site, day = SITES[0], DAYS[0]
    row = result["site_days"][0]
    assert (row["site_id"], row["acquisition_date"]) == (site.site_id, day.isoformat())
    scene = simulate_scene(site, day)
    vf = flare_like(parse_vnf_csv(scene.viirs_csv))
    for method in ev.CALIBRATION_METHODS:
        settings = Settings(calibration=replace(VolumeCalibration(), method=method))
        est = estimate_site_day(site, day, scene.tile, vf, settings)
        total = sum(e["volume_kscm_d"] or 0.0 for e in est.emission_rows)
        assert row["volume"][method]["pred_kscm_d"] == pytest.approx(total, rel=1e-9)
    truth_total = sum(f["flow_kscm_d"] for f in scene.truth["flares"] if f["active"])
    assert row["volume"]["true_kscm_d"] == pytest.approx(truth_total)


def test_evaluate_is_deterministic(result):
    again = ev.evaluate(SITES[:1], DAYS[:1], include_site_days=True)
    assert again["site_days"][0] == result["site_days"][0]
