"""The simulated sites' static landscape: land-cover reflectances, texture, structures, parcels.

``static_scene(site, size_px)`` is cached per site and tile size; ``simulation.scene`` adds the
day's flames, clouds, fires and glint on top of it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from affine import Affine

from flarewatch.simulation.common import (
    DEFAULT_LAND_COVER,
    apply_affine,
    seeded_rng,
)
from flarewatch.simulation.flares import site_flares as _site_flares_cached
from flarewatch.sites import Site
from flarewatch.tiles import (
    site_grid,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Simulator assumptions (not literature)
# --------------------------------------------------------------------------------------------
# Typical surface reflectance per band (B8A, B11, B12) -- simulator assumption, loosely after
# spectral-library values (bright desert soil, dune sand, green vegetation, mixed cropland, water).
LAND_COVER_REFLECTANCE = {
    "desert": (0.35, 0.45, 0.40),
    "sand": (0.45, 0.55, 0.50),
    "vegetation": (0.35, 0.20, 0.10),
    "cropland": (0.30, 0.25, 0.15),
    "water": (0.02, 0.01, 0.005),
}


BARE_SOIL = (0.30, 0.38, 0.32)  # mixed into vegetation / cropland (assumption)


GREEN_CROP = (0.38, 0.21, 0.10)  # cropland at full green-up (assumption)


STUBBLE = (0.26, 0.31, 0.24)  # cropland after harvest (assumption)


GRAVEL = (0.40, 0.46, 0.42)  # well pads, plant yards: B12/B11 ~ 0.9 (assumption)


ASPHALT = (0.12, 0.15, 0.14)  # paved roads (assumption)


CHAR = (0.06, 0.09, 0.09)  # fresh burn scar (assumption)


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-std gaussian-filtered white noise (FFT filter on a padded grid, cropped)."""
    h, w = shape
    pad = int(min(3.0 * sigma_px, 2 * max(h, w)))
    hp, wp = h + pad, w + pad
    spec = np.fft.rfft2(rng.standard_normal((hp, wp)))
    ky = np.fft.fftfreq(hp)[:, None]
    kx = np.fft.rfftfreq(wp)[None, :]
    spec *= np.exp(-2.0 * (math.pi * sigma_px) ** 2 * (kx * kx + ky * ky))
    out = np.fft.irfft2(spec, s=(hp, wp))[:h, :w]
    out -= out.mean()
    sd = out.std()
    return out / sd if sd > 0 else out


def texture(rng: np.random.Generator, shape, scales=((2.0, 0.35), (8.0, 0.45), (30.0, 0.6))) -> np.ndarray:
    """Multi-scale texture: weighted sum of smooth fields ((sigma_px, weight), ...), unit std."""
    out = sum(wt * smooth_field(rng, shape, s) for s, wt in scales)
    return out / out.std()


def rect_cover(shape, row0: float, col0: float, height: float, width: float) -> tuple[slice, slice, np.ndarray]:
    """Sub-pixel coverage (0-1) of an axis-aligned rectangle; returns the slices it touches."""
    h, w = shape
    r_lo, r_hi = max(int(math.floor(row0)), 0), min(int(math.ceil(row0 + height)), h)
    c_lo, c_hi = max(int(math.floor(col0)), 0), min(int(math.ceil(col0 + width)), w)
    if r_lo >= r_hi or c_lo >= c_hi:
        return slice(0, 0), slice(0, 0), np.zeros((0, 0))
    rr = np.arange(r_lo, r_hi, dtype=float)
    cc = np.arange(c_lo, c_hi, dtype=float)
    cov_r = np.clip(np.minimum(rr + 1, row0 + height) - np.maximum(rr, row0), 0, 1)
    cov_c = np.clip(np.minimum(cc + 1, col0 + width) - np.maximum(cc, col0), 0, 1)
    return slice(r_lo, r_hi), slice(c_lo, c_hi), np.outer(cov_r, cov_c)


@dataclass
class StaticScene:
    """Site content that does not change from day to day (cached per site and tile size)."""

    transform: Affine
    base: np.ndarray  # (3, H, W) float32 surface reflectance incl. structures
    parcels: np.ndarray | None  # cropland parcel id map
    parcel_phase: np.ndarray | None  # per parcel phenology shift (days)
    parcel_cover: np.ndarray | None  # (H, W) fraction of the pixel that is crop (not structure)
    land: np.ndarray  # (H, W) bool: fires may burn here
    texture: np.ndarray  # (H, W) unit-std surface texture of the site


@lru_cache(maxsize=16)
def static_scene(site: Site, size_px: int) -> StaticScene:
    lc = land_cover(site)
    rng = seeded_rng("site-background", site.site_id, size_px)
    shape = (size_px, size_px)
    rows, cols = np.mgrid[0:size_px, 0:size_px].astype(np.float64)
    base = np.empty((3, size_px, size_px), dtype=np.float64)
    bright = texture(rng, shape)
    spectral = smooth_field(rng, shape, 12.0)
    parcels = parcel_phase = None
    if lc in ("desert", "sand"):
        refl = LAND_COVER_REFLECTANCE[lc]
        amp = 0.10 if lc == "desert" else 0.06
        mod = 1.0 + amp * bright
        if lc == "sand":  # dune ripples: oriented waves with a wandering phase
            theta = rng.uniform(0, math.pi)
            wavelength = rng.uniform(25.0, 50.0)
            phase = 2 * math.pi * (cols * math.cos(theta) + rows * math.sin(theta)) / wavelength
            mod = mod + 0.07 * np.sin(phase + 2.5 * smooth_field(rng, shape, 25.0))
        for b in range(3):
            base[b] = refl[b] * mod + 0.012 * spectral * (1.0, -0.5, -0.8)[b]
    elif lc == "vegetation":
        soil_frac = 1.0 / (1.0 + np.exp(-(2.2 * bright - 2.6)))  # mostly canopy, some clearings
        for b in range(3):
            canopy = LAND_COVER_REFLECTANCE[lc][b] * (1 + 0.06 * spectral)
            base[b] = (1 - soil_frac) * canopy + soil_frac * BARE_SOIL[b]
    elif lc == "cropland":
        # Section-line field parcels (N-S grid), each with its own phenology phase.
        p = int(rng.integers(20, 41))
        off_r, off_c = rng.integers(0, p, size=2)
        pr = ((rows + off_r) // p).astype(np.int64)
        pc = ((cols + off_c) // p).astype(np.int64)
        split = rng.random((pr.max() + 1, pc.max() + 1)) < 0.5  # some parcels split in halves
        half = np.where(split[pr, pc], ((cols + off_c) % p) >= p / 2, 0).astype(np.int64)
        parcels = (pr * (pc.max() + 1) + pc) * 2 + half
        parcel_phase = rng.normal(0.0, 25.0, size=int(parcels.max()) + 1)
        for b in range(3):  # placeholder; the day's crop state is mixed in per day
            base[b] = LAND_COVER_REFLECTANCE[lc][b] * (1 + 0.04 * bright)
    else:  # water
        for b in range(3):
            base[b] = LAND_COVER_REFLECTANCE["water"][b] * (1.0 + 0.15 * bright)

    # --- structures: pads under the stacks, roads, tanks, roofs (platforms offshore) -------------
    struct = np.zeros(shape, dtype=np.float64)  # total structure cover, for the cropland mix
    transform = site_grid(site, size_px)
    inv = ~transform
    flare_rc = []
    for st in _site_flares_cached(site):
        c, r = apply_affine(inv, st.x_m, st.y_m)
        flare_rc.append((r, c))
    water = lc == "water"
    for r, c in flare_rc:
        if water:  # platform deck under each stack
            hgt, wid = rng.uniform(2.0, 4.0, size=2)
            refl = tuple(v * rng.uniform(0.8, 1.2) for v in (0.25, 0.23, 0.21))
        else:  # gravel pad
            hgt, wid = rng.uniform(6.0, 14.0, size=2)
            refl = GRAVEL
        r0 = r - hgt * rng.uniform(0.3, 0.7)
        c0 = c - wid * rng.uniform(0.3, 0.7)
        sr, sc, cov = rect_cover(shape, r0, c0, hgt, wid)
        if cov.size:
            for b in range(3):
                base[b, sr, sc] += cov * (refl[b] - base[b, sr, sc])
            struct[sr, sc] = np.maximum(struct[sr, sc], cov)
    if not water:
        for _ in range(int(rng.integers(2, 5))):  # roads through the plant
            r, c = flare_rc[int(rng.integers(len(flare_rc)))] if flare_rc else (size_px / 2, size_px / 2)
            r += rng.uniform(-15, 15)
            c += rng.uniform(-15, 15)
            theta = rng.uniform(0, math.pi)
            width = rng.uniform(0.4, 0.9)  # 8-18 m roads, px
            d = np.abs((cols + 0.5 - c) * math.sin(theta) - (rows + 0.5 - r) * math.cos(theta))
            cov = np.clip(width / 2 + 0.5 - d, 0.0, 1.0) * min(width, 1.0)
            refl = ASPHALT if rng.random() < 0.4 else GRAVEL
            blend(base, cov, refl)
            struct = np.maximum(struct, cov)

    def far_from_flares(r: float, c: float, min_px: float) -> bool:
        return all(math.hypot(r - fr, c - fc) >= min_px for fr, fc in flare_rc)

    def place(min_px: float, spread: float) -> tuple[float, float] | None:
        for _ in range(50):
            if flare_rc:
                fr, fc = flare_rc[int(rng.integers(len(flare_rc)))]
                r, c = fr + rng.uniform(-spread, spread), fc + rng.uniform(-spread, spread)
            else:
                r, c = rng.uniform(10, size_px - 10, size=2)
            if 3 <= r < size_px - 3 and 3 <= c < size_px - 3 and far_from_flares(r, c, min_px):
                return float(r), float(c)
        return None

    # White tank farms: bright, spectrally flat (B12/B11 ~ 0.97), a classic false positive.
    for _ in range(int(rng.integers(1, 4))):
        centre = place(8.0, 25.0)
        if centre is None:
            continue
        n_tanks = int(rng.integers(2, 7))
        radius = rng.uniform(0.8, 1.6)
        for t in range(n_tanks):
            r = centre[0] + (t // 3) * (2.6 * radius + 0.5)
            c = centre[1] + (t % 3) * (2.6 * radius + 0.5)
            if not far_from_flares(r, c, 5.0):
                continue
            lvl = rng.uniform(0.6, 0.9)
            refl = (lvl * 1.02, lvl, lvl * rng.uniform(0.95, 1.0))
            cov = disc_cover(rows, cols, r, c, radius)
            blend(base, cov, refl)
            struct = np.maximum(struct, cov)
    # Metal roofs / bright buildings: flat spectrum, B12/B11 ~ 1.0.
    for _ in range(int(rng.integers(2, 6))):
        centre = place(6.0, 35.0)
        if centre is None:
            continue
        hgt, wid = rng.uniform(1.5, 4.0), rng.uniform(2.0, 6.0)
        lvl = rng.uniform(0.6, 0.9)
        refl = (lvl * rng.uniform(0.95, 1.05), lvl, lvl * rng.uniform(0.97, 1.03))
        sr, sc, cov = rect_cover(shape, centre[0], centre[1], hgt, wid)
        if cov.size:
            for b in range(3):
                base[b, sr, sc] += cov * (refl[b] - base[b, sr, sc])
            struct[sr, sc] = np.maximum(struct[sr, sc], cov)

    land = np.full(shape, not water) & (struct < 0.1)
    for a in (base, struct, land):
        a.setflags(write=False)
    parcel_cover = None
    if parcels is not None:
        parcel_cover = (1.0 - struct).astype(np.float64)
        parcel_cover.setflags(write=False)
        parcels.setflags(write=False)
        parcel_phase.setflags(write=False)
    bright.setflags(write=False)
    return StaticScene(transform, base, parcels, parcel_phase, parcel_cover, land, bright)


def land_cover(site: Site) -> str:
    lc = (site.land_cover or "").strip().lower()
    if lc not in LAND_COVER_REFLECTANCE:
        log.warning("site %s: unknown land_cover %r, simulating %r", site.site_id, site.land_cover, DEFAULT_LAND_COVER)
        return DEFAULT_LAND_COVER
    return lc


def blend(rho: np.ndarray, cover: np.ndarray, refl) -> None:
    """In place: rho = rho * (1 - cover) + cover * refl (per band)."""
    for b in range(3):
        rho[b] += cover * (refl[b] - rho[b])


def disc_cover(rows: np.ndarray, cols: np.ndarray, row: float, col: float, radius: float) -> np.ndarray:
    """Anti-aliased coverage of a disc of ``radius`` px centred at fractional (row, col)."""
    d = np.hypot(rows + 0.5 - row, cols + 0.5 - col)
    return np.clip(radius + 0.5 - d, 0.0, 1.0)
