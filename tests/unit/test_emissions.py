"""Volume -> CO2 / CO2e / methane slip, against the worked example in the module docstring."""

from __future__ import annotations

import math

import pytest

from flarewatch.config import EmissionFactors
from flarewatch.estimate.co2 import Emission, co2_from_volume


def test_worked_example_one_thousand_m3():
    e = co2_from_volume(1.0)
    assert isinstance(e, Emission)
    assert e.co2_t == pytest.approx(1.8963, abs=1e-9)  # 1.935 * 0.98
    assert e.ch4_slip_t == pytest.approx(0.010848, abs=1e-9)  # 1000 * 0.80 * 0.02 * 0.678 / 1000
    assert e.co2e_t == pytest.approx(2.2217, abs=1e-4)  # 1.8963 + 0.010848 * 30
    assert e.co2e_t == pytest.approx(2.22174, abs=1e-9)


def test_linear_in_volume_and_zero():
    assert co2_from_volume(0.0) == Emission(0.0, 0.0, 0.0)
    e1, e50 = co2_from_volume(1.0), co2_from_volume(50.0)
    assert e50.co2_t == pytest.approx(50 * e1.co2_t)
    assert e50.co2e_t == pytest.approx(50 * e1.co2e_t)


def test_complete_combustion_has_no_slip():
    e = co2_from_volume(10.0, EmissionFactors(combustion_efficiency=1.0))
    assert e.ch4_slip_t == 0.0 and e.co2e_t == e.co2_t == pytest.approx(19.35)


def test_measured_us_efficiency_raises_co2e():
    # Plant et al. 2022: ~91 % destruction efficiency
    e = co2_from_volume(1.0, EmissionFactors(combustion_efficiency=0.91))
    assert e.ch4_slip_t == pytest.approx(1000 * 0.8 * 0.09 * 0.678 / 1000)
    assert e.co2e_t > co2_from_volume(1.0).co2e_t


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "ten", None])
def test_bad_volume_raises(bad):
    with pytest.raises(ValueError, match="flared volume must be"):
        co2_from_volume(bad)
