"""Demo scene source: deterministic synthetic Sentinel-2 SWIR tiles and VIIRS Nightfire CSVs.

For any ``(Site, date)`` the simulator returns what the real sources would return for that day --
a Sentinel-2 B8A/B11/B12 tile (``flarewatch.tiles.Tile``, uint16 DN) and the VNF-schema CSV of
the following night -- together with the ground truth used to make them (flare volumes, radiant
heat, clouds, fires, glint). Everything is a pure function of ``(site_id, date)``: random numbers
come from ``numpy`` generators seeded by a SHA-256 hash of the site id, the date and a stream name
(never Python's salted ``hash()``), so every process and every machine produce the same bytes.

Physics used (literature, constants in ``flarewatch.config`` / ``flarewatch.physics``):

* A flame is a sub-pixel blackbody: the radiance it adds to a 20 m pixel in band b is
  ``(S / 400 m2) * B(lambda_b, T)`` (Planck), converted to TOA reflectance with
  ``rho = pi d^2 L / (E_sun cos(theta_s))`` (domain.md, "SWIR radiance method").
* Radiant heat ``RH = sigma T^4 S`` (Elvidge et al. 2013), and the VNF fields derived from it
  (``ESF_BB = Area_BB / pixel footprint``).
* DN convention ``rho = DN * 0.0001 - 0.1`` (processing baseline 04.00), DN 0 = nodata.

SIMULATOR ASSUMPTIONS (not literature; chosen to look plausible, and labelled as such below):

* Flow -> radiant heat. ``RH_MW = flow_kscm_d / K * e_k * (flow_kscm_d / 50) ** 0.1`` where
  ``K = 31.5`` thousand m3/day per MW is the Zhizhin et al. 2025 linear calibration
  (``VolumeCalibration.linear_bcm_per_year_per_mw``, domain.md), ``e_k ~ lognormal(0, 0.25)`` is a
  per-stack combustion/efficiency factor fixed for each stack, and the mild ``(flow/50)**0.1``
  nonlinearity makes big flares slightly more radiant per unit volume. Published calibrations are
  therefore close to, but deliberately not exactly, the simulator's truth.
* Flare stacks: 2-6 per site (sometimes one extra stack 3-5 px from another), base flow
  lognormal with median 50 thousand m3/d clipped to 2-400, flame temperature 1600-2000 K; each
  day a stack is lit with probability ~0.85 and flows ``base * lognormal(0, 0.3)``. The lit/unlit
  state and flow hold for the daytime pass and the following night.
* Surface reflectances per land cover (``LAND_COVER_REFLECTANCE``), structures (roads, gravel
  pads, white tanks and metal roofs with B12/B11 ~ 1), sun glint on water (spectrally flat,
  peak reflectance 0.8-1.2), clouds (``CLOUD_REFLECTANCE``, smooth thresholded noise fields with
  thin edges; flames under thick cloud keep 5-30 % of their signal), cloud shadows, per-climate
  daily cloud fractions (``CLIMATES``), wildfires (800-1100 K fronts 3-15 px long with a burn
  scar), partial-coverage nodata strips on ~5 % of days.
* Sensor: gaussian PSF of sigma ``PSF_SIGMA_PX`` px, saturation at ``SATURATION_REFLECTANCE``
  (B8A 1.8, B11 1.8, B12 1.6, so a saturated flame core has rho11 > rho12 > 1, which is the
  pattern the Marchese saturated-pixel rule looks for), gaussian noise ``NOISE_SD_REFLECTANCE``.
  Saturated pixels hold exactly the saturation value.
* Time: ``acquired_at`` is 10:30 local mean solar time of ``day`` (Sentinel-2 descending node),
  in UTC. The VIIRS CSV is for the night *after* the daytime pass: scans at about 01:30 local
  mean solar time of ``day + 1`` (S-NPP / NOAA-20 night overpass) +- 45 min for off-nadir passes.
* VIIRS: one row per 750 m-class M-band pixel holding active sources -- stacks closer than a
  VIIRS pixel that fall in the same pixel are merged into one detection, as VNF would see them
  (truth["viirs"]["detections"] lists which flare ids each row holds); fires get rows of their
  own. Geolocation jitter 150-350 m, ``Temp_BB = T + N(0, 60)``, ``Area_BB = S * lognormal(0, 0.3)``,
  small flares (RH below ~0.2 MW, i.e. < ~360 m3/h, cf. Seymour et al. 2025 in domain.md) are
  often missed, and night cloud (drawn independently of the day's cloud) hides or dims detections.
  ``QF_Detect`` / ``QF_Fit`` use a simulator coding (documented at ``_viirs_rows``), not the
  official VNF flag tables.
* Wildfires are physically *cooler* than flames, so their B12/B11 reflectance ratio is higher,
  not lower, than a flare's; what separates them is size, colour temperature (~800-1100 K),
  burn scars and lack of persistence from day to day.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from scipy.special import ndtr

from flarewatch import physics
from flarewatch.config import (
    S2_BANDS,
    S2_NODATA_DN,
    S2_PIXEL_M,
    S2_REFLECTANCE_OFFSET,
    S2_REFLECTANCE_SCALE,
    S2_WAVELENGTH_UM,
    STEFAN_BOLTZMANN,
)
from flarewatch.physics import solar_angles
from flarewatch.simulation.common import (
    CLIMATES,
    apply_affine,
    cloud_fraction_target,
    seeded_rng,
)
from flarewatch.simulation.flares import (
    FlareTruth,
    radiant_heat_from_flow,
    site_flares,
    stack_day_states,
)
from flarewatch.simulation.landscape import (
    CHAR,
    GREEN_CROP,
    STUBBLE,
    blend,
    land_cover,
    smooth_field,
    static_scene,
)
from flarewatch.simulation.viirs import viirs_night
from flarewatch.sites import Site
from flarewatch.tiles import (
    Tile,
    crs_transformer,
    default_size_px,
)

log = logging.getLogger(__name__)

SIMULATOR_VERSION = "1"


CLOUD_REFLECTANCE = (0.60, 0.40, 0.25)  # thick water cloud in B8A, B11, B12 (assumption)
SATURATION_REFLECTANCE = (1.8, 1.8, 1.6)  # sensor saturation, B8A, B11, B12 (assumption)
NOISE_SD_REFLECTANCE = 0.003  # radiometric noise, reflectance units (assumption, SNR ~100 at 0.3)
PSF_SIGMA_PX = 0.6  # gaussian point-spread sigma, 20 m pixels (assumption, MTF-like blur)
CLOUD_MASK_OPACITY = 0.2  # cloud_mask where the cloud hides >= 20 % of the surface (assumption)
PIXEL_AREA_M2 = S2_PIXEL_M * S2_PIXEL_M


@dataclass
class SimulatedScene:
    """Everything the simulator produced for one site and date.

    ``tile``: the Sentinel-2 tile; ``viirs_csv``: VNF-schema CSV text for the night after the
    daytime pass (header only when nothing was detected); ``truth``: JSON-serialisable ground
    truth; ``cloud_fraction``: fraction (0-1) of valid tile pixels under ``tile.cloud_mask``.
    """

    site_id: str
    acquisition_date: date
    tile: Tile
    viirs_csv: str
    truth: dict
    cloud_fraction: float


def _shift(a: np.ndarray, drow: int, dcol: int) -> np.ndarray:
    """``a`` moved by (drow, dcol) pixels, zero filled (no wrap-around)."""
    h, w = a.shape
    out = np.zeros_like(a)
    if abs(drow) >= h or abs(dcol) >= w:
        return out
    out[max(drow, 0) : h + min(drow, 0), max(dcol, 0) : w + min(dcol, 0)] = a[
        max(-drow, 0) : h - max(drow, 0), max(-dcol, 0) : w - max(dcol, 0)
    ]
    return out


def _psf_1d(center: float, sigma: float) -> tuple[int, np.ndarray]:
    """Pixel-integrated 1-D gaussian: first pixel index and the weights of the pixels it covers."""
    lo = int(math.floor(center - 4.0 * sigma))
    hi = int(math.ceil(center + 4.0 * sigma))
    edges = np.arange(lo, hi + 1, dtype=float)
    return lo, np.diff(ndtr((edges - center) / sigma))


# Sentinel-2 does not image at very low sun; keep the reflectance conversion finite at high
# latitude in winter (simulator assumption).
MAX_SUN_ZENITH_DEG = 82.0


def _planck_reflectance(temperature_k: float, sun_zenith_deg: float, doy: int) -> np.ndarray:
    """Reflectance (per band) added by a blackbody filling a whole 20 m pixel."""
    out = []
    for b in S2_BANDS:
        radiance = physics.planck_radiance(S2_WAVELENGTH_UM[b], temperature_k)
        out.append(float(physics.radiance_to_reflectance(radiance, b, sun_zenith_deg, doy)))
    return np.array(out)


def _add_source(hot, occl, row, col, area_m2, refl_full, transmittance) -> None:
    """Add a sub-pixel hot source (area m2, per-band full-pixel reflectance) through the PSF."""
    h, w = occl.shape
    r0, wr = _psf_1d(row, PSF_SIGMA_PX)
    c0, wc = _psf_1d(col, PSF_SIGMA_PX)
    rs, re = max(r0, 0), min(r0 + len(wr), h)
    cs, ce = max(c0, 0), min(c0 + len(wc), w)
    if rs >= re or cs >= ce:
        return
    frac = np.outer(wr[rs - r0 : re - r0], wc[cs - c0 : ce - c0]) * (area_m2 / PIXEL_AREA_M2)
    for b in range(3):
        hot[b, rs:re, cs:ce] += frac * (refl_full[b] * transmittance)
    occl[rs:re, cs:ce] += frac


def simulate_scene(site: Site, day: date, *, size_px: int | None = None) -> SimulatedScene:
    """Simulate the Sentinel-2 tile, the next night's VNF CSV and the ground truth for a site/day.

    ``site``: the monitored site (its ``land_cover`` picks background and climate); ``day``: the
    acquisition date (a ``datetime`` is reduced to its date); ``size_px``: tile side in 20 m pixels
    (default ``round(site.aoi_km * 1000 / 20)``, 250 for a 5 km AOI). Deterministic in
    ``(site.site_id, day)`` (and the site's position/land cover).
    """
    if isinstance(day, datetime):
        day = day.date()
    n = default_size_px(site) if size_px is None else int(size_px)
    if n < 8:
        raise ValueError(f"size_px must be >= 8, got {n}")
    lc = land_cover(site)
    clim = CLIMATES[lc]
    static = static_scene(site, n)
    shape = (n, n)
    iso = day.isoformat()
    sid = site.site_id
    doy = day.timetuple().tm_yday

    acquired_at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=10.5 - site.lon / 15.0)
    sza, saz = solar_angles(site.lat, doy, 10.5)
    sza = min(sza, MAX_SUN_ZENITH_DEG)

    # 1. surface: static background with a small daily variation (atmosphere, moisture) ---------
    rng = seeded_rng("day-background", sid, iso)
    rho = static.base.astype(np.float64, copy=True)
    if static.parcels is not None:  # cropland: green-up cycle per parcel (hemisphere aware)
        season = doy if site.lat >= 0 else (doy + 182) % 365
        green = np.clip(np.sin(2 * math.pi * (season - 120 + static.parcel_phase) / 365.0) * 1.1, 0.0, 1.0)
        g = green[static.parcels]
        crop = np.stack([g * GREEN_CROP[b] + (1 - g) * STUBBLE[b] for b in range(3)]) * (1.0 + 0.05 * static.texture)
        rho = rho + static.parcel_cover * (crop - rho)
    band_gain = 1.0 + rng.normal(0.0, 0.02, size=3)
    daily = smooth_field(rng, shape, 20.0)
    for b in range(3):
        rho[b] *= band_gain[b] * (1.0 + 0.02 * daily)

    # 2. sun glint (water) --------------------------------------------------------------------
    rng = seeded_rng("day-glint", sid, iso)
    glint = bool(clim.glint_prob > 0 and rng.random() < clim.glint_prob)
    glint_peak = 0.0
    if glint:
        # a patch of glitter: smooth envelope times wave facets, peak reflectance 0.8-1.2
        gr, gc = rng.uniform(0.1 * n, 0.9 * n, size=2)
        radius = rng.uniform(0.12, 0.35) * n
        glint_peak = float(rng.uniform(0.8, 1.2))
        rows, cols = np.ogrid[0:n, 0:n]
        blob = np.exp(-((rows + 0.5 - gr) ** 2 + (cols + 0.5 - gc) ** 2) / (2 * radius * radius))
        facets = np.clip(0.45 + 0.35 * smooth_field(rng, shape, 1.0), 0.0, None) ** 2
        g = glint_peak * blob * facets / max(float(facets.max()), 1e-6)
        spec = (1.0 + rng.normal(0.02, 0.01), 1.0, 1.0 + rng.normal(-0.02, 0.01))  # ~flat: B12/B11 ~ 1
        for b in range(3):
            rho[b] += g * spec[b]

    # 3. wildfire: burn scar now, flames with the other hot sources -------------------------------
    rng = seeded_rng("day-fire", sid, iso)
    fires_spec = []
    if clim.fire_prob > 0 and rng.random() < clim.fire_prob:
        for k in range(1 + int(rng.random() < 0.2)):
            centre = None
            flare_rc = [apply_affine(~static.transform, s.x_m, s.y_m)[::-1] for s in site_flares(site)]
            margin = min(12.0, n / 4.0)
            for _ in range(50):
                r, c = rng.uniform(margin, n - margin, size=2)
                if static.land[int(r), int(c)] and all(math.hypot(r - fr, c - fc) >= 20 for fr, fc in flare_rc):
                    centre = (float(r), float(c))
                    break
            if centre is None:
                continue
            length = float(rng.uniform(3.0, 15.0))
            theta = float(rng.uniform(0, 2 * math.pi))
            bend = float(rng.uniform(-0.15, 0.15))
            t_fire = float(rng.uniform(800.0, 1100.0))
            npts = max(2, int(round(length * 2)))
            s = np.linspace(-length / 2, length / 2, npts)
            pts_r = centre[0] + s * math.sin(theta) + bend * s * s * math.cos(theta)
            pts_c = centre[1] + s * math.cos(theta) - bend * s * s * math.sin(theta)
            temps = np.clip(t_fire + rng.normal(0, 40, npts), 700, 1200)
            areas = rng.lognormal(math.log(4.0), 0.6, npts)  # m2 per half-pixel step (~1-3 % of a pixel)
            # burn scar on the side the front came from
            back_r, back_c = centre[0] - 0.35 * length * math.cos(theta), centre[1] + 0.35 * length * math.sin(theta)
            rr, cc = np.ogrid[0:n, 0:n]
            scar = np.clip(1.0 - np.hypot(rr + 0.5 - back_r, cc + 0.5 - back_c) / (0.45 * length + 1.0), 0, 1) ** 0.5
            blend(rho, 0.8 * scar * static.land, CHAR)
            fires_spec.append((k, centre, length, t_fire, pts_r, pts_c, temps, areas, bool(rng.random() < 0.5)))

    # 4. clouds and their shadows -----------------------------------------------------------------
    rng = seeded_rng("day-clouds", sid, iso)
    cf_target = cloud_fraction_target(rng, clim)
    alpha = np.zeros(shape)
    t_min = float(rng.uniform(0.05, 0.3))  # flame transmittance under the thickest cloud
    if cf_target > 0.0:
        field = (
            0.8 * smooth_field(rng, shape, 14.0)
            + 0.45 * smooth_field(rng, shape, 4.0)
            + 0.2 * smooth_field(rng, shape, 1.5)
        )
        k_thick = 2.5
        thr_mask = float(np.quantile(field, 1.0 - cf_target))
        thr0 = thr_mask - math.log(1.0 / (1.0 - CLOUD_MASK_OPACITY)) / k_thick
        alpha = 1.0 - np.exp(-k_thick * np.maximum(field - thr0, 0.0))
        height_km = rng.uniform(1.0, 4.0)
        d_px = height_km * 1000.0 * math.tan(math.radians(sza)) / S2_PIXEL_M
        # shadow falls away from the sun: azimuth saz clockwise from north, rows grow southwards
        drow = int(round(d_px * math.cos(math.radians(saz))))
        dcol = int(round(-d_px * math.sin(math.radians(saz))))
        shadow = _shift(alpha, drow, dcol)
        rho *= 1.0 - 0.6 * shadow * (1.0 - alpha)
        cloud_gain = rng.uniform(0.85, 1.15)
        blend(rho, alpha, tuple(v * cloud_gain for v in CLOUD_REFLECTANCE))
    cloud_mask = alpha >= CLOUD_MASK_OPACITY

    def transmittance(r: float, c: float) -> float:
        if 0 <= r < n and 0 <= c < n:
            return 1.0 - float(alpha[int(r), int(c)]) * (1.0 - t_min)
        return 1.0

    # 5. hot sources: flares and fire fronts ----------------------------------------------------
    hot = np.zeros_like(rho)
    occl = np.zeros(shape)
    inv = ~static.transform
    flares: list[FlareTruth] = []
    for st, active, flow, temp in stack_day_states(site, day):
        col, row = apply_affine(inv, st.x_m, st.y_m)
        rh = float(radiant_heat_from_flow(flow, st.efficiency_factor)) if active else 0.0
        area = rh * 1e6 / (STEFAN_BOLTZMANN * temp**4) if active else 0.0
        if active:
            _add_source(hot, occl, row, col, area, _planck_reflectance(temp, sza, doy), transmittance(row, col))
        flares.append(
            FlareTruth(
                flare_id=st.flare_id, lat=st.lat, lon=st.lon, row=round(float(row), 4), col=round(float(col), 4),
                active=active, flow_kscm_d=round(flow, 4), temperature_k=round(temp, 1),
                flame_area_m2=round(area, 5), radiant_heat_mw=round(rh, 5),
                cloud_covered=bool(0 <= row < n and 0 <= col < n and cloud_mask[int(row), int(col)]),
                saturated=False, in_scene=bool(0 <= row < n and 0 <= col < n),
            )
        )  # fmt: skip
    fires = []
    fwd = crs_transformer(site.utm_epsg, 4326)
    for k, centre, length, _t_fire, pts_r, pts_c, temps, areas, night in fires_spec:
        tr_ = transmittance(*centre)
        for r, c, t, a in zip(pts_r, pts_c, temps, areas):
            _add_source(hot, occl, float(r), float(c), float(a), _planck_reflectance(float(t), sza, doy), tr_)
        x, y = apply_affine(static.transform, centre[1], centre[0])
        lon, lat = fwd.transform(x, y)
        area_tot = float(areas.sum())
        fires.append(
            {
                "fire_id": f"{sid}-W{day:%Y%m%d}-{k + 1}",
                "lat": round(float(lat), 7), "lon": round(float(lon), 7),
                "row": round(centre[0], 4), "col": round(centre[1], 4),
                "temperature_k": round(float(np.average(temps, weights=areas)), 1),
                "extent_px": round(length, 2), "area_m2": round(area_tot, 3),
                "radiant_heat_mw": round(float(np.sum(physics.radiant_heat_mw(temps, areas))), 4),
                "cloud_covered": bool(cloud_mask[int(centre[0]), int(centre[1])]),
                "burning_at_night": night,
            }
        )  # fmt: skip
    rho = rho * (1.0 - np.minimum(occl, 1.0)) + hot

    # 6. sensor: noise, saturation, DN, partial coverage ----------------------------------------
    rng = seeded_rng("day-sensor", sid, iso)
    rho += rng.normal(0.0, NOISE_SD_REFLECTANCE, size=rho.shape)
    sat = np.asarray(SATURATION_REFLECTANCE)[:, None, None]
    saturated_px = rho[2] >= SATURATION_REFLECTANCE[2]
    rho = np.minimum(rho, sat)
    dn = np.clip(np.rint((rho - S2_REFLECTANCE_OFFSET) / S2_REFLECTANCE_SCALE), 1, 65535).astype(np.uint16)
    nodata = np.zeros(shape, dtype=bool)
    if rng.random() < 0.05:  # swath edge: slanted strip without data at the left or right
        width = rng.uniform(0.1, 0.45) * n
        slope = rng.uniform(-0.2, 0.2)
        rr, cc = np.ogrid[0:n, 0:n]
        edge = width + slope * (rr - n / 2)
        nodata = np.broadcast_to((cc < edge) if rng.random() < 0.5 else (cc >= n - edge), shape).copy()
        dn[:, nodata] = S2_NODATA_DN
        cloud_mask = cloud_mask & ~nodata
    valid = ~nodata
    cloud_fraction = float(cloud_mask[valid].mean()) if valid.any() else 0.0

    for f in flares:
        if not f.in_scene:
            continue
        r, c = int(f.row), int(f.col)
        if nodata[r, c]:
            f.in_scene = False
            f.cloud_covered = False
        elif f.active:
            f.saturated = bool(saturated_px[max(r - 2, 0) : r + 3, max(c - 2, 0) : c + 3].any())

    tile = Tile(
        dn=dn,
        transform=static.transform,
        crs_epsg=site.utm_epsg,
        acquired_at=acquired_at,
        sun_zenith_deg=round(sza, 4),
        scale=S2_REFLECTANCE_SCALE,
        offset=S2_REFLECTANCE_OFFSET,
        cloud_mask=cloud_mask,
        tags={"SOURCE": "flarewatch-simulator", "SIMULATOR_VERSION": SIMULATOR_VERSION, "SITE_ID": sid},
    )

    # 7. VIIRS Nightfire, the night after the pass --------------------------------------------------
    viirs_csv, viirs_truth = viirs_night(site, day, lc, clim, flares, fires)

    truth = {
        "site_id": sid,
        "acquisition_date": iso,
        "acquired_at": acquired_at.isoformat(),
        "sun_zenith_deg": round(sza, 4),
        "sun_azimuth_deg": round(saz, 4),
        "land_cover": lc,
        "flares": [asdict(f) for f in flares],
        "fires": fires,
        "glint": glint,
        "glint_peak_reflectance": round(glint_peak, 4),
        "cloud_fraction": round(cloud_fraction, 6),
        "nodata_fraction": round(float(nodata.mean()), 6),
        "viirs": viirs_truth,
        "simulator_version": SIMULATOR_VERSION,
    }
    return SimulatedScene(
        site_id=sid, acquisition_date=day, tile=tile, viirs_csv=viirs_csv, truth=truth, cloud_fraction=cloud_fraction
    )


