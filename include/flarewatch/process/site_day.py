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
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from datetime import date, timedelta

from flarewatch.config import Settings
from flarewatch.errors import NothingIngested
from flarewatch.estimate.calibrations import volume_model_version
from flarewatch.estimate.site_day import estimate_site_day
from flarewatch.sites import Site
from flarewatch.store import db
from flarewatch.store import objects as storage

log = logging.getLogger(__name__)

# scene statuses whose object processing reads (and validates)
READABLE_SCENE_STATUS = ("ingested", "processed", "quarantined")


def process_site_day(site: Site, day: date, s3, conn, settings: Settings, *, detector=None,
                     detector_version: str | None = None, regressor=None, regressor_version: str | None = None) -> dict:
    """Detect, measure and estimate one site-day; write Postgres rows and ``processed`` objects.

    ``detector``/``detector_version`` and ``regressor``/``regressor_version``: see
    ``estimate_site_day`` (``detect.deployed.production_detector`` and
    ``estimate.deployed.production_regressor`` pick them for the DAG); None = the threshold
    detector and the published calibration.

    Speed (``make bench``): the raw objects are read concurrently, each VIIRS night file is parsed
    once per process (``ingest.viirs.NIGHTS``, by content), the annotated PNG is rendered and written
    in a background thread while the rest is computed and the rows are written, and the rows'
    transaction commits only once every object is in place (``_commit_after``).
    """
    from flarewatch.features.extract import VIIRS_NIGHTS_WINDOW
    from flarewatch.ingest.viirs import NIGHTS  # each night file parsed once per process (by content)
    from flarewatch.process.render import UNITS, annotated_png, flare_layers
    from flarewatch.validate.tile import TileRejected, validate_tile
    from flarewatch.validate.usable import sentinel2_usable

    scenes = db.fetch_scenes(conn, site.site_id, day)
    if not scenes:
        raise NothingIngested(f"no scenes recorded for site {site.site_id} on {day}; run flare_ingest for that date first")
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

    # the raw objects are read concurrently (boto3 clients are thread-safe); a scene that failed at
    # ingest or had nothing to fetch is not read (and not observed); a quarantined one is validated
    # again (its object may have been replaced before the site-day was re-queued). The previous
    # nights arrive while the night and the tile are parsed and validated.
    want = {name: sc["s3_key"] for name, sc in (("viirs", vi), ("sentinel2", s2))
            if sc and sc["status"] in READABLE_SCENE_STATUS and sc["s3_key"]}
    pool = io_pool()
    reads = {name: pool.submit(storage.get_bytes, s3, settings.raw_bucket, key) for name, key in want.items()}
    history = {night: pool.submit(get_night, key) for night, key in sorted(history_keys.items(), reverse=True)}
    with _settled(list(reads.values()) + list(history.values())):
        raw = {name: f.result() for name, f in reads.items()}

        bucket = settings.raw_bucket
        scene_states: dict[str, tuple[str, str, str]] = {}  # sensor -> (status, outcome, detail) set by validation

        def reject(sensor: str, reason: str, detail: str, quarantine: bool) -> None:
            """The object of ``sensor`` is not used: quarantined (malformed or foreign, copied aside) or
            no_data (well-formed, but it does not observe the site). Either way the sensor did not observe the day."""
            key = want[sensor]
            if quarantine:
                copy = storage.quarantine(s3, bucket, key, {"site_id": site.site_id,
                                                            "acquisition_date": day.isoformat(), "sensor": sensor,
                                                            "reason": reason, "detail": detail})
                detail = f"{detail} (s3://{bucket}/{key}; copy kept at s3://{bucket}/{copy})"
            scene_states[sensor] = ("quarantined" if quarantine else "no_data", reason, detail[:2000])
            log.warning("site %s %s: %s object s3://%s/%s not used (%s): %s", site.site_id, day, sensor, bucket, key,
                        reason, detail)

        viirs_flares = None
        if "viirs" in raw:
            try:
                viirs_flares = NIGHTS.flares(raw["viirs"], settings.calibration.min_temperature_k)
            except ValueError as exc:  # UnicodeDecodeError included
                reject("viirs", "bad_file", f"not a VIIRS Nightfire CSV: {exc}", True)

        tile = None
        if "sentinel2" in raw:
            try:
                tile = validate_tile(raw["sentinel2"], site, settings.tile_limits).tile
            except TileRejected as exc:
                reject("sentinel2", exc.reason, exc.detail, exc.quarantine)

        viirs_history = []  # newest night first; a bad older file does not fail the task
        for night, f in history.items():
            frame, body = None, f.result()
            if body is not None:
                try:
                    frame = NIGHTS.flares(body, settings.calibration.min_temperature_k)
                except ValueError as exc:  # UnicodeDecodeError included
                    log.warning("site %s %s: previous VIIRS night s3://%s/%s skipped: %s", site.site_id, day,
                                settings.raw_bucket, history_keys[night], exc)
            viirs_history.append(frame)

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
        # the day's 90 % interval as emissions_daily has it: the flares' bounds summed (fully
        # correlated errors, conservative); a flare without an interval counts its estimate
        "volume_lo_kscm_d": round(sum(_bound(e, "volume_lo_kscm_d") for e in em_rows), 4),
        "volume_hi_kscm_d": round(sum(_bound(e, "volume_hi_kscm_d") for e in em_rows), 4),
        "co2_t": round(sum(e["co2_t"] or 0.0 for e in em_rows), 4),
        "co2e_t": round(sum(e["co2e_t"] or 0.0 for e in em_rows), 4),
        "volume_model_version": (regressor_version or regressor.version) if regressor is not None
        else volume_model_version(settings.calibration),
        "detector_version": detector_version or "threshold-tai-nhi-v1",
        "sentinel2_scene": s2["s3_key"] if s2 else None,
        "viirs_scene": vi["s3_key"] if vi else None,
        "scenes": {sensor: dict(zip(("status", "outcome"), scene_states[sensor][:2] if sensor in scene_states
                                    else _processed_state(sc))) for sensor, sc in sorted(scenes.items())},
        "objects": keys,
    }
    s2_props = [p for p in props if p["sensor"] == "sentinel2"]
    viirs = [(r["lon"], r["lat"], p) for p, r in zip(props, det_rows) if r["sensor"] == "viirs"]
    puts = []

    def put(key: str, data: bytes, content_type: str) -> None:
        puts.append(pool.submit(storage.put_bytes, s3, pb, key, data, content_type))

    with _settled(puts):
        # the PNG is rendered and written in the background (PIL's encoder releases the GIL) while
        # the rest is computed, the other objects written and the rows sent; the rows' transaction
        # commits once every object is in place, so a site-day marked processed always has its objects
        if tile is not None:
            title, subtitle, labels, marks = _picture_text(site, day, tile, s2_props, viirs, result)

            def render_and_put() -> None:
                png = annotated_png(tile, est.detections, title=title, subtitle=subtitle, labels=labels, viirs=marks,
                                    legend=True)
                storage.put_bytes(s3, pb, keys["png"], png, "image/png")

            if BACKGROUND_PNG:
                puts.append(pool.submit(render_and_put))
        usable = None
        if tile is not None:  # clear where this site's flares burn? (validate.usable)
            places = [(r["lon"], r["lat"]) for r in det_rows if r["sensor"] == "sentinel2"]
            for frame in [viirs_flares, *viirs_history]:
                if frame is not None and len(frame):
                    places += [(lo, la) for lo, la in zip(frame["Lon_GMTCO"], frame["Lat_GMTCO"])
                               if site.in_aoi(la, lo)]
            usable = sentinel2_usable(tile, places)
        if usable is not None:
            result["scenes"]["sentinel2"].update(usable=usable[0], usable_fraction=usable[1], flare_places=usable[2])
        common = {"site_id": site.site_id, "site_name": site.name, "acquisition_date": day.isoformat(),
                  "detector_version": result["detector_version"],
                  "volume_model_version": result["volume_model_version"], "units": UNITS}
        if tile is None:
            result["objects"] = {k: v for k, v in keys.items() if k != "png"}
        gj, footprints = flare_layers(tile, est.detections, s2_props, common, viirs)
        put(keys["footprints"], json.dumps(footprints).encode(), "application/geo+json")
        put(keys["geojson"], json.dumps(gj).encode(), "application/geo+json")
        put(keys["result"], json.dumps(result, default=str).encode(), "application/json")
        if tile is not None and not BACKGROUND_PNG:
            put(keys["png"], annotated_png(tile, est.detections, title=title, subtitle=subtitle, labels=labels,
                                           viirs=marks, legend=True), "image/png")
        record = {k: result[k] for k in ("n_detections", "n_sentinel2", "n_viirs_only", "volume_kscm_d", "co2_t",
                                         "co2e_t", "detector_version", "volume_model_version")}
        record |= {"sentinel2_outcome": result["scenes"].get("sentinel2", {}).get("outcome"),
                   "viirs_outcome": result["scenes"].get("viirs", {}).get("outcome"), "result_key": keys["result"]}
        if not BACKGROUND_PNG:  # the rows once every object is in place
            wait(puts)
            for f in puts:
                f.result()
        db.replace_site_day_results(_commit_after(conn, puts) if BACKGROUND_PNG else conn, site.site_id, day,
                                    det_rows, em_rows, scene_sensors=list(scenes), scene_states=scene_states,
                                    record=record,
                                    scene_usable={"sentinel2": usable[:2]} if usable is not None else None)
    # sensors that did not observe the day: rejected now, or not read (no_data / failed at ingest)
    unused = {sensor: scene_states.get(sensor) or (sc["status"], sc["outcome"], sc["detail"])
              for sensor, sc in scenes.items() if sensor in scene_states or sensor not in raw}
    log.info("%s", summary_line(result, unused))
    return result


IO_THREADS = 4  # S3 reads and writes (and the PNG) of a site-day in flight at once
# the PNG rendered and written in the background, the rows' commit waiting for it (False: rendered
# first, the rows written after every object, as before; the same bytes, tests/integration/test_pipeline_identical.py)
BACKGROUND_PNG = True
_io_pool: ThreadPoolExecutor | None = None
_io_pool_lock = threading.Lock()


def io_pool() -> ThreadPoolExecutor:
    """The process's thread pool for S3 calls and PNG rendering (started once, not per site-day;
    a forked child starts its own)."""
    global _io_pool
    with _io_pool_lock:
        if _io_pool is None:
            _io_pool = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="flarewatch-io")
        return _io_pool


def _forget_io_pool() -> None:  # in a forked child: the parent's threads are not there
    global _io_pool, _io_pool_lock
    _io_pool, _io_pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_io_pool)


@contextmanager
def _settled(futures: list):
    """On the way out, wait until every future in ``futures`` (the list may grow inside) is done, so
    no S3 call of a site-day outlives it; an error inside is re-raised, not masked by theirs."""
    try:
        yield
    except BaseException:
        wait(futures)
        raise
    wait(futures)
    for f in futures:
        f.result()


class _commit_after:  # noqa: N801 - a thin wrapper used like a function
    """``conn`` whose ``commit`` first waits for ``futures`` (the site-day's S3 writes) and re-raises
    the first error among them, so ``db.replace_site_day_results`` sends its rows while the objects
    are still being written but commits them only once every object is in place (an error rolls
    the rows back, as ``db.transaction`` does on any error)."""

    def __init__(self, conn, futures: list):
        self._conn, self._futures = conn, futures

    def commit(self) -> None:
        wait(self._futures)
        for f in self._futures:
            f.result()
        self._conn.commit()

    def __getattr__(self, name):
        return getattr(self._conn, name)


SENSOR_NAMES = {"sentinel2": "Sentinel-2", "viirs": "VIIRS"}


def summary_line(result: dict, unused: dict[str, tuple] | None = None) -> str:
    """One readable line for the task log of a processed site-day, e.g. ``rumaila-n 2025-06-03: 4 flares
    (3 Sentinel-2, 1 VIIRS-only), volume 812.4 kscm/d [90 % 610.2-1010.9], CO2e 1,587.2 t; detector
    yolo-..., volume model regressor-...``, then for each sensor that did not observe the day its
    status, outcome and why (``unused``: sensor -> (status, outcome, detail))."""
    n_s2, n_v = result["n_sentinel2"], result["n_viirs_only"]
    line = (f"{result['site_id']} {result['acquisition_date']}: {result['n_detections']} flare(s) ({n_s2} Sentinel-2, "
            f"{n_v} VIIRS-only), volume {result['volume_kscm_d']:,.1f} kscm/d")
    if "volume_lo_kscm_d" in result:
        line += f" [90 % {result['volume_lo_kscm_d']:,.1f}-{result['volume_hi_kscm_d']:,.1f}]"
    line += (f", CO2e {result['co2e_t']:,.1f} t; detector {result['detector_version']}, "
             f"volume model {result['volume_model_version']}")
    for sensor, (status, outcome, detail) in sorted((unused or {}).items()):
        why = f"{outcome}: {' '.join(str(detail).split())[:200]}" if detail else str(outcome)
        line += f"; {SENSOR_NAMES.get(sensor, sensor)} not used, {status} ({why})"
    return line


def _bound(emission: dict, key: str) -> float:
    v = emission.get(key)
    return emission["volume_kscm_d"] or 0.0 if v is None else v


def _processed_state(scene: dict) -> tuple[str, str | None]:
    """(status, outcome) of a scene that processing used (``db.replace_site_day_results`` writes the same)."""
    if scene["status"] == "quarantined":  # it passed validation this time
        return "processed", "ok"
    return ("processed" if scene["status"] == "ingested" else scene["status"]), scene["outcome"]


def _amount(p: dict) -> str:
    v, lo, hi = p.get("volume_kscm_d"), p.get("volume_lo_kscm_d"), p.get("volume_hi_kscm_d")
    if v is None:
        return "?"
    return f"{v:,.0f}" + (f" [{lo:,.0f}-{hi:,.0f}]" if lo is not None and hi is not None else "")


def _picture_text(site: Site, day: date, tile, s2_props: list[dict], viirs: list, result: dict):
    """Title, subtitle, box labels and VIIRS marks of the annotated PNG (site name and date in words,
    the day's totals and versions, each flare's volume with its interval)."""
    title = f"{site.name} ({site.site_id}), {day.day} {day:%B %Y}"
    n_s2, n_v = result["n_sentinel2"], result["n_viirs_only"]
    subtitle = (f"{n_s2 + n_v} flare(s): {n_s2} Sentinel-2, {n_v} VIIRS-only; {result['volume_kscm_d']:,.0f} thousand "
                f"m3/day; detector {result['detector_version']}")
    labels = [f"{i + 1}. {_amount(p)}" for i, p in enumerate(s2_props)]
    marks = []
    for k, (lon, lat, p) in enumerate(viirs):
        row, col = tile.lonlat_to_pixel(lon, lat)
        marks.append((row, col, f"V{k + 1}. {_amount(p)}"))
    return title, subtitle, labels, marks
