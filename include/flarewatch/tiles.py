"""Sentinel-2 SWIR tiles: the in-memory ``Tile`` and its GeoTIFF encoding in the ``rawdata`` bucket.

A tile is the site's AOI window at 20 m in the site's UTM zone with three bands, in this order:
B8A, B11, B12, stored as uint16 digital numbers (DN). Reflectance = DN * scale + offset with the
scale/offset written in the GeoTIFF tags (``SCALE``/``OFFSET`` per band), the same convention as
Sentinel-2 L1C/L2A since processing baseline 04.00 (0.0001, -0.1). DN 0 is nodata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import numpy as np
from affine import Affine

from flarewatch.config import (
    S2_BANDS,
    S2_NODATA_DN,
    S2_PIXEL_M,
    S2_REFLECTANCE_OFFSET,
    S2_REFLECTANCE_SCALE,
)
from flarewatch.sites import Site


@lru_cache(maxsize=64)
def crs_transformer(src_epsg: int, dst_epsg: int):
    """A cached pyproj Transformer (building one costs ~1 ms; pyproj >= 3.1 Transformers are thread-safe)."""
    from pyproj import Transformer

    return Transformer.from_crs(src_epsg, dst_epsg, always_xy=True)


@dataclass
class Tile:
    """One Sentinel-2 SWIR acquisition over a site.

    ``dn``: uint16 array (3, H, W) in band order ``S2_BANDS``; ``transform``: affine.Affine of the
    upper-left pixel corner; ``crs_epsg``: UTM EPSG code; ``sun_zenith_deg``: solar zenith angle;
    ``cloud_mask``: optional bool (H, W) (True = cloud), as an L2A SCL or a cloud product gives.
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

    def __post_init__(self) -> None:
        if self.dn.ndim != 3 or self.dn.shape[0] != len(S2_BANDS):
            raise ValueError(f"tile dn must have shape (3, H, W) for {S2_BANDS}, got {self.dn.shape}")
        if self.dn.dtype != np.uint16:
            raise ValueError(f"tile dn must be uint16, got {self.dn.dtype}")

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
    """Encode a tile as a tiled, deflate-compressed GeoTIFF (bytes)."""
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
                dst.update_tags(i, BAND=band, SCALE=str(tile.scale), OFFSET=str(tile.offset))
            dst.scales = [tile.scale] * len(S2_BANDS)
            dst.offsets = [tile.offset] * len(S2_BANDS)
            dst.update_tags(
                ACQUIRED_AT=tile.acquired_at.isoformat(),
                SUN_ZENITH_DEG=f"{tile.sun_zenith_deg:.4f}",
                **{k: str(v) for k, v in tile.tags.items()},
            )
            if tile.cloud_mask is not None:
                dst.write_mask(np.where(tile.cloud_mask, 0, 255).astype("uint8"))
        return mem.read()


def decode_tile(data: bytes) -> Tile:
    """Decode a GeoTIFF written by ``encode_tile`` (or any 3-band B8A/B11/B12 uint16 GeoTIFF)."""
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
            dn = src.read()
            tags = src.tags()
            scale = float(src.tags(1).get("SCALE", src.scales[0] or S2_REFLECTANCE_SCALE))
            offset = float(src.tags(1).get("OFFSET", src.offsets[0]))
            cloud_mask = None
            flags = src.mask_flag_enums[0]
            if any(f.name == "per_dataset" for f in flags):
                cloud_mask = src.dataset_mask() == 0
            acquired = tags.pop("ACQUIRED_AT", None)
            sun_zenith = float(tags.pop("SUN_ZENITH_DEG", "30"))
            return Tile(
                dn=dn,
                transform=src.transform,
                crs_epsg=int(src.crs.to_epsg()),
                acquired_at=datetime.fromisoformat(acquired) if acquired else datetime(1970, 1, 1),
                sun_zenith_deg=sun_zenith,
                scale=scale,
                offset=offset,
                cloud_mask=cloud_mask,
                tags={k: v for k, v in tags.items() if k != "AREA_OR_POINT"},
            )
    except rasterio.errors.RasterioIOError as exc:
        raise ValueError(f"not a readable GeoTIFF: {exc}") from exc


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
