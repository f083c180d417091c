"""The ingest step of one site-day: fetch it from the scene source into ``rawdata``, record ``scenes``.

Idempotent: deterministic S3 keys (``store.objects``) and upserts on the scenes' natural key.
"""

from __future__ import annotations

import json
import logging
from datetime import date

from flarewatch.config import Settings
from flarewatch.ingest.sources import SceneSource
from flarewatch.sites import Site
from flarewatch.store import db
from flarewatch.store import objects as storage

log = logging.getLogger(__name__)


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
        from flarewatch.ingest.sources.http import PermanentSourceError

        first = next((e for e in errors if isinstance(e, PermanentSourceError)), errors[0])
        log.error("site %s %s: %s", site.site_id, day, "; ".join(error_detail(e) for e in errors))
        raise first
    return summary
