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

import csv
import hashlib
import io
import logging
import math
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

import numpy as np
from affine import Affine
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
    VNF_FILL_VALUE,
    VolumeCalibration,
)
from flarewatch.sites import Site
from flarewatch.tiles import Tile

log = logging.getLogger(__name__)

SIMULATOR_VERSION = "1"

# --------------------------------------------------------------------------------------------
# Derived literature constant
# --------------------------------------------------------------------------------------------
# Zhizhin et al. 2025 linear calibration (config.VolumeCalibration): BCM/yr per MW -> thousand
# m3/day per MW (0.0115e9 m3 / 365 d / 1e3 = 31.5).
KSCM_D_PER_MW = VolumeCalibration().linear_bcm_per_year_per_mw * 1e9 / 365.0 / 1e3

# VIIRS M-band central wavelengths, um (NOAA JPSS VIIRS SDR User's Guide, band table). Used to
# synthesise the Rad_Mxx columns of the VNF CSV.
VIIRS_BAND_UM = {
    "M07": 0.865,
    "M08": 1.24,
    "M10": 1.61,
    "M12": 3.70,
    "M13": 4.05,
    "M14": 8.55,
    "M15": 10.763,
    "M16": 12.013,
}

VNF_COLUMNS = (
    "id_Key", "Date_Mscan", "Lat_GMTCO", "Lon_GMTCO", "Temp_BB", "Temp_Bkg", "ESF_BB", "RHI", "RH",
    "Area_Pixel", "Area_BB", "Cloud_Mask", "QF_Detect", "QF_Fit", "Rad_M07", "Rad_M08", "Rad_M10",
    "Rad_M12", "Rad_M13", "Rad_M14", "Rad_M15", "Rad_M16",
)  # fmt: skip

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
_BARE_SOIL = (0.30, 0.38, 0.32)  # mixed into vegetation / cropland (assumption)
_GREEN_CROP = (0.38, 0.21, 0.10)  # cropland at full green-up (assumption)
_STUBBLE = (0.26, 0.31, 0.24)  # cropland after harvest (assumption)
_GRAVEL = (0.40, 0.46, 0.42)  # well pads, plant yards: B12/B11 ~ 0.9 (assumption)
_ASPHALT = (0.12, 0.15, 0.14)  # paved roads (assumption)
_CHAR = (0.06, 0.09, 0.09)  # fresh burn scar (assumption)
CLOUD_REFLECTANCE = (0.60, 0.40, 0.25)  # thick water cloud in B8A, B11, B12 (assumption)
SATURATION_REFLECTANCE = (1.8, 1.8, 1.6)  # sensor saturation, B8A, B11, B12 (assumption)
NOISE_SD_REFLECTANCE = 0.003  # radiometric noise, reflectance units (assumption, SNR ~100 at 0.3)
PSF_SIGMA_PX = 0.6  # gaussian point-spread sigma, 20 m pixels (assumption, MTF-like blur)
CLOUD_MASK_OPACITY = 0.2  # cloud_mask where the cloud hides >= 20 % of the surface (assumption)
PIXEL_AREA_M2 = S2_PIXEL_M * S2_PIXEL_M


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
# Public records
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlareStack:
    """One persistent flare stack of a site (same every day).

    ``lat``/``lon``: position (degrees WGS84); ``x_m``/``y_m``: the same in the site's UTM zone
    (``Site.utm_epsg``, metres); ``base_flow_kscm_d``: typical flared volume, thousand standard m3
    per day; ``temperature_k``: flame temperature (K); ``efficiency_factor``: per-stack radiant
    heat multiplier (dimensionless, simulator assumption); ``activity_probability``: chance the
    stack is lit on a given day.
    """

    flare_id: str
    lat: float
    lon: float
    x_m: float
    y_m: float
    base_flow_kscm_d: float
    temperature_k: float
    efficiency_factor: float
    activity_probability: float


@dataclass
class FlareTruth:
    """One flare stack's ground truth for one day.

    ``row``/``col``: fractional pixel position of the source centre in the tile grid (pixel
    (i, j) spans rows [i, i+1) and columns [j, j+1), so ``Tile.pixel_to_lonlat(row, col)`` gives
    back ``lon``/``lat``); ``flow_kscm_d``: flared volume, thousand standard m3/day (0 if unlit);
    ``temperature_k``: flame temperature (K); ``flame_area_m2``: effective emitting area (m2);
    ``radiant_heat_mw``: sigma T^4 S / 1e6 (MW); ``cloud_covered``: the source pixel is under the
    tile's cloud mask; ``saturated``: any B12 pixel of the flare hit sensor saturation;
    ``in_scene``: the source lies inside the tile and not in a nodata strip (extra field).
    """

    flare_id: str
    lat: float
    lon: float
    row: float
    col: float
    active: bool
    flow_kscm_d: float
    temperature_k: float
    flame_area_m2: float
    radiant_heat_mw: float
    cloud_covered: bool
    saturated: bool
    in_scene: bool = True


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


# --------------------------------------------------------------------------------------------
# Deterministic randomness and small helpers
# --------------------------------------------------------------------------------------------
def _rng(*parts: object) -> np.random.Generator:
    """A generator seeded by SHA-256 of the parts (stable across processes and machines)."""
    key = "|".join(str(p) for p in ("flarewatch-simulator", *parts))
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "little"))


@lru_cache(maxsize=64)
def _transformer(src_epsg: int, dst_epsg: int):
    from pyproj import Transformer

    return Transformer.from_crs(src_epsg, dst_epsg, always_xy=True)


def _apply(aff: Affine, x: float, y: float) -> tuple[float, float]:
    """``aff`` applied to the point (x, y) (avoids affine's deprecated ``*`` operator)."""
    return aff.a * x + aff.b * y + aff.c, aff.d * x + aff.e * y + aff.f


def _land_cover(site: Site) -> str:
    lc = (site.land_cover or "").strip().lower()
    if lc not in LAND_COVER_REFLECTANCE:
        log.warning("site %s: unknown land_cover %r, simulating %r", site.site_id, site.land_cover, DEFAULT_LAND_COVER)
        return DEFAULT_LAND_COVER
    return lc


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
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


def _texture(rng: np.random.Generator, shape, scales=((2.0, 0.35), (8.0, 0.45), (30.0, 0.6))) -> np.ndarray:
    """Multi-scale texture: weighted sum of smooth fields ((sigma_px, weight), ...), unit std."""
    out = sum(wt * _smooth_field(rng, shape, s) for s, wt in scales)
    return out / out.std()


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


def _blend(rho: np.ndarray, cover: np.ndarray, refl) -> None:
    """In place: rho = rho * (1 - cover) + cover * refl (per band)."""
    for b in range(3):
        rho[b] += cover * (refl[b] - rho[b])


def _rect_cover(shape, row0: float, col0: float, height: float, width: float) -> tuple[slice, slice, np.ndarray]:
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


def _disc_cover(rows: np.ndarray, cols: np.ndarray, row: float, col: float, radius: float) -> np.ndarray:
    """Anti-aliased coverage of a disc of ``radius`` px centred at fractional (row, col)."""
    d = np.hypot(rows + 0.5 - row, cols + 0.5 - col)
    return np.clip(radius + 0.5 - d, 0.0, 1.0)


def _psf_1d(center: float, sigma: float) -> tuple[int, np.ndarray]:
    """Pixel-integrated 1-D gaussian: first pixel index and the weights of the pixels it covers."""
    lo = int(math.floor(center - 4.0 * sigma))
    hi = int(math.ceil(center + 4.0 * sigma))
    edges = np.arange(lo, hi + 1, dtype=float)
    return lo, np.diff(ndtr((edges - center) / sigma))


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


# Sentinel-2 does not image at very low sun; keep the reflectance conversion finite at high
# latitude in winter (simulator assumption).
MAX_SUN_ZENITH_DEG = 82.0


# --------------------------------------------------------------------------------------------
# Site-level (static) content
# --------------------------------------------------------------------------------------------
def default_size_px(site: Site) -> int:
    """Tile side in 20 m pixels covering the site's AOI (250 for a 5 km AOI)."""
    return int(round(site.aoi_km * 1000.0 / S2_PIXEL_M))


def _site_centre_xy(site: Site) -> tuple[float, float]:
    x, y = _transformer(4326, site.utm_epsg).transform(site.lon, site.lat)
    return float(x), float(y)


def site_grid(site: Site, size_px: int | None = None) -> Affine:
    """Affine transform of the site's tile: 20 m UTM pixels, origin snapped to the 20 m grid."""
    n = default_size_px(site) if size_px is None else int(size_px)
    xc, yc = _site_centre_xy(site)
    half = n * S2_PIXEL_M / 2.0
    x0 = round((xc - half) / S2_PIXEL_M) * S2_PIXEL_M
    y0 = round((yc + half) / S2_PIXEL_M) * S2_PIXEL_M
    return Affine(S2_PIXEL_M, 0.0, float(x0), 0.0, -S2_PIXEL_M, float(y0))


@lru_cache(maxsize=256)
def _site_flares_cached(site: Site) -> tuple[FlareStack, ...]:
    rng = _rng("site-flares", site.site_id)
    xc, yc = _site_centre_xy(site)
    half_extent = 0.35 * site.aoi_km * 1000.0  # stacks in the central 70 % of the AOI
    min_sep = 12.0 * S2_PIXEL_M  # >= ~10 px apart (assumption)
    n = int(rng.integers(2, 7))
    pos: list[tuple[float, float]] = []
    for _ in range(n):
        for _attempt in range(200):
            e, nn = rng.uniform(-half_extent, half_extent, size=2)
            if all(math.hypot(e - a, nn - b) >= min_sep for a, b in pos):
                pos.append((float(e), float(nn)))
                break
    if not pos:
        pos.append((0.0, 0.0))
    # Occasionally a second stack right next to another one (3-5 px apart): a hard case for
    # detectors (two sources, one blob) and always one VIIRS pixel.
    pair_u, pair_dist = rng.random(), rng.uniform(3.0, 5.0)
    pair_ang, pair_idx = rng.uniform(0, 2 * math.pi), rng.random()
    if pair_u < 0.35:
        a, b = pos[int(pair_idx * len(pos))]
        e, nn = a + pair_dist * S2_PIXEL_M * math.cos(pair_ang), b + pair_dist * S2_PIXEL_M * math.sin(pair_ang)
        if all(math.hypot(e - p, nn - q) >= min_sep for p, q in pos if (p, q) != (a, b)):
            pos.append((e, nn))
    inv = _transformer(site.utm_epsg, 4326)
    stacks = []
    for k, (e, nn) in enumerate(pos, start=1):
        flow = float(np.clip(rng.lognormal(math.log(50.0), 1.2), 2.0, 400.0))
        temp = float(rng.uniform(1600.0, 2000.0))
        eff = float(rng.lognormal(0.0, 0.25))
        p_act = float(rng.uniform(0.75, 0.95))
        x, y = xc + e, yc + nn
        lon, lat = inv.transform(x, y)
        stacks.append(
            FlareStack(
                flare_id=f"{site.site_id}-F{k:02d}",
                lat=round(float(lat), 7),
                lon=round(float(lon), 7),
                x_m=float(x),
                y_m=float(y),
                base_flow_kscm_d=round(flow, 3),
                temperature_k=round(temp, 1),
                efficiency_factor=round(eff, 4),
                activity_probability=round(p_act, 3),
            )
        )
    return tuple(stacks)


def site_flares(site: Site) -> list[FlareStack]:
    """The site's persistent flare stacks (positions, base flow, temperature): same every day."""
    return list(_site_flares_cached(site))


def _stack_day_states(site: Site, day: date) -> list[tuple[FlareStack, bool, float, float]]:
    """Each stack's state on ``day``: (stack, lit, flow thousand m3/day, flame temperature K).

    The only place the ``day-flares`` random stream is drawn: ``simulate_scene`` and
    ``site_day_flows`` both call it, so the scene and the metered truth cannot diverge.
    """
    rng = _rng("day-flares", site.site_id, day.isoformat())
    states = []
    for st in _site_flares_cached(site):
        u_act, flow_mult, dt = rng.random(), rng.lognormal(0.0, 0.3), rng.normal(0.0, 25.0)
        active = bool(u_act < st.activity_probability)
        temp = float(np.clip(st.temperature_k + dt, 1500.0, 2100.0))
        flow = float(st.base_flow_kscm_d * flow_mult) if active else 0.0
        states.append((st, active, flow, temp))
    return states


def site_day_flows(site: Site, day: date) -> dict[str, float]:
    """True flared volume of each of the site's stacks on ``day``, thousand standard m3/day.

    ``{flare_id: flow}`` with 0.0 for an unlit stack: exactly the flows ``simulate_scene`` uses
    for that site and day (its truth stores them rounded to 4 decimals), without simulating the
    tile. A ``datetime`` is reduced to its date.
    """
    if isinstance(day, datetime):
        day = day.date()
    return {st.flare_id: flow for st, _active, flow, _temp in _stack_day_states(site, day)}


def radiant_heat_from_flow(flow_kscm_d, efficiency_factor=1.0):
    """Simulator truth: radiant heat (MW) of a flare burning ``flow_kscm_d`` thousand m3/day.

    RH = flow / 31.5 * efficiency_factor * (flow / 50) ** 0.1 -- SIMULATOR ASSUMPTION, loosely the
    Zhizhin et al. 2025 linear calibration (31.5 thousand m3/day per MW) with a mild nonlinearity.
    """
    flow = np.asarray(flow_kscm_d, dtype=np.float64)
    return flow / KSCM_D_PER_MW * efficiency_factor * np.power(np.maximum(flow, 0.0) / 50.0, 0.1)


@dataclass
class _Static:
    """Site content that does not change from day to day (cached per site and tile size)."""

    transform: Affine
    base: np.ndarray  # (3, H, W) float32 surface reflectance incl. structures
    parcels: np.ndarray | None  # cropland parcel id map
    parcel_phase: np.ndarray | None  # per parcel phenology shift (days)
    parcel_cover: np.ndarray | None  # (H, W) fraction of the pixel that is crop (not structure)
    land: np.ndarray  # (H, W) bool: fires may burn here
    texture: np.ndarray  # (H, W) unit-std surface texture of the site


@lru_cache(maxsize=16)
def _static_scene(site: Site, size_px: int) -> _Static:
    lc = _land_cover(site)
    rng = _rng("site-background", site.site_id, size_px)
    shape = (size_px, size_px)
    rows, cols = np.mgrid[0:size_px, 0:size_px].astype(np.float64)
    base = np.empty((3, size_px, size_px), dtype=np.float64)
    bright = _texture(rng, shape)
    spectral = _smooth_field(rng, shape, 12.0)
    parcels = parcel_phase = None
    if lc in ("desert", "sand"):
        refl = LAND_COVER_REFLECTANCE[lc]
        amp = 0.10 if lc == "desert" else 0.06
        mod = 1.0 + amp * bright
        if lc == "sand":  # dune ripples: oriented waves with a wandering phase
            theta = rng.uniform(0, math.pi)
            wavelength = rng.uniform(25.0, 50.0)
            phase = 2 * math.pi * (cols * math.cos(theta) + rows * math.sin(theta)) / wavelength
            mod = mod + 0.07 * np.sin(phase + 2.5 * _smooth_field(rng, shape, 25.0))
        for b in range(3):
            base[b] = refl[b] * mod + 0.012 * spectral * (1.0, -0.5, -0.8)[b]
    elif lc == "vegetation":
        soil_frac = 1.0 / (1.0 + np.exp(-(2.2 * bright - 2.6)))  # mostly canopy, some clearings
        for b in range(3):
            canopy = LAND_COVER_REFLECTANCE[lc][b] * (1 + 0.06 * spectral)
            base[b] = (1 - soil_frac) * canopy + soil_frac * _BARE_SOIL[b]
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
        c, r = _apply(inv, st.x_m, st.y_m)
        flare_rc.append((r, c))
    water = lc == "water"
    for r, c in flare_rc:
        if water:  # platform deck under each stack
            hgt, wid = rng.uniform(2.0, 4.0, size=2)
            refl = tuple(v * rng.uniform(0.8, 1.2) for v in (0.25, 0.23, 0.21))
        else:  # gravel pad
            hgt, wid = rng.uniform(6.0, 14.0, size=2)
            refl = _GRAVEL
        r0 = r - hgt * rng.uniform(0.3, 0.7)
        c0 = c - wid * rng.uniform(0.3, 0.7)
        sr, sc, cov = _rect_cover(shape, r0, c0, hgt, wid)
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
            refl = _ASPHALT if rng.random() < 0.4 else _GRAVEL
            _blend(base, cov, refl)
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
            cov = _disc_cover(rows, cols, r, c, radius)
            _blend(base, cov, refl)
            struct = np.maximum(struct, cov)
    # Metal roofs / bright buildings: flat spectrum, B12/B11 ~ 1.0.
    for _ in range(int(rng.integers(2, 6))):
        centre = place(6.0, 35.0)
        if centre is None:
            continue
        hgt, wid = rng.uniform(1.5, 4.0), rng.uniform(2.0, 6.0)
        lvl = rng.uniform(0.6, 0.9)
        refl = (lvl * rng.uniform(0.95, 1.05), lvl, lvl * rng.uniform(0.97, 1.03))
        sr, sc, cov = _rect_cover(shape, centre[0], centre[1], hgt, wid)
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
    return _Static(transform, base, parcels, parcel_phase, parcel_cover, land, bright)


# --------------------------------------------------------------------------------------------
# The day's scene
# --------------------------------------------------------------------------------------------
def _cloud_fraction_target(rng: np.random.Generator, clim: Climate) -> float:
    """Daily cloud fraction (0-1) for the climate: clear with p_clear, else Beta(a, b)."""
    u, cf = rng.random(), rng.beta(clim.beta_a, clim.beta_b)
    return 0.0 if u < clim.p_clear else float(cf)


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
    lc = _land_cover(site)
    clim = CLIMATES[lc]
    static = _static_scene(site, n)
    shape = (n, n)
    iso = day.isoformat()
    sid = site.site_id
    doy = day.timetuple().tm_yday

    acquired_at = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(hours=10.5 - site.lon / 15.0)
    sza, saz = solar_angles(site.lat, doy, 10.5)
    sza = min(sza, MAX_SUN_ZENITH_DEG)

    # 1. surface: static background with a small daily variation (atmosphere, moisture) ---------
    rng = _rng("day-background", sid, iso)
    rho = static.base.astype(np.float64, copy=True)
    if static.parcels is not None:  # cropland: green-up cycle per parcel (hemisphere aware)
        season = doy if site.lat >= 0 else (doy + 182) % 365
        green = np.clip(np.sin(2 * math.pi * (season - 120 + static.parcel_phase) / 365.0) * 1.1, 0.0, 1.0)
        g = green[static.parcels]
        crop = np.stack([g * _GREEN_CROP[b] + (1 - g) * _STUBBLE[b] for b in range(3)]) * (1.0 + 0.05 * static.texture)
        rho = rho + static.parcel_cover * (crop - rho)
    band_gain = 1.0 + rng.normal(0.0, 0.02, size=3)
    daily = _smooth_field(rng, shape, 20.0)
    for b in range(3):
        rho[b] *= band_gain[b] * (1.0 + 0.02 * daily)

    # 2. sun glint (water) --------------------------------------------------------------------
    rng = _rng("day-glint", sid, iso)
    glint = bool(clim.glint_prob > 0 and rng.random() < clim.glint_prob)
    glint_peak = 0.0
    if glint:
        # a patch of glitter: smooth envelope times wave facets, peak reflectance 0.8-1.2
        gr, gc = rng.uniform(0.1 * n, 0.9 * n, size=2)
        radius = rng.uniform(0.12, 0.35) * n
        glint_peak = float(rng.uniform(0.8, 1.2))
        rows, cols = np.ogrid[0:n, 0:n]
        blob = np.exp(-((rows + 0.5 - gr) ** 2 + (cols + 0.5 - gc) ** 2) / (2 * radius * radius))
        facets = np.clip(0.45 + 0.35 * _smooth_field(rng, shape, 1.0), 0.0, None) ** 2
        g = glint_peak * blob * facets / max(float(facets.max()), 1e-6)
        spec = (1.0 + rng.normal(0.02, 0.01), 1.0, 1.0 + rng.normal(-0.02, 0.01))  # ~flat: B12/B11 ~ 1
        for b in range(3):
            rho[b] += g * spec[b]

    # 3. wildfire: burn scar now, flames with the other hot sources -------------------------------
    rng = _rng("day-fire", sid, iso)
    fires_spec = []
    if clim.fire_prob > 0 and rng.random() < clim.fire_prob:
        for k in range(1 + int(rng.random() < 0.2)):
            centre = None
            flare_rc = [_apply(~static.transform, s.x_m, s.y_m)[::-1] for s in _site_flares_cached(site)]
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
            _blend(rho, 0.8 * scar * static.land, _CHAR)
            fires_spec.append((k, centre, length, t_fire, pts_r, pts_c, temps, areas, bool(rng.random() < 0.5)))

    # 4. clouds and their shadows -----------------------------------------------------------------
    rng = _rng("day-clouds", sid, iso)
    cf_target = _cloud_fraction_target(rng, clim)
    alpha = np.zeros(shape)
    t_min = float(rng.uniform(0.05, 0.3))  # flame transmittance under the thickest cloud
    if cf_target > 0.0:
        field = (
            0.8 * _smooth_field(rng, shape, 14.0)
            + 0.45 * _smooth_field(rng, shape, 4.0)
            + 0.2 * _smooth_field(rng, shape, 1.5)
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
        _blend(rho, alpha, tuple(v * cloud_gain for v in CLOUD_REFLECTANCE))
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
    for st, active, flow, temp in _stack_day_states(site, day):
        col, row = _apply(inv, st.x_m, st.y_m)
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
    fwd = _transformer(site.utm_epsg, 4326)
    for k, centre, length, t_fire, pts_r, pts_c, temps, areas, night in fires_spec:
        tr_ = transmittance(*centre)
        for r, c, t, a in zip(pts_r, pts_c, temps, areas):
            _add_source(hot, occl, float(r), float(c), float(a), _planck_reflectance(float(t), sza, doy), tr_)
        x, y = _apply(static.transform, centre[1], centre[0])
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
    rng = _rng("day-sensor", sid, iso)
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
    viirs_csv, viirs_truth = _viirs_night(site, day, lc, clim, flares, fires)

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


# --------------------------------------------------------------------------------------------
# VIIRS Nightfire
# --------------------------------------------------------------------------------------------
def _fmt(v: float, digits: int) -> str:
    return f"{v:.{digits}g}"


def _viirs_night(site: Site, day: date, lc: str, clim: Climate, flares: list[FlareTruth], fires: list[dict]):
    """VNF CSV text and its truth for the night after ``day``'s pass (see module docstring)."""
    rng = _rng("night-viirs", site.site_id, day.isoformat())
    night = day + timedelta(days=1)
    doy = night.timetuple().tm_yday
    cf_night = _cloud_fraction_target(rng, clim)
    offset_min = float(rng.uniform(-45.0, 45.0))
    scan = abs(offset_min) / 45.0  # 0 at nadir .. 1 at the swath edge (assumption)
    scan_time = datetime(night.year, night.month, night.day, tzinfo=timezone.utc) + timedelta(
        hours=1.5 - site.lon / 15.0, minutes=offset_min
    )
    area_pixel_km2 = 0.4 + 0.4 * scan * scan
    side_m = math.sqrt(area_pixel_km2) * 1000.0
    grid_off = rng.uniform(0.0, side_m, size=2)
    hemi = 1.0 if site.lat >= 0 else -1.0
    t_bkg = clim.t_bkg_k + clim.t_bkg_amp_k * hemi * math.cos(2 * math.pi * (doy - 200) / 365.0) + rng.normal(0, 2)
    t_bkg = float(np.clip(t_bkg, 240.0, 320.0))

    fwd = _transformer(4326, site.utm_epsg)
    inv = _transformer(site.utm_epsg, 4326)
    # group lit stacks by VIIRS pixel; fires get rows of their own
    groups: dict[tuple[int, int], list] = {}
    for f in flares:
        if not f.active:
            continue
        x, y = fwd.transform(f.lon, f.lat)
        cell = (int(math.floor((x + grid_off[0]) / side_m)), int(math.floor((y + grid_off[1]) / side_m)))
        groups.setdefault(cell, []).append(("flare", f.flare_id, x, y, f.temperature_k, f.flame_area_m2))
    sources = [v for _, v in sorted(groups.items())]
    for fi in fires:
        if fi["burning_at_night"]:
            x, y = fwd.transform(fi["lon"], fi["lat"])
            # overnight the front has died down to smouldering patches: smaller, cooler (assumption)
            sources.append([("fire", fi["fire_id"], x, y, fi["temperature_k"] - 50.0, fi["area_m2"] * 0.5)])

    rows, detections = [], []
    for members in sources:
        u_cloud, u_det, u_att = rng.random(), rng.random(), rng.uniform(0.3, 0.8)
        jit_r, jit_a = rng.uniform(150.0, 350.0), rng.uniform(0, 2 * math.pi)
        dt, area_noise, rad_noise = rng.normal(0, 60.0), rng.lognormal(0.0, 0.3), rng.normal(0, 0.02, size=8)
        qf_u = rng.integers(0, 2)
        t_row = scan_time + timedelta(seconds=float(rng.uniform(-1.5, 1.5)))  # along-scan timing
        areas = np.array([m[5] for m in members])
        temps = np.array([m[4] for m in members])
        rh_true = float(np.sum(physics.radiant_heat_mw(temps, areas)))
        cloudy = u_cloud < cf_night
        # detection probability (assumption): small sources (< ~0.2 MW, ~360 m3/h) are often
        # missed (cf. Seymour et al. 2025, domain.md), cloud hides most of the rest
        p_det = (1.0 / (1.0 + (0.2 / max(rh_true, 1e-9)) ** 2)) * (0.5 if cloudy else 0.97)
        if u_det >= p_det:
            continue
        w = areas * temps**4
        x = float(np.average([m[2] for m in members], weights=w)) + jit_r * math.cos(jit_a)
        y = float(np.average([m[3] for m in members], weights=w)) + jit_r * math.sin(jit_a)
        lon, lat = inv.transform(x, y)
        t_bb = float(max(500.0, np.average(temps, weights=areas) + dt))
        area_bb = float(areas.sum() * area_noise * (u_att if cloudy else 1.0))
        rh = float(physics.radiant_heat_mw(t_bb, area_bb))
        esf = area_bb / (area_pixel_km2 * 1e6)
        rads = {}
        n_fill = 0
        for i, (band, lam) in enumerate(VIIRS_BAND_UM.items()):
            src = esf * float(physics.planck_radiance(lam, t_bb))
            bkg = 0.97 * float(physics.planck_radiance(lam, t_bkg)) * (1 - esf) if lam > 3.0 else 0.0
            val = (src + bkg) * (1.0 + rad_noise[i])
            # M07/M08 at night see only the hot source; below ~0.05 W m-2 sr-1 um-1 they are not
            # detected and carry the fill value (assumption)
            if band in ("M07", "M08") and src < 0.05:
                rads[band] = str(VNF_FILL_VALUE)
                n_fill += 1
            else:
                rads[band] = _fmt(val, 6)
        # Simulator coding (not the official VNF flag tables):
        # QF_Detect = 1 strong (M07 and M08 present), 2 one of them, 3 neither (M10 + MWIR), +4 if
        # Cloud_Mask; QF_Fit 0 (best) .. 9 grows with missing bands, cloud and a random unit.
        qf_detect = 1 + n_fill + (4 if cloudy else 0)
        qf_fit = int(min(9, 2 * n_fill + (3 if cloudy else 0) + qf_u))
        key = f"SIM_npp_d{t_row:%Y%m%d}_t{t_row:%H%M%S}_{site.site_id}_{len(rows) + 1:03d}"
        rows.append(
            {
                "id_Key": key,
                "Date_Mscan": f"{t_row:%Y/%m/%d %H:%M:%S}.{t_row.microsecond // 1000:03d}",
                "Lat_GMTCO": f"{lat:.5f}",
                "Lon_GMTCO": f"{lon:.5f}",
                "Temp_BB": f"{t_bb:.0f}",
                "Temp_Bkg": f"{t_bkg:.0f}",
                "ESF_BB": _fmt(esf, 5),
                "RHI": f"{rh / area_pixel_km2:.4f}",  # W/m2 = RH*1e6 W / (Area_Pixel*1e6 m2)
                "RH": f"{rh:.4f}",
                "Area_Pixel": f"{area_pixel_km2:.4f}",
                "Area_BB": f"{area_bb:.4f}",
                "Cloud_Mask": "1" if cloudy else "0",
                "QF_Detect": str(qf_detect),
                "QF_Fit": str(qf_fit),
                **{f"Rad_{b}": rads[b] for b in VIIRS_BAND_UM},
            }
        )
        detections.append(
            {
                "id_Key": key,
                "flare_ids": [m[1] for m in members if m[0] == "flare"],
                "fire_ids": [m[1] for m in members if m[0] == "fire"],
                "radiant_heat_mw_true": round(rh_true, 5),
            }
        )
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=VNF_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    truth = {
        "scan_time_utc": scan_time.isoformat(),
        "night_cloud_fraction": round(cf_night, 4),
        "area_pixel_km2": round(area_pixel_km2, 4),
        "detections": detections,
    }
    return buf.getvalue(), truth
