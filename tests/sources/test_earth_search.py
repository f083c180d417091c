"""Earth Search Sentinel-2 source against a local stand-in (no network): real STAC items, simulated COGs."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest
from s2_server import (
    T01WCR,
    T38XNF,
    EarthSearchStub,
    cogs_for_item,
    item_day,
    live,
    load_item,
    scene_reflectance,
)

from flarewatch.ingest.sources.earth_search import EarthSearchS2
from flarewatch.ingest.sources.http import (
    PermanentSourceError,
    TransientSourceError,
    make_session,
)
from flarewatch.ingest.sources.s2common import geometry_in_window_crs, site_window
from flarewatch.sites import Site
from flarewatch.tiles import decode_tile

# Sites inside the fixture items' footprints (3 km AOI = 150 px keeps the tests quick).
KARA = Site("kara-1", "Kara test pad", "test", "test", "RU", 72.90, 47.90, aoi_km=3.0)  # UTM 38 = item zone
KARA_EDGE = Site("kara-edge", "Kara footprint edge", "test", "test", "RU", 72.975, 47.90, aoi_km=3.0)
CHUKOTKA = Site("chukotka-t01wcr", "Chukotka test pad", "test", "test", "RU", 68.0, 179.5, aoi_km=3.0)  # UTM 60, item UTM 1
DAY_38 = item_day(load_item(T38XNF))  # 2025-04-22
DAY_01 = item_day(load_item(T01WCR))  # 2025-04-27


def source(stub, **kw) -> EarthSearchS2:
    kw.setdefault("max_cloud", 100)
    return EarthSearchS2(stac_url=stub.stac_url, session=make_session(retries=3, backoff_s=0.01, timeout_s=10),
                         gdal_retry_delay_s=0.05, **kw)


def sim_dn(site, day):
    _, _, tile = scene_reflectance(site, day)
    return tile


def test_round_trip_real_item_same_zone(http_server):
    stub = EarthSearchStub(http_server)
    item = stub.add(load_item(T38XNF), cogs_for_item(load_item(T38XNF), KARA, DAY_38))
    res = source(stub).fetch_s2(KARA, DAY_38)

    assert (res.status, res.outcome) == ("ingested", "ok"), res.detail
    tile, sim = decode_tile(res.tile_geotiff), sim_dn(KARA, DAY_38)
    win = site_window(KARA)
    assert tile.crs_epsg == 32638 and tile.transform == win.transform and tile.shape == (150, 150)
    assert tile.spacecraft == "Sentinel-2B"  # the item's platform: its band constants are used downstream
    # same UTM zone, 20 m grid snapped like the item's: every DN comes back exactly
    np.testing.assert_array_equal(tile.dn, sim.dn)
    np.testing.assert_allclose(tile.reflectance("B12"), sim.reflectance("B12"), atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(tile.cloud_mask, sim.cloud_mask & sim.valid)
    assert tile.tags["COLLECTION"] == "sentinel-2-c1-l2a" and tile.tags["ITEM_IDS"] == T38XNF
    assert tile.sun_zenith_deg == pytest.approx(90 - item["properties"]["view:sun_elevation"], abs=1e-3)
    m = res.meta
    assert m["processing_baseline"] == "05.11" and m["item_ids"] == [T38XNF] and m["crs_epsg"] == 32638
    assert m["acquired_at"].isoformat().startswith("2025-04-22T09:19:42")
    assert m["valid_fraction"] == pytest.approx(float(sim.valid.mean()), abs=1e-4)
    assert m["cloud_fraction"] == pytest.approx(float(sim.cloud_mask[sim.valid].mean()), abs=1e-4)

    # the search: one POST with the collection, the AOI polygon and the UTC day
    body = stub.search_bodies[0]
    assert body["collections"] == ["sentinel-2-c1-l2a"] and body["intersects"]["type"] == "Polygon"
    assert body["datetime"] == "2025-04-22T00:00:00Z/2025-04-22T23:59:59.999Z"
    # COG windows were read with HTTP range requests, never the whole file
    cog_gets = [r for r in http_server.requests if r.path.startswith("/data/") and r.method == "GET"]
    assert cog_gets and all("Range" in r.headers for r in cog_gets)
    assert {r.path.rsplit("/", 1)[1] for r in cog_gets} == {"nir08.tif", "swir16.tif", "swir22.tif", "scl.tif"}

    # raw responses: the search page byte for byte, the item, the four windows
    assert set(res.raw_objects) == {"search/page-001.json", f"items/{T38XNF}.json"} | {
        f"windows/{T38XNF}/{a}.tif" for a in ("nir08", "swir16", "swir22", "scl")}
    page, ctype = res.raw_objects["search/page-001.json"]
    assert json.loads(page)["features"][0]["id"] == T38XNF and ctype == "application/geo+json"
    # ... enough to rebuild the same tile with no server at all
    http_server.close()
    again = EarthSearchS2(max_cloud=100).from_raw(KARA, DAY_38, res.raw_objects)
    np.testing.assert_array_equal(decode_tile(again.tile_geotiff).dn, tile.dn)
    assert (again.outcome, again.meta["cloud_fraction"]) == (res.outcome, res.meta["cloud_fraction"])


def test_default_max_cloud_skips_the_cloudy_granule_without_downloading(http_server):
    stub = EarthSearchStub(http_server)
    stub.add(load_item(T38XNF), cogs_for_item(load_item(T38XNF), KARA, DAY_38))  # eo:cloud_cover 91.1 %
    res = EarthSearchS2(stac_url=stub.stac_url).fetch_s2(KARA, DAY_38)
    assert (res.status, res.outcome, res.tile_geotiff) == ("no_data", "full_cloud", None)
    assert "max_cloud 80 %" in res.detail and "91.1 %" in res.detail and T38XNF in res.detail
    assert not [r for r in http_server.requests if r.path.startswith("/data/")]
    assert list(res.raw_objects) == ["search/page-001.json"]


def test_reprojects_a_granule_from_another_utm_zone(http_server):
    """Site at 179.5 E is UTM 60; the T01WCR granule (footprint split at the antimeridian) is UTM 1."""
    stub = EarthSearchStub(http_server)
    stub.add(load_item(T01WCR), cogs_for_item(load_item(T01WCR), CHUKOTKA, DAY_01))
    res = source(stub).fetch_s2(CHUKOTKA, DAY_01)
    assert res.status == "ingested" and res.outcome in ("ok", "partial"), res.detail
    tile, sim = decode_tile(res.tile_geotiff), sim_dn(CHUKOTKA, DAY_01)
    assert tile.crs_epsg == 32660 and tile.transform == site_window(CHUKOTKA).transform
    both = tile.valid & sim.valid
    assert both.mean() > 0.97
    # nearest neighbour twice across a ~5.6 deg grid rotation: most pixels are the very same sample,
    # the rest a neighbour; the scene statistics and the hottest pixel's place survive
    assert (tile.dn[:, both] == sim.dn[:, both]).all(axis=0).mean() > 0.5
    for band in ("B8A", "B11", "B12"):
        assert np.nanmean(tile.reflectance(band)) == pytest.approx(np.nanmean(sim.reflectance(band)), rel=0.02)
    b12_t, b12_s = np.nan_to_num(tile.reflectance("B12"), nan=-1), np.nan_to_num(sim.reflectance("B12"), nan=-1)
    peak_t = np.unravel_index(np.argmax(b12_t), b12_t.shape)
    peak_s = np.unravel_index(np.argmax(b12_s), b12_s.shape)
    assert max(abs(peak_t[0] - peak_s[0]), abs(peak_t[1] - peak_s[1])) <= 1
    assert b12_t.max() == pytest.approx(b12_s.max(), abs=1e-4)
    assert res.meta["item_ids"] == [T01WCR] and res.meta["processing_baseline"] == "05.11"


def test_aoi_across_the_antimeridian(http_server):
    """A site 0.01 deg west of 180 E: its 3 km AOI reaches into the western hemisphere."""
    site = Site("chukotka-am", "Antimeridian pad", "test", "test", "RU", 68.0, 179.99, aoi_km=3.0)
    win = site_window(site)
    aoi = win.aoi_geojson()
    assert aoi["type"] == "MultiPolygon" and len(aoi["coordinates"]) == 2
    lons = [p[0] for part in aoi["coordinates"] for p in part[0]]
    assert max(lons) <= 180.0 and min(lons) >= -180.0 and min(lons) < -179.9 and max(lons) > 179.9
    west, _, east, _ = win.lonlat_bbox()
    assert west > 179.9 and east < -179.9  # GeoJSON convention: west > east across the antimeridian
    stub = EarthSearchStub(http_server)
    stub.add(load_item(T01WCR), cogs_for_item(load_item(T01WCR), site, DAY_01))
    res = source(stub).fetch_s2(site, DAY_01)
    assert res.status == "ingested" and res.meta["valid_fraction"] > 0.97, res.detail
    assert stub.search_bodies[0]["intersects"] == aoi


def test_offsets_come_from_raster_bands_not_from_the_boa_flag(http_server):
    """An old-baseline item: raster:bands offset 0 and a misleading earthsearch:boa_offset_applied."""
    old = load_item(T38XNF)
    old["properties"].update({"s2:processing_baseline": "03.01", "earthsearch:boa_offset_applied": True})
    for key in ("nir08", "swir16", "swir22"):
        old["assets"][key]["raster:bands"][0]["offset"] = 0
    stub = EarthSearchStub(http_server)
    stub.add(old, cogs_for_item(old, KARA, DAY_38), item_id=f"{T38XNF}_old")
    res = source(stub).fetch_s2(KARA, DAY_38)
    tile, sim = decode_tile(res.tile_geotiff), sim_dn(KARA, DAY_38)
    assert res.meta["processing_baseline"] == "03.01"
    ok = sim.valid & np.all(sim.dn >= 1000, axis=0)  # reflectance >= 0: representable with offset 0
    np.testing.assert_array_equal(tile.dn[:, ok], sim.dn[:, ok])
    # the stored window holds the item's own DN (reflectance / 0.0001, no offset): 1000 below the tile's
    from flarewatch.ingest.sources.s2common import decode_band_window

    raw, transform, *_ = decode_band_window(res.raw_objects[f"windows/{T38XNF}_old/swir22.tif"][0])
    win = site_window(KARA)
    c0, r0 = (round(v) for v in ~transform @ (win.transform.c, win.transform.f))
    stored = raw[r0:r0 + win.height, c0:c0 + win.width].astype(int)
    np.testing.assert_array_equal(stored[ok], tile.dn[2][ok].astype(int) - 1000)


def test_offset_falls_back_to_the_processing_baseline_without_raster_bands(http_server):
    for baseline, offset, name in (("02.14", 0.0, "old"), ("04.00", -0.1, "new")):
        item = load_item(T38XNF)
        item["properties"]["s2:processing_baseline"] = baseline
        for key in ("nir08", "swir16", "swir22"):
            item["assets"][key]["raster:bands"][0].pop("offset")
        stub = EarthSearchStub(http_server)
        stub.add(item, cogs_for_item(load_item(T38XNF), KARA, DAY_38, offset=offset), item_id=f"{T38XNF}_{name}")
        res = source(stub).fetch_s2(KARA, DAY_38)
        tile, sim = decode_tile(res.tile_geotiff), sim_dn(KARA, DAY_38)
        ok = sim.valid & np.all(sim.dn >= 1000, axis=0)
        np.testing.assert_array_equal(tile.dn[:, ok], sim.dn[:, ok])
        http_server.reset()


def test_two_granules_mosaic_for_a_site_on_a_granule_edge(http_server):
    """Granule A has data west of a line through the AOI, granule B (same pass) east of it."""
    win = site_window(KARA)
    mid_x = (win.bounds[0] + win.bounds[2]) / 2 + 130.0  # not on a pixel edge
    a, b = load_item(T38XNF), load_item(T38XNF)
    b["properties"].update({"s2:tile_id": b["properties"]["s2:tile_id"].replace("T38XNF", "T38XPF"),
                            "mgrs:grid_square": "PF", "grid:code": "MGRS-38XPF"})
    stub = EarthSearchStub(http_server)
    stub.add(a, cogs_for_item(a, KARA, DAY_38, keep=lambda x, y: x < mid_x), item_id="S2B_T38XNF_A")
    stub.add(b, cogs_for_item(b, KARA, DAY_38, keep=lambda x, y: x >= mid_x), item_id="S2B_T38XPF_B")
    res = source(stub).fetch_s2(KARA, DAY_38)
    assert (res.status, res.outcome) == ("ingested", "ok"), res.detail
    assert sorted(res.meta["item_ids"]) == ["S2B_T38XNF_A", "S2B_T38XPF_B"]
    tile, sim = decode_tile(res.tile_geotiff), sim_dn(KARA, DAY_38)
    np.testing.assert_array_equal(tile.dn, sim.dn)
    assert res.meta["valid_fraction"] == pytest.approx(float(sim.valid.mean()), abs=1e-4)


def test_partial_coverage_at_the_real_footprint_edge(http_server):
    item = load_item(T38XNF)
    footprint = geometry_in_window_crs(site_window(KARA_EDGE), item["geometry"])  # the real data footprint
    from shapely import contains_xy

    stub = EarthSearchStub(http_server)
    stub.add(item, cogs_for_item(item, KARA_EDGE, DAY_38, keep=lambda x, y: contains_xy(footprint, x, y)))
    res = source(stub).fetch_s2(KARA_EDGE, DAY_38)
    assert (res.status, res.outcome) == ("ingested", "partial"), res.detail
    assert 0.4 < res.meta["valid_fraction"] < 0.6  # the footprint covers ~51 % of this AOI
    assert "partial coverage" in res.detail and "valid 5" in res.detail
    tile, sim = decode_tile(res.tile_geotiff), sim_dn(KARA_EDGE, DAY_38)
    np.testing.assert_array_equal(tile.dn[:, tile.valid], sim.dn[:, tile.valid])


def test_no_item_for_the_date_is_no_scene(http_server):
    stub = EarthSearchStub(http_server)
    stub.add(load_item(T38XNF), cogs_for_item(load_item(T38XNF), KARA, DAY_38))
    res = source(stub).fetch_s2(KARA, date(2025, 4, 23))
    assert (res.status, res.outcome, res.tile_geotiff) == ("no_data", "no_scene", None)
    assert res.detail == "no sentinel-2-c1-l2a item covers kara-1 on 2025-04-23 (searched 1 page, 0 items)"


def test_item_elsewhere_on_the_date_is_no_scene(http_server):
    stub = EarthSearchStub(http_server)
    stub.add(load_item(T01WCR))
    res = source(stub).fetch_s2(KARA, DAY_01)
    assert (res.status, res.outcome) == ("no_data", "no_scene")
    assert "(searched 1 page, 1 item)" in res.detail


def test_full_cloud_is_ingested_with_the_reason(http_server):
    stub = EarthSearchStub(http_server)
    win = site_window(KARA)
    cloud = np.ones((win.height, win.width), dtype=bool)
    stub.add(load_item(T38XNF), cogs_for_item(load_item(T38XNF), KARA, DAY_38, cloud=cloud))
    res = source(stub).fetch_s2(KARA, DAY_38)
    assert (res.status, res.outcome) == ("ingested", "full_cloud")
    assert res.meta["cloud_fraction"] == 1.0 and "fully clouded" in res.detail
    tile = decode_tile(res.tile_geotiff)
    assert tile.cloud_mask[tile.valid].all()


def test_all_nodata_is_an_outcome_not_an_error(http_server):
    stub = EarthSearchStub(http_server)
    stub.add(load_item(T38XNF), cogs_for_item(load_item(T38XNF), KARA, DAY_38, keep=lambda x, y: np.zeros_like(x, bool)))
    res = source(stub).fetch_s2(KARA, DAY_38)
    assert (res.status, res.outcome, res.tile_geotiff) == ("no_data", "nodata", None)
    assert "every AOI pixel is nodata" in res.detail
    assert f"windows/{T38XNF}/swir22.tif" in res.raw_objects  # what was read is kept all the same


def test_search_follows_next_links_across_pages(http_server):
    stub = EarthSearchStub(http_server, page_size=1)
    stub.add(load_item(T01WCR))  # another day: filtered out by the stub's datetime
    elsewhere = load_item(T01WCR)
    elsewhere["properties"]["datetime"] = load_item(T38XNF)["properties"]["datetime"]
    stub.add(elsewhere, item_id="S2B_T01WCR_same_day_elsewhere")  # same day, does not cover the site
    stub.add(load_item(T38XNF), cogs_for_item(load_item(T38XNF), KARA, DAY_38))
    res = source(stub).fetch_s2(KARA, DAY_38)
    assert res.outcome == "ok" and res.meta["item_ids"] == [T38XNF]
    assert [b.get("next") for b in stub.search_bodies] == [None, "1"]
    assert stub.search_bodies[1]["intersects"] == stub.search_bodies[0]["intersects"]  # full body resent
    assert {"search/page-001.json", "search/page-002.json"} <= set(res.raw_objects)
    assert "search/page-003.json" not in res.raw_objects


def _same_day_elsewhere(n: int) -> dict:
    """The T01WCR item moved to DAY_38: found by the search, but it does not cover KARA."""
    item = load_item(T01WCR)
    item["properties"]["datetime"] = load_item(T38XNF)["properties"]["datetime"]
    item["id"] = f"S2B_T01WCR_elsewhere_{n}"
    return item


def test_paging_across_several_pages_through_pystac_client(http_server, monkeypatch):
    import pystac_client

    yielded = []
    pages_as_dicts = pystac_client.ItemSearch.pages_as_dicts

    def spy(self):
        for page in pages_as_dicts(self):
            yielded.append([f["id"] for f in page["features"]])
            yield page

    monkeypatch.setattr(pystac_client.ItemSearch, "pages_as_dicts", spy)
    stub = EarthSearchStub(http_server, page_size=1)
    cogs = cogs_for_item(load_item(T38XNF), KARA, DAY_38)
    stub.add(_same_day_elsewhere(1))
    stub.add(load_item(T38XNF), cogs)
    stub.add(_same_day_elsewhere(2))
    stub.add(load_item(T38XNF), cogs)  # the same item again on a later page (paging can repeat one)
    res = source(stub).fetch_s2(KARA, DAY_38)

    ids = ["S2B_T01WCR_elsewhere_1", T38XNF, "S2B_T01WCR_elsewhere_2", T38XNF]
    assert yielded == [[i] for i in ids]  # pystac-client's ItemSearch walked the four pages
    assert [b.get("next") for b in stub.search_bodies] == [None, "1", "2", "3"]
    assert all(b["intersects"] == stub.search_bodies[0]["intersects"] for b in stub.search_bodies)
    assert [r.method for r in http_server.requests_to("/v1/search")] == ["POST"] * 4  # no landing page GET
    pages = sorted(k for k in res.raw_objects if k.startswith("search/"))
    assert pages == [f"search/page-{n:03d}.json" for n in (1, 2, 3, 4)]
    assert [json.loads(res.raw_objects[p][0])["features"][0]["id"] for p in pages] == ids
    # the repeated item is read once, and the stored pages rebuild the same tile offline
    assert (res.outcome, res.meta["item_ids"]) == ("ok", [T38XNF])
    again = EarthSearchS2(max_cloud=100).from_raw(KARA, DAY_38, res.raw_objects)
    assert again.meta["item_ids"] == [T38XNF]


def test_paging_stops_at_max_pages_with_a_warning(http_server, caplog):
    stub = EarthSearchStub(http_server, page_size=1)
    for n in range(3):
        stub.add(_same_day_elsewhere(n))
    with caplog.at_level("WARNING", logger="flarewatch.ingest.sources.earth_search"):
        res = source(stub, max_pages=2).fetch_s2(KARA, DAY_38)
    assert len(stub.search_bodies) == 2 and "stopped after 2 search pages" in caplog.text
    assert res.detail.endswith("(searched 2 pages, 2 items)")


def test_search_follows_get_next_links(http_server):
    stub = EarthSearchStub(http_server, page_size=1, next_method="GET")
    stub.add(_same_day_elsewhere(1))
    stub.add(load_item(T38XNF), cogs_for_item(load_item(T38XNF), KARA, DAY_38))
    res = source(stub).fetch_s2(KARA, DAY_38)
    assert [r.method for r in http_server.requests_to("/v1/search")] == ["POST", "GET"]
    assert stub.search_bodies[1]["next"] == "1" and stub.search_bodies[1]["intersects"]["type"] == "Polygon"
    assert res.outcome == "ok" and res.meta["item_ids"] == [T38XNF]


def test_503_on_a_later_page_is_transient(http_server):
    stub = EarthSearchStub(http_server, page_size=1)
    stub.add(_same_day_elsewhere(1))
    stub.add(load_item(T38XNF))
    http_server.routes["/v1/search"] = [stub.search, 503]
    with pytest.raises(TransientSourceError, match=r"earth-search: POST .*/v1/search still answered HTTP 503"):
        source(stub).fetch_s2(KARA, DAY_38)
    assert http_server.hits["/v1/search"] == 1 + 4  # page 1, then page 2 with 3 retries


def test_search_answering_non_json_is_permanent(http_server):
    stub = EarthSearchStub(http_server)
    http_server.routes["/v1/search"] = (200, "<html>maintenance</html>", {"Content-Type": "text/html"})
    with pytest.raises(PermanentSourceError, match=r"earth-search: .*/v1/search did not answer JSON"):
        source(stub).fetch_s2(KARA, DAY_38)


def test_next_link_without_href_is_permanent(http_server):
    stub = EarthSearchStub(http_server)
    page = {"type": "FeatureCollection", "features": [stub.add(load_item(T38XNF))],
            "links": [{"rel": "next", "method": "POST", "body": {"next": "1"}}]}
    http_server.routes["/v1/search"] = (200, json.dumps(page), {"Content-Type": "application/geo+json"})
    with pytest.raises(PermanentSourceError, match="malformed STAC search page"):
        source(stub).fetch_s2(KARA, DAY_38)


def test_search_timeout_is_transient(http_server):
    stub = EarthSearchStub(http_server)
    http_server.routes["/v1/search"] = http_server.Reply(200, "{}", delay_s=0.5)
    src = EarthSearchS2(stac_url=stub.stac_url, session=make_session(retries=1, backoff_s=0.01, timeout_s=0.1))
    with pytest.raises(TransientSourceError, match="timed out"):
        src.fetch_s2(KARA, DAY_38)
    assert http_server.hits["/v1/search"] == 2  # the session's timeout and retries, not pystac-client's


def test_search_retries_503_then_succeeds(http_server):
    stub = EarthSearchStub(http_server)
    stub.add(load_item(T38XNF), cogs_for_item(load_item(T38XNF), KARA, DAY_38))
    http_server.routes["/v1/search"] = [503, (503, "busy", {"Retry-After": "0"}), stub.search]
    res = source(stub).fetch_s2(KARA, DAY_38)
    assert res.outcome == "ok"
    assert http_server.hits["/v1/search"] == 3


def test_search_503_until_retries_run_out_is_transient(http_server):
    stub = EarthSearchStub(http_server)
    http_server.routes["/v1/search"] = 503
    with pytest.raises(TransientSourceError, match="HTTP 503"):
        source(stub).fetch_s2(KARA, DAY_38)
    assert http_server.hits["/v1/search"] == 4  # 1 + 3 retries


def test_search_401_fails_fast_with_a_clear_message(http_server):
    stub = EarthSearchStub(http_server)
    http_server.routes["/v1/search"] = (401, '{"message": "Unauthorized"}', {"Content-Type": "application/json"})
    with pytest.raises(PermanentSourceError, match=r"earth-search: POST .*/v1/search answered HTTP 401") as err:
        source(stub).fetch_s2(KARA, DAY_38)
    assert err.value.status == 401 and "Unauthorized" in str(err.value)
    assert http_server.hits["/v1/search"] == 1


def test_cog_403_is_permanent(http_server):
    stub = EarthSearchStub(http_server)
    stub.add(load_item(T38XNF), cogs_for_item(load_item(T38XNF), KARA, DAY_38))
    http_server.routes[f"/data/{T38XNF}/nir08.tif"] = (403, "AccessDenied")
    with pytest.raises(PermanentSourceError, match="HTTP 403"):
        source(stub).fetch_s2(KARA, DAY_38)


def test_cog_503_is_retried_by_gdal(http_server):
    stub = EarthSearchStub(http_server)
    cogs = cogs_for_item(load_item(T38XNF), KARA, DAY_38)
    stub.add(load_item(T38XNF), cogs)
    path = f"/data/{T38XNF}/swir22.tif"
    http_server.routes[path] = [503, http_server.static(cogs["swir22"], "image/tiff")]
    res = source(stub).fetch_s2(KARA, DAY_38)
    assert res.outcome == "ok" and http_server.hits[path] >= 2


@pytest.mark.live
@live
def test_live_earth_search_rumaila():
    """Real Earth Search (internet): a recent summer day over North Rumaila."""
    site = Site("rumaila-n", "North Rumaila", "Rumaila", "ROO", "Iraq", 30.63, 47.33, aoi_km=5.0)
    for day in (date(2025, 6, 1), date(2025, 6, 3), date(2025, 6, 6)):
        res = EarthSearchS2().fetch_s2(site, day)
        assert res.outcome in ("ok", "partial", "full_cloud", "no_scene", "nodata")
        if res.tile_geotiff:
            tile = decode_tile(res.tile_geotiff)
            assert tile.crs_epsg == site.utm_epsg and tile.shape == (250, 250)
            assert 0.0 < float(np.nanmedian(tile.reflectance("B11"))) < 1.0
            return
    pytest.fail("no Sentinel-2 tile over Rumaila on three June 2025 days")


def test_the_tile_records_the_items_spacecraft():
    from flarewatch.ingest.sources.s2common import spacecraft_of

    assert spacecraft_of([load_item(T38XNF)]) == "sentinel-2b"
    assert spacecraft_of([{"id": "S2A_MSIL2A_20250422T091549_N0511_R093_T38XNF", "properties": {}}]) == "S2A"
    assert spacecraft_of([{"id": "x", "properties": {}}]) is None and spacecraft_of([]) is None
