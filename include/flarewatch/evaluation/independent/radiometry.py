"""Radiometry for the independent scenes: per-spacecraft constants, band-integrated Planck, PSF, noise.

Everything here is written from the physics and the constants in ``shared/docs/domain.md``; no
constant is taken from the package's own configuration, so a wrong constant there shows up as an
error here instead of cancelling out.
"""

from __future__ import annotations

import math

import numpy as np

BANDS = ("B8A", "B11", "B12")
PIXEL_M = 20.0
SIGMA_SB = 5.670374419e-8  # Stefan-Boltzmann, W m-2 K-4 (CODATA 2018)
H_PLANCK, C_LIGHT, K_BOLTZ = 6.62607015e-34, 2.99792458e8, 1.380649e-23  # SI, exact (2019 SI)

# Band centres (um) and solar irradiance (W m-2 um-1) per spacecraft: domain.md "Per-spacecraft
# constants" (COPE-GSEG-EOPG-TN-15-0007 v3.0; MTD_MSIL1C.xml Solar_Irradiance_List).
SPACECRAFT = {
    "Sentinel-2A": {
        "centre_um": {"B8A": 0.8647, "B11": 1.6137, "B12": 2.2024},
        "esun": {"B8A": 955.19, "B11": 245.59, "B12": 85.25},
        # Bandwidths (um), approximate FWHM of the S2A spectral responses (assumption, same document).
        "width_um": {"B8A": 0.021, "B11": 0.091, "B12": 0.175},
    },
    "Sentinel-2B": {
        "centre_um": {"B8A": 0.8640, "B11": 1.6104, "B12": 2.1857},
        "esun": {"B8A": 953.93, "B11": 247.08, "B12": 87.75},
        "width_um": {"B8A": 0.021, "B11": 0.094, "B12": 0.185},
    },
}

# Saturation radiance (W m-2 sr-1 um-1): the level above which the detector clips. Approximate MSI
# Lmax values (assumption; not in domain.md). Clipped pixels are written as DN 65535.
L_SATURATION = {"B8A": 330.0, "B11": 72.0, "B12": 26.0}
# Radiometric noise: reference radiance and SNR there (MSI requirement values, assumption), with a
# shot-noise term growing as sqrt(L) and a dark-noise floor.
L_REF = {"B8A": 52.0, "B11": 4.0, "B12": 1.5}
SNR_REF = {"B8A": 72.0, "B11": 100.0, "B12": 100.0}


def planck_um(wavelength_um, temperature_k):
    """Blackbody spectral radiance, W m-2 sr-1 um-1 (SI Planck law written out here)."""
    lam = np.asarray(wavelength_um, dtype=np.float64) * 1e-6
    t = np.asarray(temperature_k, dtype=np.float64)
    x = H_PLANCK * C_LIGHT / (lam * K_BOLTZ * t)
    with np.errstate(over="ignore"):
        rad = 2.0 * H_PLANCK * C_LIGHT**2 / (lam**5 * np.expm1(x))
    return rad * 1e-6


def band_radiance(spacecraft: str, band: str, temperature_k) -> np.ndarray:
    """Blackbody radiance averaged over a box spectral response of the band (9 samples)."""
    sc = SPACECRAFT[spacecraft]
    c, w = sc["centre_um"][band], sc["width_um"][band]
    lams = c + w * (np.arange(9) - 4) / 8.0
    t = np.asarray(temperature_k, dtype=np.float64)
    return np.mean([planck_um(lam, t) for lam in lams], axis=0)


def inverse_sq_distance(day_of_year: int) -> float:
    """(1/d)^2 of the Earth-Sun distance d (AU): Duffie & Beckman's 1 + 0.033 cos(2 pi n / 365)."""
    return 1.0 + 0.033 * math.cos(2.0 * math.pi * day_of_year / 365.0)


def radiance_per_reflectance(spacecraft: str, band: str, sun_zenith_deg: float, day_of_year: int) -> float:
    """L = rho * E_sun cos(theta_s) / (pi d^2): the radiance of unit TOA reflectance."""
    esun = SPACECRAFT[spacecraft]["esun"][band]
    return esun * math.cos(math.radians(sun_zenith_deg)) * inverse_sq_distance(day_of_year) / math.pi


def sun_zenith(lat_deg: float, day_of_year: int, solar_hour: float) -> float:
    """Solar zenith angle (deg) from Spencer's declination series and the hour angle."""
    g = 2.0 * math.pi * (day_of_year - 1) / 365.0
    dec = (0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g) - 0.006758 * math.cos(2 * g)
           + 0.000907 * math.sin(2 * g) - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g))
    lat, ha = math.radians(lat_deg), math.radians(15.0 * (solar_hour - 12.0))
    cz = math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec) * math.cos(ha)
    return math.degrees(math.acos(max(-1.0, min(1.0, cz))))


# ------------------------------------------------------------------------------------------
# Point-spread function: gaussian core + power-law wings, integrated over the pixel
# ------------------------------------------------------------------------------------------
PSF_OVERSAMPLE = 5
PSF_RADIUS_PX = 6


def psf_params(rng: np.random.Generator) -> dict:
    """One scene's PSF: core sigma (px), wing weight, wing scale (px) and exponent."""
    return {
        "core_sigma_px": float(rng.uniform(0.38, 0.55)),
        "wing_weight": float(rng.uniform(0.06, 0.16)),
        "wing_scale_px": float(rng.uniform(0.7, 1.3)),
        "wing_beta": float(rng.uniform(1.4, 1.9)),
    }


def _psf_density(dr: np.ndarray, dc: np.ndarray, p: dict) -> np.ndarray:
    r2 = dr * dr + dc * dc
    core = np.exp(-0.5 * r2 / p["core_sigma_px"] ** 2)
    core /= core.sum()
    wing = (1.0 + r2 / p["wing_scale_px"] ** 2) ** (-p["wing_beta"])
    wing /= wing.sum()
    return (1.0 - p["wing_weight"]) * core + p["wing_weight"] * wing


def pixel_psf(row: float, col: float, p: dict, radius: int = PSF_RADIUS_PX):
    """Fraction of a point source at continuous (row, col) falling in each pixel of a window.

    Returns ``(r0, c0, weights)``: ``weights[i, j]`` is the energy in pixel (r0 + i, c0 + j); pixel
    (i, j) covers [i, i+1) x [j, j+1). The window holds ~99 % of the energy (wings truncated).
    """
    r0, c0 = int(math.floor(row)) - radius, int(math.floor(col)) - radius
    n = 2 * radius + 1
    s = PSF_OVERSAMPLE
    sub = (np.arange(n * s) + 0.5) / s  # sub-sample centres in window coordinates
    dr = sub[:, None] + r0 - row
    dc = sub[None, :] + c0 - col
    dens = _psf_density(dr, dc, p)
    return r0, c0, dens.reshape(n, s, n, s).sum(axis=(1, 3))


def blur_kernel(p: dict, shift_rc: tuple[float, float] = (0.0, 0.0), radius: int = 4) -> np.ndarray:
    """Pixel-level kernel for blurring a background band, with a sub-pixel shift (misregistration)."""
    _, _, k = pixel_psf(radius + 0.5 + shift_rc[0], radius + 0.5 + shift_rc[1], p, radius=radius)
    return k / k.sum()


def add_noise(rng: np.random.Generator, rho: np.ndarray, band: str, l_per_rho: float) -> np.ndarray:
    """Radiometric noise on a reflectance band: sigma_L = L_ref/SNR * sqrt(0.3 + 0.7 L/L_ref)."""
    lum = np.clip(rho, 0.0, None) * l_per_rho
    sigma_l = L_REF[band] / SNR_REF[band] * np.sqrt(0.3 + 0.7 * lum / L_REF[band])
    return rho + rng.standard_normal(rho.shape).astype(np.float32) * (sigma_l / l_per_rho).astype(np.float32)
