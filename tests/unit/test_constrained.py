"""The physics-bounded volume model: bound, reduction to the calibration, fitting on period totals,
interval, skops persistence, loading either model kind. Pure: synthetic numbers, no simulator, no DB."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from flarewatch.estimate import constrained as C
from flarewatch.estimate import regressor as R
from flarewatch.estimate.calibrations import estimate_volume

S2_VIIRS = {"hot_pixels": 4, "swir_frp_mw": 2.0, "cloud_flag": False, "saturated": True, "viirs_n": 1,
            "viirs_rh_mw": 3.0, "viirs_temp_k": 1800.0, "viirs_area_m2": 5.0}
S2_ONLY = {"hot_pixels": 30, "swir_frp_mw": 0.5, "cloud_flag": True, "saturated": True, "swir_frp_lower_bound": True,
           "viirs_n": 0, "viirs_rh_mw": None}
VIIRS_ONLY = {"viirs_n": 1, "viirs_rh_mw": 1.2, "viirs_temp_k": 1700.0, "viirs_area_m2": 3.0}
NOTHING = {"hot_pixels": 2, "swir_frp_mw": 0.0, "viirs_n": 0}
EXTREME = [{"hot_pixels": 1e9, "swir_frp_mw": 1e6, "cloud_flag": True, "saturated": True, "swir_frp_lower_bound": True,
            "viirs_n": 0},
           {"hot_pixels": 1, "swir_frp_mw": 1e-9, "viirs_n": 0},
           {"viirs_n": 3, "viirs_rh_mw": 1e7, "hot_pixels": 1e6, "swir_frp_mw": 1e5, "cloud_flag": True},
           {"viirs_n": 1, "viirs_rh_mw": 1e-9}]
ALL = [S2_VIIRS, S2_ONLY, VIIRS_ONLY, NOTHING, *EXTREME]


def linear(f: dict) -> float:
    return estimate_volume(f).volume_kscm_d


def test_neutral_correction_is_exactly_the_linear_calibration():
    model = C.ConstrainedVolumeModel()  # w = 0
    out = model.predict_flares(ALL)
    for f, (v, lo, hi) in zip(ALL, out):
        assert v == pytest.approx(linear(f), rel=1e-12, abs=0)
        assert lo == hi == v  # q_lo = q_hi = 0
    assert out[3][0] == 0.0  # no radiant heat, no volume


@pytest.mark.parametrize("bound", [1.1, 1.5, 3.0])
@pytest.mark.parametrize("scale", [-1e6, -30.0, -1.0, 1.0, 30.0, 1e6])
def test_the_correction_never_exceeds_the_bound_either_way(bound, scale):
    rng = np.random.default_rng(int(abs(scale)) % 97)
    w = scale * rng.normal(size=len(C.TERM_NAMES))
    model = C.ConstrainedVolumeModel(w, bound=bound, q_lo=-0.5, q_hi=0.5)
    x = R.flare_inputs_matrix(ALL)
    f = model.factors(x)
    assert np.all(f <= bound * (1 + 1e-12)) and np.all(f >= (1 / bound) * (1 - 1e-12))
    for feats, (v, lo, hi) in zip(ALL, model.predict_flares(ALL)):
        base = linear(feats)
        assert v >= 0 and lo <= v <= hi
        assert base / bound * (1 - 1e-12) <= v <= base * bound * (1 + 1e-12)
    # every term pushed to its extreme in one flare: still bounded
    z = np.full((1, len(C.TERM_NAMES)), 1e12)
    assert abs(C.bounded_log_factor(z @ np.abs(w), bound)[0]) <= math.log(bound) + 1e-12


def test_bad_bound_and_weights_are_refused():
    with pytest.raises(ValueError, match="bound"):
        C.ConstrainedVolumeModel(bound=1.0)
    with pytest.raises(ValueError, match="bound"):
        C.ConstrainedVolumeModel(bound=float("inf"))
    with pytest.raises(ValueError, match="weights"):
        C.ConstrainedVolumeModel([1.0, 2.0])
    with pytest.raises(ValueError, match="weights"):
        C.ConstrainedVolumeModel([float("nan")] * len(C.TERM_NAMES))


def _units(rng, n_sites=12, n_days=12, truth=lambda f: 1.0):
    rows = []
    pool = [S2_VIIRS, S2_ONLY, VIIRS_ONLY, dict(S2_VIIRS, viirs_rh_mw=8.0), dict(S2_ONLY, swir_frp_mw=3.0,
                                                                               swir_frp_lower_bound=False)]
    for s in range(n_sites):
        for d in range(n_days):
            flares = [pool[i] for i in rng.integers(0, len(pool), rng.integers(1, 4))]
            y = sum(linear(f) * truth(f) for f in flares) * rng.lognormal(0, 0.05)
            rows.append({"site_id": f"s{s:02d}", "period_start": date(2024, 1, 1 + d), "period_end": date(2024, 1, 1 + d),
                         "n_days": 1, "n_days_processed": 1, "n_flares": len(flares), "target_kscm_d": y,
                         "flare_inputs": R.flare_inputs_matrix(flares)})
    return pd.DataFrame(rows)


def test_fit_recovers_a_correction_inside_the_bound_and_stays_bounded_outside_it():
    rng = np.random.default_rng(0)
    # the truth is 1.2 x the calibration for S2-FRP flares, 1 otherwise: inside B = 1.5
    units = _units(rng, truth=lambda f: 1.2 if (f.get("viirs_n") or 0) == 0 else 1.0)
    model, report = C.fit_constrained(units, seed=0, n_splits=3)
    x = R.flare_inputs_matrix([S2_VIIRS, S2_ONLY, VIIRS_ONLY])
    f = model.factors(x)
    assert f[0] == pytest.approx(1.0, abs=0.05) and f[2] == pytest.approx(1.0, abs=0.1)
    assert f[1] == pytest.approx(1.2, abs=0.06)
    assert report["best_params"]["model_kind"] == "constrained" and report["n_splits"] == 3
    assert report["conformal"]["q_lo"] <= 0 <= report["conformal"]["q_hi"]
    assert model.params["train_sites"] == sorted(units.site_id.unique())
    # a 2x scale (what the unconstrained regressor learned from our simulator) is out of reach
    units2 = _units(rng, truth=lambda f: 2.0)
    model2, _ = C.fit_constrained(units2, seed=0, n_splits=3)
    assert np.all(model2.factors(x) <= 1.5 + 1e-12)
    assert np.all(model2.predict_units(units2) <= 1.5 * R.baseline_predictions(units2, "linear") + 1e-9)


def test_period_totals_are_the_mean_of_site_day_sums_and_predictions_are_nonnegative():
    model = C.ConstrainedVolumeModel(np.linspace(-2, 2, len(C.TERM_NAMES)), q_lo=-0.3, q_hi=0.4)
    units = pd.DataFrame([{"site_id": "a", "n_days_processed": 2, "target_kscm_d": 1.0,
                           "flare_inputs": R.flare_inputs_matrix([S2_VIIRS, S2_ONLY, VIIRS_ONLY])},
                          {"site_id": "b", "n_days_processed": 1, "target_kscm_d": 1.0,
                           "flare_inputs": R.flare_inputs_matrix([])}])
    per_flare = model.predict_flares([S2_VIIRS, S2_ONLY, VIIRS_ONLY])
    yhat = model.predict_units(units)
    assert yhat[0] == pytest.approx(sum(v for v, _, _ in per_flare) / 2) and yhat[1] == 0.0
    lo, hi = model.interval_units(units)
    assert np.all(lo <= yhat) and np.all(yhat <= hi) and np.all(lo >= 0)
    assert model.predict_flares([]) == []


def test_skops_round_trip_and_untrusted_types_refused(tmp_path):
    import skops.io as sio

    rng = np.random.default_rng(1)
    model, _ = C.fit_constrained(_units(rng, n_sites=6, n_days=6), seed=0, n_splits=3)
    model.version = "regressor-test"
    path = model.save(tmp_path / "m.skops")
    assert sorted(sio.get_untrusted_types(file=path)) == list(C.CONSTRAINED_TRUSTED_TYPES)
    for loaded in (C.ConstrainedVolumeModel.load(path), C.load_volume_model(path)):
        assert type(loaded) is C.ConstrainedVolumeModel
        assert loaded.version == "regressor-test" and loaded.params == model.params and loaded.bound == model.bound
        assert loaded.predict_flares(ALL) == model.predict_flares(ALL)
    with pytest.raises(ValueError, match="refusing"):
        R.VolumeRegressor.load(path)  # the unconstrained loader trusts only its own types

    class Untrusted:
        pass

    model.params["evil"] = Untrusted()
    bad = tmp_path / "bad.skops"
    sio.dump(model, bad)
    with pytest.raises(ValueError, match="Untrusted"):
        C.load_volume_model(bad)


def test_fit_volume_model_dispatches_and_refuses_unknown_kinds():
    rng = np.random.default_rng(2)
    units = _units(rng, n_sites=6, n_days=5)
    m, rep = C.fit_volume_model(units, "constrained", bound=1.3)
    assert isinstance(m, C.ConstrainedVolumeModel) and m.bound == 1.3 and rep["best_params"]["bound"] == 1.3
    with pytest.raises(ValueError, match="model kind"):
        C.fit_volume_model(units, "deep")
