"""validate.tile: every kind of bad tile is rejected with its reason before processing uses it."""

from __future__ import annotations

import dataclasses
import resource
from datetime import date

import numpy as np
import pytest
from affine import Affine
from rasterio.io import MemoryFile

from flarewatch.config import Settings, TileLimits
from flarewatch.estimate.site_day import unique_keys
from flarewatch.ingest.sources import get_source
from flarewatch.sites import load_sites
from flarewatch.tiles import decode_tile, encode_tile
from flarewatch.validate.tile import TileRejected, validate_tile


@pytest.fixture(scope="module")
def site():
    return next(s for s in load_sites() if s.site_id == "rumaila-n")


@pytest.fixture(scope="module")
def good(site) -> bytes:
    return get_source("demo").fetch(site, date(2025, 7, 2)).tile_geotiff


def _rewrite(data: bytes, *, arr=None, **profile) -> bytes:
    """The tile re-encoded with other profile settings / pixels (tags kept)."""
    with MemoryFile(data) as mem, mem.open() as src:
        prof, pixels, tags = src.profile, src.read(), src.tags()
        band_tags = [src.tags(i) for i in range(1, src.count + 1)]
    prof.update(profile)
    pixels = pixels if arr is None else arr
    with MemoryFile() as out:
        with out.open(**prof) as dst:
            dst.write(pixels)
            dst.update_tags(**tags)
            for i in range(1, prof["count"] + 1):
                dst.update_tags(i, **band_tags[i - 1])
        return out.read()


def _reason(data: bytes, site, limits=None) -> tuple[str, bool]:
    with pytest.raises(TileRejected) as info:
        validate_tile(data, site, limits)
    return info.value.reason, info.value.quarantine


def test_a_good_tile_passes(good, site):
    check = validate_tile(good, site)
    assert check.valid_fraction == 1.0
    assert check.tile.shape == (250, 250)


@pytest.mark.parametrize("cut", [0, 0.5, 0.9])
def test_truncated_or_empty_bytes_are_unreadable(good, site, cut):
    assert _reason(good[:int(len(good) * cut)], site) == ("unreadable", True)


def test_non_tiff_bytes_are_unreadable(site):
    assert _reason(b"<html>503 Service Unavailable</html>", site) == ("unreadable", True)


def test_wrong_band_count_and_dtype(good, site):
    tile = decode_tile(good)
    assert _reason(_rewrite(good, arr=tile.dn[:2], count=2), site) == ("wrong_bands", True)
    floats = np.where(tile.dn == 0, np.nan, tile.dn).astype("float32")
    assert _reason(_rewrite(good, arr=floats, dtype="float32", nodata=None), site) == ("wrong_dtype", True)


def test_foreign_grids_are_rejected(good, site):
    tile = decode_tile(good)
    assert _reason(encode_tile(dataclasses.replace(tile, crs_epsg=4326)), site) == ("wrong_crs", True)
    t = tile.transform
    assert _reason(encode_tile(dataclasses.replace(tile, transform=Affine(10, 0, t.c, 0, -10, t.f))), site) \
        == ("wrong_grid", True)
    moved = dataclasses.replace(tile, transform=Affine(20, 0, t.c + 50_000, 0, -20, t.f))
    assert _reason(encode_tile(moved), site) == ("outside_site", True)


def test_a_tile_without_nodata_value_or_mask_is_rejected(good, site):
    with pytest.raises(TileRejected, match="neither a nodata value") as info:
        validate_tile(_rewrite(good, nodata=None), site)
    assert info.value.reason == "no_nodata"
    assert _reason(_rewrite(good, nodata=65535), site) == ("no_nodata", True)


def test_all_nodata_and_low_coverage_are_not_observed_but_not_quarantined(good, site):
    tile = decode_tile(good)
    assert _reason(encode_tile(dataclasses.replace(tile, dn=np.zeros_like(tile.dn))), site) == ("nodata", False)
    strip = tile.dn.copy()
    strip[:, :, :150] = 0  # 40 % of the AOI left
    assert _reason(encode_tile(dataclasses.replace(tile, dn=strip)), site) == ("low_coverage", False)
    assert validate_tile(encode_tile(dataclasses.replace(tile, dn=strip)), site,
                         TileLimits(min_valid_fraction=0.3)).valid_fraction == pytest.approx(0.4)


def test_missing_metadata_is_bad_metadata(good, site):
    with MemoryFile(good) as mem, mem.open() as src:
        tags = src.tags()
    assert "ACQUIRED_AT" in tags
    with MemoryFile(good) as mem, mem.open() as src:
        prof, pixels = src.profile, src.read()
        band_tags = [src.tags(i) for i in range(1, 4)]
    with MemoryFile() as out:
        with out.open(**prof) as dst:
            dst.write(pixels)
            dst.update_tags(SUN_ZENITH_DEG="30")
            for i in range(1, 4):
                dst.update_tags(i, **band_tags[i - 1])
        data = out.read()
    with pytest.raises(TileRejected, match="no acquisition time"):
        validate_tile(data, site)


def test_a_size_bomb_is_rejected_from_its_header_without_decoding(site):
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=20000, height=20000, count=3, dtype="uint16", crs=f"EPSG:{site.utm_epsg}",
                      transform=Affine(20, 0, 0, 0, -20, 0), nodata=0, tiled=True, compress="deflate",
                      sparse_ok=True) as dst:
            dst.update_tags(ACQUIRED_AT="2025-07-02T07:00:00", SUN_ZENITH_DEG="30")
        bomb = mem.read()
    assert len(bomb) < 200_000  # 1.2 GB of pixels in a few tens of kB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(TileRejected, match="400,000,000 pixels exceeds the budget") as info:
        validate_tile(bomb, site)
    assert info.value.reason == "too_large"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # kB: nothing decoded


def test_limits_come_from_the_environment():
    limits = Settings.from_env({"FLAREWATCH_MAX_TILE_PIXELS": "1000", "FLAREWATCH_MIN_VALID_FRACTION": "0.25"}).tile_limits
    assert (limits.max_pixels, limits.min_valid_fraction) == (1000, 0.25)
    with pytest.raises(ValueError, match="FLAREWATCH_MIN_VALID_FRACTION must be in"):
        Settings.from_env({"FLAREWATCH_MIN_VALID_FRACTION": "2"})
    with pytest.raises(ValueError, match="FLAREWATCH_MAX_PROCESS_ATTEMPTS must be >= 1"):
        Settings.from_env({"FLAREWATCH_MAX_PROCESS_ATTEMPTS": "0"})


def test_unique_keys_keep_order_and_make_repeats_distinct():
    assert unique_keys(["s2:1:2", "s2:5:5", "s2:1:2", "s2:1:2"]) == ["s2:1:2", "s2:5:5", "s2:1:2~2", "s2:1:2~3"]
    assert unique_keys(["a", "a~2", "a"]) == ["a", "a~2", "a~3"]
    assert unique_keys([]) == []


def test_two_detections_on_one_peak_pixel_get_two_keys_and_two_rows(good, site):
    from flarewatch.detect.threshold import Detection
    from flarewatch.estimate.site_day import estimate_site_day

    class TwoOnOnePixel:
        def detect(self, tile):
            return [Detection(row=100.3, col=80.2, peak_row=100, peak_col=80, bbox=(99, 79, 102, 82), n_pixels=3,
                              confidence=0.9, saturated=False, cloud_flag=False, detector="test"),
                    Detection(row=100.7, col=80.9, peak_row=100, peak_col=80, bbox=(99, 80, 102, 83), n_pixels=3,
                              confidence=0.8, saturated=False, cloud_flag=False, detector="test")]

    est = estimate_site_day(site, date(2025, 7, 2), decode_tile(good), None, Settings(), detector=TwoOnOnePixel(),
                            detector_version="test-v1")
    assert [r["detection_key"] for r in est.detection_rows] == ["s2:100:80", "s2:100:80~2"]
    assert [r["detection_key"] for r in est.emission_rows] == ["s2:100:80", "s2:100:80~2"]


def test_usable_means_clear_where_the_flares_burn_not_over_the_tile(good, site):
    from flarewatch.validate.usable import sentinel2_usable

    tile = decode_tile(good)
    h, w = tile.shape
    lon, lat = tile.pixel_to_lonlat(50.5, 50.5)  # a flare in the clear corner
    cloudy = np.ones((h, w), dtype=bool)
    cloudy[:100, :100] = False  # 84 % of the tile under cloud, not the flare
    ok, frac, n = sentinel2_usable(dataclasses.replace(tile, cloud_mask=cloudy), [(lon, lat)])
    assert (ok, frac, n) == (True, 1.0, 1)
    clear_but_flare = np.zeros((h, w), dtype=bool)
    clear_but_flare[30:70, 30:70] = True  # 3 % cloud, right over the flare
    assert sentinel2_usable(dataclasses.replace(tile, cloud_mask=clear_but_flare), [(lon, lat)])[0] is False
    # no known flare place: the AOI decides
    assert sentinel2_usable(dataclasses.replace(tile, cloud_mask=cloudy), [])[:2] == (False, pytest.approx(0.16, abs=0.01))
    far = tile.pixel_to_lonlat(5000.0, 5000.0)
    assert sentinel2_usable(tile, [far])[2] == 0  # places off the tile are ignored
