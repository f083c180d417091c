"""The volume regressor: basis, aggregation, additive exactness, grouped CV, held-out split,
conformal interval, skops persistence. Pure: synthetic numbers, no simulator, no DB."""

from __future__ import annotations

import math
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flarewatch.estimate import regressor as R
from flarewatch.estimate.calibrations import estimate_volume
from flarewatch.evaluation import regressor as RE

S2_VIIRS = {"hot_pixels": 4, "swir_frp_mw": 2.0, "cloud_flag": False, "saturated": True, "viirs_n": 1,
            "viirs_rh_mw": 3.0, "viirs_temp_k": 1800.0, "viirs_area_m2": 5.0, "b11_excess_sum": 1.5,
            "b12_excess_sum": 2.5, "temperature_k": 1750.0}
S2_CLOUDY = {"hot_pixels": 1, "swir_frp_mw": 0.5, "cloud_flag": True, "saturated": False, "viirs_n": 0,
             "viirs_rh_mw": None, "temperature_k": None}
VIIRS_ONLY = {"lat": 30.0, "lon": 47.0, "viirs_n": 1, "viirs_rh_mw": 1.2, "viirs_temp_k": 1700.0,
              "viirs_area_m2": 3.0, "viirs_distance_m": 0.0, "viirs_id": "x"}


def col(name: str) -> int:
    return R.BASIS_NAMES.index(name)


# ------------------------------------------------------------------------------------------
# Inputs and basis on hand-computed cases
# ------------------------------------------------------------------------------------------
def test_flare_inputs_of_each_detection_kind():
    x = R.flare_inputs(S2_VIIRS)
    d = dict(zip(R.INPUT_COLUMNS, x))
    assert d["s2"] == 1 and d["viirs_rh_mw"] == 3.0 and d["swir_frp_mw"] == 2.0 and d["hot_pixels"] == 4
    assert d["cloud"] == 0 and d["saturated"] == 1
    assert d["linear_kscm_d"] == pytest.approx(estimate_volume(S2_VIIRS).volume_kscm_d)  # VIIRS RH first
    assert d["linear_kscm_d"] == pytest.approx(3.0 * 0.0115e9 / 365 / 1e3)
    d = dict(zip(R.INPUT_COLUMNS, R.flare_inputs(S2_CLOUDY)))
    assert d["s2"] == 1 and d["viirs_rh_mw"] == 0 and d["cloud"] == 1 and d["swir_frp_mw"] == 0.5
    d = dict(zip(R.INPUT_COLUMNS, R.flare_inputs(VIIRS_ONLY)))
    assert d["s2"] == 0 and d["viirs_rh_mw"] == 1.2 and d["swir_frp_mw"] == 0 and d["hot_pixels"] == 0
    # a VIIRS RH without a flare-like match (viirs_n 0), NaN and bools never count as numbers
    d = dict(zip(R.INPUT_COLUMNS, R.flare_inputs({"swir_frp_mw": float("nan"), "viirs_n": 0, "viirs_rh_mw": 5.0,
                                                   "hot_pixels": True})))
    assert d["viirs_rh_mw"] == 0 and d["swir_frp_mw"] == 0 and d["hot_pixels"] == 0
    assert R.flare_inputs_matrix([]).shape == (0, len(R.INPUT_COLUMNS))


def test_flare_basis_hand_computed():
    x = R.flare_inputs_matrix([S2_VIIRS, S2_CLOUDY, VIIRS_ONLY, dict(S2_CLOUDY, swir_frp_lower_bound=True)])
    b = R.flare_basis(x, p_viirs=0.9, p_s2=0.5, p_lb=1.2, s2_proxy="frp_hot")
    assert b.shape == (4, len(R.BASIS_NAMES))
    expect = np.zeros_like(b)
    expect[0, col("viirs_rh_matched")] = 3.0 ** 0.9
    expect[0, col("s2_matched_clear")] = (2.0 * 4) ** 0.5
    expect[0, col("n_s2")] = 1
    expect[1, col("s2_cloudy")] = (0.5 * 1) ** 0.5
    expect[1, col("n_s2")] = 1
    expect[2, col("viirs_rh_only")] = 1.2 ** 0.9
    expect[2, col("n_viirs_only")] = 1
    expect[3, col("s2_cloudy_lb")] = (0.5 * 1) ** 1.2
    expect[3, col("n_s2")] = 1
    np.testing.assert_allclose(b, expect, rtol=1e-12)
    frp_only = R.flare_basis(x[:1], p_viirs=1.0, p_s2=0.5, s2_proxy="frp")  # FRP without the hot-pixel count
    assert frp_only[0, col("s2_matched_clear")] == pytest.approx(2.0 ** 0.5)
    assert R.flare_basis(np.zeros((0, len(R.INPUT_COLUMNS))), 1.0, 1.0).shape == (0, len(R.BASIS_NAMES))
    with pytest.raises(ValueError, match="s2_proxy"):
        R.flare_basis(x, 1.0, 1.0, s2_proxy="hot")


def _units(rows):
    return pd.DataFrame([{"site_id": s, "period_start": date(2024, 1, 1), "period_end": date(2024, 1, n),
                          "n_days": n, "n_days_processed": n, "n_flares": len(f), "target_kscm_d": 0.0,
                          "flare_inputs": R.flare_inputs_matrix(f)} for s, n, f in rows])


def test_unit_basis_is_the_mean_over_days_of_site_day_sums():
    units = _units([("a", 2, [S2_VIIRS, S2_CLOUDY, VIIRS_ONLY]), ("b", 1, []), ("c", 1, [S2_CLOUDY])])
    X = R.unit_basis(units, 0.9, 0.5)
    flares = R.flare_basis(R.flare_inputs_matrix([S2_VIIRS, S2_CLOUDY, VIIRS_ONLY]), 0.9, 0.5, 0.5)
    np.testing.assert_allclose(X[0], flares.sum(axis=0) / 2)
    np.testing.assert_array_equal(X[1], 0.0)  # no detection: all-zero row -> predicts 0
    np.testing.assert_allclose(X[2], flares[1])
    # the calibrations use the same aggregation
    lin = R.baseline_predictions(units, "linear")
    assert lin[0] == pytest.approx(sum(estimate_volume(f).volume_kscm_d for f in (S2_VIIRS, S2_CLOUDY, VIIRS_ONLY)) / 2)
    assert lin[1] == 0.0
    with pytest.raises(ValueError, match="n_days_processed"):
        R.unit_basis(units.assign(n_days_processed=[2, 0, 1]), 1.0, 1.0)
    with pytest.raises(ValueError, match="linear"):
        R.baseline_predictions(units, "quadratic")


# ------------------------------------------------------------------------------------------
# Synthetic additive data (no simulator)
# ------------------------------------------------------------------------------------------
TRUE_BETA = {"viirs_rh_matched": 12.0, "s2_matched_clear": 6.0, "s2_matched_cloudy": 9.0, "s2_clear": 14.0,
             "s2_cloudy": 20.0, "viirs_rh_only": 28.0, "n_s2": 2.0, "n_viirs_only": 3.0,
             "s2_matched_clear_lb": 3.0, "s2_matched_cloudy_lb": 4.0, "s2_clear_lb": 8.0, "s2_cloudy_lb": 10.0}
TRUE_BASIS = {"p_viirs": 0.9, "p_s2": 0.6, "p_lb": 1.1, "s2_proxy": "frp_hot"}


def _random_flare(rng) -> np.ndarray:
    kind = rng.integers(3)
    rh = float(rng.lognormal(0.5, 0.8))
    row = dict.fromkeys(R.INPUT_COLUMNS, 0.0)
    if kind < 2:
        row.update(s2=1.0, swir_frp_mw=rh * rng.lognormal(0, 0.2), hot_pixels=float(rng.integers(1, 12)),
                   cloud=float(rng.random() < 0.25), viirs_rh_mw=rh * rng.lognormal(0, 0.3) if kind == 0 else 0.0,
                   frp_lower_bound=float(rng.random() < 0.5))
    else:
        row.update(viirs_rh_mw=rh)
    row["linear_kscm_d"] = 31.5 * max(row["viirs_rh_mw"], row["swir_frp_mw"])
    row["power_kscm_d"] = 1.2 * row["linear_kscm_d"]
    return np.array([row[c] for c in R.INPUT_COLUMNS])


def synthetic_daily(n_sites=16, n_days=30, seed=0, noise_sd=0.0, site_sd=0.0) -> pd.DataFrame:
    """Daily site units whose target is exactly the additive model (times optional noise)."""
    rng = np.random.default_rng(seed)
    beta = np.array([TRUE_BETA[n] for n in R.BASIS_NAMES])
    rows = []
    for s in range(n_sites):
        site_factor = rng.lognormal(0, site_sd)
        for d in range(n_days):
            flares = np.array([_random_flare(rng) for _ in range(rng.integers(0, 5))]).reshape(-1, len(R.INPUT_COLUMNS))
            y = float(R.flare_basis(flares, **TRUE_BASIS).sum(axis=0) @ beta) if len(flares) else 0.0
            y *= site_factor * rng.lognormal(0, noise_sd) if noise_sd else site_factor
            day = date(2024, 1, 1) + timedelta(days=d)
            rows.append({"site_id": f"s{s:02d}", "period_start": day, "period_end": day, "n_days": 1,
                         "n_days_processed": 1, "n_flares": len(flares), "target_kscm_d": y, "flare_inputs": flares})
    return pd.DataFrame(rows)


def to_periods(daily: pd.DataFrame, days: int) -> pd.DataFrame:
    """Aggregate daily units into periods of ``days`` days: concatenated flares, mean target."""
    rows = []
    for site, g in daily.groupby("site_id", sort=True):
        g = g.sort_values("period_start")
        for i in range(0, len(g), days):
            c = g.iloc[i:i + days]
            rows.append({"site_id": site, "period_start": c.period_start.iloc[0], "period_end": c.period_end.iloc[-1],
                         "n_days": len(c), "n_days_processed": len(c), "n_flares": int(c.n_flares.sum()),
                         "target_kscm_d": float(c.target_kscm_d.mean()),
                         "flare_inputs": np.vstack(list(c.flare_inputs))})
    return pd.DataFrame(rows)


FIXED_GRID = {f"basis__{k}": [v] for k, v in TRUE_BASIS.items()} | {"ridge__alpha": [1e-8]}
SMALL_GRID = {"basis__p_viirs": [0.8, 0.9], "basis__p_s2": [0.6], "basis__p_lb": [0.9, 1.1],
              "basis__s2_proxy": ["frp", "frp_hot"], "ridge__alpha": [1e-3, 1.0]}


def test_additive_model_daily_and_monthly_periods_give_the_same_fit():
    daily = synthetic_daily(n_sites=8, n_days=60, seed=1)
    monthly = to_periods(daily, 30)
    assert len(monthly) == 16
    # a month's design row is exactly the mean of its days' rows
    Xd, Xm = R.unit_basis(daily, **TRUE_BASIS), R.unit_basis(monthly, **TRUE_BASIS)
    np.testing.assert_allclose(Xm[0], Xd[:30].mean(axis=0), rtol=1e-12)
    md, _ = R.fit_regressor(daily, param_grid=FIXED_GRID, n_splits=4)
    mm, _ = R.fit_regressor(monthly, param_grid=FIXED_GRID, n_splits=4)
    for m in (md, mm):  # noise-free data: both recover the true per-flare model
        for name, beta in m.coefficients().items():
            assert beta == pytest.approx(TRUE_BETA[name], rel=2e-3, abs=2e-3), name
    np.testing.assert_allclose(md.predict_units(monthly), mm.predict_units(monthly), rtol=5e-3)
    np.testing.assert_allclose(md.predict_units(monthly), monthly.target_kscm_d, rtol=5e-3)


def test_grouped_cv_never_puts_a_site_on_both_sides():
    daily = synthetic_daily(n_sites=11, n_days=5, seed=2)
    groups = daily.site_id.to_numpy()
    splits = R.grouped_cv_splits(groups, n_splits=5, seed=0)
    assert len(splits) == 5
    seen_val = []
    for tr, va in splits:
        assert set(groups[tr]).isdisjoint(groups[va])
        assert len(tr) + len(va) == len(groups)
        seen_val += list(groups[va])
    assert sorted(seen_val) == sorted(groups)  # every unit validated exactly once
    # the splits fit_regressor actually used (its report) are the same site-disjoint folds
    _, report = R.fit_regressor(daily, param_grid=FIXED_GRID, n_splits=5, seed=0)
    assert report["n_splits"] == 5
    for fold, (tr, va) in zip(report["folds"], splits):
        assert set(fold["train_sites"]).isdisjoint(fold["val_sites"])
        assert fold["val_sites"] == sorted(set(groups[va])) and fold["train_sites"] == sorted(set(groups[tr]))
    assert R.grouped_cv_splits(groups[:10], n_splits=5)  # 2 sites -> 2 folds
    with pytest.raises(ValueError, match=">= 2 sites"):
        R.grouped_cv_splits(["a"] * 4)


def test_held_out_split_is_disjoint_by_site_and_deterministic():
    sites = [f"site-{i}" for i in range(20)]
    train, test = R.split_sites(sites, 0.25, seed=3)
    assert len(test) == 5 and len(train) == 15 and set(train).isdisjoint(test) and set(train) | set(test) == set(sites)
    assert R.split_sites(list(reversed(sites)) + sites[:3], 0.25, seed=3) == (train, test)  # order, duplicates
    assert R.split_sites(sites, 0.25, seed=4) != (train, test)
    daily = synthetic_daily(n_sites=8, n_days=3, seed=4)
    tr, te = R.holdout_split(daily, 0.25, seed=0)
    assert set(tr.site_id).isdisjoint(te.site_id) and len(tr) + len(te) == len(daily) and te.site_id.nunique() == 2
    with pytest.raises(ValueError, match="found 3 site"):
        R.split_sites(["a", "b", "c"], 0.25)


def test_conformal_interval_coverage_is_roughly_nominal():
    daily = synthetic_daily(n_sites=40, n_days=25, seed=5, noise_sd=0.25, site_sd=0.15)
    train, test = R.holdout_split(daily, 0.3, seed=0)
    model, report = R.fit_regressor(train, param_grid=FIXED_GRID, seed=0)
    conf = report["conformal"]
    assert conf["q_lo"] < 0 < conf["q_hi"] and conf["n"] > 500
    res = RE.evaluate_units(model, test)
    assert 0.84 <= res["coverage"] <= 0.96, res["coverage"]
    # the finite-sample quantile rule on a known sample
    q = R.conformal_log_quantiles(np.exp(np.arange(1, 20) / 10), np.ones(19), alpha=0.1)
    assert q["q_hi"] == pytest.approx(1.9) and q["q_lo"] == pytest.approx(0.1)


def test_predict_flares_nonnegative_with_interval_and_version():
    daily = synthetic_daily(n_sites=6, n_days=20, seed=6, noise_sd=0.1)
    model, _ = R.fit_regressor(daily, param_grid=FIXED_GRID, n_splits=3)
    out = model.predict_flares([S2_VIIRS, S2_CLOUDY, VIIRS_ONLY, {}])
    assert len(out) == 4
    for v, lo, hi in out:
        assert 0.0 <= lo <= v <= hi
    assert out[3] == (0.0, 0.0, 0.0)  # nothing measured, nothing estimated
    assert model.predict_flares([]) == []
    # additive: the per-flare volumes of a site-day add up to the unit prediction
    unit = _units([("x", 1, [S2_VIIRS, S2_CLOUDY, VIIRS_ONLY])])
    assert sum(v for v, _, _ in out) == pytest.approx(model.predict_units(unit)[0])
    assert isinstance(model.version, str) and model.params["train_sites"]


class Untrusted:
    """A type no regressor file should contain."""

    def __init__(self):
        self.x = 1


def test_skops_round_trip_and_untrusted_types_refused(tmp_path):
    daily = synthetic_daily(n_sites=6, n_days=10, seed=7, noise_sd=0.1)
    model, _ = R.fit_regressor(daily, seed=0, n_splits=3, param_grid=SMALL_GRID)
    model.version = "regressor-test"
    path = model.save(tmp_path / "m.skops")
    import skops.io as sio

    # a new file records today's class path, not the pre-restructure flarewatch.regressor
    assert sorted(sio.get_untrusted_types(file=path)) == [
        "flarewatch.estimate.regressor.FlareBasis", "flarewatch.estimate.regressor.VolumeRegressor"]
    loaded = R.VolumeRegressor.load(path)
    assert loaded.version == "regressor-test" and loaded.params == model.params and loaded.q_hi == model.q_hi
    feats = [S2_VIIRS, S2_CLOUDY, VIIRS_ONLY]
    assert loaded.predict_flares(feats) == model.predict_flares(feats)
    np.testing.assert_array_equal(loaded.predict_units(daily), model.predict_units(daily))

    model.params["evil"] = Untrusted()
    bad = tmp_path / "bad.skops"
    sio.dump(model, bad)
    with pytest.raises(ValueError, match="Untrusted"):
        R.VolumeRegressor.load(bad)


# The file shipped as models/regressor/flare-volume.skops until the physics-bounded model replaced it
# (version regressor-shipped-04d968a9); kept as a fixture so old files stay loadable (README there).
LEGACY_REGRESSOR = Path(__file__).resolve().parents[1] / "fixtures" / "regressor" / "legacy-flare-volume-04d968a9.skops"
LEGACY_SHA256 = "04d968a93fd69cc2d2395b4284a2b4f182fcc2093876b648255ebf2553d14f02"  # its model version's source


@pytest.mark.parametrize("loader", ["VolumeRegressor.load", "load_volume_model", "deployed"])
def test_file_saved_under_the_old_class_path_loads_and_resaves_under_the_new(tmp_path, monkeypatch, loader):
    """The previously shipped file predates the sub-packages (it names flarewatch.regressor.*): it loads
    as is, through every loader the pipeline uses, and loading + saving again is the migration (the new
    file names flarewatch.estimate.regressor)."""
    import skops.io as sio

    from flarewatch.estimate import deployed
    from flarewatch.estimate.constrained import load_volume_model

    monkeypatch.delitem(sys.modules, R.LEGACY_MODULE, raising=False)  # load must set up the alias itself
    assert R.file_sha256(LEGACY_REGRESSOR) == LEGACY_SHA256, "the legacy fixture must not be re-saved"
    assert deployed.shipped_version(LEGACY_REGRESSOR) == "regressor-shipped-04d968a9"
    assert sorted(sio.get_untrusted_types(file=LEGACY_REGRESSOR)) == sorted(R.LEGACY_TRUSTED_TYPES)
    load = {"VolumeRegressor.load": R.VolumeRegressor.load, "load_volume_model": load_volume_model,
            "deployed": deployed._load}[loader]
    model = load(LEGACY_REGRESSOR)
    assert type(model) is R.VolumeRegressor and type(model.pipeline.named_steps["basis"]) is R.FlareBasis
    out = model.predict_flares([S2_VIIRS, VIIRS_ONLY])
    assert all(0.0 <= lo <= v <= hi for v, lo, hi in out) and out[0][0] > 0
    assert R.file_sha256(LEGACY_REGRESSOR) == LEGACY_SHA256

    migrated = model.save(tmp_path / "migrated.skops")
    assert sorted(sio.get_untrusted_types(file=migrated)) == [
        "flarewatch.estimate.regressor.FlareBasis", "flarewatch.estimate.regressor.VolumeRegressor"]
    assert R.VolumeRegressor.load(migrated).predict_flares([S2_VIIRS, VIIRS_ONLY]) == out


def test_learned_model_beats_the_calibrations_on_synthetic_additive_data():
    daily = synthetic_daily(n_sites=20, n_days=15, seed=8, noise_sd=0.1)
    train, test = R.holdout_split(daily, 0.25, seed=0)
    model, report = R.fit_regressor(train, seed=0, param_grid=SMALL_GRID)
    res = RE.compare({"learned": model}, test)
    assert res["learned"]["mae"] < res["calibration_linear"]["mae"]
    assert res["learned"]["mae"] < res["calibration_power"]["mae"]
    assert report["best_params"]["p_viirs"] in SMALL_GRID["basis__p_viirs"]
    assert len(report["candidates"]) == 16 and report["candidates"][0]["rank"] == 1
    assert all(math.isfinite(c["mae_mean"]) for c in report["candidates"])


def test_evaluation_json_is_merged_under_its_own_key(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "evaluate_regressor.py"
    spec = importlib.util.spec_from_file_location("evaluate_regressor", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "evaluation.json"
    out.write_text(json.dumps({"detector": {"f1": 0.95}, "regressor": {"old": 1}}))
    mod.merge_json(out, "regressor", {"mae": np.float64(1.5), "r2": float("nan"), "n": np.int64(3)})
    assert json.loads(out.read_text()) == {"detector": {"f1": 0.95}, "regressor": {"mae": 1.5, "r2": None, "n": 3}}
    fresh = tmp_path / "new" / "e.json"
    mod.merge_json(fresh, "regressor", {"a": [1, 2]})
    assert json.loads(fresh.read_text()) == {"regressor": {"a": [1, 2]}}
