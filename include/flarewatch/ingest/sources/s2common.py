"""Shared Sentinel-2 helpers for the real scene sources (Earth Search STAC, Sentinel Hub).

- ``S2Result``: what a Sentinel-2 source returns for one site-day: the tile (or None), the
  ``scenes`` status and outcome with a readable detail, metadata, and the raw responses as
  received (so processing can be re-run without downloading again).
- ``SiteWindow`` / ``site_window``: the site's tile grid, the one the simulator and the pipeline
  use (``tiles.site_grid``: the site's UTM zone, 20 m pixels, origin snapped to the 20 m grid).
- ``select_acquisition``: from catalogue features (STAC items), the one acquisition (datatake)
  whose granules cover the site best, after the cloud-cover filter; or the reason there is none.
- Band windows onto the site grid (``reproject_to_window``), reflectance <-> the pipeline's DN,
  and ``finish_tile``: outcome classification and the ``S2Result``.

Outcomes (``S2Result.outcome``) and the ``scenes`` status they give:

| outcome | status | tile | meaning |
|---|---|---|---|
| ``ok`` | ingested | yes | the AOI has data (>= ``PARTIAL_VALID_FRACTION``) and is not fully clouded |
| ``partial`` | ingested | yes | part of the AOI has no data (granule or swath edge) |
| ``full_cloud`` | ingested | yes | clouds cover >= ``FULL_CLOUD_FRACTION`` of the valid pixels: processing records the day with no S2 flare |
| ``full_cloud`` | no_data | no | every granule over the site is cloudier than ``max_cloud`` (catalogue filter): nothing was downloaded |
| ``no_scene`` | no_data | no | no granule of the collection covers the site on that date |
| ``nodata`` | no_data | no | granules cover the site but every AOI pixel is nodata |

So ``status == "ingested"`` exactly when ``tile_geotiff`` is not None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np

from flarewatch.config import S2_DEFAULT_SPACECRAFT, S2_NODATA_DN, S2_REFLECTANCE_OFFSET, S2_REFLECTANCE_SCALE
from flarewatch.physics import solar_angles
from flarewatch.sites import Site

OUTCOMES = ("ok", "partial", "full_cloud", "no_scene", "nodata")

# Scene classification (L2A SCL) classes counted as cloud: 8 cloud medium probability,
# 9 cloud high probability, 10 thin cirrus (ESA Sentinel-2 L2A product definition). 0 is nodata;
# 1 (saturated or defective) is kept as data on purpose: a saturated pixel may be a flare.
SCL_CLOUD_CLASSES = (8, 9, 10)
SCL_NODATA = 0

# A tile whose valid pixels are at least this cloudy is 'full_cloud' (FlareWatch choice).
FULL_CLOUD_FRACTION = 0.99
# A tile with less valid AOI than this is 'partial' (FlareWatch choice: a few nodata pixels at an
# edge do not matter, a swath edge across the AOI does).
PARTIAL_VALID_FRACTION = 0.99

# Processing baseline 04.00 (25 Jan 2022) introduced the -0.1 radiometric offset (ESA
# "Sentinel-2 L1C/L2A products: processing baseline 04.00"). Used only when an asset lacks
# raster:bands scale/offset.
OFFSET_BASELINE = (4, 0)


@dataclass
class S2Result:
    """What a Sentinel-2 source returned for one site and acquisition date.

    ``tile_geotiff``: ``tiles.encode_tile`` of the site's tile (B8A, B11, B12 as uint16 DN with
    DN = (rho + 0.1) / 0.0001, 0 = nodata; cloud mask from SCL 8/9/10 or Sentinel Hub CLM) on
    ``site_window(site)``, or None. ``status``: 'ingested' | 'no_data' (ingested exactly when
    there is a tile). ``outcome``: one of ``OUTCOMES``. ``detail``: human-readable reason/summary.
    ``meta``: acquired_at (datetime, UTC), crs_epsg, width_px, height_px, cloud_fraction,
    valid_fraction, collection, item_ids, processing_baseline, sun_zenith_deg, source.
    ``raw_objects``: relative name -> (bytes as received, content type): catalogue/search pages,
    item JSON, band windows / Process API response; the source's ``from_raw`` rebuilds this
    result from them without any download.
    """

    tile_geotiff: bytes | None
    status: str
    outcome: str
    detail: str
    meta: dict = field(default_factory=dict)
    raw_objects: dict[str, tuple[bytes, str]] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------
# The site's grid
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SiteWindow:
    """The site's tile grid: ``width`` x ``height`` pixels of 20 m in ``crs_epsg`` from ``transform``."""

    site_id: str
    crs_epsg: int
    transform: object  # affine.Affine, upper-left corner
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the window's CRS (metres)."""
        t = self.transform
        left, top = t.c, t.f
        return left, top + t.e * self.height, left + t.a * self.width, top

    def lonlat_ring(self, densify: int = 8) -> list[tuple[float, float]]:
        """The window outline as a closed lon/lat ring (densified edges, counter-clockwise)."""
        from pyproj import Transformer

        left, bottom, right, top = self.bounds
        pts = []
        for (x0, y0), (x1, y1) in (((left, bottom), (right, bottom)), ((right, bottom), (right, top)),
                                   ((right, top), (left, top)), ((left, top), (left, bottom))):
            for k in range(densify):
                f = k / densify
                pts.append((x0 + f * (x1 - x0), y0 + f * (y1 - y0)))
        tr = Transformer.from_crs(self.crs_epsg, 4326, always_xy=True)
        ring = [tr.transform(x, y) for x, y in pts]
        ring.append(ring[0])
        return [(float(lon), float(lat)) for lon, lat in ring]

    def aoi_geojson(self) -> dict:
        """The window as a GeoJSON geometry in lon/lat (split in two at the antimeridian if it crosses it)."""
        ring = self.lonlat_ring()
        lons = [p[0] for p in ring]
        if max(lons) - min(lons) <= 180.0:
            return {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}
        from shapely.affinity import translate
        from shapely.geometry import Polygon, box, mapping

        shifted = Polygon([(lon + 360.0 if lon < 0 else lon, lat) for lon, lat in ring])
        east = shifted.intersection(box(0.0, -90.0, 180.0, 90.0))
        west = shifted.intersection(box(180.0, -90.0, 540.0, 90.0))
        parts = [mapping(east)["coordinates"], mapping(translate(west, xoff=-360.0))["coordinates"]]
        return {"type": "MultiPolygon", "coordinates": [[[list(p) for p in r] for r in part] for part in parts]}

    def lonlat_bbox(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the window in degrees (west > east across the antimeridian)."""
        ring = self.lonlat_ring()
        lons, lats = [p[0] for p in ring], [p[1] for p in ring]
        if max(lons) - min(lons) > 180.0:
            return min(x for x in lons if x > 0), min(lats), max(x for x in lons if x < 0), max(lats)
        return min(lons), min(lats), max(lons), max(lats)


def site_window(site: Site) -> SiteWindow:
    """The site's tile grid: ``tiles.site_grid(site)`` (UTM zone of the site, 20 m pixels)."""
    from flarewatch.tiles import default_size_px, site_grid

    n = default_size_px(site)
    return SiteWindow(site_id=site.site_id, crs_epsg=site.utm_epsg, transform=site_grid(site, n), width=n, height=n)


def geometry_in_window_crs(window: SiteWindow, geometry: dict):
    """A GeoJSON lon/lat (Multi)Polygon as a shapely geometry in the window's CRS.

    Each polygon part is projected on its own, so a footprint split at the antimeridian (as STAC
    items are) joins up again in the projected CRS.
    """
    from pyproj import Transformer
    from shapely.geometry import Polygon
    from shapely.ops import unary_union

    tr = Transformer.from_crs(4326, window.crs_epsg, always_xy=True)
    gtype = geometry.get("type")
    if gtype == "Polygon":
        polys = [geometry["coordinates"]]
    elif gtype == "MultiPolygon":
        polys = geometry["coordinates"]
    else:
        raise ValueError(f"expected a Polygon or MultiPolygon footprint, got {gtype!r}")
    parts = []
    for rings in polys:
        projected = []
        for ring in rings:
            xs, ys = tr.transform([float(p[0]) for p in ring], [float(p[1]) for p in ring])
            projected.append(list(zip(xs, ys)))
        parts.append(Polygon(projected[0], projected[1:]).buffer(0))
    return unary_union(parts)


def footprint_coverage(window: SiteWindow, geometry: dict | None) -> float:
    """Fraction (0-1) of the window's area inside a footprint (GeoJSON lon/lat). None: 1.0 (unknown)."""
    if not geometry:
        return 1.0
    from shapely.geometry import box

    win = box(*window.bounds)
    return float(geometry_in_window_crs(window, geometry).intersection(win).area / win.area)


def union_coverage(window: SiteWindow, geometries: list[dict | None]) -> float:
    from shapely.geometry import box
    from shapely.ops import unary_union

    if any(g is None for g in geometries):
        return 1.0
    win = box(*window.bounds)
    union = unary_union([geometry_in_window_crs(window, g) for g in geometries])
    return float(union.intersection(win).area / win.area)


# ------------------------------------------------------------------------------------------
# Catalogue features: metadata and the choice of one acquisition
# ------------------------------------------------------------------------------------------
_BASELINE_IN_NAME = re.compile(r"_N(\d{2})(\d{2})(?:_|$|\.)")
_ORBIT_IN_NAME = re.compile(r"_R(\d{3})_")


def feature_datetime(feature: dict) -> datetime:
    text = (feature.get("properties") or {}).get("datetime")
    if not text:
        raise ValueError(f"catalogue feature {feature.get('id')!r} has no properties.datetime")
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def cloud_cover(feature: dict) -> float | None:
    value = (feature.get("properties") or {}).get("eo:cloud_cover")
    return None if value is None else float(value)


def processing_baseline(feature: dict) -> str | None:
    """'05.11' from ``s2:processing_baseline``, else from the product name (``_N0511_``)."""
    props = feature.get("properties") or {}
    if props.get("s2:processing_baseline"):
        return str(props["s2:processing_baseline"])
    for name in (props.get("s2:product_uri"), feature.get("id")):
        m = _BASELINE_IN_NAME.search(str(name or ""))
        if m:
            return f"{m.group(1)}.{m.group(2)}"
    return None


def baseline_has_offset(baseline: str | None) -> bool:
    """True for processing baseline >= 04.00 (DN carry the -0.1 offset); True when unknown (recent data)."""
    if not baseline:
        return True
    try:
        major, minor = (int(x) for x in baseline.split(".")[:2])
    except ValueError:
        return True
    return (major, minor) >= OFFSET_BASELINE


def acquisition_key(feature: dict) -> str:
    """Granules of one pass share this: the datatake id, else platform + relative orbit + day."""
    props = feature.get("properties") or {}
    if props.get("s2:datatake_id"):
        return str(props["s2:datatake_id"])
    name = str(props.get("s2:product_uri") or feature.get("id") or "")
    m = _ORBIT_IN_NAME.search(name)
    dt = feature_datetime(feature)
    orbit = m.group(1) if m else dt.strftime("%H")
    return f"{props.get('platform', '?')}|R{orbit}|{dt.date().isoformat()}"


@dataclass
class Acquisition:
    """The granules chosen for a site-day (``features``, in mosaic order), or why there are none
    (``outcome`` 'no_scene' / 'full_cloud' with ``detail``)."""

    features: list[dict]
    outcome: str | None = None
    detail: str = ""
    coverage: float = 0.0


def select_acquisition(features: list[dict], window: SiteWindow, *, max_cloud: float, collection: str,
                       day: date, n_pages: int) -> Acquisition:
    """Choose the granules to read for the site-day.

    Features that do not intersect the AOI are dropped; then those cloudier than ``max_cloud``
    (percent, ``eo:cloud_cover`` of the granule) — the cloud filter runs here rather than in the
    query so that a day whose granules are all too cloudy is recorded as 'full_cloud', not
    'no_scene'. Of the remaining passes (grouped by ``acquisition_key``) the one covering most of
    the AOI wins (then the least cloudy, then the earliest); its granules are ordered for the
    mosaic: granules in the site's UTM zone first (no resampling), then by coverage.
    """
    seen, unique = set(), []
    for f in features:
        if f.get("id") not in seen:
            seen.add(f.get("id"))
            unique.append(f)
    where = f"{window.site_id} on {day.isoformat()}"
    searched = f"searched {n_pages} page{'s' if n_pages != 1 else ''}, {len(unique)} item{'s' if len(unique) != 1 else ''}"
    covering = [(f, footprint_coverage(window, f.get("geometry"))) for f in unique]
    covering = [(f, c) for f, c in covering if c > 0.0]
    if not covering:
        return Acquisition([], "no_scene", f"no {collection} item covers {where} ({searched})")
    eligible = [(f, c) for f, c in covering if (cloud_cover(f) if cloud_cover(f) is not None else 0.0) <= max_cloud]
    if not eligible:
        listed = ", ".join(f"{f.get('id')} {cloud_cover(f):.1f} %" for f, _ in covering)
        return Acquisition([], "full_cloud",
                           f"every {collection} item over {where} is cloudier than max_cloud {max_cloud:g} %: {listed}")
    groups: dict[str, list[tuple[dict, float]]] = {}
    for f, c in eligible:
        groups.setdefault(acquisition_key(f), []).append((f, c))

    def rank(members):
        cov = union_coverage(window, [f.get("geometry") for f, _ in members])
        clouds = [cloud_cover(f) or 0.0 for f, _ in members]
        return (-round(cov, 6), sum(clouds) / len(clouds), min(feature_datetime(f) for f, _ in members)), cov

    ranked = sorted((rank(m) + (m,) for m in groups.values()), key=lambda r: r[0])
    _, cov, members = ranked[0]

    def epsg(f):
        return (f.get("properties") or {}).get("proj:epsg")

    members = sorted(members, key=lambda fc: (epsg(fc[0]) != window.crs_epsg, -fc[1], str(fc[0].get("id"))))
    return Acquisition([f for f, _ in members], coverage=cov)


# ------------------------------------------------------------------------------------------
# Pixels
# ------------------------------------------------------------------------------------------
def reflectance_from_dn(dn: np.ndarray, scale: float, offset: float, nodata: float | None = 0) -> np.ndarray:
    """float32 reflectance DN * scale + offset, NaN where DN is ``nodata``."""
    rho = dn.astype(np.float32) * np.float32(scale) + np.float32(offset)
    if nodata is not None:
        rho[dn == nodata] = np.nan
    return rho


def pipeline_dn(rho: np.ndarray) -> np.ndarray:
    """uint16 DN in the pipeline's convention (``tiles``): rint((rho - offset) / scale) in [1, 65535], 0 where NaN."""
    with np.errstate(invalid="ignore"):
        dn = np.rint((rho.astype(np.float64) - S2_REFLECTANCE_OFFSET) / S2_REFLECTANCE_SCALE)
    dn = np.clip(np.nan_to_num(dn, nan=0.0), 1, 65535)
    dn[~np.isfinite(rho)] = S2_NODATA_DN
    return dn.astype(np.uint16)


def reproject_to_window(data: np.ndarray, src_transform, src_crs, window: SiteWindow, *,
                        src_nodata: float = 0) -> np.ndarray:
    """A band window (2-D, native dtype) resampled onto the site grid by nearest neighbour.

    Nearest keeps every value a real sample (a flare's hot pixel is not smeared; SCL classes stay
    classes). Where the source grid is the site grid (same zone, 20 m, snapped) this is an exact copy.
    Pixels outside the source are ``src_nodata``.
    """
    import rasterio
    from rasterio.warp import Resampling, reproject

    dst = np.full((window.height, window.width), src_nodata, dtype=data.dtype)
    reproject(source=data, destination=dst, src_transform=src_transform, src_crs=src_crs, src_nodata=src_nodata,
              dst_transform=window.transform, dst_crs=rasterio.crs.CRS.from_epsg(window.crs_epsg),
              dst_nodata=src_nodata, resampling=Resampling.nearest)
    return dst


def encode_band_window(data: np.ndarray, transform, crs, *, nodata: float | None, tags: dict | None = None) -> bytes:
    """A single-band GeoTIFF (deflate) of a window exactly as read: values, dtype and grid unchanged."""
    from rasterio.io import MemoryFile

    h, w = data.shape
    profile = {"driver": "GTiff", "height": h, "width": w, "count": 1, "dtype": str(data.dtype), "crs": crs,
               "transform": transform, "compress": "deflate"}
    if nodata is not None:
        profile["nodata"] = nodata
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(data, 1)
            if tags:
                dst.update_tags(**{k: str(v) for k, v in tags.items()})
        return mem.read()


def decode_band_window(data: bytes) -> tuple[np.ndarray, object, object, float | None, dict]:
    """(array, transform, crs, nodata, tags) of a GeoTIFF written by ``encode_band_window`` (or any 1-band GeoTIFF)."""
    from rasterio.io import MemoryFile

    with MemoryFile(data) as mem, mem.open() as src:
        return src.read(1), src.transform, src.crs, src.nodata, src.tags()


def sun_zenith_fallback(lat: float, lon: float, when: datetime) -> float:
    """Solar zenith (deg) from the site position and UTC time (simple formula, ~1 deg)."""

    utc = when.astimezone(UTC)
    hour = utc.hour + utc.minute / 60.0 + lon / 15.0
    doy = (utc + timedelta(hours=lon / 15.0)).timetuple().tm_yday
    return solar_angles(lat, doy, hour % 24.0)[0]


def classify(valid_fraction: float, cloud_fraction: float) -> tuple[str, str]:
    """(status, outcome) of a tile from its valid and cloud fractions (see the module table)."""
    if valid_fraction <= 0.0:
        return "no_data", "nodata"
    if cloud_fraction >= FULL_CLOUD_FRACTION:
        return "ingested", "full_cloud"
    if valid_fraction < PARTIAL_VALID_FRACTION:
        return "ingested", "partial"
    return "ingested", "ok"


def no_tile_result(outcome: str, detail: str, *, window: SiteWindow, collection: str, source: str,
                   raw_objects: dict, item_ids: list[str] | None = None, baseline: str | None = None,
                   acquired_at: datetime | None = None) -> S2Result:
    return S2Result(
        tile_geotiff=None, status="no_data", outcome=outcome, detail=detail,
        meta={"acquired_at": acquired_at, "crs_epsg": window.crs_epsg, "width_px": window.width,
              "height_px": window.height, "cloud_fraction": None, "valid_fraction": 0.0 if outcome == "nodata" else None,
              "collection": collection, "item_ids": list(item_ids or []), "processing_baseline": baseline,
              "source": source},
        raw_objects=raw_objects,
    )


def spacecraft_of(features: list[dict]) -> str | None:
    """The spacecraft of the first catalogue item: its STAC ``platform`` (``sentinel-2b``), else
    the ``S2A_`` / ``S2B_`` / ``S2C_`` prefix of its id; None when neither says."""
    for f in features[:1]:
        platform = (f.get("properties") or {}).get("platform")
        if platform:
            return str(platform)
        ident = str(f.get("id") or "")
        if len(ident) >= 4 and ident[:2].upper() == "S2" and ident[3] == "_":
            return ident[:3]
    return None


def finish_tile(rho: np.ndarray, cloud: np.ndarray | None, window: SiteWindow, *, site: Site, day: date,
                acquired_at: datetime, sun_zenith_deg: float, collection: str, source: str, item_ids: list[str],
                baseline: str | None, raw_objects: dict, notes: list[str] | None = None,
                spacecraft: str | None = None) -> S2Result:
    """The ``S2Result`` of a reflectance stack on the site grid.

    ``rho``: float (3, H, W) reflectance in ``S2_BANDS`` order, NaN = nodata; ``cloud``: bool
    (H, W) or None (no cloud information). A pixel is valid when all three bands are finite.
    ``spacecraft``: the scene's (``spacecraft_of``); its band constants convert reflectance to
    radiance downstream. Unknown: Sentinel-2A's constants, said in the scene's detail. A
    spacecraft without built-in constants (Sentinel-2C) is a ValueError: the pipeline does not
    assume another spacecraft's constants for it.
    """
    from flarewatch.tiles import Tile, encode_tile

    valid = np.all(np.isfinite(rho), axis=0)
    rho = np.where(valid[None], rho, np.nan)
    dn = pipeline_dn(rho)
    cloud_mask = None if cloud is None else (cloud & valid)
    valid_fraction = float(valid.mean())
    cloud_fraction = float(cloud_mask[valid].mean()) if (cloud_mask is not None and valid.any()) else 0.0
    status, outcome = classify(valid_fraction, cloud_fraction)
    label = f"{collection} {' + '.join(item_ids)} over {site.site_id} on {day.isoformat()}"
    summary = f"valid {valid_fraction:.1%} of the AOI, cloud {cloud_fraction:.1%} of valid pixels"
    detail = {
        "ok": f"{label}: {summary}",
        "partial": f"{label}: partial coverage, {summary}",
        "full_cloud": f"{label}: fully clouded, {summary}",
        "nodata": f"{label}: every AOI pixel is nodata",
    }[outcome]
    if cloud is None:
        detail += "; no cloud mask (no SCL/CLM)"
    if spacecraft is None:
        detail += "; spacecraft unknown: Sentinel-2A band constants assumed"
    if notes:
        detail += "; " + "; ".join(notes)
    meta = {
        "acquired_at": acquired_at, "crs_epsg": window.crs_epsg, "width_px": window.width, "height_px": window.height,
        "cloud_fraction": round(cloud_fraction, 4), "valid_fraction": round(valid_fraction, 4),
        "collection": collection, "item_ids": list(item_ids), "processing_baseline": baseline,
        "sun_zenith_deg": round(float(sun_zenith_deg), 4), "source": source,
    }
    tile_bytes = None
    if status == "ingested":
        tile = Tile(dn=dn, transform=window.transform, crs_epsg=window.crs_epsg, acquired_at=acquired_at,
                    sun_zenith_deg=round(float(sun_zenith_deg), 4), cloud_mask=cloud_mask,
                    spacecraft=spacecraft or S2_DEFAULT_SPACECRAFT,
                    tags={"SOURCE": source, "COLLECTION": collection, "ITEM_IDS": ",".join(item_ids),
                          "PROCESSING_BASELINE": baseline or "", "SITE_ID": site.site_id})
        tile_bytes = encode_tile(tile)
    return S2Result(tile_geotiff=tile_bytes, status=status, outcome=outcome, detail=detail, meta=meta,
                    raw_objects=raw_objects)


def day_bounds(day: date | datetime) -> tuple[date, datetime, datetime]:
    """(date, start, end) of a UTC acquisition day: [00:00:00, 23:59:59.999]."""
    if isinstance(day, datetime):
        day = day.date()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return day, start, start + timedelta(days=1) - timedelta(milliseconds=1)


__all__ = [
    "S2Result", "SiteWindow", "site_window", "select_acquisition", "Acquisition", "finish_tile", "no_tile_result",
    "reproject_to_window", "reflectance_from_dn", "pipeline_dn", "classify", "footprint_coverage",
    "processing_baseline", "baseline_has_offset", "SCL_CLOUD_CLASSES", "OUTCOMES",
]
