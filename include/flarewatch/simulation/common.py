"""What every part of the simulator shares: seeded random streams, climates, the flow-to-heat constant.

Everything random is drawn from ``seeded_rng(stream, site, day, ...)``: numpy generators seeded by
SHA-256 of the parts, so every process and machine produce the same bytes (see ``simulation.scene``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np
from affine import Affine

from flarewatch.config import (
    VolumeCalibration,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Derived literature constant
# --------------------------------------------------------------------------------------------
# Zhizhin et al. 2025 linear calibration (config.VolumeCalibration): BCM/yr per MW -> thousand
# m3/day per MW (0.0115e9 m3 / 365 d / 1e3 = 31.5).
KSCM_D_PER_MW = VolumeCalibration().linear_bcm_per_year_per_mw * 1e9 / 365.0 / 1e3


@dataclass(frozen=True)
class Climate:
    """Per land cover daily weather statistics (simulator assumption).

    ``p_clear``: probability of a cloud-free day; on other days the cloud fraction (0-1) is drawn
    from Beta(``beta_a``, ``beta_b``). ``fire_prob``: probability of a biomass fire in the AOI on a
    day. ``glint_prob``: probability of sun glint in the scene (water only). ``t_bkg_k``: mean
    night-time background temperature (K) seen by VIIRS; ``t_bkg_amp_k``: its seasonal amplitude.
    """

    p_clear: float
    beta_a: float
    beta_b: float
    fire_prob: float
    glint_prob: float
    t_bkg_k: float
    t_bkg_amp_k: float


CLIMATES = {
    "desert": Climate(0.75, 0.8, 3.0, 0.01, 0.0, 295.0, 9.0),
    "sand": Climate(0.80, 0.8, 3.5, 0.005, 0.0, 293.0, 10.0),
    "vegetation": Climate(0.08, 2.2, 1.4, 0.06, 0.0, 297.0, 2.0),
    "cropland": Climate(0.35, 1.0, 1.4, 0.04, 0.0, 281.0, 13.0),
    "water": Climate(0.40, 1.0, 2.0, 0.0, 0.30, 299.0, 2.0),
}


DEFAULT_LAND_COVER = "desert"


# --------------------------------------------------------------------------------------------
# Deterministic randomness and small helpers
# --------------------------------------------------------------------------------------------
def seeded_rng(*parts: object) -> np.random.Generator:
    """A generator seeded by SHA-256 of the parts (stable across processes and machines)."""
    key = "|".join(str(p) for p in ("flarewatch-simulator", *parts))
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "little"))


def apply_affine(aff: Affine, x: float, y: float) -> tuple[float, float]:
    """``aff`` applied to the point (x, y) (avoids affine's deprecated ``*`` operator)."""
    return aff.a * x + aff.b * y + aff.c, aff.d * x + aff.e * y + aff.f


# --------------------------------------------------------------------------------------------
# The day's scene
# --------------------------------------------------------------------------------------------
def cloud_fraction_target(rng: np.random.Generator, clim: Climate) -> float:
    """Daily cloud fraction (0-1) for the climate: clear with p_clear, else Beta(a, b)."""
    u, cf = rng.random(), rng.beta(clim.beta_a, clim.beta_b)
    return 0.0 if u < clim.p_clear else float(cf)
