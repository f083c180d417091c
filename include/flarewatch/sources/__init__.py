"""Scene sources: where Sentinel-2 tiles and VIIRS night detections come from.

A source returns a ``SiteDayData`` for a (site, acquisition date). The embedded default is the
``demo`` simulator; real providers plug in behind the same interface and are chosen by
``FLAREWATCH_SCENE_SOURCE``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from ..sites import Site


@dataclass
class SiteDayData:
    """What a source returned for one site and acquisition date.

    ``tile_geotiff``: B8A/B11/B12 uint16 GeoTIFF bytes (see ``flarewatch.tiles``), or None when
    no scene covers the site that day (``s2_detail`` says why). ``viirs_csv``: VNF-schema CSV text
    of that night's detections over the AOI (header only when there were none), or None when the
    night was not observed. ``truth``: ground truth (simulated sources only).
    """

    source: str
    tile_geotiff: bytes | None
    viirs_csv: str | None
    s2_meta: dict = field(default_factory=dict)
    s2_detail: str = ""
    viirs_detail: str = ""
    truth: dict | None = None


class SceneSource(Protocol):
    name: str

    def fetch(self, site: Site, day: date) -> SiteDayData: ...


def get_source(name: str) -> SceneSource:
    """The scene source registered under ``name``; ValueError lists the known ones."""
    if name == "demo":
        from .demo import DemoSource

        return DemoSource()
    raise ValueError(f"unknown scene source {name!r}; known sources: ['demo']")
