"""CO2 and CO2e from a flared gas volume (domain.md, "From volume to CO2").

Constants in ``config.EmissionFactors`` (defaults: 1.935 t CO2 per 1000 m3 at full combustion,
0.0548 t/Mcf, open flaring monitors; combustion efficiency 0.98 and methane GWP 30, World Bank
GGFR; associated gas 80 % CH4 by volume; CH4 0.678 kg/m3 at 15 C, 1 atm).

Formulas, with V the volume in thousand m3 (per day when V is per day; the results are then t/day):

- ``co2_t      = V x co2_t_per_kscm x combustion_efficiency``  (CO2 from what burns)
- ``ch4_slip_t = V x 1000 m3 x methane_fraction_vol x (1 - combustion_efficiency)
  x methane_density_kg_m3 / 1000``  (unburnt methane)
- ``co2e_t     = co2_t + ch4_slip_t x methane_gwp``

Worked example, V = 1 thousand m3 with the defaults:
co2_t = 1 x 1.935 x 0.98 = 1.8963 t; ch4_slip_t = 1000 x 0.80 x 0.02 x 0.678 / 1000 = 0.010848 t;
co2e_t = 1.8963 + 0.010848 x 30 = 2.22174 t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flarewatch.config import EmissionFactors


@dataclass(frozen=True)
class Emission:
    """Tonnes of CO2 (combustion), CO2-equivalent (combustion + methane slip x GWP) and unburnt
    CH4, for the volume given (t/day for a volume in thousand m3/day)."""

    co2_t: float
    co2e_t: float
    ch4_slip_t: float


def co2_from_volume(volume_kscm_d: float, ef: EmissionFactors = EmissionFactors()) -> Emission:
    """CO2, CO2e and methane slip (t) of ``volume_kscm_d`` thousand m3 flared (module docstring).

    Raises ValueError for a negative, NaN or infinite volume.
    """
    try:
        v = float(volume_kscm_d)
    except (TypeError, ValueError):
        raise ValueError(f"flared volume must be a number (thousand m3), got {volume_kscm_d!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"flared volume must be a finite number >= 0 (thousand m3), got {volume_kscm_d!r}")
    co2 = v * ef.co2_t_per_kscm * ef.combustion_efficiency
    slip_m3 = v * 1000.0 * ef.methane_fraction_vol * (1.0 - ef.combustion_efficiency)
    ch4_slip = slip_m3 * ef.methane_density_kg_m3 / 1000.0
    return Emission(co2_t=co2, co2e_t=co2 + ch4_slip * ef.methane_gwp, ch4_slip_t=ch4_slip)
