"""Flared gas volume from radiant heat: the published VIIRS calibrations (the physics baselines).

Units: radiant heat in MW; volume in thousand standard m3 per day (kscm/d, "thousand m3/day").
BCM/yr -> kscm/d: x 1e9 m3 / 365 d / 1e3 (``BCM_PER_YEAR_TO_KSCM_PER_DAY``).

- ``linear``: Zhizhin et al. 2025, Energies 18(17):4765 (reported, unverified):
  BCM/yr = 0.0115 x RH [MW]  ->  1 MW = 31.507 kscm/d.
- ``power``: Elvidge et al. 2016, Energies 9(1):14, slope of EOG's 2017-2024 annual files:
  BCM/yr = 0.029353 x RH',  RH' = sigma T^4 S^0.7 / 1e6  (T in K, S in m2; the published fit's
  "MW" with the source area raised to 0.7).

Constants in ``config.VolumeCalibration``. Both calibrations were fitted to VIIRS Nightfire radiant
heat; applying them to the Sentinel-2 SWIR FRP (a daytime radiant-power estimate of the same
flame) is this project's proxy and is reported as ``rh_source = "s2_swir_frp"``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from flarewatch.config import STEFAN_BOLTZMANN, VolumeCalibration

BCM_PER_YEAR_TO_KSCM_PER_DAY = 1e9 / 365.0 / 1e3
# Flame temperature assumed when the power law needs one and none was measured: middle of the
# 1600-2000 K range of gas flares (Elvidge et al. 2013, domain.md).
DEFAULT_FLARE_TEMPERATURE_K = 1800.0
VOLUME_MODEL_VERSION_TEMPLATE = "calibration-{method}-v1"


def volume_model_version(cal: VolumeCalibration = VolumeCalibration()) -> str:
    """Version string stored with every estimate, e.g. ``"calibration-linear-v1"``."""
    return VOLUME_MODEL_VERSION_TEMPLATE.format(method=cal.method)


VOLUME_MODEL_VERSION = volume_model_version()  # the default calibration's version


@dataclass(frozen=True)
class VolumeEstimate:
    """``volume_kscm_d``: thousand m3/day; ``method``: "linear" / "power"; ``radiant_heat_mw``:
    the radiant heat used (MW; sigma T^4 S, not the power law's RH'); ``rh_source``: "viirs",
    "s2_swir_frp" or "none"."""

    volume_kscm_d: float
    method: str
    radiant_heat_mw: float
    rh_source: str


def _check_nonneg(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def volume_linear_kscm_d(rh_mw: float, cal: VolumeCalibration = VolumeCalibration()) -> float:
    """Flared volume (thousand m3/day) from radiant heat ``rh_mw`` (MW), linear calibration.

    V = linear_bcm_per_year_per_mw x RH x 1e9 / 365 / 1e3; with 0.0115: 1 MW -> 31.507 kscm/d.
    """
    rh_mw = _check_nonneg("radiant heat (MW)", rh_mw)
    return cal.linear_bcm_per_year_per_mw * rh_mw * BCM_PER_YEAR_TO_KSCM_PER_DAY


def volume_power_kscm_d(temp_k: float, area_m2: float, cal: VolumeCalibration = VolumeCalibration()) -> float:
    """Flared volume (thousand m3/day) from flame temperature (K) and source area (m2), power law.

    V = slope x sigma T^4 S^exponent / 1e6 x 1e9 / 365 / 1e3 (Elvidge et al. 2016). Example:
    T = 1800 K, S = 5 m2: RH' = 5.670374e-8 x 1800^4 x 5^0.7 / 1e6 = 1.83646, BCM/yr = 0.053906,
    V = 147.69 kscm/d. The calibration was fitted on T >= ``cal.min_temperature_k``; the formula
    itself is applied as given (filtering non-flares is the caller's job).
    """
    temp_k = _check_nonneg("temperature (K)", temp_k)
    area_m2 = _check_nonneg("source area (m2)", area_m2)
    rh_prime = STEFAN_BOLTZMANN * temp_k**4 * area_m2**cal.power_exponent / 1e6
    return cal.power_slope_bcm_per_year * rh_prime * BCM_PER_YEAR_TO_KSCM_PER_DAY


def _usable(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def estimate_volume(features: dict, cal: VolumeCalibration = VolumeCalibration()) -> VolumeEstimate:
    """Volume of one detection from its ``features.extract.extract_features`` dict.

    Radiant heat source, in order: the nearest matched flare-like VIIRS detection's RH
    (``viirs_n > 0`` and a finite ``viirs_rh_mw``; rh_source "viirs"); else the Sentinel-2 SWIR FRP
    (``swir_frp_mw``; rh_source "s2_swir_frp"); else volume 0 with rh_source "none".

    ``cal.method == "power"`` needs T and S: VIIRS gives ``viirs_temp_k`` and ``viirs_area_m2``
    (S = RH x 1e6 / (sigma T^4) if the area is missing); for the S2 proxy
    S = FRP x 1e6 / (sigma T^4) with T = ``temperature_k``, or 1800 K when that is missing.
    """
    if cal.method not in ("linear", "power"):
        raise ValueError(f"calibration method must be 'linear' or 'power', got {cal.method!r}")

    if (features.get("viirs_n") or 0) > 0 and _usable(features.get("viirs_rh_mw")) and features["viirs_rh_mw"] >= 0:
        rh, source = float(features["viirs_rh_mw"]), "viirs"
        temp, area = features.get("viirs_temp_k"), features.get("viirs_area_m2")
    elif _usable(features.get("swir_frp_mw")) and features["swir_frp_mw"] > 0:
        rh, source = float(features["swir_frp_mw"]), "s2_swir_frp"
        temp, area = features.get("temperature_k"), None
    else:
        return VolumeEstimate(volume_kscm_d=0.0, method=cal.method, radiant_heat_mw=0.0, rh_source="none")

    if cal.method == "linear":
        return VolumeEstimate(volume_linear_kscm_d(rh, cal), cal.method, rh, source)

    if not (_usable(temp) and temp > 0):
        temp = DEFAULT_FLARE_TEMPERATURE_K
    if not (_usable(area) and area >= 0):
        area = rh * 1e6 / (STEFAN_BOLTZMANN * float(temp) ** 4)
    return VolumeEstimate(volume_power_kscm_d(float(temp), float(area), cal), cal.method, rh, source)
