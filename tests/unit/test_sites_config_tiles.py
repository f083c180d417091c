"""Sites seed, configuration validation, tile encoding, date helpers."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest
from affine import Affine

from flarewatch.config import Settings
from flarewatch.orchestration.dates import (
    acquisition_date_for_run,
    date_range,
    parse_day,
)
from flarewatch.sites import Site, load_sites, parse_sites_csv
from flarewatch.tiles import Tile, decode_tile, encode_tile


def test_demo_sites_load_with_utm_zones():
    sites = load_sites()
    assert len(sites) >= 5
    by_id = {s.site_id: s for s in sites}
    assert by_id["rumaila-n"].utm_epsg == 32638
    assert by_id["parshall"].utm_epsg == 32613
    assert by_id["ebocha"].utm_epsg == 32632
    assert len({s.country for s in sites}) >= 5


@pytest.mark.parametrize("bad, message", [
    ("site_id,name,field,operator,country,lat\nx,a,b,c,d,1\n", "missing columns"),
    ("site_id,name,field,operator,country,lat,lon\nx,a,b,c,d,95,0\n", "line 2: site x: lat 95.0"),
    ("site_id,name,field,operator,country,lat,lon\nx,a,b,c,d,1,1\nx,a,b,c,d,1,1\n", "line 3: duplicate site_id"),
    ("site_id,name,field,operator,country,lat,lon\nx y,a,b,c,d,1,1\n", "site_id must be"),
    ("site_id,name,field,operator,country,lat,lon\nx,a,b,c,d,north,1\n", "line 2"),
])
def test_bad_sites_csv_is_rejected_with_the_line(bad, message):
    with pytest.raises(ValueError, match=message):
        parse_sites_csv(bad)


def test_southern_hemisphere_epsg():
    assert Site("s", "n", "f", "o", "c", -10.0, 15.0).utm_epsg == 32733


def test_settings_from_env_validates():
    s = Settings.from_env({"FLAREWATCH_VOLUME_METHOD": "power", "FLAREWATCH_METHANE_GWP": "82.5"})
    assert s.calibration.method == "power" and s.emission_factors.methane_gwp == 82.5
    with pytest.raises(ValueError, match="FLAREWATCH_VOLUME_METHOD"):
        Settings.from_env({"FLAREWATCH_VOLUME_METHOD": "magic"})
    with pytest.raises(ValueError, match="COMBUSTION_EFFICIENCY"):
        Settings.from_env({"FLAREWATCH_COMBUSTION_EFFICIENCY": "1.5"})


def test_tile_roundtrip_and_georeferencing():
    dn = np.full((3, 32, 40), 3000, dtype=np.uint16)
    dn[:, 0, 0] = 0  # nodata
    cloud = np.zeros((32, 40), bool)
    cloud[5:8, 5:8] = True
    t = Tile(dn, Affine(20, 0, 500000, 0, -20, 3400000), 32638, datetime(2025, 6, 1, 7, 30), 25.0,
             cloud_mask=cloud, tags={"SOURCE": "test"})
    back = decode_tile(encode_tile(t))
    assert back.dn.tobytes() == dn.tobytes()
    assert back.crs_epsg == 32638 and back.transform == t.transform
    assert back.cloud_mask.sum() == 9 and back.tags["SOURCE"] == "test"
    assert back.sun_zenith_deg == pytest.approx(25.0)
    rho = back.reflectance("B12")
    assert np.isnan(rho[0, 0]) and rho[1, 1] == pytest.approx(0.2)
    lon, lat = back.pixel_to_lonlat(16.5, 20.5)
    r, c = back.lonlat_to_pixel(lon, lat)
    assert (r, c) == pytest.approx((16.5, 20.5), abs=1e-6)


def test_decode_rejects_garbage_and_wrong_band_count():
    with pytest.raises(ValueError, match="not a readable GeoTIFF"):
        decode_tile(b"definitely not a tiff")
    with pytest.raises(ValueError, match="shape"):
        Tile(np.zeros((2, 4, 4), np.uint16), Affine.identity(), 32638, datetime(2025, 1, 1), 30.0)


def test_acquisition_date_logic():
    assert acquisition_date_for_run(date(2025, 6, 2)) == date(2025, 6, 1)
    assert parse_day("2025-06-01") == date(2025, 6, 1)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_day("06/01/2025")
    assert len(date_range(date(2025, 6, 1), date(2025, 6, 7))) == 7
    with pytest.raises(ValueError, match="before"):
        date_range(date(2025, 6, 2), date(2025, 6, 1))
