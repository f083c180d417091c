"""The pipeline steps the DAGs run, as plain functions of (site, day, clients, settings).

- ``ingest_site_day``: fetch a site-day from the scene source into ``rawdata``; record scenes.
- ``process_site_day``: detect flares in the tile, extract features, estimate volume and CO2,
  write rows to Postgres and the annotated PNG / GeoJSON / result JSON to ``processed``.
- ``refresh_rollups`` (in ``db``): daily and monthly emission tables.

Each step is idempotent: deterministic S3 keys and upserts on natural keys.
"""

from __future__ import annotations

import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

from . import db, storage
from .config import VIIRS_MATCH_RADIUS_M, Settings
from .sites import Site
from .sources import SceneSource

log = logging.getLogger(__name__)


def acquisition_date_for_run(run_date: date) -> date:
    """The acquisition day a scheduled daily run processes: the day before the run (data latency)."""
    from datetime import timedelta

    return run_date - timedelta(days=1)


# ------------------------------------------------------------------------------------------
# Ingest
# ------------------------------------------------------------------------------------------
def ingest_site_day(site: Site, day: date, source: SceneSource, s3, conn, settings: Settings, *,
                    sensors: tuple[str, ...] = ("sentinel2", "viirs")) -> dict:
    """Fetch one site-day into ``rawdata`` and upsert its ``scenes`` rows; returns a summary.

    ``sensors``: the sensors to fetch (flare_ingest runs one task per provider and sensor, so each
    provider's Airflow pool limits its own requests); a source that fetches only some sensors
    takes them as ``fetch(site, day, sensors=...)``.

    Stored: the provider responses unchanged (``data.raw_objects``, keys with source, collection
    and processing baseline), the normalized tile and VNF CSV under the ``sentinel2/`` and
    ``viirs/`` keys processing reads, and one ``scenes`` row per sensor with ``status``
    (ingested / no_data / failed), ``outcome`` (ok, partial, no_scene, full_cloud, nodata,
    no_detections, error) and ``detail``. No scene, clouds or a missing night are outcomes, never a
    task failure; a fetch error is recorded as ``failed`` and then raised (the task retries).
    Rows of the same site-day and sensor from another source are removed (a site that moved
    provider keeps one row per sensor).
    """
    sensors = tuple(sensors)
    unknown = [s for s in sensors if s not in ("sentinel2", "viirs")]
    if unknown or not sensors:
        raise ValueError(f"sensors must be a non-empty subset of ('sentinel2', 'viirs'), got {sensors}")
    data = source.fetch(site, day) if sensors == ("sentinel2", "viirs") else source.fetch(site, day, sensors=sensors)
    bucket = settings.raw_bucket
    s2_src = data.s2_source or data.source
    vi_src = data.viirs_source or data.source
    summary = {"site_id": site.site_id, "acquisition_date": day.isoformat(), "source": data.source,
               "sensors": list(sensors), "outcomes": {}}

    # Provider responses, unchanged (processing can be re-run from them without downloading).
    for key, (body, content_type) in sorted(data.raw_objects.items()):
        storage.put_bytes(s3, bucket, key, body, content_type)
    summary["raw"] = sorted(set(data.raw_objects) | set(data.raw_keys))

    def record(sensor: str, src: str, status: str, outcome: str, **fields) -> None:
        # columns not given are stored as NULL (db.upsert_scene)
        db.upsert_scene(conn, {"site_id": site.site_id, "acquisition_date": day, "sensor": sensor,
                               "source": src, "status": status, "outcome": outcome, **fields})
        db.delete_scenes_from_other_sources(conn, site.site_id, day, sensor, src)
        summary["outcomes"][sensor] = outcome

    def error_detail(exc: BaseException) -> str:
        return f"{type(exc).__name__}: {exc}"[:2000]

    if "sentinel2" in sensors:
        summary["sentinel2"] = None
        meta = {k: data.s2_meta.get(k) for k in
                ("acquired_at", "crs_epsg", "width_px", "height_px", "cloud_fraction", "valid_fraction")}
        if "sentinel2" in data.errors:
            record("sentinel2", s2_src, "failed", "error", detail=error_detail(data.errors["sentinel2"]))
        elif data.tile_geotiff is not None:
            key = storage.raw_tile_key(s2_src, day, site.site_id)
            storage.put_bytes(s3, bucket, key, data.tile_geotiff, "image/tiff")
            record("sentinel2", s2_src, "ingested", data.s2_outcome or "ok", s3_key=key,
                   detail=data.s2_detail or None, **meta)
            summary["sentinel2"] = key
        else:
            record("sentinel2", s2_src, "no_data", data.s2_outcome or "no_scene",
                   detail=data.s2_detail or "no scene for this date", **meta)
        if data.truth is not None:
            key = storage.raw_truth_key(s2_src, day, site.site_id)
            storage.put_bytes(s3, bucket, key, json.dumps(data.truth, default=str).encode(), "application/json")
            summary["truth"] = key

    if "viirs" in sensors:
        summary["viirs"] = None
        if "viirs" in data.errors:
            record("viirs", vi_src, "failed", "error", detail=error_detail(data.errors["viirs"]))
        elif data.viirs_csv is not None:
            key = storage.raw_viirs_key(vi_src, day, site.site_id)
            storage.put_bytes(s3, bucket, key, data.viirs_csv.encode(), "text/csv")
            n_records = max(0, len([ln for ln in data.viirs_csv.splitlines() if ln.strip()]) - 1)
            outcome = data.viirs_outcome or ("ok" if n_records else "no_detections")
            record("viirs", vi_src, "ingested", outcome, s3_key=key, n_records=n_records,
                   detail=data.viirs_detail or None)
            summary["viirs"] = key
        else:
            record("viirs", vi_src, "no_data", data.viirs_outcome or "nodata",
                   detail=data.viirs_detail or "night not observed")

    if data.errors:  # recorded above; now fail the task so Airflow retries it
        errors = list(data.errors.values())
        from .sources.http import PermanentSourceError

        first = next((e for e in errors if isinstance(e, PermanentSourceError)), errors[0])
        log.error("site %s %s: %s", site.site_id, day, "; ".join(error_detail(e) for e in errors))
        raise first
    return summary


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


def _in_aoi(site: Site, lat: float, lon: float) -> bool:
    half_m = site.aoi_km * 500.0
    dy = (lat - site.lat) * 111_320.0
    dx = (lon - site.lon) * 111_320.0 * math.cos(math.radians(site.lat))
    return abs(dx) <= half_m and abs(dy) <= half_m


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

    ``viirs_flares``: flare-like VNF detections of the night (``viirs.flare_like``), or None.
    ``viirs_history``: the previous nights' flare-like VNF detections (up to
    ``features.VIIRS_NIGHTS_WINDOW - 1`` DataFrames, None for a night without a usable file), or
    None; every detection's ``viirs_nights_seen`` counts the nights, this one included, with a
    match within the VIIRS match radius (without a history: 0 or 1, this night only).
    ``detector``: an object with ``detect(tile) -> list[Detection]`` (e.g. the YOLO champion);
    None = the physics threshold detector. ``detector_version`` is stored on every row.
    Flare-like VIIRS detections inside the AOI with no Sentinel-2 flare within the match radius
    become ``sensor = 'viirs'`` detections (S2 clouded or missing), one per VIIRS pixel.
    ``regressor``: a ``regressor.VolumeRegressor`` (``regressor_training.production_regressor``)
    estimating each flare's volume and its prediction interval from the features; None = the
    published calibration ``settings.calibration.method``. ``regressor_version`` (default the
    model's ``version``) is stored in ``flare_emissions.model_version``.
    """
    from .detection import detect_flares
    from .emissions import co2_from_volume
    from .features import extract_features, share_viirs_radiant_heat, viirs_nights_seen
    from .viirs import haversine_m, match_viirs
    from .volume import estimate_volume, volume_model_version

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
        out.detection_rows.append({c: None for c in db.DETECTION_COLUMNS} | record)
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
            "co2_t": _clean(em.co2_t), "co2e_t": _clean(em.co2e_t), "rh_source": est.rh_source})

    # One VIIRS pixel (~750 m) can hold several S2 flares: share its radiant heat between them.
    det_feats = share_viirs_radiant_heat([
        {k: _clean(v) for k, v in extract_features(tile, det, viirs_flares).items()} for det in detections])
    nights = [viirs_flares, *(viirs_history or [])]  # this night first, then the previous ones

    def nights_seen(lat, lon) -> int:
        return viirs_nights_seen(lat, lon, nights, min_temp_k=cal.min_temperature_k)

    for feats in det_feats:
        feats["viirs_nights_seen"] = nights_seen(feats.get("lat"), feats.get("lon"))
    for det, feats in zip(detections, det_feats):
        if viirs_flares is not None and len(viirs_flares) and feats.get("lat") is not None:
            near = match_viirs(feats["lat"], feats["lon"], viirs_flares)
            matched_viirs_ids.update(near["id_Key"].tolist())
        add({
            "site_id": site.site_id, "acquisition_date": day,
            "detection_key": f"s2:{det.peak_row}:{det.peak_col}", "sensor": "sentinel2",
            "detector": det.detector, "detector_version": detector_version or f"{det.detector}-v1",
            "pixel_row": _clean(det.row), "pixel_col": _clean(det.col), "bbox_px": list(det.bbox),
            "confidence": _clean(det.confidence), "cloud_flag": bool(det.cloud_flag), "saturated": bool(det.saturated),
            **{c: feats.get(c) for c in _FEATURE_COLUMNS}, "features": feats,
        }, feats)

    # Flare-like VIIRS detections with no Sentinel-2 counterpart (S2 clouded or missing that day).
    if viirs_flares is not None:
        seen: list[tuple[float, float]] = []
        for _, v in viirs_flares.sort_values("RH", ascending=False).iterrows():
            if v["id_Key"] in matched_viirs_ids or not _in_aoi(site, v["Lat_GMTCO"], v["Lon_GMTCO"]):
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
            add({
                "site_id": site.site_id, "acquisition_date": day,
                "detection_key": f"viirs:{feats['lat']:.4f}:{feats['lon']:.4f}", "sensor": "viirs",
                "detector": "viirs-nightfire", "detector_version": "viirs-nightfire-v1",
                **{c: feats.get(c) for c in _FEATURE_COLUMNS}, "features": feats,
            }, feats)

    if regressor is not None and out.emission_rows:
        from .regressor_training import emission_rows  # the backfill writes its rows with the same function

        rows = emission_rows(site.site_id, day, [r["detection_key"] for r in out.detection_rows],
                             [r["features"] for r in out.detection_rows], regressor, settings)
        version = regressor_version or regressor.version
        out.emission_rows = [{k: _clean(v) for k, v in row.items()} | {"model_version": version} for row in rows]
        for prop, em in zip(out.properties, out.emission_rows):
            prop.update({k: em[k] for k in ("volume_kscm_d", "volume_lo_kscm_d", "volume_hi_kscm_d", "co2_t", "co2e_t")})
    return out


# flare_detections columns filled from the feature dict
_FEATURE_COLUMNS = (
    "lat", "lon", "hot_pixels", "hot_area_m2", "b12_excess_sum", "b12_excess_peak", "b11_excess_sum",
    "b11_excess_peak", "b12_b11_ratio", "temperature_k", "swir_frp_mw", "viirs_n", "viirs_rh_mw", "viirs_temp_k",
    "viirs_area_m2", "viirs_distance_m",
)


def process_site_day(site: Site, day: date, s3, conn, settings: Settings, *, detector=None,
                     detector_version: str | None = None, regressor=None, regressor_version: str | None = None) -> dict:
    """Detect, measure and estimate one site-day; write Postgres rows and ``processed`` objects.

    ``detector``/``detector_version`` and ``regressor``/``regressor_version``: see
    ``estimate_site_day`` (``detectors.production_detector`` and
    ``regressor_training.production_regressor`` pick them for the DAG); None = the threshold
    detector and the published calibration.
    """
    from .features import VIIRS_NIGHTS_WINDOW
    from .render import annotated_png, detections_geojson
    from .tiles import decode_tile
    from .viirs import flare_like, parse_vnf_csv
    from .volume import volume_model_version

    scenes = db.fetch_scenes(conn, site.site_id, day)
    if not scenes:
        raise LookupError(f"no scenes recorded for site {site.site_id} on {day}; run flare_ingest for that date first")
    s2 = scenes.get("sentinel2")
    vi = scenes.get("viirs")
    # the previous nights of the viirs_nights_seen window, read from rawdata (not from other days'
    # results, which would depend on the order site-days are processed in)
    history_keys = db.viirs_night_keys(conn, site.site_id, day - timedelta(days=VIIRS_NIGHTS_WINDOW - 1),
                                       day - timedelta(days=1))

    def get_night(key: str) -> bytes | None:
        try:
            return storage.get_bytes(s3, settings.raw_bucket, key)
        except FileNotFoundError as exc:  # an older night's object is gone: that night is not counted
            log.warning("site %s %s: previous VIIRS night skipped: %s", site.site_id, day, exc)
            return None

    # the raw objects are read concurrently (boto3 clients are thread-safe)
    want = {name: sc["s3_key"] for name, sc in (("viirs", vi), ("sentinel2", s2))
            if sc and sc["status"] != "no_data" and sc["s3_key"]}
    with ThreadPoolExecutor(max_workers=4) as pool:
        history = {night: pool.submit(get_night, key) for night, key in sorted(history_keys.items(), reverse=True)}
        raw = dict(zip(want, pool.map(lambda k: storage.get_bytes(s3, settings.raw_bucket, k), want.values())))
        history = {night: f.result() for night, f in history.items()}

    viirs_flares = None
    if "viirs" in raw:
        try:
            viirs_flares = flare_like(parse_vnf_csv(raw["viirs"].decode()), settings.calibration.min_temperature_k)
        except ValueError as exc:
            raise ValueError(f"s3://{settings.raw_bucket}/{want['viirs']}: {exc}") from exc

    viirs_history = []  # newest night first; a bad older file does not fail the task
    for night, body in history.items():
        frame = None
        if body is not None:
            try:
                frame = flare_like(parse_vnf_csv(body.decode()), settings.calibration.min_temperature_k)
            except ValueError as exc:  # UnicodeDecodeError included
                log.warning("site %s %s: previous VIIRS night s3://%s/%s skipped: %s", site.site_id, day,
                            settings.raw_bucket, history_keys[night], exc)
        viirs_history.append(frame)

    tile = None
    if "sentinel2" in raw:
        try:
            tile = decode_tile(raw["sentinel2"])
        except ValueError as exc:
            raise ValueError(f"s3://{settings.raw_bucket}/{want['sentinel2']}: {exc}") from exc

    est = estimate_site_day(site, day, tile, viirs_flares, settings, detector=detector,
                            detector_version=detector_version, regressor=regressor,
                            regressor_version=regressor_version, viirs_history=viirs_history)
    det_rows, em_rows, props = est.detection_rows, est.emission_rows, est.properties
    keys = storage.processed_keys(day, site.site_id)
    pb = settings.processed_bucket
    result = {
        "site_id": site.site_id, "acquisition_date": day.isoformat(),
        "n_detections": len(det_rows),
        "n_sentinel2": sum(r["sensor"] == "sentinel2" for r in det_rows),
        "n_viirs_only": sum(r["sensor"] == "viirs" for r in det_rows),
        "volume_kscm_d": round(sum(e["volume_kscm_d"] or 0.0 for e in em_rows), 4),
        "co2_t": round(sum(e["co2_t"] or 0.0 for e in em_rows), 4),
        "co2e_t": round(sum(e["co2e_t"] or 0.0 for e in em_rows), 4),
        "volume_model_version": (regressor_version or regressor.version) if regressor is not None
        else volume_model_version(settings.calibration),
        "detector_version": detector_version or "threshold-tai-nhi-v1",
        "sentinel2_scene": s2["s3_key"] if s2 else None,
        "viirs_scene": vi["s3_key"] if vi else None,
        "objects": keys,
    }
    # S3 writes overlap with each other and with rendering; the rows are written once every object
    # is in place, so a site-day marked processed always has its objects
    with ThreadPoolExecutor(max_workers=3) as pool:
        puts = []

        def put(key: str, data: bytes, content_type: str) -> None:
            puts.append(pool.submit(storage.put_bytes, s3, pb, key, data, content_type))

        if tile is not None:
            gj = detections_geojson(tile, est.detections, [p for p in props if p["sensor"] == "sentinel2"])
        else:
            gj = {"type": "FeatureCollection", "features": []}
            result["objects"] = {k: v for k, v in keys.items() if k != "png"}
        for p, r in zip(props, det_rows):
            if r["sensor"] == "viirs":
                gj["features"].append({"type": "Feature",
                                       "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
                                       "properties": p})
        put(keys["geojson"], json.dumps(gj).encode(), "application/geo+json")
        put(keys["result"], json.dumps(result, default=str).encode(), "application/json")
        if tile is not None:
            title = f"{site.site_id} {day.isoformat()} - {len(est.detections)} flare(s)"
            put(keys["png"], annotated_png(tile, est.detections, title=title), "image/png")
        for f in puts:
            f.result()  # re-raise an S3 error
    db.replace_site_day_results(conn, site.site_id, day, det_rows, em_rows, scene_sensors=list(scenes))
    log.info("processed %s %s: %s", site.site_id, day, {k: result[k] for k in ("n_detections", "volume_kscm_d", "co2_t")})
    return result
