"""Domain randomisation of simulated scenes, for detector TRAINING DATA only (issue 10, item 2).

The shipped detector learned our simulator: on scenes from an independent generator it boxed sun
glint, cloud edges, well pads, soil and wildfire fronts, and merged stacks 1.5-4 px apart. This
module widens the training domain over everything a detector could latch onto, so that the only
thing that stays fixed between a positive and a negative is the physics of a flame (a sub-pixel
1400-2200 K source: B12 > B11 >> B8A excess over its surroundings).

``randomize_scene(scene, seed, split)`` takes a ``simulation.scene.SimulatedScene`` and returns a
new one (tile and truth); it is deterministic in ``(seed, split, site_id, date)``. Everything is
done in reflectance, then written back as DN. Each step below is applied with its own probability
(``RandomizeSpec``), so some scenes stay close to the simulator and others are far from it:

1. Product level: L1C-like (TOA) or L2A-like (BOA: per-band gains, B8A up to +25 %); the tile's
   reflectance offset is -0.1 (baseline >= 04.00) or 0 (older products).
2. Surface: bare soil patches, field edges (straight-edged parcels of soil / crop / stubble),
   roads (asphalt, gravel, concrete, 1-2.5 px), well pads (bright gravel 3-9 px, B12/B11 ~ 0.9),
   towns (clusters of small roofs of mixed materials) and bright metal roofs / tanks with a flat
   spectrum (B12/B11 0.92-1.05) up to reflectance 2.5, i.e. often saturated. Structures keep
   >= 5 px from the stacks so they never hide a flare.
3. Water and strong sun glint: a water body with glitter facets, peak 0.6-3.0 (saturating),
   spectrally flat (``truth["glint"]`` is set).
4. Hot sources (Planck, pixel-integrated gaussian PSF as the simulator, at a random sun zenith
   15-75 deg and with the Sentinel-2A or 2B band centres and solar irradiances, ``config``):
   extra isolated flares (0.05-30 MW, 1400-2200 K) and *pairs of stacks 1.5-4 px apart* (each
   its own truth flare, hence two labels); wildfires (800-1200 K, 1-3 of them: straight or bent
   fronts, rings, scattered spot clusters and compact 1-3 px fires, 2-40 px, some with a burn
   scar), >= 10 px from any stack, added to ``truth["fires"]`` (never labelled).
5. Clouds (sharp-edged cumulus or broad decks, 0.25-1.0 reflectance, bright thin edges, shadow),
   thin haze. ``tile.cloud_mask`` gets the new cloud (opacity >= 0.2).
6. Sensor: extra gaussian blur (sigma 0-0.6 px) and power-law PSF wings (1-12 % of the energy in
   a ``(1 + r^2/r0^2)^-1.5`` halo), sub-pixel B11/B12 (and B8A) misregistration (+-0.5 px),
   noise sd 0.001-0.012, per-band saturation levels 1.0-2.0 written either as DN 65535 (the ESA
   special value for saturated pixels, ``MTD_MSIL1C.xml``) or as a clipping plateau, and
   nodata edges (slanted strips or corners, DN 0).

Labels stay consistent with the flame truth: every added flare is a truth flare (active, in the
scene unless under nodata, ``saturated`` recomputed from the final DN), and the dataset labeller
(``training.detector_data.visible_flares``) decides visibility on the final randomised B12, as
for plain simulator scenes. Fires, glint, roofs, clouds are unlabelled: the hard negatives.
``truth["randomization"]`` records what was applied (for tests and tagging).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from datetime import date

import numpy as np
from scipy import ndimage
from scipy.signal import fftconvolve
from scipy.special import ndtr

from flarewatch import physics
from flarewatch.config import S2_BANDS, S2_NODATA_DN, S2_SPACECRAFT_CONSTANTS, STEFAN_BOLTZMANN
from flarewatch.detect.threshold import S2_SATURATED_DN
from flarewatch.simulation.landscape import smooth_field
from flarewatch.simulation.scene import PSF_SIGMA_PX, SimulatedScene
from flarewatch.tiles import Tile

RANDOMIZER_VERSION = "dr-v1"
PIXEL_AREA_M2 = 400.0
KSCM_D_PER_MW = 31.5  # nominal flow per MW for the truth of added flares (simulation.common)


@dataclass(frozen=True)
class RandomizeSpec:
    """Probabilities (per scene) and ranges of the randomisation steps (module doc)."""

    p_l2a: float = 0.35
    p_soil: float = 0.5
    p_fields: float = 0.35
    p_roads: float = 0.6
    p_pads: float = 0.6
    p_town: float = 0.3
    p_roofs: float = 0.6
    p_glint: float = 0.3
    p_extra_flares: float = 0.6
    p_pairs: float = 0.5
    p_fire: float = 0.45
    p_cloud: float = 0.4
    p_haze: float = 0.3
    p_blur: float = 0.5
    p_wings: float = 0.4
    p_misregister: float = 0.6
    p_dn65535: float = 0.5
    p_nodata: float = 0.15
    p_sentinel2b: float = 0.5


def scene_rng(seed: int, split: str, site_id: str, day: date | str) -> np.random.Generator:
    key = f"flarewatch-randomize|{RANDOMIZER_VERSION}|{seed}|{split}|{site_id}|{day}"
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "little"))


# ---------------------------------------------------------------------------------------- helpers
def _grid(n: int, m: int):
    return np.mgrid[0:n, 0:m].astype(np.float64) + 0.5


def _blend(rho: np.ndarray, cover: np.ndarray, refl) -> None:
    for b in range(3):
        rho[b] += cover * (refl[b] - rho[b])


def _far_from(points, r: float, c: float, dist: float) -> bool:
    return all(math.hypot(r - pr, c - pc) >= dist for pr, pc in points)


def _keepout(shape, points, radius: float) -> np.ndarray:
    """1 where structures may go, 0 within ``radius`` px of any point (stacks)."""
    rr, cc = _grid(*shape)
    out = np.ones(shape)
    for pr, pc in points:
        out[np.hypot(rr - pr, cc - pc) < radius] = 0.0
    return out


def _line_cover(shape, r0, c0, theta, width) -> np.ndarray:
    rr, cc = _grid(*shape)
    d = np.abs((rr - r0) * math.cos(theta) - (cc - c0) * math.sin(theta))
    return np.clip(width / 2.0 + 0.5 - d, 0.0, 1.0)


def _rect(shape, r0, c0, h, w) -> np.ndarray:
    out = np.zeros(shape)
    out[max(int(r0), 0) : max(int(r0 + h), 0), max(int(c0), 0) : max(int(c0 + w), 0)] = 1.0
    return out


def planck_reflectance(temperature_k: float, sza: float, doy: int, spacecraft: str) -> np.ndarray:
    """Per-band reflectance of a blackbody filling a 20 m pixel, with the spacecraft's constants."""
    k = S2_SPACECRAFT_CONSTANTS[spacecraft]
    return np.array([float(physics.radiance_to_reflectance(
        physics.planck_radiance(k["wavelength_um"][b], temperature_k), b, sza, doy,
        solar_irradiance=k["solar_irradiance"])) for b in S2_BANDS])


def add_point_source(hot, occl, row, col, area_m2, refl_full, sigma=PSF_SIGMA_PX) -> None:
    """Sub-pixel hot source through a pixel-integrated gaussian PSF (as ``simulation.scene``)."""
    _, h, w = hot.shape
    lo_r, lo_c = int(math.floor(row - 4 * sigma)), int(math.floor(col - 4 * sigma))
    er = np.arange(lo_r, int(math.ceil(row + 4 * sigma)) + 1, dtype=float)
    ec = np.arange(lo_c, int(math.ceil(col + 4 * sigma)) + 1, dtype=float)
    wr, wc = np.diff(ndtr((er - row) / sigma)), np.diff(ndtr((ec - col) / sigma))
    rs, re_, cs, ce = max(lo_r, 0), min(lo_r + len(wr), h), max(lo_c, 0), min(lo_c + len(wc), w)
    if rs >= re_ or cs >= ce:
        return
    frac = np.outer(wr[rs - lo_r : re_ - lo_r], wc[cs - lo_c : ce - lo_c]) * (area_m2 / PIXEL_AREA_M2)
    for b in range(3):
        hot[b, rs:re_, cs:ce] += frac * refl_full[b]
    occl[rs:re_, cs:ce] += frac


# ---------------------------------------------------------------------------------------- surface
def _surface(rng, rho, stacks, spec: RandomizeSpec, applied: list) -> None:
    _, n, m = rho.shape
    keep = _keepout((n, m), stacks, 5.0)
    if rng.random() < spec.p_soil:
        for _ in range(int(rng.integers(1, 4))):
            f = smooth_field(rng, (n, m), float(rng.uniform(3, 20)))
            cover = np.clip((f - rng.uniform(0.3, 1.5)) * rng.uniform(1, 6), 0, 1) * rng.uniform(0.4, 1.0)
            soil = rng.uniform(0.15, 0.55) * np.array([rng.uniform(0.7, 1.0), 1.0, rng.uniform(0.75, 1.0)])
            _blend(rho, cover * keep, soil)
        applied.append("soil")
    if rng.random() < spec.p_fields:
        rr, cc = _grid(n, m)
        region = np.zeros((n, m), int)
        for k in range(int(rng.integers(1, 5))):
            th, r0, c0 = rng.uniform(0, math.pi), rng.uniform(0, n), rng.uniform(0, m)
            region += ((rr - r0) * math.cos(th) - (cc - c0) * math.sin(th) > 0).astype(int) << k
        for reg in np.unique(region):
            kind = rng.integers(3)
            refl = ((0.38, 0.21, 0.10), (0.26, 0.31, 0.24), (0.30, 0.38, 0.32))[kind]
            refl = np.array(refl) * rng.uniform(0.7, 1.3)
            _blend(rho, (region == reg) * keep * rng.uniform(0.3, 0.9), refl)
        applied.append("fields")
    if rng.random() < spec.p_roads:
        for _ in range(int(rng.integers(1, 5))):
            mat = [(0.12, 0.15, 0.14), (0.40, 0.46, 0.42), (0.30, 0.36, 0.34)][int(rng.integers(3))]
            cover = _line_cover((n, m), rng.uniform(0, n), rng.uniform(0, m), rng.uniform(0, math.pi),
                                rng.uniform(0.6, 2.5))
            _blend(rho, cover * keep, np.array(mat) * rng.uniform(0.8, 1.2))
        applied.append("roads")
    if rng.random() < spec.p_pads:
        for _ in range(int(rng.integers(2, 12))):
            s = rng.uniform(3, 9, size=2)
            cover = _rect((n, m), rng.uniform(-2, n), rng.uniform(-2, m), s[0], s[1])
            pad = np.array((0.40, 0.46, 0.42)) * rng.uniform(0.8, 1.4)
            _blend(rho, cover * keep, pad)
        applied.append("pads")
    n_roofs = 0
    if rng.random() < spec.p_town:
        cr, cc_ = rng.uniform(0, n), rng.uniform(0, m)
        size = rng.uniform(15, 60)
        for _ in range(int(rng.integers(20, 80))):
            r0, c0 = cr + rng.normal(0, size / 2), cc_ + rng.normal(0, size / 2)
            mat = rng.integers(3)
            if mat == 0:  # concrete / tiles
                refl = rng.uniform(0.2, 0.5) * np.array([rng.uniform(0.8, 1.3), 1.0, rng.uniform(0.75, 0.95)])
            else:  # metal: spectrally flat, can saturate
                refl = rng.uniform(0.3, 2.2) * np.array([rng.uniform(0.9, 1.1), 1.0, rng.uniform(0.92, 1.05)])
                n_roofs += 1
            _blend(rho, _rect((n, m), r0, c0, *rng.uniform(1, 4, size=2)) * keep, refl)
        applied.append("town")
    if rng.random() < spec.p_roofs:
        for _ in range(int(rng.integers(1, 10))):
            refl = rng.uniform(0.4, 2.5) * np.array([rng.uniform(0.9, 1.1), 1.0, rng.uniform(0.92, 1.05)])
            _blend(rho, _rect((n, m), rng.uniform(0, n), rng.uniform(0, m), *rng.uniform(1, 5, size=2)) * keep, refl)
            n_roofs += 1
    if n_roofs:
        applied.append("roofs")


def _glint(rng, rho, applied: list) -> None:
    _, n, m = rho.shape
    rr, cc = _grid(n, m)
    water = np.clip(smooth_field(rng, (n, m), rng.uniform(15, 40)) + rng.uniform(0.0, 1.5), 0, 1)
    _blend(rho, water, (0.02, 0.01, 0.005))
    gr, gc, rad = rng.uniform(0, n), rng.uniform(0, m), rng.uniform(0.1, 0.4) * n
    blob = np.exp(-((rr - gr) ** 2 + (cc - gc) ** 2) / (2 * rad * rad))
    facets = np.clip(rng.uniform(0.2, 0.6) + 0.4 * smooth_field(rng, (n, m), rng.uniform(0.6, 1.5)), 0, None) ** 2
    g = rng.uniform(0.6, 3.0) * blob * facets / max(float(facets.max()), 1e-6) * water
    flat = (rng.uniform(0.97, 1.06), 1.0, rng.uniform(0.94, 1.03))
    for b in range(3):
        rho[b] += g * flat[b]
    applied.append("glint")


# ---------------------------------------------------------------------------------------- hot sources
def _new_flare(fid, row, col, rng, sza, doy, craft, hot, occl, temp=None) -> dict:
    rh = float(math.exp(rng.uniform(math.log(0.05), math.log(30.0))))
    temp = float(rng.uniform(1400, 2200)) if temp is None else temp
    area = rh * 1e6 / (STEFAN_BOLTZMANN * temp**4)
    add_point_source(hot, occl, row, col, area, planck_reflectance(temp, sza, doy, craft))
    return {"flare_id": fid, "row": round(row, 4), "col": round(col, 4), "active": True,
            "flow_kscm_d": round(rh * KSCM_D_PER_MW, 4), "temperature_k": round(temp, 1),
            "flame_area_m2": round(area, 5), "radiant_heat_mw": round(rh, 5), "cloud_covered": False,
            "saturated": False, "in_scene": True, "added": True}


def _hot_sources(rng, rho, scene, stacks, sza, doy, craft, spec, applied) -> tuple[list, list, list]:
    """Extra flares, close pairs and wildfires; returns (new flares, new fires, pair id tuples)."""
    _, n, m = rho.shape
    hot, occl = np.zeros_like(rho), np.zeros((n, m))
    flares, fires, pairs = [], [], []
    taken = list(stacks)
    sid, iso = scene.site_id, scene.acquisition_date.isoformat()

    def spot(margin=4.0, dist=12.0):
        for _ in range(40):
            r, c = rng.uniform(margin, n - margin), rng.uniform(margin, m - margin)
            if _far_from(taken, r, c, dist):
                return r, c
        return None

    if rng.random() < spec.p_extra_flares:
        for _ in range(int(rng.integers(1, 5))):
            p = spot()
            if p:
                flares.append(_new_flare(f"{sid}-X{len(flares)}", *p, rng, sza, doy, craft, hot, occl))
                taken.append(p)
        applied.append("extra_flares")
    if rng.random() < spec.p_pairs:
        for _ in range(int(rng.integers(1, 4))):
            p = spot(margin=8.0, dist=14.0)
            if not p:
                continue
            d, th = rng.uniform(1.5, 4.0), rng.uniform(0, 2 * math.pi)
            q = (p[0] + d * math.sin(th), p[1] + d * math.cos(th))
            t = float(rng.uniform(1400, 2200))
            a = _new_flare(f"{sid}-P{len(pairs)}a", *p, rng, sza, doy, craft, hot, occl, temp=t)
            b = _new_flare(f"{sid}-P{len(pairs)}b", *q, rng, sza, doy, craft, hot, occl,
                           temp=float(np.clip(t + rng.normal(0, 80), 1400, 2200)))
            flares += [a, b]
            pairs.append((a["flare_id"], b["flare_id"]))
            taken += [p, q]
        applied.append("pairs")
    if rng.random() < spec.p_fire:
        for k in range(int(rng.integers(1, 4))):
            p = spot(margin=6.0, dist=14.0)
            if not p:
                continue
            shape = ("front", "ring", "spots", "compact")[int(rng.integers(4))]
            length = float(rng.uniform(1, 3) if shape == "compact" else rng.uniform(3, 40))
            t_fire = float(rng.uniform(800, 1200))
            npts = max(2, int(round(length * 2)))
            if shape == "front":
                s, th, bend = np.linspace(-length / 2, length / 2, npts), rng.uniform(0, 2 * math.pi), rng.uniform(-0.2, 0.2)
                pr = p[0] + s * math.sin(th) + bend * s * s * math.cos(th)
                pc = p[1] + s * math.cos(th) - bend * s * s * math.sin(th)
            elif shape == "ring":
                ang = np.linspace(0, 2 * math.pi * rng.uniform(0.4, 1.0), npts)
                pr, pc = p[0] + length / 2 * np.sin(ang), p[1] + length / 2 * np.cos(ang)
            else:
                pr, pc = p[0] + rng.normal(0, length / 3, npts), p[1] + rng.normal(0, length / 3, npts)
            keep = [(r, c) for r, c in zip(pr, pc) if _far_from(stacks, r, c, 10.0)]
            if not keep:
                continue
            temps = np.clip(t_fire + rng.normal(0, 50, len(keep)), 750, 1250)
            areas = rng.lognormal(math.log(rng.uniform(2, 12)), 0.7, len(keep))
            if rng.random() < 0.5:  # burn scar
                rr, cc = _grid(n, m)
                scar = np.clip(1 - np.hypot(rr - p[0], cc - p[1]) / (0.6 * length + 1), 0, 1) ** 0.5
                _blend(rho, 0.8 * scar * _keepout((n, m), stacks, 5.0), (0.06, 0.09, 0.09))
            for (r, c), t, a in zip(keep, temps, areas):
                add_point_source(hot, occl, r, c, float(a), planck_reflectance(float(t), sza, doy, craft))
            fires.append({"fire_id": f"{sid}-DR{iso}-{k}", "row": round(p[0], 4), "col": round(p[1], 4),
                          "temperature_k": round(float(np.average(temps, weights=areas)), 1),
                          "extent_px": round(length + 2.0, 2), "area_m2": round(float(areas.sum()), 3),
                          "radiant_heat_mw": round(float(np.sum(physics.radiant_heat_mw(temps, areas))), 4),
                          "cloud_covered": False, "burning_at_night": False, "shape": shape, "added": True})
            taken.append(p)
        if fires:
            applied.append("fire")
    rho *= 1.0 - np.minimum(occl, 1.0)
    rho += hot
    return flares, fires, pairs


# ---------------------------------------------------------------------------------------- atmosphere
def _clouds(rng, rho, spec, applied) -> np.ndarray:
    """Clouds (returns the new cloud opacity) and haze, in place."""
    _, n, m = rho.shape
    alpha = np.zeros((n, m))
    if rng.random() < spec.p_cloud:
        scale = rng.uniform(2.0, 16.0)
        field = smooth_field(rng, (n, m), scale) + 0.4 * smooth_field(rng, (n, m), max(scale / 4, 0.8))
        thr = float(np.quantile(field, 1 - rng.uniform(0.05, 0.6)))
        alpha = np.clip(1 - np.exp(-rng.uniform(1.5, 8.0) * np.maximum(field - thr, 0)), 0, 1)
        cloud = np.array([rng.uniform(0.4, 1.0), rng.uniform(0.25, 0.7), rng.uniform(0.12, 0.45)])
        cloud[2] = min(cloud[2], cloud[1])
        shadow = np.roll(alpha, (int(rng.integers(-12, 13)), int(rng.integers(-12, 13))), axis=(0, 1))
        rho *= 1 - 0.6 * shadow * (1 - alpha)
        edge = np.clip(alpha * (1 - alpha) * 4, 0, 1) * rng.uniform(0.0, 0.3)  # bright rims
        _blend(rho, alpha, cloud)
        for b in range(3):
            rho[b] += edge * cloud[b]
        applied.append("cloud")
    if rng.random() < spec.p_haze:
        h = np.clip(0.5 + 0.5 * smooth_field(rng, (n, m), rng.uniform(10, 40)), 0, 1) * rng.uniform(0.05, 0.35)
        _blend(rho, h, (rng.uniform(0.1, 0.3), rng.uniform(0.05, 0.15), rng.uniform(0.02, 0.08)))
        applied.append("haze")
    return alpha


def _wing_kernel(r0: float, half: int = 10) -> np.ndarray:
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    k = (1 + (x * x + y * y) / (r0 * r0)) ** -1.5
    return k / k.sum()


# ---------------------------------------------------------------------------------------- main
def randomize_scene(scene: SimulatedScene, seed: int = 0, split: str = "train",
                    spec: RandomizeSpec = RandomizeSpec()) -> SimulatedScene:
    """A randomised copy of ``scene`` (module doc); deterministic in (seed, split, site, date)."""
    rng = scene_rng(seed, split, scene.site_id, scene.acquisition_date)
    tile = scene.tile
    n, m = tile.shape
    applied: list[str] = []
    nodata = ~tile.valid
    rho = np.stack([np.nan_to_num(tile.reflectance(b), nan=0.0) for b in S2_BANDS]).astype(np.float64)
    truth = dict(scene.truth)
    flares = [dict(f) for f in truth["flares"]]
    stacks = [(f["row"], f["col"]) for f in flares if f["in_scene"]]
    doy = scene.acquisition_date.timetuple().tm_yday
    sza = float(rng.uniform(15, 75))
    craft = "Sentinel-2B" if rng.random() < spec.p_sentinel2b else "Sentinel-2A"
    l2a = rng.random() < spec.p_l2a
    if l2a:
        rho *= np.array([rng.uniform(1.0, 1.25), rng.uniform(0.95, 1.15), rng.uniform(0.95, 1.1)])[:, None, None]
        applied.append("l2a")
    rho *= rng.uniform(0.85, 1.15)  # illumination / calibration
    _surface(rng, rho, stacks, spec, applied)
    if rng.random() < spec.p_glint:
        _glint(rng, rho, applied)
        truth["glint"] = True
    new_flares, new_fires, pairs = _hot_sources(rng, rho, scene, stacks, sza, doy, craft, spec, applied)
    alpha = _clouds(rng, rho, spec, applied)
    if rng.random() < spec.p_blur:
        s = rng.uniform(0.2, 0.6)
        rho = np.stack([ndimage.gaussian_filter(rho[b], s, mode="nearest") for b in range(3)])
        applied.append("blur")
    if rng.random() < spec.p_wings:
        w, k = rng.uniform(0.01, 0.12), _wing_kernel(rng.uniform(0.7, 2.5))
        rho = np.stack([(1 - w) * rho[b] + w * fftconvolve(rho[b], k, mode="same") for b in range(3)])
        applied.append("wings")
    if rng.random() < spec.p_misregister:
        for b in (0, 2):  # B8A and B12 relative to B11
            rho[b] = ndimage.shift(rho[b], rng.uniform(-0.5, 0.5, size=2), order=1, mode="nearest")
        applied.append("misregister")
    rho += rng.normal(0, rng.uniform(0.001, 0.012), size=rho.shape)
    sat_level = np.array([rng.uniform(1.2, 2.0), rng.uniform(1.0, 2.0), rng.uniform(1.0, 1.8)])
    sat = rho >= sat_level[:, None, None]
    offset = -0.1 if rng.random() < 0.75 else 0.0
    dn = np.clip(np.rint((rho - offset) / tile.scale), 1, 65534)
    if rng.random() < spec.p_dn65535:
        dn[sat] = S2_SATURATED_DN
        applied.append("dn65535" if sat.any() else "dn65535-none")
    else:
        for b in range(3):
            dn[b][sat[b]] = min(np.rint((sat_level[b] - offset) / tile.scale), 65534)
        applied.append("plateau")
    if rng.random() < spec.p_nodata:
        rr, cc = _grid(n, m)
        if rng.random() < 0.5:
            edge = rng.uniform(0.1, 0.45) * m + rng.uniform(-0.3, 0.3) * (rr - n / 2)
            extra = (cc < edge) if rng.random() < 0.5 else (cc >= m - edge)
        else:
            extra = rr + cc < rng.uniform(0.2, 0.7) * (n + m) / 2
            extra = extra[:: int(rng.choice([-1, 1]))]
        nodata = nodata | extra
        applied.append("nodata")
    dn[:, nodata] = S2_NODATA_DN
    dn = dn.astype(np.uint16)
    cloud_mask = (tile.cloud_mask if tile.cloud_mask is not None else np.zeros((n, m), bool)) | (alpha >= 0.2)
    cloud_mask &= ~nodata
    saturated_any = sat.any(axis=0)
    for f in flares + new_flares:
        r, c = int(f["row"]), int(f["col"])
        if not (f["in_scene"] and 0 <= r < n and 0 <= c < m):
            continue
        if nodata[r, c]:
            f["in_scene"] = False
            f["cloud_covered"] = False
            continue
        f["cloud_covered"] = bool(cloud_mask[r, c])
        if f["active"]:
            f["saturated"] = bool(saturated_any[max(r - 2, 0) : r + 3, max(c - 2, 0) : c + 3].any())
    new_tile = Tile(dn=dn, transform=tile.transform, crs_epsg=tile.crs_epsg, acquired_at=tile.acquired_at,
                    sun_zenith_deg=round(sza, 4), scale=tile.scale, offset=offset, cloud_mask=cloud_mask,
                    tags={**tile.tags, "RANDOMIZER": RANDOMIZER_VERSION}, spacecraft=craft)
    valid = ~nodata
    cloud_fraction = float(cloud_mask[valid].mean()) if valid.any() else 0.0
    truth.update(flares=flares + new_flares, fires=list(truth.get("fires", [])) + new_fires,
                 cloud_fraction=round(cloud_fraction, 6), nodata_fraction=round(float(nodata.mean()), 6),
                 sun_zenith_deg=round(sza, 4),
                 randomization={"version": RANDOMIZER_VERSION, "seed": seed, "split": split, "applied": applied,
                                "spacecraft": craft, "level": "L2A-like" if l2a else "L1C-like",
                                "pairs": pairs, "saturation_level": [round(float(x), 3) for x in sat_level]})
    return replace(scene, tile=new_tile, truth=truth, cloud_fraction=cloud_fraction)
