"""Hot and bright objects of the independent scenes: gas flares, wildfire fronts with burn scars, sun glint.

Flares: a sub-pixel flame of temperature T (K) and area S (m2), spread along a short segment (the
flame leans with the wind), radiant heat RH = sigma T^4 S. Its TOA reflectance excess in a band is
pi * tau_b * L_b(T) * S / A_pix / (E_b cos(theta_s) / (pi d^2) * pi) times the PSF energy in each
pixel (``radiometry.pixel_psf``), L_b the band-averaged Planck radiance. Sites on well pads or
plant yards; a quarter of the sites have two stacks 1.5-4 px apart.

Wildfires: a burn-scar blob (dark NIR, moderately bright SWIR) whose downwind boundary is the
active front: 1-3 px wide, 800-1200 K with a flaming fraction 0.05-3 % of each pixel, a smouldering
band behind it (600-750 K); shapes: arcs, rings (no wind), scattered spot fires, lone
agricultural burns; or an old scar with no fire. Glint: specular reflection of the sun on water,
spectrally flat (B12/B11 ~ 1), patchy (wave facets), sometimes above saturation.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from flarewatch.evaluation.independent import radiometry as rad
from flarewatch.evaluation.independent.landscape import fractal

# Linear calibration used for the *true* volume (domain.md, Zhizhin et al. 2025, Energies
# 18(17):4765, reported): BCM/yr = 0.0115 x RH[MW] -> 0.0115e9 / 365 / 1e3 kscm/d per MW.
TRUE_KSCM_D_PER_MW = 0.0115e9 / 365.0 / 1e3
# Power law (Elvidge et al. 2016, Energies 9(1):14; EOG 2017-2024 slope) kept as a second truth.
POWER_SLOPE, POWER_EXPONENT = 0.029353, 0.7
BURN_SCAR = (0.09, 0.20, 0.17)  # (B8A, B11, B12): charred surface, NIR collapses, SWIR stays


def flare_volumes(rh_mw: float, temperature_k: float, area_m2: float) -> tuple[float, float]:
    """(linear truth, power-law truth) volume in thousand m3/day."""
    power = POWER_SLOPE * rad.SIGMA_SB * temperature_k**4 * area_m2**POWER_EXPONENT / 1e6 * 1e9 / 365.0 / 1e3
    return rh_mw * TRUE_KSCM_D_PER_MW, power


def draw_flares(rng: np.random.Generator, shape, pads: list, water: np.ndarray) -> list[dict]:
    """Flare stacks of one scene (positions, temperature, area, RH, volume); no rendering."""
    h, w = shape
    n_sites = 0 if rng.random() < 0.18 else int(min(rng.poisson(2.6) + 1, 9))
    flares: list[dict] = []
    for site in range(n_sites):
        if pads and rng.random() < 0.75:
            r, c = pads[int(rng.integers(len(pads)))]
            r, c = r + rng.uniform(-2, 2), c + rng.uniform(-2, 2)
        else:
            r, c = rng.uniform(12, h - 12), rng.uniform(12, w - 12)
        stacks = [(r, c)]
        if rng.random() < 0.25:  # a second stack 1.5-4 px away
            d, a = rng.uniform(1.5, 4.0), rng.uniform(0, 2 * math.pi)
            stacks.append((r + d * math.sin(a), c + d * math.cos(a)))
        wind = rng.uniform(0, 2 * math.pi)
        for sr, sc in stacks:
            t = float(np.clip(rng.normal(1760, 170), 1300, 2200))
            rh = float(np.clip(10 ** rng.normal(0.15, 0.6), 0.03, 80.0))
            area = rh * 1e6 / (rad.SIGMA_SB * t**4)
            length_px = float(np.clip(4.0 * math.sqrt(area), 1.0, 30.0)) / rad.PIXEL_M
            vol, vol_pow = flare_volumes(rh, t, area)
            # The flame leans downwind from the stack tip: its centroid is half a length away.
            cr, cc = sr + 0.5 * length_px * math.sin(wind), sc + 0.5 * length_px * math.cos(wind)
            flares.append({
                "id": len(flares), "site": site, "row": float(np.clip(cr, 8, h - 8)), "col": float(np.clip(cc, 8, w - 8)),
                "temperature_k": t, "area_m2": float(area), "radiant_heat_mw": rh,
                "volume_kscm_d": vol, "volume_power_kscm_d": vol_pow, "flame_length_px": length_px,
                "wind_rad": float(wind), "offshore": bool(water[int(sr) % h, int(sc) % w]), "n_stacks_site": len(stacks),
            })
    for f in flares:  # distance to the nearest other flare (stack neighbours)
        others = [math.hypot(f["row"] - g["row"], f["col"] - g["col"]) for g in flares if g is not f]
        f["nearest_flare_px"] = float(min(others)) if others else None
    return flares


def render_flare(out: np.ndarray, flare: dict, sc: str, sun_zenith: float, doy: int, tau: dict,
                 shifts: dict, psf: dict, attenuation: float) -> dict:
    """Add one flare's TOA reflectance excess to ``out`` (3, H, W); returns per-band peak pixel excess.

    A flame of area S fills S / A_pix of a pixel: the pixel-summed radiance excess is
    tau_b * L_b(T) * S / A_pix, i.e. a pixel-summed reflectance excess of that over
    E_b cos(theta_s) / (pi d^2), spread by the PSF, shifted by the band's misregistration.
    """
    n_sub = 5
    offs = (np.arange(n_sub) - (n_sub - 1) / 2) / n_sub * flare["flame_length_px"]
    peaks = {}
    for b, band in enumerate(rad.BANDS):
        lrad = float(rad.band_radiance(sc, band, flare["temperature_k"]))
        total = lrad * flare["area_m2"] / rad.PIXEL_M**2 * tau[band] * attenuation
        total /= rad.radiance_per_reflectance(sc, band, sun_zenith, doy)
        layer = np.zeros(out.shape[1:], np.float64)
        for o in offs:
            r = flare["row"] + o * math.sin(flare["wind_rad"]) + shifts[band][0]
            c = flare["col"] + o * math.cos(flare["wind_rad"]) + shifts[band][1]
            r0, c0, k = rad.pixel_psf(r, c, psf)
            _add_window(layer, r0, c0, k * (total / n_sub))
        out[b] += layer.astype(out.dtype)
        peaks[band] = float(layer.max())
    return peaks


def _add_window(img: np.ndarray, r0: int, c0: int, k: np.ndarray) -> None:
    h, w = img.shape
    n, m = k.shape
    a, b = max(r0, 0), max(c0, 0)
    e, f = min(r0 + n, h), min(c0 + m, w)
    if a < e and b < f:
        img[a:e, b:f] += k[a - r0:e - r0, b - c0:f - c0]


def draw_wildfires(rng: np.random.Generator, ground: np.ndarray, emit: np.ndarray, sc: str, sun_zenith: float,
                   doy: int, tau: dict) -> list[dict]:
    """Paint burn scars into ``ground`` and fire emission (TOA reflectance) into ``emit``; truth list."""
    h, w = ground.shape[1:]
    u = rng.random()
    if u < 0.70:
        return []
    kinds = ["front"] if u < 0.84 else (["scar"] if u < 0.90 else ["spots"] if u < 0.95 else ["ag_burn"])
    fires: list[dict] = []
    l_per_rho = {b: rad.radiance_per_reflectance(sc, b, sun_zenith, doy) for b in rad.BANDS}

    def emit_pixels(rr, cc, temps, fracs):
        for b, band in enumerate(rad.BANDS):
            lrad = rad.band_radiance(sc, band, temps)
            np.add.at(emit[b], (rr, cc), lrad * fracs * tau[band] / l_per_rho[band])

    for kind in kinds:
        if kind in ("front", "scar"):
            a, b_ax = rng.uniform(6, 110), rng.uniform(4, 50)
            cr, cc0 = rng.uniform(0, h), rng.uniform(0, w)
            ang = rng.uniform(0, math.pi)
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            du, dv = (xx - cc0) * math.cos(ang) + (yy - cr) * math.sin(ang), -(xx - cc0) * math.sin(ang) + (yy - cr) * math.cos(ang)
            ell = (du / a) ** 2 + (dv / b_ax) ** 2
            blob = (ell + 0.25 * fractal(rng, (h, w), 3.0)) < 1.0
            if blob.sum() < 6:
                continue
            depth = rng.uniform(0.6, 1.0)
            for band in range(3):
                ground[band][blob] = ground[band][blob] * (1 - depth) + BURN_SCAR[band] * depth * rng.uniform(0.85, 1.15)
            rr, cc = np.nonzero(blob)
            scar_bbox = [int(rr.min()), int(cc.min()), int(rr.max()) + 1, int(cc.max()) + 1]
            if kind == "scar":
                fires.append({"kind": "scar", "active": False, "row": float(rr.mean() + 0.5), "col": float(cc.mean() + 0.5),
                              "bbox": scar_bbox, "scar_bbox": scar_bbox, "radiant_heat_mw": 0.0, "temperature_k": None})
                continue
            width = int(rng.integers(1, 4))
            edge = blob & ~ndimage.binary_erosion(blob, iterations=width)
            er, ec = np.nonzero(edge)
            ring = rng.random() < 0.2
            if not ring:  # the downwind side only: an elongated arc
                wind = rng.uniform(0, 2 * math.pi)
                proj = (ec - cc0) * math.cos(wind) + (er - cr) * math.sin(wind)
                keep = proj > np.quantile(proj, rng.uniform(0.45, 0.8))
                er, ec = er[keep], ec[keep]
            if rng.random() < 0.4:  # gaps: the front is broken
                keep = fractal(rng, (h, w), 2.0)[er, ec] > -0.3
                er, ec = er[keep], ec[keep]
            if er.size == 0:
                continue
            temps = rng.uniform(800, 1200, size=er.size)
            fracs = np.exp(rng.uniform(math.log(5e-4), math.log(3e-2), size=er.size))
            emit_pixels(er, ec, temps, fracs)
            inner = blob & ndimage.binary_dilation(edge, iterations=2) & ~edge
            sr, scc = np.nonzero(inner)
            if sr.size:
                emit_pixels(sr, scc, rng.uniform(600, 750, size=sr.size), np.exp(rng.uniform(-6.0, -3.5, size=sr.size)))
            rh = float(np.sum(rad.SIGMA_SB * temps**4 * fracs * rad.PIXEL_M**2) / 1e6)
            fires.append({"kind": "ring" if ring else "front", "active": True, "row": float(er.mean() + 0.5),
                          "col": float(ec.mean() + 0.5), "bbox": [int(er.min()), int(ec.min()), int(er.max()) + 1, int(ec.max()) + 1],
                          "scar_bbox": scar_bbox, "radiant_heat_mw": rh, "temperature_k": float(np.mean(temps)),
                          "n_active_px": int(er.size)})
        else:  # scattered spot fires or a lone agricultural burn: 1-6 px hot spots with small scars
            n = int(rng.integers(3, 12)) if kind == "spots" else 1
            cr, cc0 = rng.uniform(20, h - 20), rng.uniform(20, w - 20)
            for _ in range(n):
                r = int(np.clip(cr + rng.normal(0, 25 if kind == "spots" else 0), 4, h - 5))
                c = int(np.clip(cc0 + rng.normal(0, 25 if kind == "spots" else 0), 4, w - 5))
                size = int(rng.integers(1, 3))
                rr, cc = np.mgrid[r:r + size, c:c + size]
                rr, cc = rr.ravel(), cc.ravel()
                for band in range(3):
                    ground[band][r - 1:r + size + 1, c - 1:c + size + 1] = BURN_SCAR[band] * rng.uniform(0.9, 1.3)
                temps = rng.uniform(800, 1200, size=rr.size)
                fracs = np.exp(rng.uniform(math.log(3e-4), math.log(1.5e-2), size=rr.size))
                emit_pixels(rr, cc, temps, fracs)
                rh = float(np.sum(rad.SIGMA_SB * temps**4 * fracs * rad.PIXEL_M**2) / 1e6)
                box = [r - 1, c - 1, r + size + 1, c + size + 1]
                fires.append({"kind": kind, "active": True, "row": float(rr.mean() + 0.5), "col": float(cc.mean() + 0.5),
                              "bbox": box, "scar_bbox": box, "radiant_heat_mw": rh, "temperature_k": float(np.mean(temps)),
                              "n_active_px": int(rr.size)})
    return fires


def draw_glint(rng: np.random.Generator, ground: np.ndarray, water: np.ndarray) -> tuple[list[dict], np.ndarray]:
    """Sun glint on water (spectrally flat), painted into ``ground``; (objects, glint mask)."""
    h, w = water.shape
    mask = np.zeros((h, w), bool)
    if not water.any() or rng.random() > 0.65:
        return [], mask
    level = float(10 ** rng.uniform(-1.3, 0.2))  # 0.05 .. 1.6 reflectance
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wr, wc = np.nonzero(water)
    k = int(rng.integers(wr.size))
    cr, cc = float(wr[k]), float(wc[k])
    env = np.exp(-(((yy - cr) / rng.uniform(60, 400)) ** 2 + ((xx - cc) / rng.uniform(60, 400)) ** 2))
    facets = np.exp(rng.uniform(0.5, 1.1) * fractal(rng, (h, w), rng.uniform(0.8, 1.8)))
    glint = (level * env * facets).astype(np.float32) * water
    tilt = rng.uniform(-0.03, 0.03, size=3)  # flat within a few per cent
    for b in range(3):
        ground[b] += glint * np.float32(1.0 + tilt[b])
    mask = glint > 0.05
    objects = []
    lab, n = ndimage.label(glint > max(0.15, 0.3 * level))
    if n:
        sizes = ndimage.sum_labels(np.ones_like(glint), lab, index=np.arange(1, n + 1))
        peaks = ndimage.maximum(glint, lab, index=np.arange(1, n + 1))
        slices = ndimage.find_objects(lab)
        for i in np.argsort(-peaks)[:40]:
            sl = slices[i]
            objects.append({"row": float((sl[0].start + sl[0].stop) / 2), "col": float((sl[1].start + sl[1].stop) / 2),
                            "bbox": [sl[0].start, sl[1].start, sl[0].stop, sl[1].stop], "peak_rho": float(peaks[i]),
                            "n_px": int(sizes[i])})
    if mask.any():
        rr, cc = np.nonzero(mask)
        objects.insert(0, {"row": float(rr.mean() + 0.5), "col": float(cc.mean() + 0.5), "region": True,
                           "bbox": [int(rr.min()), int(cc.min()), int(rr.max()) + 1, int(cc.max()) + 1],
                           "peak_rho": float(glint.max()), "n_px": int(mask.sum())})
    return objects, mask
