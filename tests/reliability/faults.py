"""Bad raw objects for the fault-injection suite, made from a real ingested tile or CSV."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


def _read(tile: bytes):
    from rasterio.io import MemoryFile

    with MemoryFile(tile) as mem, mem.open() as src:
        return (src.read(), src.profile.copy(), src.tags(), [src.tags(i) for i in range(1, src.count + 1)],
                src.bounds)


def _write(data: np.ndarray, profile: dict, tags: dict, band_tags: list[dict]) -> bytes:
    from rasterio.io import MemoryFile

    profile = {**profile, "count": data.shape[0], "dtype": str(data.dtype)}
    with MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(data)
            dst.update_tags(**tags)
            for i in range(1, data.shape[0] + 1):
                dst.update_tags(i, **band_tags[min(i, len(band_tags)) - 1])
        return mem.read()


def truncated(tile: bytes) -> bytes:
    """The first half of the file (a cut-off upload)."""
    return tile[: len(tile) // 2]


def not_a_tiff(_: bytes) -> bytes:
    """An HTML error page where the tile should be."""
    return b"<html><body><h1>503 Service Unavailable</h1></body></html>\n" * 20


def wrong_band_count(tile: bytes) -> bytes:
    """Four bands instead of B8A, B11, B12."""
    dn, profile, tags, band_tags = _read(tile)[:4]
    return _write(np.concatenate([dn, dn[:1]]), profile, tags, band_tags)


def float_with_nans(tile: bytes) -> bytes:
    """Reflectances as float32, with a NaN strip, instead of uint16 DNs."""
    dn, profile, tags, band_tags = _read(tile)[:4]
    refl = dn.astype("float32") * 1e-4
    refl[:, :, :20] = np.nan
    return _write(refl, {**profile, "nodata": float("nan")}, tags, band_tags)


def all_nodata(tile: bytes) -> bytes:
    """A well-formed tile whose every pixel is nodata (DN 0)."""
    dn, profile, tags, band_tags = _read(tile)[:4]
    return _write(np.zeros_like(dn), profile, tags, band_tags)


def wrong_crs(tile: bytes) -> bytes:
    """The same pixels georeferenced in EPSG:4326 (degrees) instead of the site's UTM zone."""
    from rasterio.crs import CRS
    from rasterio.transform import from_bounds
    from rasterio.warp import transform_bounds

    dn, profile, tags, band_tags, bounds = _read(tile)
    west, south, east, north = transform_bounds(profile["crs"], "EPSG:4326", *bounds)
    return _write(dn, {**profile, "crs": CRS.from_epsg(4326),
                       "transform": from_bounds(west, south, east, north, dn.shape[2], dn.shape[1])}, tags, band_tags)


def maskless_nodata_strip(tile: bytes) -> bytes:
    """No nodata value and no mask, with a strip of zero pixels: nodata cannot be told from dark pixels."""
    dn, profile, tags, band_tags = _read(tile)[:4]
    dn = dn.copy()
    dn[:, :, : dn.shape[2] // 5] = 0
    return _write(dn, {**profile, "nodata": None}, tags, band_tags)


def size_bomb(tile: bytes, side: int = 20000) -> bytes:
    """A sparse ``side`` x ``side`` x 3 uint16 GeoTIFF (2.4 GB decoded) of a few KB: no block is written."""
    import rasterio

    _, profile, tags, band_tags = _read(tile)[:4]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bomb.tif"
        with rasterio.open(path, "w", driver="GTiff", width=side, height=side, count=3, dtype="uint16",
                           crs=profile["crs"], transform=profile["transform"], nodata=0, tiled=True,
                           blockxsize=512, blockysize=512, compress="deflate", sparse_ok=True) as dst:
            dst.update_tags(**tags)
            for i in range(1, 4):
                dst.update_tags(i, **band_tags[i - 1])
        return path.read_bytes()


def viirs_bad_header(csv: bytes) -> bytes:
    """The VNF CSV with its header replaced by columns of another product."""
    rows = csv.decode().splitlines()
    return "\n".join(["latitude,longitude,brightness,scan,track,acq_date", *rows[1:]]).encode() + b"\n"


def viirs_not_utf8(csv: bytes) -> bytes:
    """The VNF CSV re-encoded as UTF-16 (not UTF-8: a byte order mark and NUL bytes)."""
    return csv.decode().encode("utf-16")
