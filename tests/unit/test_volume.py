"""Radiant heat -> flared volume with the published calibrations (hand-computed values)."""

from __future__ import annotations

import math

import pytest

from flarewatch.config import STEFAN_BOLTZMANN, VolumeCalibration
from flarewatch.estimate.calibrations import (
    VOLUME_MODEL_VERSION,
    VolumeEstimate,
    estimate_volume,
    volume_linear_kscm_d,
    volume_model_version,
    volume_power_kscm_d,
)

LINEAR = VolumeCalibration(method="linear")
POWER = VolumeCalibration(method="power")
# 1800 K, 5 m2: sigma T^4 = 5.670374419e-8 * 1.04976e13 = 595,253.2 W m-2; 5^0.7 = 3.085169;
# RH' = 1.836457; BCM/yr = 0.029353 * RH' = 0.0539060; kscm/d = BCM/yr * 1e9 / 365 / 1e3.
POWER_1800K_5M2 = 0.029353 * (5.670374419e-8 * 1800.0**4 * 5.0**0.7 / 1e6) * 1e6 / 365.0


def test_linear_one_megawatt():
    assert volume_linear_kscm_d(1.0) == pytest.approx(31.507, abs=1e-3)
    assert volume_linear_kscm_d(2.5) == pytest.approx(2.5 * 31.50685, rel=1e-6)
    assert volume_linear_kscm_d(0.0) == 0.0


def test_power_law_by_hand():
    assert POWER_1800K_5M2 == pytest.approx(147.686, abs=1e-3)
    assert volume_power_kscm_d(1800.0, 5.0) == pytest.approx(POWER_1800K_5M2, rel=1e-9)
    # S^0.7: doubling the area multiplies the volume by 2^0.7
    assert volume_power_kscm_d(1800.0, 10.0) / volume_power_kscm_d(1800.0, 5.0) == pytest.approx(2**0.7)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_invalid_inputs_raise(bad):
    with pytest.raises(ValueError, match="finite number >= 0"):
        volume_linear_kscm_d(bad)
    with pytest.raises(ValueError, match="temperature"):
        volume_power_kscm_d(bad, 5.0)
    with pytest.raises(ValueError, match="area"):
        volume_power_kscm_d(1800.0, bad)


def test_viirs_radiant_heat_is_preferred():
    feats = {"viirs_n": 2, "viirs_rh_mw": 2.0, "viirs_temp_k": 1800.0, "viirs_area_m2": 5.0, "swir_frp_mw": 9.0}
    est = estimate_volume(feats, LINEAR)
    assert isinstance(est, VolumeEstimate)
    assert est == VolumeEstimate(pytest.approx(2.0 * 31.50685, rel=1e-6), "linear", 2.0, "viirs")
    est = estimate_volume(feats, POWER)
    assert est.volume_kscm_d == pytest.approx(POWER_1800K_5M2) and est.rh_source == "viirs" and est.method == "power"


def test_viirs_power_without_area_derives_it_from_rh():
    rh = STEFAN_BOLTZMANN * 1800.0**4 * 5.0 / 1e6
    est = estimate_volume({"viirs_n": 1, "viirs_rh_mw": rh, "viirs_temp_k": 1800.0, "viirs_area_m2": None}, POWER)
    assert est.volume_kscm_d == pytest.approx(POWER_1800K_5M2)


def test_sentinel2_frp_is_the_fallback():
    rh = STEFAN_BOLTZMANN * 1800.0**4 * 5.0 / 1e6  # 2.976 MW
    feats = {"viirs_n": 0, "viirs_rh_mw": None, "swir_frp_mw": rh, "temperature_k": 1800.0}
    est = estimate_volume(feats, LINEAR)
    assert est.rh_source == "s2_swir_frp" and est.radiant_heat_mw == rh
    assert est.volume_kscm_d == pytest.approx(rh * 31.50685, rel=1e-6)
    # power: S = FRP * 1e6 / (sigma T^4) = 5 m2
    assert estimate_volume(feats, POWER).volume_kscm_d == pytest.approx(POWER_1800K_5M2)
    # no temperature (e.g. saturated): 1800 K is assumed
    no_t = dict(feats, temperature_k=None)
    assert estimate_volume(no_t, POWER).volume_kscm_d == pytest.approx(POWER_1800K_5M2)


def test_nothing_available_gives_zero():
    for feats in ({}, {"viirs_n": 0, "swir_frp_mw": 0.0}, {"viirs_n": 1, "viirs_rh_mw": float("nan"), "swir_frp_mw": None}):
        est = estimate_volume(feats, POWER)
        assert est == VolumeEstimate(0.0, "power", 0.0, "none")


def test_unknown_method_and_versions():
    with pytest.raises(ValueError, match="'linear' or 'power'"):
        estimate_volume({"swir_frp_mw": 1.0}, VolumeCalibration(method="quadratic"))
    assert volume_model_version(LINEAR) == "calibration-linear-v1"
    assert volume_model_version(POWER) == "calibration-power-v1"
    assert VOLUME_MODEL_VERSION == "calibration-linear-v1"
