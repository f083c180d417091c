"""Flares in Sentinel-2 GeoTIFF files outside the pipeline (``flarewatch detect``): no S3, no database.

``detect_files`` reads B8A/B11/B12 tiles from local files (``tiles.decode_tile``: our own tiles,
or any 3-band uint16 product with acquisition time, sun zenith/elevation and spacecraft in its
tags or given as arguments), loads the configured models once (``detect.deployed.configured_detector``:
the shipped YOLO weights, or the threshold detector with ``FLAREWATCH_DETECTOR=threshold``;
``estimate.deployed.configured_regressor``: the shipped volume regressor, or the published
calibration with ``FLAREWATCH_VOLUME_MODEL=calibration``) and runs the pipeline's pure estimate
(``estimate.site_day.estimate_site_day``) on each tile, so features, volumes and CO2 are computed
exactly as ``flare_process`` computes them for a site-day without a VIIRS file (no VIIRS match:
``viirs_n`` 0). The site it needs is a stand-in centred on the tile (``file_site``).

One record per Sentinel-2 detection, with exactly the keys ``RECORD_KEYS`` (a stable interface):

- ``file``: the path as given (or found in a given directory); ``spacecraft``: "Sentinel-2A", ...;
  ``acquired_at``: ISO 8601 acquisition time as read (or given);
- ``row``, ``col``: continuous pixel coordinates of the detection's centre in the file's grid
  (a pixel's centre is index + 0.5; ``Detection.row``/``col``); ``lat``, ``lon``: WGS84 degrees;
- ``confidence``: 0..1 detector score; ``detector_version``: e.g. "yolo-shipped-<sha8>",
  "threshold-tai-nhi-v1";
- ``temperature_k``: B12/B11 colour temperature (K) or null; ``swir_frp_mw``: SWIR fire radiative
  power (MW);
- ``volume_kscm_d``: flared gas, thousand standard m3 per day; ``volume_lo_kscm_d`` /
  ``volume_hi_kscm_d``: the regressor's prediction interval (null with the calibration);
  ``volume_model_version``: e.g. "regressor-shipped-<sha8>", "calibration-linear-v1".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path

from flarewatch.config import Settings
from flarewatch.detect.deployed import configured_detector
from flarewatch.estimate.deployed import configured_regressor
from flarewatch.estimate.site_day import estimate_site_day
from flarewatch.sites import Site
from flarewatch.tiles import Tile, decode_tile

RECORD_KEYS = (
    "file", "row", "col", "lat", "lon", "confidence", "detector_version", "temperature_k", "swir_frp_mw",
    "volume_kscm_d", "volume_lo_kscm_d", "volume_hi_kscm_d", "volume_model_version", "spacecraft", "acquired_at",
)
TIFF_SUFFIXES = (".tif", ".tiff")


class FilesFailed(RuntimeError):
    """Some inputs could not be read or processed; the others were. ``errors``: [(path, exception)]."""

    def __init__(self, errors: list[tuple[Path, BaseException]]):
        self.errors = errors
        super().__init__(f"{len(errors)} input(s) failed: " + "; ".join(f"{p}: {e}" for p, e in errors))


def tile_files(paths: Iterable[str | Path], *, recursive: bool = False) -> Iterator[tuple[Path, Exception | None]]:
    """(path, None) for each file given and each *.tif / *.tiff in a directory given (sorted; in its
    sub-directories too with ``recursive``); (path, error) for a path that does not exist or a
    directory without such files."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in (path.rglob("*") if recursive else path.iterdir())
                           if p.is_file() and p.suffix.lower() in TIFF_SUFFIXES)
            if not found:
                where = "in it or its sub-directories" if recursive else "in it (--recursive looks in sub-directories)"
                yield path, FileNotFoundError(f"directory with no *.tif / *.tiff files {where}")
            for p in found:
                yield p, None
        elif path.exists():
            yield path, None
        else:
            yield path, FileNotFoundError("no such file or directory")


def file_site(tile: Tile, name: str = "file") -> Site:
    """A stand-in ``Site`` centred on ``tile`` (``estimate_site_day`` needs one; without VIIRS only its
    id reaches the rows, none of the Sentinel-2 features or volumes depend on it)."""
    h, w = tile.shape
    lon, lat = tile.pixel_to_lonlat(h / 2.0, w / 2.0)
    extent_km = max(h, w) * abs(float(tile.transform.a)) / 1000.0
    return Site(site_id="file", name=name, field="", operator="", country="", lat=lat, lon=lon,
                aoi_km=min(max(extent_km, 0.5), 50.0))


def _value(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def tile_records(tile: Tile, file: str, settings: Settings, *, detector=None, detector_version: str | None = None,
                 regressor=None, regressor_version: str | None = None) -> list[dict]:
    """The ``RECORD_KEYS`` records of one tile's Sentinel-2 detections (``estimate_site_day``)."""
    site = file_site(tile, Path(file).name)
    est = estimate_site_day(site, tile.acquired_at.date(), tile, None, settings, detector=detector,
                            detector_version=detector_version, regressor=regressor,
                            regressor_version=regressor_version)
    out = []
    for det, em in zip(est.detection_rows, est.emission_rows):
        if det["sensor"] != "sentinel2":
            continue
        rec = {
            "file": file, "row": det["pixel_row"], "col": det["pixel_col"], "lat": det["lat"], "lon": det["lon"],
            "confidence": det["confidence"], "detector_version": det["detector_version"],
            "temperature_k": det["temperature_k"], "swir_frp_mw": det["swir_frp_mw"],
            "volume_kscm_d": em["volume_kscm_d"], "volume_lo_kscm_d": em["volume_lo_kscm_d"],
            "volume_hi_kscm_d": em["volume_hi_kscm_d"], "volume_model_version": em["model_version"],
            "spacecraft": tile.spacecraft, "acquired_at": tile.acquired_at.isoformat(),
        }
        out.append({k: _value(rec[k]) for k in RECORD_KEYS})
    return out


def detect_files(paths: Iterable[str | Path], settings: Settings | None = None, *,
                 acquired: datetime | str | None = None, sun_zenith: float | None = None,
                 spacecraft: str | None = None, recursive: bool = False,
                 on_error: Callable[[Path, Exception], None] | None = None) -> Iterator[dict]:
    """Records (``RECORD_KEYS``, module docstring) of every detection in the GeoTIFF files ``paths``.

    ``paths``: files, or directories (their *.tif / *.tiff; ``recursive``: sub-directories too).
    ``acquired`` / ``sun_zenith`` / ``spacecraft``: used for every file instead of its tags
    (``tiles.decode_tile``). ``settings``: default ``Settings.from_env()`` (``FLAREWATCH_DETECTOR``,
    ``FLAREWATCH_VOLUME_MODEL``, ...). The models are loaded once, before the first file; a model
    that cannot be loaded raises (FileNotFoundError) before any record.

    A file that cannot be read or processed does not stop the others: ``on_error(path, exc)`` is
    called for it, or, without ``on_error``, ``FilesFailed`` naming every failure is raised after
    the last record.
    """
    settings = Settings.from_env() if settings is None else settings
    detector, detector_version = configured_detector(settings)
    regressor, regressor_version = configured_regressor(settings)
    errors: list[tuple[Path, Exception]] = []

    def failed(path: Path, exc: Exception) -> None:
        errors.append((path, exc))
        if on_error is not None:
            on_error(path, exc)

    for path, problem in tile_files(paths, recursive=recursive):
        if problem is not None:
            failed(path, problem)
            continue
        try:
            tile = decode_tile(path.read_bytes(), acquired=acquired, sun_zenith=sun_zenith, spacecraft=spacecraft)
        except (OSError, ValueError) as exc:
            failed(path, exc)
            continue
        try:
            records = tile_records(tile, str(path), settings, detector=detector, detector_version=detector_version,
                                   regressor=regressor, regressor_version=regressor_version)
        except Exception as exc:  # noqa: BLE001 - one bad tile must not stop the others; reported with its path
            failed(path, RuntimeError(f"processing failed: {type(exc).__name__}: {exc}"))
            continue
        yield from records
    if errors and on_error is None:
        raise FilesFailed(errors)
