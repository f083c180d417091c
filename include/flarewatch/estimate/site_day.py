"""The pure estimate of one site-day: detect, measure, attach VIIRS, estimate volume and CO2.

``estimate_site_day`` does no I/O: ``process.site_day`` reads the inputs and writes its rows, and
the evaluation harnesses and the regressor's training data call it directly, so every score
describes exactly what the pipeline writes. ``emission_rows`` is the one place where a volume
model's per-flare estimates become ``flare_emissions`` rows (processing and the backfill).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from datetime import date

from flarewatch.config import VIIRS_MATCH_RADIUS_M, Settings
from flarewatch.estimate.calibrations import estimate_volume, volume_model_version
from flarewatch.estimate.co2 import co2_from_volume
from flarewatch.sites import Site
from flarewatch.store.db import DETECTION_COLUMNS

VOLUME_METHOD = "regressor"  # flare_emissions.volume_method of regressor estimates
# VIIRS rows and tile arrays prepared once per site-day for all detections (False: the reference
# DataFrame functions per detection; the same values, tests/integration/test_pipeline_identical.py)
PREPARED = True


# ------------------------------------------------------------------------------------------
# Process
# ------------------------------------------------------------------------------------------
def _clean(value):
    """JSON/DB-safe scalar: numpy -> python, NaN/inf -> None."""
    if value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class SiteDayEstimate:
    """What processing found on one site-day, as rows ready for the database."""

    detections: list  # Sentinel-2 detections (flarewatch.detection.Detection)
    detection_rows: list[dict] = field(default_factory=list)  # flare_detections rows (S2 and VIIRS-only)
    emission_rows: list[dict] = field(default_factory=list)  # flare_emissions rows, same order
    properties: list[dict] = field(default_factory=list)  # per-detection summary for GeoJSON


def estimate_site_day(site: Site, day: date, tile, viirs_flares, settings: Settings, *,
                      detector=None, detector_version: str | None = None, regressor=None,
                      regressor_version: str | None = None, viirs_history=None) -> SiteDayEstimate:
    """Detect flares in ``tile`` (may be None), attach VIIRS, estimate volume and CO2. Pure: no I/O.

    ``viirs_flares``: flare-like VNF detections of the night (``ingest.viirs.flare_like``), or None.
    ``viirs_history``: the previous nights' flare-like VNF detections (up to
    ``features.extract.VIIRS_NIGHTS_WINDOW - 1`` DataFrames, None for a night without a usable file), or
    None; every detection's ``viirs_nights_seen`` counts the nights, this one included, with a
    match within the VIIRS match radius (without a history: 0 or 1, this night only).
    ``detector``: an object with ``detect(tile) -> list[Detection]`` (e.g. the YOLO champion);
    None = the physics threshold detector. ``detector_version`` is stored on every row.
    Flare-like VIIRS detections inside the AOI with no Sentinel-2 flare within the match radius
    become ``sensor = 'viirs'`` detections (S2 clouded or missing), one per VIIRS pixel.
    ``regressor``: a ``estimate.regressor.VolumeRegressor`` (``estimate.deployed.production_regressor``)
    estimating each flare's volume and its prediction interval from the features; None = the
    published calibration ``settings.calibration.method``. ``regressor_version`` (default the
    model's ``version``) is stored in ``flare_emissions.model_version``.
    """
    from flarewatch.config import VIIRS_FLARE_MIN_TEMP_K
    from flarewatch.detect.threshold import detect_flares
    from flarewatch.features.extract import (
        TileArrays,
        extract_features,
        share_viirs_radiant_heat,
        viirs_nights_seen,
        viirs_nights_seen_at,
    )
    from flarewatch.ingest.viirs import NIGHTS, haversine_m, match_viirs

    if tile is None:
        detections = []
    elif detector is None:
        detections = detect_flares(tile, settings.detector)
    else:
        detections = detector.detect(tile)
    cal, ef = settings.calibration, settings.emission_factors
    vol_version = volume_model_version(cal)
    ef_json = asdict(ef)
    out = SiteDayEstimate(detections=detections)
    matched_viirs_ids: set = set()

    def add(record: dict, feats: dict) -> None:
        est = estimate_volume(feats, cal)
        em = co2_from_volume(est.volume_kscm_d, ef)
        out.detection_rows.append({c: None for c in DETECTION_COLUMNS} | record)
        out.emission_rows.append({
            "site_id": site.site_id, "acquisition_date": day, "detection_key": record["detection_key"],
            "volume_kscm_d": _clean(est.volume_kscm_d), "volume_method": est.method,
            "radiant_heat_mw": _clean(est.radiant_heat_mw), "rh_source": est.rh_source,
            "co2_t": _clean(em.co2_t), "ch4_slip_t": _clean(em.ch4_slip_t), "co2e_t": _clean(em.co2e_t),
            "volume_lo_kscm_d": None, "volume_hi_kscm_d": None, "model_version": vol_version,
            "emission_factors": ef_json,
        })
        out.properties.append({
            "detection_key": record["detection_key"], "sensor": record["sensor"],
            "confidence": record.get("confidence"), "volume_kscm_d": _clean(est.volume_kscm_d),
            "co2_t": _clean(em.co2_t), "co2e_t": _clean(em.co2e_t), "rh_source": est.rh_source,
            "lat": record.get("lat"), "lon": record.get("lon"), "temperature_k": record.get("temperature_k"),
            "swir_frp_mw": record.get("swir_frp_mw"), "viirs_rh_mw": record.get("viirs_rh_mw")})

    # each night's rows prepared once for the many position queries below (ingest.viirs.VnfPoints:
    # the same matches as match_viirs / viirs_features / viirs_nights_seen on the frames; shared
    # between site-days when the frame came from the process's night cache), and the tile's arrays
    # once for all its detections (features.extract.TileArrays)
    has_viirs = viirs_flares is not None and len(viirs_flares) > 0
    nights = [viirs_flares, *(viirs_history or [])]  # this night first, then the previous ones
    if PREPARED:
        feature_points = NIGHTS.points(viirs_flares, VIIRS_FLARE_MIN_TEMP_K) if has_viirs else None
        match_points = NIGHTS.points(viirs_flares) if has_viirs else None
        arrays = TileArrays(tile) if detections else None
        night_points = [NIGHTS.points(n, cal.min_temperature_k) if n is not None and len(n) else None for n in nights]

        def nights_seen(lat, lon) -> int:
            return viirs_nights_seen_at(lat, lon, night_points)

        def matched_ids(lat, lon) -> list:
            return viirs_flares["id_Key"].iloc[match_points.match(lat, lon)[0]].tolist()
    else:  # the reference: the DataFrame functions for each detection (the same values, slower)
        feature_points = arrays = None

        def nights_seen(lat, lon) -> int:
            return viirs_nights_seen(lat, lon, nights, min_temp_k=cal.min_temperature_k)

        def matched_ids(lat, lon) -> list:
            return match_viirs(lat, lon, viirs_flares)["id_Key"].tolist()

    # One VIIRS pixel (~750 m) can hold several S2 flares: share its radiant heat between them.
    det_feats = share_viirs_radiant_heat([
        {k: _clean(v) for k, v in extract_features(tile, det, viirs_flares, viirs_points=feature_points,
                                                   tile_arrays=arrays).items()}
        for det in detections])

    for feats in det_feats:
        feats["viirs_nights_seen"] = nights_seen(feats.get("lat"), feats.get("lon"))
    for det, feats, key in zip(detections, det_feats, unique_keys([f"s2:{d.peak_row}:{d.peak_col}" for d in detections])):
        if has_viirs and feats.get("lat") is not None:
            matched_viirs_ids.update(matched_ids(feats["lat"], feats["lon"]))
        add({
            "site_id": site.site_id, "acquisition_date": day,
            "detection_key": key, "sensor": "sentinel2",
            "detector": det.detector, "detector_version": detector_version or f"{det.detector}-v1",
            "pixel_row": _clean(det.row), "pixel_col": _clean(det.col), "bbox_px": list(det.bbox),
            "confidence": _clean(det.confidence), "cloud_flag": bool(det.cloud_flag), "saturated": bool(det.saturated),
            **{c: feats.get(c) for c in _FEATURE_COLUMNS}, "features": feats,
        }, feats)

    # Flare-like VIIRS detections with no Sentinel-2 counterpart (S2 clouded or missing that day).
    if viirs_flares is not None:
        seen: list[tuple[float, float]] = []
        for _, v in viirs_flares.sort_values("RH", ascending=False).iterrows():
            if v["id_Key"] in matched_viirs_ids or not site.in_aoi(v["Lat_GMTCO"], v["Lon_GMTCO"]):
                continue
            if any(haversine_m(v["Lat_GMTCO"], v["Lon_GMTCO"], la, lo) < VIIRS_MATCH_RADIUS_M for la, lo in seen):
                continue  # a second overpass of the same flare that night
            seen.append((v["Lat_GMTCO"], v["Lon_GMTCO"]))
            feats = {
                "lat": float(v["Lat_GMTCO"]), "lon": float(v["Lon_GMTCO"]), "viirs_n": 1,
                "viirs_rh_mw": _clean(float(v["RH"])), "viirs_temp_k": _clean(float(v["Temp_BB"])),
                "viirs_area_m2": _clean(float(v["Area_BB"])), "viirs_distance_m": 0.0, "viirs_id": str(v["id_Key"]),
            }
            feats["viirs_nights_seen"] = nights_seen(feats["lat"], feats["lon"])
            taken = [r["detection_key"] for r in out.detection_rows]
            add({
                "site_id": site.site_id, "acquisition_date": day,
                "detection_key": unique_keys([*taken, f"viirs:{feats['lat']:.4f}:{feats['lon']:.4f}"])[-1],
                "sensor": "viirs",
                "detector": "viirs-nightfire", "detector_version": "viirs-nightfire-v1",
                **{c: feats.get(c) for c in _FEATURE_COLUMNS}, "features": feats,
            }, feats)

    if regressor is not None and out.emission_rows:
        # the backfill (training.regressor.backfill_volumes) writes its rows with the same function
        rows = emission_rows(site.site_id, day, [r["detection_key"] for r in out.detection_rows],
                             [r["features"] for r in out.detection_rows], regressor, settings)
        version = regressor_version or regressor.version
        out.emission_rows = [{k: _clean(v) for k, v in row.items()} | {"model_version": version} for row in rows]
        for prop, em in zip(out.properties, out.emission_rows):
            prop.update({k: em[k] for k in ("volume_kscm_d", "volume_lo_kscm_d", "volume_hi_kscm_d", "co2_t", "co2e_t")})
    return out


def unique_keys(keys: list[str]) -> list[str]:
    """``keys`` with a repeat made unique by a suffix (``s2:120:87``, ``s2:120:87~2``, ...), in order.

    A detection's key is its peak pixel (Sentinel-2) or its rounded position (VIIRS): two flares
    can share one (a close pair split inside one peak pixel, two VIIRS pixels 10 m apart), and the
    database keeps one row per key. The suffix follows the detection order, which is deterministic
    for a given tile and model, so reruns reproduce the same keys.
    """
    used: set[str] = set()
    out = []
    for key in keys:
        candidate, n = key, 1
        while candidate in used:
            n += 1
            candidate = f"{key}~{n}"
        used.add(candidate)
        out.append(candidate)
    return out


# flare_detections columns filled from the feature dict
_FEATURE_COLUMNS = (
    "lat", "lon", "hot_pixels", "hot_area_m2", "b12_excess_sum", "b12_excess_peak", "b11_excess_sum",
    "b11_excess_peak", "b12_b11_ratio", "temperature_k", "swir_frp_mw", "viirs_n", "viirs_rh_mw", "viirs_temp_k",
    "viirs_area_m2", "viirs_distance_m",
)


# ------------------------------------------------------------------------------------------
# Backfill
# ------------------------------------------------------------------------------------------
def emission_rows(site_id: str, day: date, detection_keys: list[str], features: list[dict], model,
                  settings: Settings) -> list[dict]:
    """``flare_emissions`` rows of one site-day's detections estimated with ``model``."""

    ef = settings.emission_factors
    ef_json = asdict(ef)
    out = []
    for key, feats, (v, lo, hi) in zip(detection_keys, features, model.predict_flares(features)):
        rh = estimate_volume(feats, replace(settings.calibration, method="linear"))
        em = co2_from_volume(v, ef)
        out.append({"site_id": site_id, "acquisition_date": day, "detection_key": key, "volume_kscm_d": v,
                    "volume_method": VOLUME_METHOD, "radiant_heat_mw": rh.radiant_heat_mw, "rh_source": rh.rh_source,
                    "co2_t": em.co2_t, "ch4_slip_t": em.ch4_slip_t, "co2e_t": em.co2e_t, "volume_lo_kscm_d": lo,
                    "volume_hi_kscm_d": hi, "model_version": model.version, "emission_factors": ef_json})
    return out
