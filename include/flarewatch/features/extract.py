"""Per-detection features: hot-pixel radiometry, temperature, SWIR FRP, position, cloud/glint
flags, matched VIIRS and the number of nights VIIRS saw the flare.

``extract_features`` turns one ``Detection`` in a ``Tile`` (plus the site-day's VNF rows) into a
flat dict of plain Python values; ``FEATURE_DOCS`` gives each feature's unit and source. Those
dicts feed the volume model, the database and the learned regressors.

Background: per band, the median reflectance of an annulus around the flame's core (its clipped
pixels and brightest B12 pixels, ``_seeds``, + ``SUM_MARGIN_PX``), not around the detector's box: a
YOLO label box (~12 px) reaches past the well pad a flame stands on. The annulus runs from
``ANNULUS_INNER_PX`` to ``ANNULUS_OUTER_PX`` pixels outside that core box; candidate hot pixels
(detector rules 1-3), nodata and cloud pixels are excluded; it is widened to
``ANNULUS_FALLBACK_OUTER_PX`` and then to the whole tile when too few pixels remain.

Footprint: excesses are summed over the flame's pixels in the detection's box widened by
``SUM_MARGIN_PX``: clipped or flame-coloured pixels (rho12 excess > ``FOOTPRINT_MIN_EXCESS`` and >
``FOOTPRINT_MIN_RATIO`` x the rho11 excess) connected to the core and within
``FOOTPRINT_REACH_PX`` of it, widened again by ``SUM_MARGIN_PX`` (``_footprint``). The spill of the
flame's signal into neighbouring pixels (the point-spread function) is counted, while the
background pixels of a large box are not: each would add its share of the background error.

Clipped pixels. A flare's core is usually clipped in B12 (and often in B11): a clipped pixel holds
the sensor's saturation value, not the flame's radiance, so it pulls the B12/B11 ratio of any sum
that includes it far below Planck (~0.4 instead of ~0.8 at 1800 K, i.e. an apparent temperature
above 3500 K) and makes the FRP a lower bound. The colour temperature is therefore taken from the
footprint pixels where *neither* band is clipped -- the PSF wings of a saturated flame, or every
pixel of an unsaturated one -- because a sub-pixel flame adds the same Planck spectrum, scaled by
the PSF, to every pixel it touches. The ratio is the slope of L12 against L11 over those pixels
(``_colour_ratio``), which also cancels the background level under the flame (a well pad brighter
than the annulus biases a ratio of sums of the faint wings). The FRP uses B12 where it is intact
and, in B12-clipped pixels, ``ratio x L11`` (the B12 radiance that pixel's B11 implies at the
flame's colour temperature); where both bands are clipped the pixel's estimate is a lower bound.

A pixel counts as clipped in B12 at or above the tile's B12 clip DN (``detect.threshold.b12_clip_dn``:
DN 65535 or the tile's saturation plateau) or under Marchese's saturated-pixel rule (rho12 >
``saturated_rho12`` and rho11 > rho12: an intact flame pixel is always brighter in rho12); in B11
at DN 65535 or the tile's B11 saturation plateau (same plateau test on the B11 DNs). A tile with
a single clipped pixel in a band (and no DN 65535) shows no plateau: a lone clipped B12 pixel,
unless Marchese's rule flags it, stays in the ratio fit and biases it slightly, and a lone clipped
B11 pixel does not set ``swir_frp_lower_bound`` (each in ~3 of 114 simulated tiles).

Glint (``glint_flag``, constants ``GLINT_*``): sun glint on water and bright roofs are the classic
false positives of Sentinel-2 flare detection (domain.md): spectrally flat (B12/B11 reflectance
~1.0, flames > ~1.3). The flag marks a detection with a flat, bright, specular (>= 3x the
background) pixel that is not hot within 2 px of the flame's core: the detection may be glint
itself, or glint may sit in its footprint or background. On simulated scenes (2025, threshold
detector / shipped YOLO) it flags 64 % / 64 % of the flares and 100 % / 96 % of the false
positives with simulated glint >= 0.2 within 2 px, no flare in a glint scene without glint >= 0.1
nearby, none of the flares of the water site on days without glint, and 0 % / 0.8 % of the
land sites' flares. Misses: glint under the cloud mask or dimmed by thin cloud, glint mixed with a
platform deck (B12/B11 0.92-0.94), glint touching the flame (inside the 1 px guard).

Persistence (``viirs_nights_seen``): the pure count over per-night VNF frames; the pipeline reads
the previous ``VIIRS_NIGHTS_WINDOW - 1`` nights' raw files (``process.site_day.process_site_day``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import ndimage

from flarewatch import physics
from flarewatch.config import (
    S2_BANDS,
    S2_PIXEL_M,
    VIIRS_FLARE_MIN_TEMP_K,
    ThresholdDetectorConfig,
)
from flarewatch.detect.threshold import (
    S2_SATURATED_DN,
    Detection,
    b12_clip_dn,
    day_of_year,
    spectral_candidates,
)
from flarewatch.features.viirs import (  # noqa: F401 - the VIIRS features, imported from here too
    share_viirs_radiant_heat,
    viirs_features,
    viirs_features_at,
    viirs_nights_seen,
    viirs_nights_seen_at,
)
from flarewatch.ingest.viirs import VnfPoints
from flarewatch.tiles import Tile
from flarewatch.values import finite_or_none

# The flame's footprint is looked for in the bbox widened by SUM_MARGIN_PX and widened by it: the
# sensor's point-spread function spreads a sub-pixel flame over ~3 x 3 pixels, and the outer ones
# often miss the detector's rules.
SUM_MARGIN_PX = 1
ANNULUS_INNER_PX = SUM_MARGIN_PX  # the background annulus starts 1 px past the flame's core box
ANNULUS_OUTER_PX = 6
ANNULUS_FALLBACK_OUTER_PX = 15
ANNULUS_MIN_PIXELS = 8
# Flame footprint (``_footprint``): pixels of the summed box that are clipped, or whose rho12
# excess exceeds FOOTPRINT_MIN_EXCESS (reflectance; as yolo.HOT_EXCESS_MIN) and FOOTPRINT_MIN_RATIO
# x their rho11 excess (a flame below ~3500 K adds >= 1.3x more rho12 than rho11 reflectance, ~2.3x
# at 1800 K; glint, roofs and well pads about as much or less: the detector's glint rule), connected
# to the flame's core and widened by SUM_MARGIN_PX for the PSF wings, ...
FOOTPRINT_MIN_EXCESS = 0.05
FOOTPRINT_MIN_RATIO = 1.3
# ... and no farther than this from the flame's core (``_seeds``: clipped pixels, B12 pixels at
# least half as bright as the brightest): with the ~0.6 px PSF sigma of the 20 m SWIR bands a
# point flame puts ~1 % of its signal beyond that, while a well pad brighter than the field around
# it can be flame-coloured in excess terms (2 px: YOLO boxes took in pads, p90 error 450 K).
FOOTPRINT_REACH_PX = 1
# The colour ratio is the slope of L12 against L11 over the unclipped pixels; it is used when the
# slope is at least RATIO_MIN_T standard errors above zero (colour known to better than ~20 %).
RATIO_MIN_T = 5.0

# Sun glint / specular bright surface (``glint_flag``, ``_glint_pixels``). domain.md (Sentinel-2,
# false positives): sun glint on water and bright roofs are spectrally flat, reflectance ratio
# B12/B11 ~ 1.0, while flames are > ~1.3 (the detector's ``min_b12_b11_ratio``). A glint pixel is
#   - spectrally flat: GLINT_RATIO_MIN <= rho12 / rho11 <= GLINT_RATIO_MAX. ~1.0 +/- the few % of
#     the sensor's band-to-band calibration; bare soil, sand and gravel (~0.8-0.9), vegetation
#     (~0.5) and water cloud (~0.6) stay below, a flame's colour (> 1.3) and its PSF wings on a
#     flat background (their ratio climbs from the background's towards the flame's) above;
GLINT_RATIO_MIN = 0.95
GLINT_RATIO_MAX = 1.10
#   - bright: rho11 and rho12 >= GLINT_MIN_REFLECTANCE. Open water is < ~0.02 in the SWIR
#     (domain.md's water / simulator LAND_COVER_REFLECTANCE), so a water pixel this bright is
#     specular reflection (glint peaks reach ~1);
GLINT_MIN_REFLECTANCE = 0.2
#   - specular, not diffuse: rho11 and rho12 >= GLINT_MIN_CONTRAST x the annulus background (the
#     same factor as the open Sentinel-2 flare mappers' contrast rule, B12 >= 3x the background
#     median, domain.md: a flat pixel that passes it is the glint false positive those mappers
#     reject by colour). Bright diffuse ground (desert 0.4-0.5, sand 0.5-0.6 around a pad) fails it;
#   - not hot: not a candidate of the detector's rules 1-3 (flame-coloured or saturated) nor
#     within GLINT_FLAME_GUARD_PX of one (the flame's PSF wings, whose colour passes through ~1 on
#     the way from the background's to the flame's), nor cloud or nodata.
GLINT_MIN_CONTRAST = 3.0
GLINT_FLAME_GUARD_PX = 1
# ``glint_flag`` is set when at least GLINT_MIN_PIXELS such pixels lie within GLINT_RADIUS_PX
# (Chebyshev distance, 20 m pixels) of the flame's core box (its clipped and brightest B12 pixels,
# ``_seeds``, + SUM_MARGIN_PX), i.e. within ~3 px (60 m) of the flame: the glint is the detection
# itself, or lies in its footprint or the inner background annulus. Farther (3 px) it mostly
# catches the roofs and tanks of the plant next to the stack (10 % of the flares of a simulated
# vegetation site), which leave the flame's measurement alone.
GLINT_RADIUS_PX = 2
GLINT_MIN_PIXELS = 1

# ``viirs_nights_seen``: nights (the current one included) in a window of this many with a
# flare-like VNF detection within VIIRS_MATCH_RADIUS_M of the flare. domain.md: "A typical filter
# for flares: T >= 1200 K and detection on many nights at the same site" -- persistence separates
# flares (lit most nights) from fires (a few nights) and from one-off false detections.
VIIRS_NIGHTS_WINDOW = 7

# name -> (unit, source / formula). Used by the README's feature table.
FEATURE_DOCS: dict[str, tuple[str, str]] = {
    "hot_pixels": ("count", "pixels in the detection (8-connected candidates of the threshold detector)"),
    "hot_area_m2": ("m2", "hot_pixels x 400 m2 (20 m Sentinel-2 SWIR pixel); pixel area, not flame area"),
    "b12_excess_sum": (
        "reflectance (dimensionless)",
        "sum over the flame footprint (clipped or flame-coloured pixels of the bbox +1 px next to the flame's "
        "core, widened by 1 px; module docstring) of rho12 minus the annulus background median",
    ),
    "b12_excess_peak": ("reflectance (dimensionless)", "largest single-pixel rho12 excess in the bbox (+1 px margin)"),
    "b11_excess_sum": (
        "reflectance (dimensionless)",
        "sum over the flame footprint (as b12_excess_sum) of rho11 minus the annulus background median",
    ),
    "b11_excess_peak": ("reflectance (dimensionless)", "largest single-pixel rho11 excess in the bbox (+1 px margin)"),
    "b12_b11_ratio": (
        "dimensionless",
        "flame's L12/L11 excess TOA radiance ratio (L = rho E_sun cos(theta_s) / (pi d^2)): slope of L12 against "
        "L11 over the flame-footprint pixels where NEITHER band is clipped (all of them for an "
        "unsaturated flare, the PSF wings of a saturated one), so a clipped core and the background level under "
        "the flame drop out; Planck: 0.95 at 1600 K, 0.81 at 1800 K, 0.71 at 2000 K, 0.65 at 2200 K, > 1.5 "
        "below 1200 K; None with < 3 such pixels or a slope < 5 standard errors",
    ),
    "ratio_pixels": ("count", "pixels used for b12_b11_ratio: flame-footprint pixels with neither band clipped"),
    "temperature_k": (
        "K",
        "two-band B12/B11 colour temperature of b12_b11_ratio (physics.ratio_temperature, Planck), so also for "
        "saturated flares with unclipped PSF wings; None without a ratio (no usable unclipped pixels) or if the "
        "ratio is outside 600-3500 K",
    ),
    "swir_frp_mw": (
        "MW",
        "SWIR radiance method, FRP = A_pix sigma / a L12_excess (Fisher & Wooster 2018, Remote Sens. 10(2):305; "
        "a = 5.72e-9 for B12, +/-6.3 % over 1600-2200 K), L12 summed over the flame footprint with each "
        "B12-clipped pixel's L12 replaced by b12_b11_ratio x L11 (a lower bound where B11 is clipped too); "
        "without a ratio, max of the B12 and B11 (a = 7.28e-9, +/-13.6 %) estimates when clipped",
    ),
    "swir_frp_band": (
        "text",
        "how swir_frp_mw was measured: 'B12' (no B12-clipped pixel), 'B12+B11' (B12-clipped pixels from "
        "ratio x L11), 'B11' (clipped, no ratio: B11 estimate was the larger)",
    ),
    "swir_frp_lower_bound": (
        "bool",
        "swir_frp_mw is a lower bound: a pixel clipped in both bands, or B12 clipped with no ratio and B11 not intact",
    ),
    "lat": ("degrees north (WGS84)", "detection centroid (B12-excess-weighted) via Tile.pixel_to_lonlat"),
    "lon": ("degrees east (WGS84)", "detection centroid (B12-excess-weighted) via Tile.pixel_to_lonlat"),
    "cloud_flag": ("bool", "cloud mask within 2 px of the detection"),
    "glint_flag": (
        "bool",
        "sun glint / specular bright surface (glint on water, bright roof or tank) near the detection: >= 1 pixel "
        "within 2 px of the flame's core box (brightest/clipped B12 pixels + 1 px) that is spectrally flat "
        "(0.95 <= rho12/rho11 <= 1.10; domain.md: glint and roofs ~1.0, flames > ~1.3), bright (rho11, rho12 >= "
        "0.2; open water < 0.02), >= 3x the annulus background in both bands (specular, not bright diffuse ground), "
        "and not hot (no detector candidate within 1 px), cloud or nodata; constants GLINT_* in features.py",
    ),
    "saturated": (
        "bool",
        "saturated-pixel rule met (rho12 > 1 and rho11 > rho12, or B12 clipped), or a clipped pixel in the bbox",
    ),
    "viirs_n": ("count", "flare-like VNF detections (Temp_BB >= 1200 K, finite RH) within 750 m of the centroid"),
    "viirs_id": ("text", "id_Key of the nearest matched VNF detection"),
    "viirs_rh_mw": ("MW", "RH (sigma T^4 S, VIIRS Nightfire, Elvidge et al. 2013) of the nearest matched VNF row"),
    "viirs_temp_k": ("K", "Temp_BB of the nearest matched VNF detection"),
    "viirs_area_m2": ("m2", "Area_BB (Planck-fit source area) of the nearest matched VNF detection"),
    "viirs_distance_m": ("m", "haversine distance from the centroid to the nearest matched VNF detection"),
    "viirs_nights_seen": (
        "count (nights)",
        "number of distinct nights among the last VIIRS_NIGHTS_WINDOW = 7 (the detection's own night and the 6 "
        "before it, by scene acquisition_date) with a flare-like VNF detection (Temp_BB >= 1200 K, finite RH) within "
        "750 m of the detection (the centroid; a VIIRS-only detection's own position), each night's VNF file read "
        "from rawdata (not from other days' results, so independent of processing order); nights never ingested, "
        "recorded as no_data or with an unreadable file are not counted, so the count is a lower bound when "
        "nights are missing",
    ),
    "viirs_share": (
        "fraction",
        "only after share_viirs_radiant_heat: this detection's share (by swir_frp_mw) of a VNF row matched by several",
    ),
}


def _annulus_background(
    rho: dict[str, np.ndarray], exclude: np.ndarray, bbox: tuple[int, int, int, int]
) -> dict[str, float]:
    """Median reflectance per band of the annulus around ``bbox``, ``exclude``d pixels left out."""
    h, w = exclude.shape
    r0, c0, r1, c1 = bbox
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for outer in (ANNULUS_OUTER_PX, ANNULUS_FALLBACK_OUTER_PX):
            wr0, wc0, wr1, wc1 = max(r0 - outer, 0), max(c0 - outer, 0), min(r1 + outer, h), min(c1 + outer, w)
            ring = ~exclude[wr0:wr1, wc0:wc1].copy()
            i = ANNULUS_INNER_PX
            ring[max(r0 - i - wr0, 0) : r1 + i - wr0, max(c0 - i - wc0, 0) : c1 + i - wc0] = False
            if ring.sum() >= ANNULUS_MIN_PIXELS:
                return {b: float(np.nanmedian(a[wr0:wr1, wc0:wc1][ring])) for b, a in rho.items()}
        out = {b: float(np.nanmedian(a[~exclude])) if (~exclude).any() else 0.0 for b, a in rho.items()}
    return {b: (v if math.isfinite(v) else 0.0) for b, v in out.items()}


def _special_value_floor(win: np.ndarray, dn: np.ndarray, cfg: ThresholdDetectorConfig) -> np.ndarray:
    """A window's reflectance with the Sentinel-2 SATURATED special value (DN 65535) replaced.

    DN 65535 marks a saturated pixel, not a radiance: decoded it reads as reflectance ~6.5 and
    would multiply a flame's excess and FRP (the independent scenes measured FRP ~2x the truth).
    Such a pixel is set to a lower bound of its true value: the brightest non-special pixel of
    the window in that band (a saturated pixel is at least as bright), and at least the
    saturated-pixel level ``cfg.saturated_rho12``. A saturation plateau below 65535 (our own
    simulator's) is left as it is: there the clipped value is a real lower bound already.
    """
    special = dn >= S2_SATURATED_DN
    if not special.any():
        return win
    rest = win[~special & np.isfinite(win)]
    floor = max(float(rest.max()) if rest.size else 0.0, cfg.saturated_rho12)
    return np.where(special, floor, win)


def _clip11_dn(tile: Tile, cfg: ThresholdDetectorConfig) -> int:
    """The tile's B11 clip DN (the B12 plateau test on the B11 DNs)."""
    return b12_clip_dn(tile.dn[S2_BANDS.index("B11")], tile.valid, tile.scale, tile.offset, cfg)


def _clip_masks(tile: Tile, rho11: np.ndarray, rho12: np.ndarray, dn11: np.ndarray, dn12: np.ndarray,
                clip12_dn: int, cfg: ThresholdDetectorConfig, clip11_dn: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel (B12 clipped, B11 clipped) masks of a window (see the module docstring)."""
    if clip11_dn is None:
        clip11_dn = _clip11_dn(tile, cfg)
    with np.errstate(invalid="ignore"):
        marchese = (rho12 > cfg.saturated_rho12) & (rho11 > rho12)
    return (dn12 >= clip12_dn) | marchese, dn11 >= clip11_dn


def _seeds(rho12: np.ndarray, clip12: np.ndarray, clip11: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """The flame's core in a window: its clipped pixels, its brightest B12 pixel and those at least
    half as bright above the window's median (a flame on a pixel corner lights four alike)."""
    seeds = (clip12 | clip11) & finite
    if finite.any():
        v = np.where(finite, rho12, -np.inf)
        top, ref = float(v.max()), float(np.median(rho12[finite]))
        seeds |= finite & (v - ref >= 0.5 * (top - ref))
        seeds.flat[int(np.argmax(v))] = True
    return seeds


def _footprint(ex12: np.ndarray, ex11: np.ndarray, clip12: np.ndarray, clip11: np.ndarray,
               finite: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The flame's pixels in a window of rho excesses (see ``FOOTPRINT_MIN_EXCESS``).

    Core: clipped pixels and flame-coloured ones (rho12 excess > ``FOOTPRINT_MIN_EXCESS`` and >
    ``FOOTPRINT_MIN_RATIO`` x the rho11 excess) within ``FOOTPRINT_REACH_PX`` of the ``seeds``
    (``_seeds``), only its 8-connected parts holding a seed, so that bright ground elsewhere in a
    large box stays out; widened by ``SUM_MARGIN_PX`` for the PSF wings (still within reach).
    All finite pixels if no core.
    """
    eight = np.ones((3, 3), bool)
    with np.errstate(invalid="ignore"):
        core = clip12 | clip11 | (ex12 > np.maximum(FOOTPRINT_MIN_EXCESS, FOOTPRINT_MIN_RATIO * ex11))
    core &= finite
    if not (core & seeds).any():
        return finite.copy()
    reach = ndimage.binary_dilation(seeds, structure=eight, iterations=FOOTPRINT_REACH_PX) & finite
    labels, _ = ndimage.label(core & reach, structure=eight)
    keep = np.isin(labels, np.unique(labels[seeds & core]))
    return ndimage.binary_dilation(keep, structure=eight, iterations=SUM_MARGIN_PX) & reach


def _colour_ratio(l12: np.ndarray, l11: np.ndarray) -> float | None:
    """B12/B11 radiance ratio of the flame in the unclipped pixels: slope of the L12-on-L11 fit.

    ``l12``/``l11``: background-subtracted excess radiances of the usable pixels. Each pixel holds
    the same flame spectrum, scaled by its PSF weight, over a background, so L12 = c + ratio L11:
    the slope is the flame's ratio whatever the background level under the flame (a well pad, a
    road), which a ratio of sums is not -- an annulus median 0.04 off is as large as the B11
    signal in a saturated flare's wings. None unless >= 3 pixels and the slope is >= ``RATIO_MIN_T``
    standard errors above zero (the flame's colour is measured to better than 1/RATIO_MIN_T).
    """
    n = l12.size
    if n < 3:
        return None
    dx, dy = l11 - l11.mean(), l12 - l12.mean()
    sxx = float(dx @ dx)
    if not sxx > 0:
        return None
    slope = float(dx @ dy) / sxx
    res = dy - slope * dx
    se = math.sqrt(float(res @ res) / (n - 2) / sxx)
    return slope if slope > 0 and slope >= RATIO_MIN_T * se else None


def _glint_pixels(rho11: np.ndarray, rho12: np.ndarray, bg11: float, bg12: float, hot: np.ndarray,
                  excluded: np.ndarray) -> np.ndarray:
    """Sun-glint / specular pixels of a window (``GLINT_*`` constants): spectrally flat, bright,
    >= ``GLINT_MIN_CONTRAST`` x the background (``bg11``/``bg12``, reflectance) in both bands, not
    ``excluded`` (cloud, nodata) and farther than ``GLINT_FLAME_GUARD_PX`` from a ``hot`` pixel."""
    guard = hot
    if hot.any() and GLINT_FLAME_GUARD_PX > 0:
        guard = ndimage.binary_dilation(hot, structure=np.ones((3, 3), bool), iterations=GLINT_FLAME_GUARD_PX)
    floor11 = max(GLINT_MIN_REFLECTANCE, GLINT_MIN_CONTRAST * bg11)
    floor12 = max(GLINT_MIN_REFLECTANCE, GLINT_MIN_CONTRAST * bg12)
    with np.errstate(invalid="ignore", divide="ignore"):
        bright = (rho11 >= floor11) & (rho12 >= floor12)  # False for NaN; rho11 > 0 for the ratio
        ratio = np.where(bright, rho12 / np.where(bright, rho11, 1.0), np.nan)
        flat = (ratio >= GLINT_RATIO_MIN) & (ratio <= GLINT_RATIO_MAX)
    return bright & flat & ~guard & ~excluded


def glint_flag(rho11: np.ndarray, rho12: np.ndarray, hot: np.ndarray, excluded: np.ndarray,
               core_box: tuple[int, int, int, int], bg11: float, bg12: float) -> bool:
    """True if >= ``GLINT_MIN_PIXELS`` glint pixels (``_glint_pixels``) lie within
    ``GLINT_RADIUS_PX`` of ``core_box`` (row0, col0, row1, col1; row1/col1 exclusive).

    ``rho11``/``rho12``: the tile's reflectances (NaN = nodata); ``hot``: the detector's candidate
    pixels (rules 1-3: flame-coloured or saturated); ``excluded``: cloud / nodata pixels;
    ``bg11``/``bg12``: the detection's annulus background reflectances.
    """
    h, w = rho11.shape
    r0, c0, r1, c1 = core_box
    rad, pad = GLINT_RADIUS_PX, GLINT_RADIUS_PX + GLINT_FLAME_GUARD_PX
    wr0, wc0, wr1, wc1 = max(r0 - pad, 0), max(c0 - pad, 0), min(r1 + pad, h), min(c1 + pad, w)
    if wr1 <= wr0 or wc1 <= wc0:
        return False
    win = (slice(wr0, wr1), slice(wc0, wc1))
    px = _glint_pixels(rho11[win], rho12[win], bg11, bg12, hot[win], excluded[win])
    near = px[max(r0 - rad, 0) - wr0 : min(r1 + rad, h) - wr0, max(c0 - rad, 0) - wc0 : min(c1 + rad, w) - wc0]
    return int(near.sum()) >= GLINT_MIN_PIXELS


class TileArrays:
    """The whole-tile arrays ``extract_features`` needs for every detection of a tile, computed once
    (``estimate.site_day`` passes them for all of a tile's detections): B11/B12 reflectance, the
    detector's candidate pixels (rules 1-3), the nodata/cloud mask, the B11 clip DN. Read only."""

    def __init__(self, tile: Tile, cfg: ThresholdDetectorConfig = ThresholdDetectorConfig()):
        self.tile, self.cfg = tile, cfg
        self.rho = {b: tile.reflectance(b) for b in ("B11", "B12")}
        self.candidates = spectral_candidates(tile, cfg)
        self.hot = self.candidates.mask(tile.shape)
        not_surface = ~tile.valid  # nodata and cloud: no glint test there
        if tile.cloud_mask is not None:
            not_surface = not_surface | tile.cloud_mask
        self.not_surface = not_surface
        self.exclude = self.hot | not_surface
        self.clip11_dn = _clip11_dn(tile, cfg)


def extract_features(
    tile: Tile,
    det: Detection,
    viirs_flares: pd.DataFrame | None,
    cfg: ThresholdDetectorConfig = ThresholdDetectorConfig(),
    viirs_min_temp_k: float = VIIRS_FLARE_MIN_TEMP_K,
    *,
    viirs_points: VnfPoints | None = None,
    tile_arrays: TileArrays | None = None,
) -> dict:
    """Features of ``det`` in ``tile`` (see ``FEATURE_DOCS`` for units and sources).

    Values are int (counts), bool (flags), str (``swir_frp_band``), float, or None where the
    quantity is unavailable (no VIIRS match; no unclipped flame signal for the colour ratio, or a
    ratio out of range). No NaN is returned. ``viirs_flares``: parsed VNF rows
    (``ingest.viirs.parse_vnf_csv``), filtered or not, or None; rows below ``viirs_min_temp_k`` (K) are
    ignored. ``cfg``: the detector configuration, for excluding hot pixels from the background.
    ``viirs_points``: ``viirs_flares`` prepared once per site-day (``ingest.viirs.VnfPoints(viirs_flares,
    viirs_min_temp_k)``), used instead of it when given (same values, ``viirs_features_at``).
    ``tile_arrays``: ``TileArrays(tile, cfg)``, shared by a tile's detections (same values).

    Saturation (``det.saturated``, or a clipped B12 or B11 pixel in the summed box, see the
    module docstring): the colour ratio and ``temperature_k`` come from the footprint pixels
    where neither band is clipped (the PSF wings), and ``swir_frp_mw`` replaces the B12 radiance of
    B12-clipped pixels with ratio x L11 (``swir_frp_band``, ``swir_frp_lower_bound``).
    """
    if tile_arrays is None or tile_arrays.tile is not tile or tile_arrays.cfg != cfg:
        tile_arrays = TileArrays(tile, cfg)
    rho, candidates, hot = tile_arrays.rho, tile_arrays.candidates, tile_arrays.hot
    not_surface, exclude = tile_arrays.not_surface, tile_arrays.exclude
    dn12 = tile.dn[S2_BANDS.index("B12")]
    dn11 = tile.dn[S2_BANDS.index("B11")]

    h, w = tile.shape
    m = SUM_MARGIN_PX
    r0, c0, r1, c1 = max(det.bbox[0] - m, 0), max(det.bbox[1] - m, 0), min(det.bbox[2] + m, h), min(det.bbox[3] + m, w)
    win12 = _special_value_floor(rho["B12"][r0:r1, c0:c1].astype(np.float64), dn12[r0:r1, c0:c1], cfg)
    win11 = _special_value_floor(rho["B11"][r0:r1, c0:c1].astype(np.float64), dn11[r0:r1, c0:c1], cfg)
    clip12, clip11 = _clip_masks(
        tile, win11, win12, dn11[r0:r1, c0:c1], dn12[r0:r1, c0:c1], candidates.clip_dn, cfg, tile_arrays.clip11_dn,
    )
    finite = np.isfinite(win12) & np.isfinite(win11)
    clip12, clip11 = clip12 & finite, clip11 & finite
    saturated = bool(det.saturated) or bool(clip12.any() or clip11.any())

    # Background around the flame's core box, not the detector's box (module docstring): past the
    # well pad a flame stands on, the pad-to-field step would look like flame signal.
    seeds = _seeds(win12, clip12, clip11, finite)
    if seeds.any():
        rr, cc = np.nonzero(seeds)
        core_box = (max(r0 + int(rr.min()) - m, 0), max(c0 + int(cc.min()) - m, 0),
                    min(r0 + int(rr.max()) + 1 + m, h), min(c0 + int(cc.max()) + 1 + m, w))
    else:
        core_box = det.bbox
    bg = _annulus_background({"B11": rho["B11"], "B12": rho["B12"]}, exclude, core_box)
    glint = glint_flag(rho["B11"], rho["B12"], hot, not_surface, core_box, bg["B11"], bg["B12"])
    box12, box11 = win12 - bg["B12"], win11 - bg["B11"]
    ex12_peak = float(np.nanmax(box12)) if finite.any() else 0.0
    ex11_peak = float(np.nanmax(box11)) if finite.any() else 0.0

    # The flame's footprint in the box (module docstring): a detector's box may be much larger
    # than the flame, and every background pixel summed adds the background error.
    foot = _footprint(box12, box11, clip12, clip11, finite, seeds)
    ex12_sum, ex11_sum = float(box12[foot].sum()), float(box11[foot].sum())

    # Per-pixel excess radiances, W m-2 sr-1 um-1 (L = rho E_sun cos(theta_s) / (pi d^2)).
    doy = day_of_year(tile)
    esun = tile.solar_irradiance  # of the tile's spacecraft (Sentinel-2A/2B/metadata: tiles.band_constants)
    lbox12 = np.where(foot, physics.reflectance_to_radiance(box12, "B12", tile.sun_zenith_deg, doy, esun), 0.0)
    lbox11 = np.where(foot, physics.reflectance_to_radiance(box11, "B11", tile.sun_zenith_deg, doy, esun), 0.0)

    # Colour ratio over the footprint pixels where neither band is clipped (module docstring).
    usable = foot & ~clip12 & ~clip11
    n_use = int(usable.sum())
    ratio = _colour_ratio(lbox12[usable], lbox11[usable])
    temperature = None if ratio is None else finite_or_none(physics.ratio_temperature(ratio, 1.0, tile.wavelength_um))

    if ratio is not None:
        # B12-clipped pixels: the B12 radiance their B11 implies at the flame's colour ratio (never
        # below the clipped value); a lower bound where B11 is clipped too.
        l12_est = np.where(clip12 & foot, np.maximum(lbox12, ratio * lbox11), lbox12)
        frp = max(float(physics.swir_frp_mw(float(l12_est.sum()), band="B12")), 0.0)
        frp_band = "B12+B11" if clip12.any() else "B12"
        lower_bound = bool((clip12 & clip11).any())
    else:
        l12, l11 = float(lbox12.sum()), float(lbox11.sum())
        frp_band, frp = "B12", max(float(physics.swir_frp_mw(l12, band="B12")), 0.0)
        lower_bound = bool(clip12.any())
        if saturated:
            # No colour ratio: B12 is clipped, so its FRP is a lower bound. B11 saturates later (a
            # flame is brighter in B12 reflectance); if B11 is intact its FRP is right to +/-13.6 %,
            # if it is clipped too it is the other lower bound: the larger is the better estimate.
            frp11 = max(float(physics.swir_frp_mw(l11, band="B11")), 0.0)
            if frp11 > frp:
                frp_band, frp = "B11", frp11
                lower_bound = bool(clip11.any())

    lon, lat = tile.pixel_to_lonlat(det.row, det.col)
    features = {
        "hot_pixels": int(det.n_pixels),
        "hot_area_m2": float(det.n_pixels * S2_PIXEL_M * S2_PIXEL_M),
        "b12_excess_sum": ex12_sum,
        "b12_excess_peak": ex12_peak,
        "b11_excess_sum": ex11_sum,
        "b11_excess_peak": ex11_peak,
        "b12_b11_ratio": ratio,
        "ratio_pixels": n_use,
        "temperature_k": temperature,
        "swir_frp_mw": frp,
        "swir_frp_band": frp_band,
        "swir_frp_lower_bound": lower_bound,
        "lat": float(lat),
        "lon": float(lon),
        "cloud_flag": bool(det.cloud_flag),
        "glint_flag": bool(glint),
        "saturated": saturated,
    }
    if viirs_points is not None:
        features.update(viirs_features_at(float(lat), float(lon), viirs_points))
    else:
        features.update(viirs_features(float(lat), float(lon), viirs_flares, viirs_min_temp_k))
    return features
