"""Monitored sites: the seed file of demo sites and the ``Site`` record used everywhere."""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from flarewatch.config import S2_SOURCES, VIIRS_SOURCES


@dataclass(frozen=True)
class Site:
    """A monitored oil and gas site: an area of interest (AOI) centred on lat/lon."""

    site_id: str
    name: str
    field: str
    operator: str
    country: str
    lat: float
    lon: float
    aoi_km: float = 5.0
    land_cover: str = "desert"
    notes: str = ""
    # Per-site provider overrides ("" = the deployment default, FLAREWATCH_S2_SOURCE /
    # FLAREWATCH_VIIRS_SOURCE): e.g. sentinel-hub for one site, nightfire for another.
    s2_source: str = ""
    viirs_source: str = ""

    def __post_init__(self) -> None:
        if not self.site_id or not self.site_id.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"site_id must be a non-empty slug of letters, digits, '-' or '_': {self.site_id!r}")
        if not -90.0 <= self.lat <= 90.0:
            raise ValueError(f"site {self.site_id}: lat {self.lat} outside [-90, 90]")
        if not -180.0 <= self.lon <= 180.0:
            raise ValueError(f"site {self.site_id}: lon {self.lon} outside [-180, 180]")
        if not 0.5 <= self.aoi_km <= 50.0:
            raise ValueError(f"site {self.site_id}: aoi_km {self.aoi_km} outside [0.5, 50]")
        if self.s2_source and self.s2_source not in S2_SOURCES:
            raise ValueError(f"site {self.site_id}: s2_source {self.s2_source!r} is not one of {list(S2_SOURCES)}")
        if self.viirs_source and self.viirs_source not in VIIRS_SOURCES:
            raise ValueError(f"site {self.site_id}: viirs_source {self.viirs_source!r} is not one of {list(VIIRS_SOURCES)}")

    def bbox(self) -> tuple[float, float, float, float]:
        """The AOI (``aoi_km`` x ``aoi_km`` around lat/lon) as (west, south, east, north) degrees.

        Spherical approximation (111.32 km per degree of latitude, scaled by cos(lat) in
        longitude), the same one ``pipeline`` uses to decide "inside the AOI".
        """
        half_km = self.aoi_km / 2.0
        dlat = half_km / 111.32
        dlon = half_km / (111.32 * max(math.cos(math.radians(self.lat)), 1e-6))
        return (max(self.lon - dlon, -180.0), max(self.lat - dlat, -90.0),
                min(self.lon + dlon, 180.0), min(self.lat + dlat, 90.0))

    def in_aoi(self, lat: float, lon: float) -> bool:
        """Whether lat/lon lies in the AOI square (local flat-earth metres around the centre)."""
        half_m = self.aoi_km * 500.0
        dy = (lat - self.lat) * 111_320.0
        dx = (lon - self.lon) * 111_320.0 * math.cos(math.radians(self.lat))
        return abs(dx) <= half_m and abs(dy) <= half_m

    @property
    def utm_epsg(self) -> int:
        """EPSG code of the WGS84 UTM zone holding the site centre (326xx north, 327xx south)."""
        zone = int(math.floor((self.lon + 180.0) / 6.0)) % 60 + 1
        return (32600 if self.lat >= 0 else 32700) + zone

    def as_dict(self) -> dict:
        return asdict(self)


_FLOAT_FIELDS = ("lat", "lon", "aoi_km")


def parse_sites_csv(text: str) -> list[Site]:
    """Parse a sites CSV (header as in ``data/demo_sites.csv``); raises ValueError naming the bad line."""
    reader = csv.DictReader(text.splitlines())
    required = {"site_id", "name", "field", "operator", "country", "lat", "lon"}
    missing = required - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"sites CSV is missing columns: {sorted(missing)}")
    sites: list[Site] = []
    seen: set[str] = set()
    for lineno, row in enumerate(reader, start=2):
        try:
            kwargs = {k: (v or "").strip() for k, v in row.items() if k in Site.__dataclass_fields__}
            for key in _FLOAT_FIELDS:
                if key in kwargs and kwargs[key] != "":
                    kwargs[key] = float(kwargs[key])
                elif key in kwargs:
                    del kwargs[key]
            site = Site(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"sites CSV line {lineno}: {exc}") from exc
        if site.site_id in seen:
            raise ValueError(f"sites CSV line {lineno}: duplicate site_id {site.site_id!r}")
        seen.add(site.site_id)
        sites.append(site)
    return sites


def load_sites(path: str | Path | None = None) -> list[Site]:
    """Load sites from ``path``, or the packaged demo seed file when ``path`` is None."""
    if path is None:
        text = resources.files("flarewatch").joinpath("data/demo_sites.csv").read_text()
    else:
        text = Path(path).read_text()
    return parse_sites_csv(text)
