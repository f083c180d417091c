"""Radiometry of hot sources: Planck radiance, reflectance <-> radiance, temperatures, radiant heat.

Pure numpy functions; units in every name or docstring. Constants and their sources are in
``flarewatch.config``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from flarewatch.config import (
    PLANCK_C1,
    PLANCK_C2,
    S2_PIXEL_M,
    S2_SOLAR_IRRADIANCE,
    S2_WAVELENGTH_UM,
    STEFAN_BOLTZMANN,
)

# Fisher & Wooster 2018, Remote Sensing 10(2):305: FRP = A_pix * (sigma / a) * L_SWIR.
# Band constants a (W m-2 sr-1 um-1 K-4) derived for Sentinel-2 (domain.md: derived, not published).
SWIR_FRP_A = {"B12": 5.72e-9, "B11": 7.28e-9}


def planck_radiance(wavelength_um: float, temperature_k):
    """Blackbody spectral radiance, W m-2 sr-1 um-1, at ``wavelength_um`` for ``temperature_k``."""
    lam = wavelength_um * 1e-6
    t = np.asarray(temperature_k, dtype=np.float64)
    with np.errstate(over="ignore", divide="ignore"):
        rad = PLANCK_C1 / (lam**5 * np.expm1(PLANCK_C2 / (lam * t)))
    return rad * 1e-6  # per metre -> per micrometre


def brightness_temperature(wavelength_um: float, radiance):
    """Inverse Planck: temperature (K) of a blackbody giving ``radiance`` (W m-2 sr-1 um-1)."""
    lam = wavelength_um * 1e-6
    rad = np.asarray(radiance, dtype=np.float64) * 1e6
    with np.errstate(divide="ignore", invalid="ignore"):
        return PLANCK_C2 / (lam * np.log1p(PLANCK_C1 / (lam**5 * rad)))


def earth_sun_distance_au(day_of_year: int) -> float:
    """Earth-Sun distance (AU), the usual first-order approximation (e.g. Sentinel-2 L1C U factor)."""
    return 1.0 - 0.01672 * math.cos(math.radians(0.9856 * (day_of_year - 4)))


def reflectance_to_radiance(rho, band: str, sun_zenith_deg: float, day_of_year: int = 172,
                            solar_irradiance: Mapping[str, float] | None = None):
    """TOA radiance (W m-2 sr-1 um-1) from reflectance: L = rho E_sun cos(theta_s) / (pi d^2).

    ``solar_irradiance``: E_sun per band (W m-2 um-1) of the tile's spacecraft
    (``tiles.Tile.solar_irradiance``); default ``config.S2_SOLAR_IRRADIANCE`` (Sentinel-2A).
    """
    e_sun = (S2_SOLAR_IRRADIANCE if solar_irradiance is None else solar_irradiance)[band]
    d = earth_sun_distance_au(day_of_year)
    cos_t = math.cos(math.radians(sun_zenith_deg))
    return np.asarray(rho) * e_sun * cos_t / (math.pi * d * d)


def radiance_to_reflectance(radiance, band: str, sun_zenith_deg: float, day_of_year: int = 172,
                            solar_irradiance: Mapping[str, float] | None = None):
    """Inverse of ``reflectance_to_radiance``."""
    e_sun = (S2_SOLAR_IRRADIANCE if solar_irradiance is None else solar_irradiance)[band]
    d = earth_sun_distance_au(day_of_year)
    cos_t = math.cos(math.radians(sun_zenith_deg))
    return np.asarray(radiance) * math.pi * d * d / (e_sun * cos_t)


def radiant_heat_mw(temperature_k, area_m2):
    """Radiant heat of a blackbody source, MW: RH = sigma T^4 S (Elvidge et al. 2013 / VNF)."""
    return STEFAN_BOLTZMANN * np.asarray(temperature_k, dtype=np.float64) ** 4 * np.asarray(area_m2) / 1e6


_RATIO_T_GRID = np.linspace(600.0, 3500.0, 2901)


@lru_cache(maxsize=8)
def _ratio_grid(b12_um: float, b11_um: float) -> np.ndarray:
    return planck_radiance(b12_um, _RATIO_T_GRID) / planck_radiance(b11_um, _RATIO_T_GRID)


def ratio_temperature(l12, l11, wavelength_um: Mapping[str, float] | None = None):
    """Two-band (B12/B11) colour temperature, K, from background-subtracted radiances.

    Solves planck(B12, T) / planck(B11, T) = l12 / l11 by table lookup (600-3500 K); the ratio
    falls monotonically with T. NaN where the ratio is outside the table or not positive.
    ``wavelength_um``: band centres of the tile's spacecraft (``tiles.Tile.wavelength_um``);
    default ``config.S2_WAVELENGTH_UM`` (Sentinel-2A).
    """
    lam = S2_WAVELENGTH_UM if wavelength_um is None else wavelength_um
    ratio_grid = _ratio_grid(float(lam["B12"]), float(lam["B11"]))
    r = np.asarray(l12, dtype=np.float64) / np.asarray(l11, dtype=np.float64)
    # ratio_grid decreases with T: interpolate on the reversed arrays
    t = np.interp(r, ratio_grid[::-1], _RATIO_T_GRID[::-1], left=np.nan, right=np.nan)
    return np.where(np.isfinite(r) & (r > 0), t, np.nan)


def swir_frp_mw(l_swir_sum, band: str = "B12", pixel_m: float = S2_PIXEL_M):
    """Fire radiative power (MW) by the SWIR radiance method (Fisher & Wooster 2018).

    ``l_swir_sum``: background-subtracted spectral radiance summed over the flare's pixels
    (W m-2 sr-1 um-1). FRP = A_pix * sigma / a * L.
    """
    return pixel_m * pixel_m * STEFAN_BOLTZMANN / SWIR_FRP_A[band] * np.asarray(l_swir_sum) / 1e6


def solar_angles(lat_deg: float, day_of_year: int, local_solar_hour: float) -> tuple[float, float]:
    """Sun zenith and azimuth (degrees; azimuth clockwise from north) at a local mean solar time.

    Simple formula: Cooper's declination, hour angle 15 deg/h from solar noon, no equation of time
    or refraction (error ~1 deg, enough for the simulator).
    """
    dec = math.radians(23.45 * math.sin(2.0 * math.pi * (284 + day_of_year) / 365.0))
    lat = math.radians(lat_deg)
    ha = math.radians(15.0 * (local_solar_hour - 12.0))
    cos_z = math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(ha)
    zenith = math.degrees(math.acos(max(-1.0, min(1.0, cos_z))))
    azimuth = math.degrees(math.atan2(-math.sin(ha), math.tan(dec) * math.cos(lat) - math.sin(lat) * math.cos(ha)))
    return zenith, azimuth % 360.0
