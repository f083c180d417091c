"""What every scene source returns and promises: ``SiteDayData``, ``ViirsResult``, ``SceneSource``.

Kept apart from the provider registry (``ingest.sources``) so that providers import these types
without importing the registry that imports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from flarewatch.sites import Site

SENSORS = ("sentinel2", "viirs")

# Outcome vocabulary (scenes.outcome, migration 005). Status stays ingested / no_data / failed.
OUTCOMES = ("ok", "partial", "no_scene", "full_cloud", "nodata", "no_detections", "error")


@dataclass
class SiteDayData:
    """What a source returned for one site and acquisition date.

    ``tile_geotiff``: B8A/B11/B12 uint16 GeoTIFF bytes (see ``flarewatch.tiles``), or None when
    no scene covers the site that day (``s2_detail`` says why). ``viirs_csv``: VNF-schema CSV text
    of that night's detections over the AOI (header only when there were none), or None when the
    night was not observed. ``truth``: ground truth (simulated sources only).

    Real providers also fill: ``s2_source`` / ``viirs_source`` (the provider per sensor, stored
    in ``scenes.source``; default ``source``), ``s2_status`` / ``viirs_status`` (``ingested`` or
    ``no_data``; default from whether the tile / CSV is there), ``s2_outcome`` /
    ``viirs_outcome`` (``OUTCOMES``), ``viirs_meta``, ``raw_objects`` (rawdata key ->
    (bytes, content type): provider responses stored unchanged, keys from
    ``store.objects.raw_object_key``), ``raw_keys`` (raw objects this data came from that the source
    already stored, e.g. a shared VNF nightly file) and ``errors`` (sensor -> the exception
    that stopped it; ``ingest_site_day`` records the sensor as ``failed`` and re-raises).
    """

    source: str
    tile_geotiff: bytes | None
    viirs_csv: str | None
    s2_meta: dict = field(default_factory=dict)
    s2_detail: str = ""
    viirs_detail: str = ""
    truth: dict | None = None
    s2_source: str | None = None
    viirs_source: str | None = None
    s2_status: str | None = None
    viirs_status: str | None = None
    s2_outcome: str | None = None
    viirs_outcome: str | None = None
    viirs_meta: dict = field(default_factory=dict)
    raw_objects: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    raw_keys: list[str] = field(default_factory=list)
    errors: dict[str, BaseException] = field(default_factory=dict)


@dataclass
class ViirsResult:
    """What a VIIRS provider returned for one site-night (``fetch_viirs``).

    ``viirs_csv``: VNF-schema CSV of the flare-like detections in the AOI that night (header only
    when none), None when nothing could be had (``status`` no_data). ``outcome``: ok,
    no_detections, partial, nodata. ``raw_objects`` / ``raw_keys``: as in ``SiteDayData``.
    """

    viirs_csv: str | None
    status: str
    outcome: str
    detail: str = ""
    meta: dict = field(default_factory=dict)
    raw_objects: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    raw_keys: list[str] = field(default_factory=list)


class SceneSource(Protocol):
    name: str

    def fetch(self, site: Site, day: date) -> SiteDayData: ...
