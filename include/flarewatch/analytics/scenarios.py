"""CO2 and CO2e of a volume under the default and the measured combustion efficiency, side by side."""

from __future__ import annotations

from dataclasses import replace

from flarewatch.config import AnalyticsConfig, EmissionFactors
from flarewatch.estimate.co2 import co2_from_volume

SOURCES = {
    "default": "combustion efficiency 0.98, World Bank GGFR assumption (config.EmissionFactors)",
    "measured_ce": "effective destruction efficiency ~0.91 measured on real flares, unlit and malfunctioning "
                   "ones included (Plant et al. 2022, Science 377:1566)",
}


def scenario_factors(ef: EmissionFactors, analytics: AnalyticsConfig) -> dict[str, EmissionFactors]:
    return {"default": ef, "measured_ce": replace(ef, combustion_efficiency=analytics.measured_combustion_efficiency)}


def scenario_sources(ef: EmissionFactors, analytics: AnalyticsConfig) -> dict[str, dict]:
    return {name: {"combustion_efficiency": f.combustion_efficiency, "methane_gwp": f.methane_gwp,
                   "methane_fraction_vol": f.methane_fraction_vol, "source": SOURCES[name]}
            for name, f in scenario_factors(ef, analytics).items()}


def co2e(volume_kscm: float | None, factors: EmissionFactors) -> float | None:
    return None if volume_kscm is None else co2_from_volume(max(volume_kscm, 0.0), factors).co2e_t


def co2(volume_kscm: float | None, factors: EmissionFactors) -> float | None:
    return None if volume_kscm is None else co2_from_volume(max(volume_kscm, 0.0), factors).co2_t
