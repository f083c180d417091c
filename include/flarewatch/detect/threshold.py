"""The physics-baseline flare detector: TAI + NHI threshold rules on a Sentinel-2 SWIR tile.

Rules (constants in ``config.ThresholdDetectorConfig``; sources in ``shared/docs/domain.md``):

1. Hot core, per pixel (Marchese et al., as implemented in the open FlareSat comparison code):
   ``TAI = (rho12 - rho11) / rho8A >= tai_min and rho12 >= rho12_min``, or the saturated-pixel
   rule ``rho12 > saturated_rho12 and rho11 > rho12``. A clipped B12 (the Sentinel-2 SATURATED
   special value DN 65535, or the tile's saturation plateau, ``b12_clip_dn``) with rho12 >= rho11
   also counts as saturated: rho12 is then only a lower bound and the spectral tests below
   (which need the true B12) would reject a real flame.
2. Normalized hotspot indices on TOA radiance (Marchese et al. 2019, used by DAFI, Faruolo et al.
   2022, Remote Sensing 14(24):6319): ``NHI_SWIR = (L12-L11)/(L12+L11)``,
   ``NHI_SWNIR = (L11-L8A)/(L11+L8A)``. The published NHI algorithm flags a pixel as hot when
   ``NHI_SWIR > 0 OR NHI_SWNIR > 0`` (NHI tool, https://sites.google.com/view/nhi-tool). In
   radiance a 1600-2000 K flame is brighter at 1.6 um than at 2.2 um (Planck peak ~1.6 um) and the
   solar background is ~3x brighter at 1.6 um than at 2.2 um, so NHI_SWIR is negative for every
   unsaturated flame hotter than ~1500 K: requiring both indices (as ``config`` words it) would
   reject nearly every real flare. This module therefore applies the published OR form when
   ``require_nhi`` is set. Saturated pixels are exempt.
3. Glint / bright roofs: reflectance ratio ``rho12 / rho11 >= min_b12_b11_ratio`` (flames > ~1.3,
   glint and roofs ~1.0); saturated pixels are exempt (their B12 is clipped).
4. Contrast: ``rho12 >= contrast_min x`` the median rho12 of the ``background_window_px`` square
   window centred on the pixel, pixels passing rules 1-3 and nodata excluded (open Sentinel-2
   flare mappers).
   Where the window holds no background pixel the tile-wide background median is used.

Candidates are grouped into 8-connected components (``scipy.ndimage.label``); each becomes one
``Detection``. Nodata pixels (DN 0 in any band, NaN reflectance) are never candidates. Clouds do
not suppress detections; ``cloud_flag`` marks those with cloud within 2 px.

Confidence (0.5..1, monotonic in TAI and contrast): per component take the strongest pixel margins
``s_hot = max(min(TAI / tai_min, rho12 / rho12_min))`` (``rho12 / rho12_min`` for saturated-rule
pixels) and ``s_con = max(rho12 / (contrast_min * max(bg12, 0.01)))``; both are >= 1 for a
candidate. ``confidence = 1 - 2 ** -sqrt(s_hot * s_con)``: 0.5 at the thresholds, 0.75 at twice
both, 0.94 at four times both. It is a ranking score, not a calibrated probability.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from flarewatch import physics
from flarewatch.config import S2_BANDS, ThresholdDetectorConfig
from flarewatch.tiles import Tile

DETECTOR_NAME = "threshold-tai-nhi"

# Sentinel-2 L1C/L2A special values: NODATA = 0, SATURATED = 65535 (ESA Sentinel-2 Products
# Specification Document, Special_Values of the product metadata).
S2_SATURATED_DN = 65535

# Floor of the TAI denominator rho8A (reflectance): over dark water rho8A can be ~0 or, with the
# -0.1 offset, negative; a floor keeps TAI finite and positive-signed there.
TAI_RHO8A_FLOOR = 1e-3
# Floor of the background rho12 in the confidence contrast margin (reflectance).
CONTRAST_BG_FLOOR = 0.01
# Cloud within this many pixels (Chebyshev distance) of a detection sets ``cloud_flag``.
CLOUD_FLAG_DISTANCE_PX = 2
# Window medians are computed in chunks of this many pixels to bound memory.
_MEDIAN_CHUNK = 4096


@dataclass(frozen=True)
class Detection:
    """One detected hot-pixel cluster in a tile.

    ``row``/``col``: B12-excess-weighted centroid in fractional pixel coordinates (a pixel's centre
    is index + 0.5), directly usable with ``Tile.pixel_to_lonlat``. ``peak_row``/``peak_col``: the
    pixel with the largest B12 reflectance excess over its local background, the stable key of the
    detection within a tile. ``bbox``: (row0, col0, row1, col1), row1/col1 exclusive.
    ``confidence``: 0..1 ranking score (module docstring). ``saturated``: any pixel met the
    saturated-pixel rule. ``cloud_flag``: cloud mask within 2 px.
    """

    row: float
    col: float
    peak_row: int
    peak_col: int
    bbox: tuple[int, int, int, int]
    n_pixels: int
    confidence: float
    saturated: bool
    cloud_flag: bool
    detector: str = DETECTOR_NAME


def b12_clip_dn(b12_dn: np.ndarray, valid: np.ndarray, scale: float, offset: float,
                cfg: ThresholdDetectorConfig = ThresholdDetectorConfig()) -> int:
    """B12 digital number at and above which the tile's B12 is taken as clipped (saturated).

    ``S2_SATURATED_DN`` (65535), or lower when the tile shows a saturation plateau: the largest
    valid B12 DN is shared by at least two pixels and is brighter than ``cfg.saturated_rho12``.
    Sensor saturation holds every saturated pixel at one value, while noise makes exact ties at
    the top of a natural scene improbable; the saturation radiance is not in the tile metadata.
    """
    v = b12_dn[valid]
    if v.size == 0:
        return S2_SATURATED_DN
    top = int(v.max())
    if top < S2_SATURATED_DN and top * scale + offset > cfg.saturated_rho12 and int((v == top).sum()) >= 2:
        return top
    return S2_SATURATED_DN


def hot_core_rules(rho8a, rho11, rho12, b12_dn, cfg: ThresholdDetectorConfig = ThresholdDetectorConfig(),
                   clip_dn: int = S2_SATURATED_DN):
    """Rule 1 (module docstring) per pixel: returns ``(tai, tai_rule, saturated_rule)`` arrays.

    Inputs are reflectance arrays (NaN = nodata) and the B12 digital numbers (uint16).
    ``tai`` is the Thermal Anomaly Index (dimensionless); the two rules are boolean arrays, False
    wherever any input is NaN. ``saturated_rule`` is Marchese's ``rho12 > saturated_rho12 and
    rho11 > rho12``, or B12 clipped (DN >= ``clip_dn``, see ``b12_clip_dn``) with rho12 >= rho11:
    a clipped B12 at or above B11 is a flame whose spectral shape the clipping has flattened.
    """
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        tai = (rho12 - rho11) / np.maximum(rho8a, TAI_RHO8A_FLOOR)
        tai_rule = (tai >= cfg.tai_min) & (rho12 >= cfg.rho12_min)
        marchese = (rho12 > cfg.saturated_rho12) & (rho11 > rho12)
        clipped = (np.asarray(b12_dn) >= clip_dn) & (rho12 >= rho11) & np.isfinite(rho8a)
    return tai, tai_rule, marchese | clipped


def nhi_indices(rho8a, rho11, rho12, sun_zenith_deg: float, day_of_year: int, solar_irradiance=None):
    """Normalized hotspot indices (NHI_SWIR, NHI_SWNIR), dimensionless, from TOA radiances.

    Radiances via ``physics.reflectance_to_radiance`` (L = rho E_sun cos(theta_s) / (pi d^2));
    Marchese et al. 2019 / Faruolo et al. 2022. ``solar_irradiance``: E_sun per band of the tile's
    spacecraft (``Tile.solar_irradiance``); default Sentinel-2A's.
    """
    l8 = physics.reflectance_to_radiance(rho8a, "B8A", sun_zenith_deg, day_of_year, solar_irradiance)
    l11 = physics.reflectance_to_radiance(rho11, "B11", sun_zenith_deg, day_of_year, solar_irradiance)
    l12 = physics.reflectance_to_radiance(rho12, "B12", sun_zenith_deg, day_of_year, solar_irradiance)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (l12 - l11) / (l12 + l11), (l11 - l8) / (l11 + l8)


def window_median(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Median of the ``size`` x ``size`` window centred on each (row, col), ignoring NaN.

    ``values``: 2-D float array with NaN for pixels to exclude. Returns float64, NaN where the
    window holds no finite value. Cost grows with the number of pixels asked for, not the tile.
    """
    half = size // 2
    padded = np.pad(values.astype(np.float32, copy=False), half, mode="constant", constant_values=np.nan)
    windows = sliding_window_view(padded, (size, size))
    out = np.full(len(rows), np.nan, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows -> NaN, handled by callers
        for start in range(0, len(rows), _MEDIAN_CHUNK):
            stop = start + _MEDIAN_CHUNK
            chunk = windows[rows[start:stop], cols[start:stop]].reshape(-1, size * size)
            out[start:stop] = np.nanmedian(chunk, axis=1)
    return out


def day_of_year(tile: Tile) -> int:
    """Day of year (1..366) of the tile's acquisition, for the Earth-Sun distance."""
    return int(tile.acquired_at.timetuple().tm_yday)


@dataclass(frozen=True)
class SpectralCandidates:
    """Pixels passing rules 1-3 (all but contrast): ``rows``/``cols`` (row-major order),
    ``saturated`` (saturated-pixel rule per pixel), ``tai`` (per pixel), ``clip_dn`` (B12 clip DN)."""

    rows: np.ndarray
    cols: np.ndarray
    saturated: np.ndarray
    tai: np.ndarray
    clip_dn: int

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        out = np.zeros(shape, dtype=bool)
        out[self.rows, self.cols] = True
        return out


def spectral_candidates(tile: Tile, cfg: ThresholdDetectorConfig = ThresholdDetectorConfig()) -> SpectralCandidates:
    """Rules 1-3 of the module docstring (hot core, NHI, B12/B11 ratio); nodata never passes."""
    rho8a, rho11, rho12 = (tile.reflectance(b) for b in S2_BANDS)
    b12_dn = tile.dn[S2_BANDS.index("B12")]
    valid = tile.valid
    clip_dn = b12_clip_dn(b12_dn, valid, tile.scale, tile.offset, cfg)
    tai, tai_rule, sat_rule = hot_core_rules(rho8a, rho11, rho12, b12_dn, cfg, clip_dn)
    # Spectral tests only where the core rules hold (few pixels): index once, test.
    rr, cc = np.nonzero((tai_rule | sat_rule) & valid)
    r8, r11, r12 = rho8a[rr, cc], rho11[rr, cc], rho12[rr, cc]
    sat = sat_rule[rr, cc]
    with np.errstate(invalid="ignore", divide="ignore"):
        keep = np.where(r11 > 0, r12 / np.where(r11 > 0, r11, 1.0), np.inf) >= cfg.min_b12_b11_ratio
    if cfg.require_nhi and rr.size:
        nhi_swir, nhi_swnir = nhi_indices(r8, r11, r12, tile.sun_zenith_deg, day_of_year(tile), tile.solar_irradiance)
        keep = keep & ((nhi_swir > 0) | (nhi_swnir > 0))
    keep = keep | sat
    return SpectralCandidates(rr[keep], cc[keep], sat[keep], tai[rr[keep], cc[keep]].astype(np.float64), clip_dn)


def detect_flares(tile: Tile, cfg: ThresholdDetectorConfig = ThresholdDetectorConfig()) -> list[Detection]:
    """Detect flares in ``tile`` with the threshold rules (module docstring).

    Returns one ``Detection`` per 8-connected cluster of candidate pixels, sorted by
    (peak_row, peak_col). Deterministic; a few ms on a 250 x 250 tile.
    """
    sc = spectral_candidates(tile, cfg)
    if sc.rows.size == 0:
        return []
    rho12_tile = tile.reflectance("B12")
    rr, cc, sat, tai_px = sc.rows, sc.cols, sc.saturated, sc.tai
    r12 = rho12_tile[rr, cc]

    # Contrast against the local background median, candidate and nodata pixels excluded.
    background = np.where(sc.mask(tile.shape) | ~tile.valid, np.nan, rho12_tile)
    bg12 = window_median(background, rr, cc, cfg.background_window_px)
    if np.isnan(bg12).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            bg12 = np.where(np.isnan(bg12), np.nanmedian(background), bg12)
    with np.errstate(invalid="ignore"):
        contrast_ok = ~(r12 < cfg.contrast_min * bg12)  # NaN background (no data at all) passes
    rr, cc, r12, sat, bg12, tai_px = (a[contrast_ok] for a in (rr, cc, r12, sat, bg12, tai_px))
    if rr.size == 0:
        return []

    cand = np.zeros(tile.shape, dtype=bool)
    cand[rr, cc] = True
    labels, n = ndimage.label(cand, structure=np.ones((3, 3), dtype=bool))
    comp = labels[rr, cc] - 1

    bg_for_excess = np.where(np.isnan(bg12), 0.0, bg12)
    excess = r12.astype(np.float64) - bg_for_excess
    with np.errstate(invalid="ignore", divide="ignore"):
        s_rho = r12 / cfg.rho12_min
        s_hot = np.where(sat, s_rho, np.minimum(tai_px / cfg.tai_min, s_rho))
        s_con = r12 / (cfg.contrast_min * np.maximum(bg_for_excess, CONTRAST_BG_FLOOR))

    cloud = tile.cloud_mask if tile.cloud_mask is not None and tile.cloud_mask.any() else None
    h, w = tile.shape
    detections: list[Detection] = []
    order = np.argsort(comp, kind="stable")  # pixels grouped by component, row-major within each
    bounds = np.searchsorted(comp[order], np.arange(n + 1))
    for k in range(n):
        idx = order[bounds[k] : bounds[k + 1]]
        prow, pcol, pex = rr[idx], cc[idx], excess[idx]
        peak = int(np.argmax(pex))  # first maximum in row-major order: deterministic
        weights = np.clip(pex, 0.0, None)
        if weights.sum() <= 0:
            weights = np.ones_like(weights)
        row = float(np.average(prow + 0.5, weights=weights))
        col = float(np.average(pcol + 0.5, weights=weights))
        r0, c0, r1, c1 = int(prow.min()), int(pcol.min()), int(prow.max()) + 1, int(pcol.max()) + 1
        x = float(np.sqrt(max(np.nanmax(s_hot[idx]), 1.0) * max(np.nanmax(s_con[idx]), 1.0)))
        cloud_flag = False
        if cloud is not None:
            d = CLOUD_FLAG_DISTANCE_PX
            wr0, wc0, wr1, wc1 = max(r0 - d, 0), max(c0 - d, 0), min(r1 + d, h), min(c1 + d, w)
            near = np.zeros((wr1 - wr0, wc1 - wc0), dtype=bool)
            near[prow - wr0, pcol - wc0] = True
            near = ndimage.binary_dilation(near, structure=np.ones((2 * d + 1, 2 * d + 1), dtype=bool))
            cloud_flag = bool((near & cloud[wr0:wr1, wc0:wc1]).any())
        detections.append(
            Detection(
                row=row,
                col=col,
                peak_row=int(prow[peak]),
                peak_col=int(pcol[peak]),
                bbox=(r0, c0, r1, c1),
                n_pixels=int(idx.size),
                confidence=float(1.0 - 2.0 ** (-x)),
                saturated=bool(sat[idx].any()),
                cloud_flag=cloud_flag,
                detector=DETECTOR_NAME,
            )
        )
    detections.sort(key=lambda d: (d.peak_row, d.peak_col))
    return detections
