"""Per-detection features: hot-pixel radiometry, temperature, SWIR FRP, position, matched VIIRS.

``extract_features`` turns one ``Detection`` in a ``Tile`` (plus the site-day's VNF rows) into a
flat dict of plain Python values; ``FEATURE_DOCS`` gives each feature's unit and source. Those
dicts feed the volume model, the database and the learned regressors.

Background: per band, the median reflectance of an annulus around the detection's bounding box
(``ANNULUS_INNER_PX`` to ``ANNULUS_OUTER_PX`` pixels outside it; candidate hot pixels (detector
rules 1-3), nodata and cloud pixels excluded; widened to ``ANNULUS_FALLBACK_OUTER_PX`` and then to
the whole tile when too few pixels remain). Excesses are summed over every valid pixel of the
bounding box widened by ``SUM_MARGIN_PX``, so the spill of the flame's signal into neighbouring,
non-candidate pixels (the point-spread function) is counted and the noise of the others averages
out.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from . import physics
from .config import S2_BANDS, S2_PIXEL_M, VIIRS_FLARE_MIN_TEMP_K, ThresholdDetectorConfig
from .detection import S2_SATURATED_DN, Detection, day_of_year, spectral_candidates
from .tiles import Tile
from .viirs import flare_like, match_viirs

# Excesses are summed over the bbox widened by SUM_MARGIN_PX: the sensor's point-spread function
# spreads a sub-pixel flame over ~3 x 3 pixels, and the outer ones often miss the detector's rules.
SUM_MARGIN_PX = 1
ANNULUS_INNER_PX = SUM_MARGIN_PX  # the background annulus starts where the summed box ends
ANNULUS_OUTER_PX = 6
ANNULUS_FALLBACK_OUTER_PX = 15
ANNULUS_MIN_PIXELS = 8

# name -> (unit, source / formula). Used by the README's feature table.
FEATURE_DOCS: dict[str, tuple[str, str]] = {
    "hot_pixels": ("count", "pixels in the detection (8-connected candidates of the threshold detector)"),
    "hot_area_m2": ("m2", "hot_pixels x 400 m2 (20 m Sentinel-2 SWIR pixel); pixel area, not flame area"),
    "b12_excess_sum": (
        "reflectance (dimensionless)",
        "sum over the bbox (+1 px margin) of rho12 minus the annulus background median",
    ),
    "b12_excess_peak": ("reflectance (dimensionless)", "largest single-pixel rho12 excess in the bbox (+1 px margin)"),
    "b11_excess_sum": (
        "reflectance (dimensionless)",
        "sum over the bbox (+1 px margin) of rho11 minus the annulus background median",
    ),
    "b11_excess_peak": ("reflectance (dimensionless)", "largest single-pixel rho11 excess in the bbox (+1 px margin)"),
    "b12_b11_ratio": (
        "dimensionless",
        "L12_excess / L11_excess, summed background-subtracted TOA radiances (L = rho E_sun cos(theta_s) / (pi d^2)); "
        "~0.6-0.9 for 1600-2200 K flames, > 1.5 for < 1200 K fires (Planck)",
    ),
    "temperature_k": (
        "K",
        "two-band B12/B11 colour temperature of the summed excess radiances (physics.ratio_temperature, Planck); "
        "None if saturated or the ratio is outside 600-3500 K",
    ),
    "swir_frp_mw": (
        "MW",
        "SWIR radiance method, FRP = A_pix sigma / a L_excess (Fisher & Wooster 2018, Remote Sens. 10(2):305), "
        "B12 (a = 5.72e-9, +/-6.3 % over 1600-2200 K); if saturated, max of the B12 and B11 (a = 7.28e-9, "
        "+/-13.6 %) estimates, a lower bound when both bands are clipped",
    ),
    "swir_frp_band": ("text", "band used for swir_frp_mw: 'B12', or 'B11' (saturated detections only)"),
    "lat": ("degrees north (WGS84)", "detection centroid (B12-excess-weighted) via Tile.pixel_to_lonlat"),
    "lon": ("degrees east (WGS84)", "detection centroid (B12-excess-weighted) via Tile.pixel_to_lonlat"),
    "cloud_flag": ("bool", "cloud mask within 2 px of the detection"),
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
    "viirs_share": (
        "fraction",
        "only after share_viirs_radiant_heat: this detection's share (by swir_frp_mw) of a VNF row matched by several",
    ),
}


def _finite_or_none(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


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


def viirs_features(
    lat: float, lon: float, viirs_flares: pd.DataFrame | None, min_temp_k: float = VIIRS_FLARE_MIN_TEMP_K
) -> dict:
    """The ``viirs_*`` features for a centroid: nearest flare-like VNF detection within 750 m.

    ``flare_like`` is applied here (idempotent), so raw parsed VNF rows may be passed. The nearest
    detection's values are used, not a sum: several rows near one flare on one night are usually
    the same flare seen in overlapping scans, and summing would double-count it.
    """
    out = {"viirs_n": 0, "viirs_id": None, "viirs_rh_mw": None, "viirs_temp_k": None, "viirs_area_m2": None}
    out["viirs_distance_m"] = None
    if viirs_flares is None or len(viirs_flares) == 0:
        return out
    matched = match_viirs(lat, lon, flare_like(viirs_flares, min_temp_k))
    if len(matched) == 0:
        return out
    nearest = matched.iloc[0]
    out.update(
        viirs_n=int(len(matched)),
        viirs_id=None if pd.isna(nearest["id_Key"]) else str(nearest["id_Key"]),
        viirs_rh_mw=_finite_or_none(nearest["RH"]),
        viirs_temp_k=_finite_or_none(nearest["Temp_BB"]),
        viirs_area_m2=_finite_or_none(nearest["Area_BB"]),
        viirs_distance_m=_finite_or_none(nearest["distance_m"]),
    )
    return out


def extract_features(
    tile: Tile,
    det: Detection,
    viirs_flares: pd.DataFrame | None,
    cfg: ThresholdDetectorConfig = ThresholdDetectorConfig(),
    viirs_min_temp_k: float = VIIRS_FLARE_MIN_TEMP_K,
) -> dict:
    """Features of ``det`` in ``tile`` (see ``FEATURE_DOCS`` for units and sources).

    Values are int (counts), bool (flags), str (``swir_frp_band``), float, or None where the
    quantity is unavailable (no VIIRS match; temperature of a saturated detection or a ratio out
    of range). No NaN is returned. ``viirs_flares``: parsed VNF rows (``viirs.parse_vnf_csv``),
    filtered or not, or None; rows below ``viirs_min_temp_k`` (K) are ignored. ``cfg``: the
    detector configuration, for excluding hot pixels from the background.

    Saturation (``det.saturated``, or a clipped B12 (``detection.b12_clip_dn``) or B11 DN 65535
    in the summed box): B12 is clipped, so ``temperature_k`` is None and ``swir_frp_mw`` is the
    larger of the B12 and B11 estimates, a lower bound unless B11 is intact (``swir_frp_band``).
    """
    rho = {b: tile.reflectance(b) for b in ("B11", "B12")}
    dn12 = tile.dn[S2_BANDS.index("B12")]
    dn11 = tile.dn[S2_BANDS.index("B11")]
    candidates = spectral_candidates(tile, cfg)
    clip_dn = candidates.clip_dn
    exclude = candidates.mask(tile.shape) | ~tile.valid
    if tile.cloud_mask is not None:
        exclude = exclude | tile.cloud_mask
    bg = _annulus_background({"B11": rho["B11"], "B12": rho["B12"]}, exclude, det.bbox)

    h, w = tile.shape
    m = SUM_MARGIN_PX
    r0, c0, r1, c1 = max(det.bbox[0] - m, 0), max(det.bbox[1] - m, 0), min(det.bbox[2] + m, h), min(det.bbox[3] + m, w)
    box12 = rho["B12"][r0:r1, c0:c1].astype(np.float64) - bg["B12"]
    box11 = rho["B11"][r0:r1, c0:c1].astype(np.float64) - bg["B11"]
    ex12_sum, ex11_sum = float(np.nansum(box12)), float(np.nansum(box11))
    ex12_peak = float(np.nanmax(box12)) if np.isfinite(box12).any() else 0.0
    ex11_peak = float(np.nanmax(box11)) if np.isfinite(box11).any() else 0.0

    doy = day_of_year(tile)
    l12 = float(physics.reflectance_to_radiance(ex12_sum, "B12", tile.sun_zenith_deg, doy))
    l11 = float(physics.reflectance_to_radiance(ex11_sum, "B11", tile.sun_zenith_deg, doy))
    clipped = bool((dn12[r0:r1, c0:c1] >= clip_dn).any() or (dn11[r0:r1, c0:c1] >= S2_SATURATED_DN).any())
    saturated = bool(det.saturated) or clipped

    ratio = l12 / l11 if l11 > 0 and l12 > 0 else None
    temperature = None
    if not saturated and ratio is not None:
        temperature = _finite_or_none(physics.ratio_temperature(l12, l11))

    frp12 = max(float(physics.swir_frp_mw(l12, band="B12")), 0.0)
    frp_band, frp = "B12", frp12
    if saturated:
        # B12 is clipped, so its FRP is a lower bound. B11 saturates later (a flame is brighter
        # in B12 reflectance); if B11 is intact its FRP is right to +/-13.6 %, if it is clipped
        # too it is the other lower bound: the larger of the two is the better estimate.
        frp11 = max(float(physics.swir_frp_mw(l11, band="B11")), 0.0)
        if frp11 > frp12:
            frp_band, frp = "B11", frp11

    lon, lat = tile.pixel_to_lonlat(det.row, det.col)
    features = {
        "hot_pixels": int(det.n_pixels),
        "hot_area_m2": float(det.n_pixels * S2_PIXEL_M * S2_PIXEL_M),
        "b12_excess_sum": ex12_sum,
        "b12_excess_peak": ex12_peak,
        "b11_excess_sum": ex11_sum,
        "b11_excess_peak": ex11_peak,
        "b12_b11_ratio": ratio,
        "temperature_k": temperature,
        "swir_frp_mw": frp,
        "swir_frp_band": frp_band,
        "lat": float(lat),
        "lon": float(lon),
        "cloud_flag": bool(det.cloud_flag),
        "saturated": saturated,
    }
    features.update(viirs_features(float(lat), float(lon), viirs_flares, viirs_min_temp_k))
    return features


def share_viirs_radiant_heat(features_list: list[dict]) -> list[dict]:
    """Split a VIIRS detection's RH between the Sentinel-2 detections that matched it.

    VIIRS pixels are ~750 m: stacks a few 20 m pixels apart are one VNF row, and every S2
    detection within ``VIIRS_MATCH_RADIUS_M`` of it would otherwise carry the full ``viirs_rh_mw``
    (double counting the volume). For each ``viirs_id`` shared by k > 1 dicts, ``viirs_rh_mw`` and
    ``viirs_area_m2`` are scaled by the detection's share of the group's ``swir_frp_mw`` (equal
    shares when an FRP is missing or zero); ``viirs_share`` (0..1) records the factor (1.0 for an
    unshared match, None without one). Returns new dicts; the inputs are not modified.
    """
    out = [dict(f) for f in features_list]
    groups: dict[str, list[int]] = {}
    for i, f in enumerate(out):
        f["viirs_share"] = None
        if f.get("viirs_id") is not None and f.get("viirs_rh_mw") is not None:
            groups.setdefault(f["viirs_id"], []).append(i)
    for members in groups.values():
        frp = [out[i].get("swir_frp_mw") for i in members]
        if all(isinstance(x, (int, float)) and math.isfinite(x) and x > 0 for x in frp):
            total = float(sum(frp))
            shares = [x / total for x in frp]
        else:
            shares = [1.0 / len(members)] * len(members)
        for i, share in zip(members, shares):
            f = out[i]
            f["viirs_share"] = share
            f["viirs_rh_mw"] = f["viirs_rh_mw"] * share
            if f.get("viirs_area_m2") is not None:
                f["viirs_area_m2"] = f["viirs_area_m2"] * share
    return out
