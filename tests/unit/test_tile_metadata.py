"""decode_tile's scene metadata (tags, arguments, errors), GDAL scale/offset products and the
per-spacecraft band constants (Sentinel-2A / 2B built in, 2C from the product's tags)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from affine import Affine

from flarewatch import physics
from flarewatch.config import S2_BANDS, S2_SPACECRAFT_CONSTANTS
from flarewatch.tiles import Tile, band_constants, decode_tile, encode_tile, spacecraft_name

TRANSFORM = Affine(20, 0, 500000, 0, -20, 3400000)
WHEN = datetime(2025, 6, 1, 7, 30)
DN = np.full((3, 32, 40), 3000, dtype=np.uint16)
ESUN_2C = {"B8A": 950.0, "B11": 246.0, "B12": 86.0}  # made-up product-metadata values for the tests
LAM_2C = {"B8A": 0.8650, "B11": 1.6120, "B12": 2.1900}


def product(tags: dict, *, scale=0.0001, offset=-0.1, band_tags: dict | None = None, descriptions=None,
            dn: np.ndarray = DN) -> bytes:
    """A plain 3-band uint16 GeoTIFF with GDAL scale/offset and the given dataset tags (no SCALE/OFFSET
    band tags), as an L1C/L2A-like product cut to B8A/B11/B12."""
    import rasterio
    from rasterio.io import MemoryFile

    with MemoryFile() as mem:
        with mem.open(driver="GTiff", height=dn.shape[1], width=dn.shape[2], count=3, dtype="uint16",
                      crs=rasterio.crs.CRS.from_epsg(32638), transform=TRANSFORM, nodata=0) as dst:
            dst.write(dn)
            if scale is not None:
                dst.scales = [scale] * 3
                dst.offsets = [offset] * 3
            for i in range(3):
                if descriptions:
                    dst.set_band_description(i + 1, descriptions[i])
                if band_tags:
                    dst.update_tags(i + 1, **{k: str(v[i]) for k, v in band_tags.items()})
            dst.update_tags(**tags)
        return mem.read()


def test_own_tiles_carry_and_read_our_tag_names():
    t = Tile(DN, TRANSFORM, 32638, WHEN, 25.0, spacecraft="S2B", tags={"SOURCE": "test"})
    assert t.spacecraft == "Sentinel-2B"
    back = decode_tile(encode_tile(t))
    assert (back.acquired_at, back.sun_zenith_deg, back.spacecraft) == (WHEN, 25.0, "Sentinel-2B")
    assert back.tags == {"SOURCE": "test"}  # the metadata tags are not repeated in tags
    assert back.solar_irradiance == S2_SPACECRAFT_CONSTANTS["Sentinel-2B"]["solar_irradiance"]
    default = decode_tile(encode_tile(Tile(DN, TRANSFORM, 32638, WHEN, 25.0)))
    assert default.spacecraft == "Sentinel-2A"


def test_own_files_from_before_the_spacecraft_tag_are_sentinel_2a():
    legacy = product({"ACQUIRED_AT": WHEN.isoformat(), "SUN_ZENITH_DEG": "25.0000"},
                     band_tags={"BAND": S2_BANDS, "SCALE": ["0.0001"] * 3, "OFFSET": ["-0.1"] * 3})
    t = decode_tile(legacy)
    assert (t.acquired_at, t.sun_zenith_deg, t.spacecraft) == (WHEN, 25.0, "Sentinel-2A")


def test_common_tag_names_case_insensitive():
    t = decode_tile(product({"acquisition_datetime": "2025-06-01T07:30:00Z", "SUN_ZENITH": "33.5",
                             "Platform": "sentinel-2b"}))
    assert t.acquired_at == datetime(2025, 6, 1, 7, 30, tzinfo=UTC)
    assert t.sun_zenith_deg == 33.5 and t.spacecraft == "Sentinel-2B"
    t = decode_tile(product({"DATETIME": "2025-06-01T07:30:00+00:00", "sun_elevation": "60", "spacecraft": "S2A"}))
    assert t.acquired_at == datetime(2025, 6, 1, 7, 30, tzinfo=UTC)
    assert t.sun_zenith_deg == pytest.approx(30.0) and t.spacecraft == "Sentinel-2A"


def test_explicit_arguments_win_over_tags():
    data = product({"datetime": "2025-06-01T07:30:00Z", "sun_zenith": "33.5", "platform": "sentinel-2b"})
    t = decode_tile(data, acquired="2024-01-02T03:04:05Z", sun_zenith=40.0, spacecraft="Sentinel-2A")
    assert t.acquired_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (t.sun_zenith_deg, t.spacecraft) == (40.0, "Sentinel-2A")
    t = decode_tile(product({}), acquired=WHEN, sun_zenith=20, spacecraft="s2b")
    assert (t.acquired_at, t.sun_zenith_deg, t.spacecraft) == (WHEN, 20.0, "Sentinel-2B")


@pytest.mark.parametrize("tags, match", [
    ({"sun_zenith": "30", "platform": "S2A"}, r"no acquisition time.*ACQUIRED_AT, acquisition_datetime, datetime.*--acquired"),
    ({"datetime": "2025-06-01T07:30:00Z", "platform": "S2A"}, r"no sun zenith angle.*sun_zenith.*sun_elevation.*--sun-zenith"),
    ({"datetime": "2025-06-01T07:30:00Z", "sun_zenith": "30"}, r"no spacecraft.*SPACECRAFT, platform.*--spacecraft"),
    ({"datetime": "1 June 2025", "sun_zenith": "30", "platform": "S2A"}, r"not ISO 8601"),
    ({"datetime": "2025-06-01T07:30:00Z", "sun_elevation": "-5", "platform": "S2A"}, r"outside \[0, 90\)"),
])
def test_missing_or_bad_metadata_is_a_specific_error(tags, match):
    with pytest.raises(ValueError, match=match):
        decode_tile(product(tags))


def test_gdal_scale_offset_product_and_band_order():
    common = {"datetime": "2025-06-01T07:30:00Z", "sun_zenith": "30", "platform": "S2A"}
    t = decode_tile(product(common, scale=0.0001, offset=-0.1))
    assert (t.scale, t.offset) == (pytest.approx(0.0001), pytest.approx(-0.1))
    assert float(t.reflectance("B12")[1, 1]) == pytest.approx(0.2)
    dn = DN.copy()
    dn[0], dn[2] = 1500, 4500  # file order B12, B11, B8A (named by descriptions)
    t = decode_tile(product(common, dn=dn, descriptions=["B12", "B11", "B8A"]))
    assert (int(t.dn[0, 0, 0]), int(t.dn[2, 0, 0])) == (4500, 1500)
    with pytest.raises(ValueError, match="no reflectance scale/offset"):
        decode_tile(product(common, scale=None))


def test_sentinel_2c_needs_the_products_constants():
    common = {"datetime": "2025-06-01T07:30:00Z", "sun_zenith": "30", "platform": "Sentinel-2C"}
    with pytest.raises(ValueError, match=r"Sentinel-2C.*central_wavelength_um of B8A, B11, B12.*solar_irradiance"):
        decode_tile(product(common))
    with pytest.raises(ValueError, match=r"missing per-band tags solar_irradiance of B8A, B11, B12"):
        decode_tile(product(common, band_tags={"central_wavelength_um": [LAM_2C[b] for b in S2_BANDS]}))
    t = decode_tile(product(common, band_tags={"central_wavelength_um": [LAM_2C[b] for b in S2_BANDS],
                                               "solar_irradiance": [ESUN_2C[b] for b in S2_BANDS]}))
    assert (t.spacecraft, t.wavelength_um, t.solar_irradiance) == ("Sentinel-2C", LAM_2C, ESUN_2C)
    back = decode_tile(encode_tile(t))  # our own file keeps the product's constants
    assert (back.spacecraft, back.wavelength_um, back.solar_irradiance) == ("Sentinel-2C", LAM_2C, ESUN_2C)
    with pytest.raises(ValueError, match="Sentinel-2C"):
        Tile(DN, TRANSFORM, 32638, WHEN, 25.0, spacecraft="S2C")


@pytest.mark.parametrize("raw, name", [("Sentinel-2B", "Sentinel-2B"), ("sentinel-2b", "Sentinel-2B"), ("S2B", "Sentinel-2B"),
                                       ("s2a", "Sentinel-2A"), ("SENTINEL2C", "Sentinel-2C"), ("Landsat-9", "Landsat-9")])
def test_spacecraft_names(raw, name):
    assert spacecraft_name(raw) == name


@pytest.mark.parametrize("temp_k", [1500.0, 1800.0, 2200.0])
def test_sentinel_2b_constants_on_a_2b_scene(temp_k):
    """A 2B flame's reflectances give its temperature back with 2B's constants; with 2A's the
    colour temperature is biased high by tens of kelvin (domain.md)."""
    lam_b, esun_b = band_constants("Sentinel-2B")
    _, esun_a = band_constants("Sentinel-2A")
    rho = {b: physics.radiance_to_reflectance(physics.planck_radiance(lam_b[b], temp_k), b, 30.0, 172, esun_b)
           for b in ("B11", "B12")}

    def colour_t(spacecraft):
        lam, esun = band_constants(spacecraft)
        l12, l11 = (physics.reflectance_to_radiance(rho[b], b, 30.0, 172, esun) for b in ("B12", "B11"))
        return float(physics.ratio_temperature(l12, l11, lam))

    assert colour_t("Sentinel-2B") == pytest.approx(temp_k, abs=1.5)
    assert 10.0 < colour_t("Sentinel-2A") - temp_k < 40.0
    assert esun_a != esun_b


def test_same_dn_is_cooler_as_sentinel_2b_in_the_features():
    """The features read the tile's spacecraft: one simulated flare's DN, labelled 2A and 2B."""
    from dataclasses import replace
    from datetime import date

    from flarewatch.detect.threshold import detect_flares
    from flarewatch.features.extract import extract_features
    from flarewatch.simulation.scene import simulate_scene
    from flarewatch.sites import load_sites

    tile_a = simulate_scene(load_sites()[0], date(2025, 6, 1)).tile
    tile_b = replace(tile_a, spacecraft="S2B")
    det = detect_flares(tile_a)[0]
    fa, fb = extract_features(tile_a, det, None), extract_features(tile_b, det, None)
    assert tile_b.spacecraft == "Sentinel-2B"
    assert 5.0 < fa["temperature_k"] - fb["temperature_k"] < 60.0
    assert fb["swir_frp_mw"] > fa["swir_frp_mw"]  # 2B's larger B12 E_sun: more radiance per reflectance
