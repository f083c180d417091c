"""Sentinel-2 SWIR tiles: the in-memory ``Tile`` and its GeoTIFF encoding in the ``rawdata`` bucket.

A tile is the site's AOI window at 20 m in the site's UTM zone with three bands, in this order:
B8A, B11, B12, stored as uint16 digital numbers (DN). Reflectance = DN * scale + offset with the
scale/offset written in the GeoTIFF tags (``SCALE``/``OFFSET`` per band), the same convention as
Sentinel-2 L1C/L2A since processing baseline 04.00 (0.0001, -0.1). DN 0 is nodata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import numpy as np
from affine import Affine

from flarewatch.config import (
    S2_BANDS,
    S2_DEFAULT_SPACECRAFT,
    S2_NODATA_DN,
    S2_PIXEL_M,
    S2_REFLECTANCE_OFFSET,
    S2_REFLECTANCE_SCALE,
    S2_SPACECRAFT_CONSTANTS,
)
from flarewatch.sites import Site


@lru_cache(maxsize=64)
def crs_transformer(src_epsg: int, dst_epsg: int):
    """A cached pyproj Transformer (building one costs ~1 ms; pyproj >= 3.1 Transformers are thread-safe)."""
    from pyproj import Transformer

    return Transformer.from_crs(src_epsg, dst_epsg, always_xy=True)


_SPACECRAFT_RE = re.compile(r"^(?:sentinel[-_ ]?2|s2)[-_ ]?([a-z])$")


def spacecraft_name(value: str) -> str:
    """"Sentinel-2B" for "Sentinel-2B", "sentinel-2b", "S2B", "s2-b", "SENTINEL2B"; other names unchanged."""
    text = str(value).strip()
    m = _SPACECRAFT_RE.match(text.lower())
    return f"Sentinel-2{m.group(1).upper()}" if m else text


def band_constants(spacecraft: str, wavelength_um: dict | None = None,
                   solar_irradiance: dict | None = None) -> tuple[dict, dict]:
    """(band centres um, E_sun W m-2 um-1) per band of ``S2_BANDS`` for a tile of ``spacecraft``.

    The built-in constants of Sentinel-2A/2B (``config.S2_SPACECRAFT_CONSTANTS``), overridden band
    by band by ``wavelength_um`` / ``solar_irradiance`` (the product's metadata). Any other
    spacecraft (Sentinel-2C: domain.md says read its metadata, never assume 2A's) needs both for
    every band; ValueError naming the missing ones otherwise.
    """
    known = S2_SPACECRAFT_CONSTANTS.get(spacecraft, {})
    lam = dict(known.get("wavelength_um", {})) | {b: float(v) for b, v in (wavelength_um or {}).items()}
    esun = dict(known.get("solar_irradiance", {})) | {b: float(v) for b, v in (solar_irradiance or {}).items()}
    missing = [f"{name} of {', '.join(b for b in S2_BANDS if b not in got)}"
               for name, got in (("central_wavelength_um", lam), ("solar_irradiance", esun))
               if any(b not in got for b in S2_BANDS)]
    if missing:
        raise ValueError(
            f"no band constants for spacecraft {spacecraft!r}: built in only for {', '.join(S2_SPACECRAFT_CONSTANTS)} "
            f"(for Sentinel-2C and others read them from the product metadata, never assume Sentinel-2A's); missing "
            f"per-band tags {'; '.join(missing)} (GeoTIFF band tags, e.g. from MTD_MSIL1C.xml Solar_Irradiance_List "
            f"and the spectral response's central wavelengths)")
    for name, values in (("central_wavelength_um", lam), ("solar_irradiance", esun)):
        bad = [b for b in S2_BANDS if not (np.isfinite(values[b]) and values[b] > 0)]
        if bad:
            raise ValueError(f"{name} of {', '.join(bad)} must be a positive number, got "
                             f"{', '.join(str(values[b]) for b in bad)}")
    return {b: lam[b] for b in S2_BANDS}, {b: esun[b] for b in S2_BANDS}


@dataclass
class Tile:
    """One Sentinel-2 SWIR acquisition over a site.

    ``dn``: uint16 array (3, H, W) in band order ``S2_BANDS``; ``transform``: affine.Affine of the
    upper-left pixel corner; ``crs_epsg``: UTM EPSG code; ``sun_zenith_deg``: solar zenith angle;
    ``cloud_mask``: optional bool (H, W) (True = cloud), as an L2A SCL or a cloud product gives.
    ``spacecraft``: "Sentinel-2A", "Sentinel-2B", ... (``spacecraft_name`` normalises "S2B" etc.);
    its band centres and solar irradiance (``wavelength_um``, ``solar_irradiance``) are
    ``config.S2_SPACECRAFT_CONSTANTS``, overridden band by band by ``band_wavelength_um`` /
    ``band_solar_irradiance`` (the product's own metadata). A spacecraft without built-in constants
    (Sentinel-2C) needs both for every band: ValueError otherwise, naming what is missing.
    """

    dn: np.ndarray
    transform: object
    crs_epsg: int
    acquired_at: datetime
    sun_zenith_deg: float
    scale: float = S2_REFLECTANCE_SCALE
    offset: float = S2_REFLECTANCE_OFFSET
    cloud_mask: np.ndarray | None = None
    tags: dict = field(default_factory=dict)
    spacecraft: str = S2_DEFAULT_SPACECRAFT
    band_wavelength_um: dict | None = None
    band_solar_irradiance: dict | None = None

    def __post_init__(self) -> None:
        if self.dn.ndim != 3 or self.dn.shape[0] != len(S2_BANDS):
            raise ValueError(f"tile dn must have shape (3, H, W) for {S2_BANDS}, got {self.dn.shape}")
        if self.dn.dtype != np.uint16:
            raise ValueError(f"tile dn must be uint16, got {self.dn.dtype}")
        self.spacecraft = spacecraft_name(self.spacecraft)
        band_constants(self.spacecraft, self.band_wavelength_um, self.band_solar_irradiance)  # fail early

    @property
    def wavelength_um(self) -> dict:
        """Band centres (um) per band of this tile's spacecraft (``band_constants``)."""
        return band_constants(self.spacecraft, self.band_wavelength_um, self.band_solar_irradiance)[0]

    @property
    def solar_irradiance(self) -> dict:
        """Solar irradiance E_sun (W m-2 um-1) per band of this tile's spacecraft (``band_constants``)."""
        return band_constants(self.spacecraft, self.band_wavelength_um, self.band_solar_irradiance)[1]

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.dn.shape[1]), int(self.dn.shape[2])

    @property
    def valid(self) -> np.ndarray:
        """Pixels with data in every band."""
        return np.all(self.dn != S2_NODATA_DN, axis=0)

    def reflectance(self, band: str) -> np.ndarray:
        """Top-of-atmosphere (or BOA) reflectance of ``band`` as float32, NaN where nodata."""
        i = S2_BANDS.index(band)
        rho = self.dn[i].astype(np.float32) * np.float32(self.scale) + np.float32(self.offset)
        rho[self.dn[i] == S2_NODATA_DN] = np.nan
        return rho

    def pixel_to_xy(self, row: float, col: float) -> tuple[float, float]:
        """Map coordinates (UTM metres) of a pixel position; (row, col) + 0.5 is a pixel centre."""
        x, y = self.transform @ (col, row)
        return float(x), float(y)

    def pixel_to_lonlat(self, row: float, col: float) -> tuple[float, float]:
        x, y = self.pixel_to_xy(row, col)
        tr = crs_transformer(self.crs_epsg, 4326)
        lon, lat = tr.transform(x, y)
        return float(lon), float(lat)

    def lonlat_to_pixel(self, lon: float, lat: float) -> tuple[float, float]:
        """Fractional (row, col) of a lon/lat in this tile's grid."""
        x, y = crs_transformer(4326, self.crs_epsg).transform(lon, lat)
        col, row = ~self.transform @ (x, y)
        return float(row), float(col)


def encode_tile(tile: Tile) -> bytes:
    """Encode a tile as a tiled, deflate-compressed GeoTIFF (bytes).

    Dataset tags: ``ACQUIRED_AT`` (ISO 8601), ``SUN_ZENITH_DEG``, ``SPACECRAFT`` and ``tile.tags``;
    band tags ``BAND``, ``SCALE``, ``OFFSET`` and, where the tile has its own (metadata) constants,
    ``central_wavelength_um`` / ``solar_irradiance``.
    """
    import rasterio
    from rasterio.io import MemoryFile

    h, w = tile.shape
    profile = {
        "driver": "GTiff",
        "height": h,
        "width": w,
        "count": len(S2_BANDS),
        "dtype": "uint16",
        "crs": rasterio.crs.CRS.from_epsg(tile.crs_epsg),
        "transform": tile.transform,
        "nodata": S2_NODATA_DN,
        "compress": "deflate",
        "tiled": True,
        "blockxsize": 256 if w >= 256 else 16 * max(1, w // 16),
        "blockysize": 256 if h >= 256 else 16 * max(1, h // 16),
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(tile.dn)
            for i, band in enumerate(S2_BANDS, start=1):
                dst.set_band_description(i, band)
                own = {}
                if band in (tile.band_wavelength_um or {}):
                    own["central_wavelength_um"] = str(tile.band_wavelength_um[band])
                if band in (tile.band_solar_irradiance or {}):
                    own["solar_irradiance"] = str(tile.band_solar_irradiance[band])
                dst.update_tags(i, BAND=band, SCALE=str(tile.scale), OFFSET=str(tile.offset), **own)
            dst.scales = [tile.scale] * len(S2_BANDS)
            dst.offsets = [tile.offset] * len(S2_BANDS)
            dst.update_tags(
                **{k: str(v) for k, v in tile.tags.items()},
                ACQUIRED_AT=tile.acquired_at.isoformat(),
                SUN_ZENITH_DEG=f"{tile.sun_zenith_deg:.4f}",
                SPACECRAFT=tile.spacecraft,
            )
            if tile.cloud_mask is not None:
                dst.write_mask(np.where(tile.cloud_mask, 0, 255).astype("uint8"))
        return mem.read()


# Dataset tags decode_tile reads (case-insensitive, first found wins): our own names first.
ACQUIRED_TAGS = ("ACQUIRED_AT", "acquisition_datetime", "datetime")
SUN_ZENITH_TAGS = ("SUN_ZENITH_DEG", "sun_zenith", "sun_zenith_angle")
SUN_ELEVATION_TAGS = ("sun_elevation", "sun_elevation_angle")  # zenith = 90 - elevation
SPACECRAFT_TAGS = ("SPACECRAFT", "platform", "SPACECRAFT_NAME")
# Band tags: our reflectance scale/offset (else GDAL's scale/offset) and the product's constants.
WAVELENGTH_TAG, SOLAR_IRRADIANCE_TAG = "central_wavelength_um", "solar_irradiance"


def _pop_tag(tags: dict, names: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(name, value) of the first of ``names`` in ``tags`` (case-insensitive); every one of
    ``names`` is removed from ``tags``. (None, None) when none is there or all are empty."""
    found = (None, None)
    for want in names:
        for key in [k for k in tags if k.lower() == want.lower()]:
            value = str(tags.pop(key)).strip()
            if found[0] is None and value:
                found = (key, value)
    return found


def _acquired(value, source: str) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"acquisition time {value!r} ({source}) is not ISO 8601 (e.g. 2025-06-01T07:30:00Z)") from None


def _number(value, source: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{source} must be a number of degrees, got {value!r}") from None
    if not np.isfinite(x):
        raise ValueError(f"{source} must be a finite number of degrees, got {value!r}")
    return x


def _scene_metadata(tags: dict, acquired, sun_zenith, spacecraft, own_file: bool) -> tuple[datetime, float, str]:
    """Acquisition time, sun zenith (deg) and spacecraft from the arguments, else the dataset tags
    (removed from ``tags``). ``own_file``: written by ``encode_tile`` (our tag and band-tag names);
    such a file without a SPACECRAFT tag predates that tag and is Sentinel-2A (the simulator)."""
    tag, value = _pop_tag(tags, ACQUIRED_TAGS)
    if acquired is None and value is None:
        raise ValueError(f"no acquisition time: the GeoTIFF has none of the tags {', '.join(ACQUIRED_TAGS)} "
                         "(ISO 8601, Z allowed); pass acquired= (flarewatch detect --acquired ISO)")
    acquired_at = _acquired(acquired, "acquired=") if acquired is not None else _acquired(value, f"tag {tag}")

    tag, value = _pop_tag(tags, SUN_ZENITH_TAGS)
    etag, elevation = _pop_tag(tags, SUN_ELEVATION_TAGS)
    if sun_zenith is not None:
        zenith = _number(sun_zenith, "sun_zenith=")
    elif value is not None:
        zenith = _number(value, f"tag {tag}")
    elif elevation is not None:
        zenith = 90.0 - _number(elevation, f"tag {etag}")
    else:
        raise ValueError(f"no sun zenith angle: the GeoTIFF has none of the tags {', '.join(SUN_ZENITH_TAGS)} "
                         f"(degrees) or {', '.join(SUN_ELEVATION_TAGS)} (zenith = 90 - elevation); pass "
                         "sun_zenith= (flarewatch detect --sun-zenith DEG)")
    if not 0.0 <= zenith < 90.0:
        raise ValueError(f"sun zenith {zenith:g} deg is outside [0, 90): not a daylight Sentinel-2 scene")

    _, value = _pop_tag(tags, SPACECRAFT_TAGS)
    name = spacecraft if spacecraft is not None else value
    if name is None or not str(name).strip():
        if not own_file:
            raise ValueError(f"no spacecraft: the GeoTIFF has none of the tags {', '.join(SPACECRAFT_TAGS)} "
                             "(e.g. Sentinel-2B, sentinel-2b, S2B); pass spacecraft= (flarewatch detect --spacecraft "
                             "NAME): band constants differ between Sentinel-2A, 2B and 2C")
        name = S2_DEFAULT_SPACECRAFT
    return acquired_at, zenith, spacecraft_name(name)


def _band_tag(src, band: int, name: str) -> str | None:
    return next((str(v).strip() for k, v in src.tags(band).items() if k.lower() == name.lower() and str(v).strip()),
                None)


def _reflectance_encoding(src) -> tuple[float, float]:
    """(scale, offset) shared by the three bands: our SCALE/OFFSET band tags, else GDAL's scale/offset."""
    pairs = set()
    for i in range(1, src.count + 1):
        scale, offset = _band_tag(src, i, "SCALE"), _band_tag(src, i, "OFFSET")
        if scale is None:
            scale, offset = src.scales[i - 1], src.offsets[i - 1]
            if scale in (None, 1.0) and offset in (None, 0.0):
                raise ValueError(
                    f"band {i} has no reflectance scale/offset (reflectance = DN * scale + offset): set GDAL scale/offset "
                    "(gdal_edit.py -scale 0.0001 -offset -0.1 for L1C/L2A since processing baseline 04.00) or band tags "
                    "SCALE/OFFSET")
        pairs.add((float(scale), float(offset or 0.0)))
    if len(pairs) != 1:
        raise ValueError(f"the bands have different reflectance scale/offset {sorted(pairs)}; expected one for all three")
    return pairs.pop()


def _band_order(src) -> list[int]:
    """1-based band indexes in ``S2_BANDS`` order: by BAND tag or description when every band names one
    of B8A/B11/B12, else the file's order."""
    names = [(_band_tag(src, i, "BAND") or src.descriptions[i - 1] or "").strip().upper() for i in range(1, src.count + 1)]
    if sorted(names) == sorted(S2_BANDS):
        return [names.index(b) + 1 for b in S2_BANDS]
    if any(names) and any(n in S2_BANDS for n in names):
        raise ValueError(f"band names {names} are not {', '.join(S2_BANDS)}")
    return list(range(1, src.count + 1))


def decode_tile(data: bytes, *, acquired: datetime | str | None = None, sun_zenith: float | None = None,
                spacecraft: str | None = None) -> Tile:
    """Decode a GeoTIFF written by ``encode_tile``, or any 3-band B8A/B11/B12 uint16 GeoTIFF.

    Acquisition time, sun zenith and spacecraft: the keyword arguments, else the dataset tags
    (case-insensitive, first found): ``ACQUIRED_TAGS`` (ISO 8601), ``SUN_ZENITH_TAGS`` (degrees) or
    ``SUN_ELEVATION_TAGS`` (zenith = 90 - elevation), ``SPACECRAFT_TAGS`` ("Sentinel-2B", "S2B", ...).
    A missing acquisition time or sun zenith is a ValueError naming the tags and argument that would
    supply it (never a made-up default). A missing spacecraft is an error too, except in a file
    written by ``encode_tile`` before it wrote SPACECRAFT (Sentinel-2A, as the simulator).
    Reflectance scale/offset: band tags SCALE/OFFSET, else GDAL's scale/offset (an L1C/L2A-like
    product); the bands are reordered by their BAND tag or description when those name them.
    Per-band ``central_wavelength_um`` / ``solar_irradiance`` tags override the spacecraft's
    built-in constants (and are required for a spacecraft without them, such as Sentinel-2C).
    """
    import rasterio
    from rasterio.io import MemoryFile

    try:
        with MemoryFile(data) as mem, mem.open() as src:
            if src.count != len(S2_BANDS) or src.dtypes[0] != "uint16":
                raise ValueError(
                    f"expected a {len(S2_BANDS)}-band uint16 GeoTIFF ({', '.join(S2_BANDS)}), "
                    f"got {src.count} band(s) of {src.dtypes[0]}"
                )
            if src.crs is None or src.crs.to_epsg() is None:
                raise ValueError("tile GeoTIFF has no EPSG CRS")
            order = _band_order(src)
            tags = src.tags()
            own_file = "ACQUIRED_AT" in tags and "SUN_ZENITH_DEG" in tags and "SCALE" in src.tags(1)
            acquired_at, zenith, craft = _scene_metadata(tags, acquired, sun_zenith, spacecraft, own_file)
            scale, offset = _reflectance_encoding(src)
            per_band = {}
            for name in (WAVELENGTH_TAG, SOLAR_IRRADIANCE_TAG):
                values = {b: _band_tag(src, i, name) for b, i in zip(S2_BANDS, order)}
                try:
                    per_band[name] = {b: float(v) for b, v in values.items() if v is not None} or None
                except ValueError:
                    raise ValueError(f"band tag {name} must be a number, got {values}") from None
            dn = src.read(order)
            cloud_mask = None
            flags = src.mask_flag_enums[0]
            if any(f.name == "per_dataset" for f in flags):
                cloud_mask = src.dataset_mask() == 0
            return Tile(
                dn=dn,
                transform=src.transform,
                crs_epsg=int(src.crs.to_epsg()),
                acquired_at=acquired_at,
                sun_zenith_deg=zenith,
                scale=scale,
                offset=offset,
                cloud_mask=cloud_mask,
                tags={k: v for k, v in tags.items() if k != "AREA_OR_POINT"},
                spacecraft=craft,
                band_wavelength_um=per_band[WAVELENGTH_TAG],
                band_solar_irradiance=per_band[SOLAR_IRRADIANCE_TAG],
            )
    except rasterio.errors.RasterioIOError as exc:
        raise ValueError(f"not a readable GeoTIFF: {gdal_message(exc)}") from exc


def gdal_message(exc: BaseException) -> str:
    """A GDAL / rasterio error about in-memory bytes, without rasterio's in-memory file names
    (``/vsimem/...`` paths and ``<uuid>.tif:`` prefixes) that mean nothing to the reader."""
    text = re.sub(r"'?/vsimem/\S*?'?(?=\s|$)", "the data", str(exc))
    return re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}\.tif:\s*", "", text)[:500]


# --------------------------------------------------------------------------------------------
# Site-level (static) content
# --------------------------------------------------------------------------------------------
def default_size_px(site: Site) -> int:
    """Tile side in 20 m pixels covering the site's AOI (250 for a 5 km AOI)."""
    return int(round(site.aoi_km * 1000.0 / S2_PIXEL_M))


def site_centre_xy(site: Site) -> tuple[float, float]:
    x, y = crs_transformer(4326, site.utm_epsg).transform(site.lon, site.lat)
    return float(x), float(y)


def site_grid(site: Site, size_px: int | None = None) -> Affine:
    """Affine transform of the site's tile: 20 m UTM pixels, origin snapped to the 20 m grid."""
    n = default_size_px(site) if size_px is None else int(size_px)
    xc, yc = site_centre_xy(site)
    half = n * S2_PIXEL_M / 2.0
    x0 = round((xc - half) / S2_PIXEL_M) * S2_PIXEL_M
    y0 = round((yc + half) / S2_PIXEL_M) * S2_PIXEL_M
    return Affine(S2_PIXEL_M, 0.0, float(x0), 0.0, -S2_PIXEL_M, float(y0))
