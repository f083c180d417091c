"""Independent Sentinel-2 L1C-like SWIR scenes with truth: ``make_scene(seed, index)``.

Chain (module docstrings of ``landscape``, ``hotspots`` and ``radiometry`` give the physics):
ground TOA reflectance (land cover, water, roads, pads, roofs) -> burn scars, sun glint -> PSF
blur per band with a per-band sub-pixel misregistration -> haze (path reflectance, attenuation)
-> clouds (bright, spectrally grey-ish, with shadows) -> fire emission and flares (through the
atmosphere's and the clouds' transmittance) -> radiometric noise in radiance -> saturation at a
band radiance (DN 65535) -> L1C digital numbers DN = rho * 10000 + 1000 (baseline >= 04.00) or
rho * 10000 (older baselines), valid DN 1..32767 -> detector stripes, swath-edge nodata (DN 0).

Deterministic: the scene depends only on (seed, index) (``numpy.random.default_rng([seed, index])``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from affine import Affine
from scipy import ndimage
from scipy.signal import fftconvolve

from flarewatch.evaluation.independent import radiometry as rad
from flarewatch.evaluation.independent.hotspots import (
    TRUE_KSCM_D_PER_MW,
    draw_flares,
    draw_glint,
    draw_wildfires,
    render_flare,
)
from flarewatch.evaluation.independent.landscape import fractal, make_landscape

SCALE = 0.0001
SATURATED_DN = 65535
NODATA_DN = 0
MAX_VALID_DN = 32767
DEFAULT_SIZE = 512
# Flaring regions (name, lat, lon): the scenes' geolocation, sun angles and UTM zone.
REGIONS = (
    ("permian", 31.9, -102.9), ("bakken", 47.9, -103.3), ("eagle_ford", 28.6, -98.4),
    ("niger_delta", 5.0, 6.4), ("basra", 30.5, 47.6), ("hassi_messaoud", 31.7, 6.1),
    ("khanty_mansiysk", 61.2, 73.4), ("orenburg", 51.8, 55.1), ("neuquen", -38.4, -68.9),
    ("tabasco", 18.0, -93.0), ("bohai", 38.7, 118.6), ("libya_sirte", 29.0, 19.5),
)
# Cause codes of the ``cause`` raster (what a false positive lies on).
CAUSE_NONE, CAUSE_WILDFIRE, CAUSE_GLINT, CAUSE_ROOF = 0, 1, 2, 3
CAUSE_NAMES = {CAUSE_WILDFIRE: "wildfire", CAUSE_GLINT: "glint", CAUSE_ROOF: "roof"}
CAUSE_MARGIN_PX = 3  # a false positive within this many px of an object is attributed to it


@dataclass
class IndependentScene:
    """``dn``: uint16 (3, H, W), bands B8A, B11, B12; ``meta``: what a Tile needs; ``truth``: JSON-able
    truth; ``cause``: uint8 (H, W) object raster (``CAUSE_*``, dilated by ``CAUSE_MARGIN_PX``)."""

    dn: np.ndarray
    meta: dict
    truth: dict
    cause: np.ndarray


def _utm(lat: float, lon: float, rng: np.random.Generator, size: int) -> tuple[int, Affine]:
    zone = int((lon + 180.0) // 6.0) + 1
    epsg = (32600 if lat >= 0 else 32700) + zone
    central = -183.0 + 6.0 * zone
    x = 500000.0 + (lon - central) * 111320.0 * math.cos(math.radians(lat)) + rng.uniform(-20000, 20000)
    y = lat * 110946.0 + (0.0 if lat >= 0 else 10_000_000.0) + rng.uniform(-20000, 20000)
    x0 = round(x / 20.0) * 20.0 - size * 10.0
    y0 = round(y / 20.0) * 20.0 + size * 10.0
    return epsg, Affine(rad.PIXEL_M, 0.0, x0, 0.0, -rad.PIXEL_M, y0)


def _acquisition(rng: np.random.Generator, lat: float, lon: float) -> tuple[datetime, float, str, float]:
    """(UTC time, sun zenith, processing baseline, DN offset in reflectance)."""
    old = rng.random() < 0.15  # pre-2022 products: baseline 02.xx/03.xx, no radiometric offset
    for _ in range(20):
        start = datetime(2018, 6, 1, tzinfo=UTC) if old else datetime(2022, 2, 1, tzinfo=UTC)
        span = (datetime(2021, 12, 31, tzinfo=UTC) if old else datetime(2025, 9, 30, tzinfo=UTC)) - start
        day = start + timedelta(days=int(rng.integers(span.days)))
        local = rng.normal(10.6, 0.25)  # S2 descending node ~10:30 local solar time
        doy = day.timetuple().tm_yday
        zen = rad.sun_zenith(lat, doy, local)
        if zen < 74.0:
            break
    utc = day + timedelta(hours=local - lon / 15.0)
    baseline = str(rng.choice(["02.09", "03.01"])) if old else str(rng.choice(["04.00", "05.09", "05.11"]))
    return utc, zen, baseline, (0.0 if old else -0.1)


def _clouds(rng: np.random.Generator, shape) -> tuple[np.ndarray, np.ndarray, dict]:
    """(cloud opacity 0..1, shadow opacity, info); opacity 0 everywhere in clear scenes."""
    h, w = shape
    zero = np.zeros(shape, np.float32)
    if rng.random() > 0.35:
        return zero, zero, {"cloud_fraction": 0.0, "kind": "clear"}
    cover = rng.uniform(0.02, 0.6)
    field = fractal(rng, shape, rng.uniform(2.8, 3.6))
    thr = np.quantile(field, 1.0 - cover)
    opacity = np.clip((field - thr) * rng.uniform(1.0, 4.0), 0.0, 1.0).astype(np.float32)
    shift = (rng.uniform(-40, 40), rng.uniform(-40, 40))
    shadow = ndimage.shift(opacity, shift, order=1, mode="constant", cval=0.0)
    return opacity, shadow, {"cloud_fraction": float((opacity > 0.3).mean()), "kind": "cumulus",
                             "shadow_shift_px": [float(s) for s in shift]}


def _nodata_mask(rng: np.random.Generator, shape) -> np.ndarray:
    h, w = shape
    mask = np.zeros(shape, bool)
    if rng.random() < 0.12:  # swath edge: a slanted line cuts off a corner / side
        yy, xx = np.mgrid[0:h, 0:w]
        a = rng.uniform(0, 2 * math.pi)
        d = (xx - w / 2) * math.cos(a) + (yy - h / 2) * math.sin(a)
        mask = d > rng.uniform(0.15, 0.45) * min(h, w)
    return mask


def _cause_raster(shape, fires, glint_mask, roofs) -> np.ndarray:
    cause = np.zeros(shape, np.uint8)
    m = CAUSE_MARGIN_PX
    g = ndimage.binary_dilation(glint_mask, iterations=m) if glint_mask.any() else glint_mask
    cause[g] = CAUSE_GLINT
    for obj, code in [(r, CAUSE_ROOF) for r in roofs] + [(f, CAUSE_WILDFIRE) for f in fires]:
        r0, c0, r1, c1 = obj["bbox"]
        cause[max(r0 - m, 0):r1 + m, max(c0 - m, 0):c1 + m] = code
    return cause


def make_scene(seed: int, index: int, size: int = DEFAULT_SIZE) -> IndependentScene:
    """Scene ``index`` of the series ``seed``: DN, tile metadata, truth and the object-cause raster."""
    rng = np.random.default_rng([int(seed), int(index)])
    shape = (int(size), int(size))
    spacecraft = "Sentinel-2A" if rng.random() < 0.5 else "Sentinel-2B"
    region, lat, lon = REGIONS[int(rng.integers(len(REGIONS)))]
    lat, lon = lat + rng.uniform(-1, 1), lon + rng.uniform(-1, 1)
    epsg, transform = _utm(lat, lon, rng, size)
    when, zen, baseline, offset = _acquisition(rng, lat, lon)
    doy = when.timetuple().tm_yday
    l_per_rho = {b: rad.radiance_per_reflectance(spacecraft, b, zen, doy) for b in rad.BANDS}

    land = make_landscape(rng, shape)
    ground = land.rho
    tau = {"B8A": rng.uniform(0.88, 0.97), "B11": rng.uniform(0.87, 0.96), "B12": rng.uniform(0.82, 0.94)}
    emit = np.zeros_like(ground)
    fires = draw_wildfires(rng, ground, emit, spacecraft, zen, doy, tau)
    glints, glint_mask = draw_glint(rng, ground, land.water)

    psf = rad.psf_params(rng)
    shifts = {"B8A": (0.0, 0.0)}
    for band in ("B11", "B12"):
        # MSI inter-band registration: typically ~0.1 px, specified better than 0.3 px (assumption).
        shifts[band] = tuple(float(x) for x in np.clip(rng.normal(0.0, 0.1, size=2), -0.3, 0.3))
    toa = np.empty_like(ground)
    for b, band in enumerate(rad.BANDS):
        k = rad.blur_kernel(psf, shifts[band])
        toa[b] = fftconvolve(np.pad(ground[b], 6, mode="reflect"), k, mode="same")[6:-6, 6:-6]
        if fires:
            toa[b] += fftconvolve(emit[b], k, mode="same")

    # Haze: path reflectance (strongest in B8A) and attenuation of the surface signal.
    aod = rng.uniform(0.0, 1.0) ** 2
    haze = 1.0 + 0.4 * fractal(rng, shape, 4.0)
    path = {"B8A": 0.035 * aod, "B11": 0.012 * aod, "B12": 0.006 * aod}
    opacity, shadow, cloud_info = _clouds(rng, shape)
    cloud_rho = {"B8A": rng.uniform(0.5, 0.8), "B11": rng.uniform(0.32, 0.55), "B12": rng.uniform(0.18, 0.35)}
    for b, band in enumerate(rad.BANDS):
        surf = toa[b] * (1.0 - 1.2 * path[band]) * (1.0 - 0.55 * shadow)
        toa[b] = surf * (1.0 - opacity) + cloud_rho[band] * opacity + path[band] * haze

    flare_cloud = []
    for f in draw_flares(rng, shape, land.pads, land.water):
        att = float(1.0 - 0.95 * opacity[int(f["row"]), int(f["col"])])
        f["cloud_transmittance"] = att
        f["peak_excess"] = render_flare(toa, f, spacecraft, zen, doy, tau, shifts, psf, att)
        flare_cloud.append(f)

    # Noise and saturation in radiance; DN encoding.
    dn = np.empty((3, *shape), np.uint16)
    offset_dn = int(round(-offset / SCALE))
    stripe = None
    if rng.random() < 0.3:  # a detector boundary with a small relative gain step
        yy, xx = np.mgrid[0:size, 0:size]
        stripe = (xx - rng.uniform(0, size) - (yy - size / 2) * rng.uniform(-0.2, 0.2)) > 0
    nodata = _nodata_mask(rng, shape)
    saturated = np.zeros((3, *shape), bool)
    for b, band in enumerate(rad.BANDS):
        rho = rad.add_noise(rng, toa[b], band, l_per_rho[band])
        if stripe is not None:
            rho = np.where(stripe, rho * (1.0 + rng.uniform(-0.006, 0.006)), rho)
        sat = toa[b] * l_per_rho[band] >= rad.L_SATURATION[band]
        saturated[b] = sat & ~nodata
        v = np.clip(np.rint(rho / SCALE) + offset_dn, 1, MAX_VALID_DN)
        v[sat] = SATURATED_DN
        v[nodata] = NODATA_DN
        dn[b] = v.astype(np.uint16)

    for f in flare_cloud:
        r, c = int(f["row"]), int(f["col"])
        win = (slice(max(r - 2, 0), r + 3), slice(max(c - 2, 0), c + 3))
        f["saturated_b12"] = bool(saturated[2][win].any())
        f["saturated_b11"] = bool(saturated[1][win].any())
        f["in_nodata"] = bool(nodata[r, c])
        f["visible"] = bool(f["cloud_transmittance"] > 0.3 and not f["in_nodata"])
    roofs = land.roofs
    truth = {
        "seed": int(seed), "index": int(index), "size": int(size), "region": region, "biome": land.biome,
        "spacecraft": spacecraft, "processing_baseline": baseline, "offset": offset, "scale": SCALE,
        "acquired_at": when.isoformat(), "sun_zenith_deg": zen, "day_of_year": doy,
        "lat": lat, "lon": lon, "crs_epsg": epsg, "transform": list(transform)[:6],
        "psf": psf, "band_shift_px": {k: list(v) for k, v in shifts.items()},
        "atmosphere": {"transmittance": tau, "aod_index": float(aod), "path_reflectance": path, **cloud_info},
        "saturation_rho": {b: rad.L_SATURATION[b] / l_per_rho[b] for b in rad.BANDS},
        "nodata_fraction": float(nodata.mean()), "detector_stripe": stripe is not None,
        "flares": flare_cloud, "wildfires": fires, "glints": glints, "roofs": roofs,
        "volume_truth": f"linear, Zhizhin et al. 2025: {TRUE_KSCM_D_PER_MW:.3f} kscm/d per MW of sigma T^4 S",
    }
    meta = {"transform": transform, "crs_epsg": epsg, "acquired_at": when, "sun_zenith_deg": zen,
            "scale": SCALE, "offset": offset, "spacecraft": spacecraft,
            "tags": {"spacecraft": spacecraft, "processing_baseline": baseline}}
    cause = _cause_raster(shape, [f for f in fires if f["active"]], glint_mask, roofs)
    cause[nodata] = CAUSE_NONE
    return IndependentScene(dn=dn, meta=meta, truth=truth, cause=cause)
