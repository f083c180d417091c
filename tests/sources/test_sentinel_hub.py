"""Sentinel Hub Sentinel-2 source (sentinelhub-py) against a local stand-in: token, catalog, process."""

from __future__ import annotations

import json
import os
from datetime import date

import numpy as np
import pytest
from s2_server import (
    T01WCR,
    T38XNF,
    SentinelHubStub,
    item_day,
    live,
    load_item,
    process_tiff,
    sh_feature,
)

from flarewatch.ingest.sources.http import PermanentSourceError, TransientSourceError
from flarewatch.ingest.sources.s2common import site_window
from flarewatch.ingest.sources.sentinel_hub import (
    CDSE_BASE_URL,
    CDSE_TOKEN_URL,
    COMMERCIAL_BASE_URL,
    COMMERCIAL_TOKEN_URL,
    SentinelHubS2,
)
from flarewatch.simulation.scene import simulate_scene
from flarewatch.sites import Site
from flarewatch.tiles import decode_tile

SITE = Site("kara-1", "Kara test pad", "test", "test", "RU", 72.90, 47.90, aoi_km=3.0)
DAY = item_day(load_item(T38XNF))  # 2025-04-22
PRODUCT = "S2B_MSIL2A_20250422T091559_N0511_R093_T38XNF_20250422T101110"


@pytest.fixture(autouse=True)
def _oauth_over_plain_http(monkeypatch):
    """oauthlib refuses a token URL without TLS; the local stand-in speaks plain HTTP."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def source(stub, **kw) -> SentinelHubS2:
    return SentinelHubS2(client_id=stub.client_id, client_secret=stub.client_secret, base_url=stub.base_url,
                         token_url=stub.token_url, max_attempts=3, retry_sleep_s=0.01, rate_limit_wait_s=0.01, **kw)


def stub_with_scene(http_server, **tiff_kw) -> SentinelHubStub:
    stub = SentinelHubStub(http_server)
    stub.features = [sh_feature(load_item(T38XNF), cloud_cover=20.0)]
    stub.process_tiff = process_tiff(SITE, DAY, **tiff_kw)
    return stub


def test_l2a_catalog_then_process_round_trip(http_server):
    stub = stub_with_scene(http_server)
    res = source(stub).fetch_s2(SITE, DAY)

    sim = simulate_scene(SITE, DAY).tile
    assert (res.status, res.outcome) == ("ingested", "ok"), res.detail
    tile = decode_tile(res.tile_geotiff)
    win = site_window(SITE)
    assert tile.crs_epsg == 32638 and tile.transform == win.transform and tile.shape == (150, 150)
    np.testing.assert_array_equal(tile.dn, sim.dn)
    np.testing.assert_array_equal(tile.cloud_mask, sim.cloud_mask & sim.valid)
    assert tile.sun_zenith_deg == pytest.approx(sim.sun_zenith_deg, abs=0.01)
    m = res.meta
    assert m["item_ids"] == [PRODUCT] and m["processing_baseline"] == "05.11"  # from the product name
    assert m["collection"] == "sentinel-2-l2a" and m["cloud_fraction"] == pytest.approx(
        float(sim.cloud_mask[sim.valid].mean()), abs=1e-4)

    # one token for the whole fetch, sent as a bearer token to both APIs
    assert stub.tokens_issued == 1
    catalog = stub.catalog_bodies[0]
    assert catalog["collections"] == ["sentinel-2-l2a"]
    assert catalog["datetime"] == "2025-04-22T00:00:00Z/2025-04-22T23:59:59.999000Z"
    west, south, east, north = catalog["bbox"]
    assert west < SITE.lon < east and south < SITE.lat < north
    body = stub.process_bodies[0]
    data = body["input"]["data"][0]
    assert data["type"] == "sentinel-2-l2a"
    assert data["dataFilter"]["maxCloudCoverage"] == 80 and data["dataFilter"]["mosaickingOrder"] == "leastCC"
    assert data["dataFilter"]["timeRange"] == {"from": "2025-04-22T09:17:42.556000Z", "to": "2025-04-22T09:21:42.556000Z"}
    assert body["input"]["bounds"]["properties"]["crs"] == "http://www.opengis.net/def/crs/EPSG/0/32638"
    assert body["input"]["bounds"]["bbox"] == list(win.bounds)
    assert (body["output"]["width"], body["output"]["height"]) == (150, 150)  # 20 m
    assert body["output"]["responses"] == [{"identifier": "default", "format": {"type": "image/tiff"}}]
    script = body["evalscript"]
    assert '"B8A", "B11", "B12", "SCL", "dataMask", "sunZenithAngles"' in script and "UINT16" in script

    assert res.raw_objects["process/response.tif"] == (stub.process_tiff, "image/tiff")
    assert json.loads(res.raw_objects["catalog/page-001.json"][0])["features"][0]["id"] == PRODUCT
    assert json.loads(res.raw_objects["process/request.json"][0])["evalscript"] == script
    # rebuilt offline from the raw objects
    http_server.close()
    again = SentinelHubS2(client_id="x", client_secret="y").from_raw(SITE, DAY, res.raw_objects)
    np.testing.assert_array_equal(decode_tile(again.tile_geotiff).dn, tile.dn)


def test_l1c_asks_for_clm_and_uses_it_as_cloud_mask(http_server):
    stub = stub_with_scene(http_server, cloud_band="CLM")
    res = source(stub, collection="l1c").fetch_s2(SITE, DAY)
    sim = simulate_scene(SITE, DAY).tile
    assert res.outcome == "ok" and res.meta["collection"] == "sentinel-2-l1c"
    assert stub.catalog_bodies[0]["collections"] == ["sentinel-2-l1c"]
    body = stub.process_bodies[0]
    assert body["input"]["data"][0]["type"] == "sentinel-2-l1c"
    assert '"CLM"' in body["evalscript"] and "SCL" not in body["evalscript"]
    np.testing.assert_array_equal(decode_tile(res.tile_geotiff).cloud_mask, sim.cloud_mask & sim.valid)


def test_cloud_band_none_for_deployments_without_clm(http_server):
    stub = stub_with_scene(http_server, cloud_band="none")
    res = source(stub, collection="l1c", cloud_band="none").fetch_s2(SITE, DAY)
    assert res.outcome == "ok" and "no cloud mask" in res.detail
    assert '"CLM"' not in stub.process_bodies[0]["evalscript"]
    assert decode_tile(res.tile_geotiff).cloud_mask is None


def test_cdse_and_commercial_endpoints():
    cdse = SentinelHubS2(client_id="a", client_secret="s3cr3t-value")
    assert (cdse.base_url, cdse.token_url) == (CDSE_BASE_URL, CDSE_TOKEN_URL)
    commercial = SentinelHubS2(client_id="a", client_secret="b", base_url=COMMERCIAL_BASE_URL, collection="l1c")
    assert commercial.token_url == COMMERCIAL_TOKEN_URL
    feature = sh_feature(load_item(T38XNF))
    win = site_window(SITE)
    # the Process API goes to the configured deployment (sentinelhub's SENTINEL2_* default to the commercial one)
    assert cdse._process_request(win, [feature]).download_list[0].url == f"{CDSE_BASE_URL}/api/v1/process"
    assert commercial._process_request(win, [feature]).download_list[0].url == f"{COMMERCIAL_BASE_URL}/api/v1/process"
    config = cdse._config()
    assert (config.sh_base_url, config.sh_token_url, config.sh_client_id) == (CDSE_BASE_URL, CDSE_TOKEN_URL, "a")
    assert "s3cr3t" not in repr(cdse)


def test_catalog_pagination_follows_context_next(http_server):
    stub = stub_with_scene(http_server)
    elsewhere = sh_feature(load_item(T01WCR))
    elsewhere["id"] = "S2B_MSIL2A_20250422T000609_N0511_R016_T01WCR_20250422T002229"
    elsewhere["properties"]["datetime"] = load_item(T38XNF)["properties"]["datetime"]
    stub.features.insert(0, elsewhere)
    stub.page_size = 1
    res = source(stub).fetch_s2(SITE, DAY)
    assert res.outcome == "ok" and res.meta["item_ids"] == [PRODUCT]
    assert [b.get("next") for b in stub.catalog_bodies] == [None, 1]
    assert {"catalog/page-001.json", "catalog/page-002.json"} <= set(res.raw_objects)


def test_no_scene_skips_the_process_api(http_server):
    stub = stub_with_scene(http_server)
    res = source(stub).fetch_s2(SITE, date(2025, 4, 23))
    assert (res.status, res.outcome, res.tile_geotiff) == ("no_data", "no_scene", None)
    assert res.detail == "no sentinel-2-l2a item covers kara-1 on 2025-04-23 (searched 1 page, 0 items)"
    assert stub.process_bodies == []


def test_granules_above_max_cloud_are_full_cloud_without_processing(http_server):
    stub = stub_with_scene(http_server)
    stub.features = [sh_feature(load_item(T38XNF))]  # eo:cloud_cover 91.1
    res = source(stub).fetch_s2(SITE, DAY)
    assert (res.status, res.outcome) == ("no_data", "full_cloud")
    assert "max_cloud 80 %" in res.detail and stub.process_bodies == []


def test_full_cloud_partial_and_nodata_outcomes(http_server):
    win = site_window(SITE)
    stub = stub_with_scene(http_server, cloud=np.ones((win.height, win.width), bool))
    res = source(stub).fetch_s2(SITE, DAY)
    assert (res.status, res.outcome, res.meta["cloud_fraction"]) == ("ingested", "full_cloud", 1.0)

    west = np.zeros((win.height, win.width), bool)
    west[:, : win.width * 2 // 5] = True
    stub.process_tiff = process_tiff(SITE, DAY, drop=west)
    res = source(stub).fetch_s2(SITE, DAY)
    assert (res.status, res.outcome) == ("ingested", "partial")
    assert res.meta["valid_fraction"] == pytest.approx(0.6, abs=0.01)
    assert decode_tile(res.tile_geotiff).valid[:, :60].sum() == 0

    stub.process_tiff = process_tiff(SITE, DAY, nodata_all=True)
    res = source(stub).fetch_s2(SITE, DAY)
    assert (res.status, res.outcome, res.tile_geotiff) == ("no_data", "nodata", None)
    assert "process/response.tif" in res.raw_objects


def test_bad_credentials_fail_fast_with_a_clear_message(http_server):
    stub = stub_with_scene(http_server)
    bad = SentinelHubS2(client_id=stub.client_id, client_secret="wrong", base_url=stub.base_url,
                        token_url=stub.token_url, max_attempts=3, retry_sleep_s=0.01)
    with pytest.raises(PermanentSourceError) as err:
        bad.fetch_s2(SITE, DAY)
    msg = str(err.value)
    assert "authentication at" in msg and "invalid_client" in msg and "'flarewatch_sentinelhub'" in msg
    assert err.value.status == 401 and "wrong" not in msg
    assert http_server.hits[stub.TOKEN] == 1 and not stub.catalog_bodies


def test_missing_credentials_are_permanent():
    with pytest.raises(PermanentSourceError, match="flarewatch_sentinelhub"):
        SentinelHubS2(client_id="", client_secret="")


def test_process_503_is_retried(http_server):
    stub = stub_with_scene(http_server)
    http_server.routes[stub.PROCESS] = [503, 502, stub.process]
    res = source(stub).fetch_s2(SITE, DAY)
    assert res.outcome == "ok" and http_server.hits[stub.PROCESS] == 3


def test_process_5xx_until_attempts_run_out_is_transient(http_server):
    stub = stub_with_scene(http_server)
    http_server.routes[stub.PROCESS] = (503, '{"error": {"status": 503, "reason": "Service Unavailable"}}')
    with pytest.raises(TransientSourceError, match="HTTP 503") as err:
        source(stub).fetch_s2(SITE, DAY)
    assert err.value.status == 503 and http_server.hits[stub.PROCESS] == 3  # max_attempts


@pytest.mark.filterwarnings("ignore:Download rate limit hit")
def test_rate_limit_429_waits_and_retries(http_server):
    stub = stub_with_scene(http_server)
    http_server.routes[stub.CATALOG] = [(429, "slow down", {"Retry-After": "20"}), stub.catalog]  # ms
    res = source(stub).fetch_s2(SITE, DAY)
    assert res.outcome == "ok" and http_server.hits[stub.CATALOG] == 2


@pytest.mark.filterwarnings("ignore:Download rate limit hit")
def test_rate_limit_429_forever_is_transient(http_server):
    stub = stub_with_scene(http_server)
    http_server.routes[stub.PROCESS] = (429, "slow down", {"Retry-After": "10"})
    with pytest.raises(TransientSourceError, match="429"):
        source(stub, max_rate_limit_retries=3).fetch_s2(SITE, DAY)
    assert http_server.hits[stub.PROCESS] == 3


def test_process_400_is_permanent_with_the_service_message(http_server):
    stub = stub_with_scene(http_server)
    http_server.routes[stub.PROCESS] = (400, '{"error": {"status": 400, "reason": "Bad Request", '
                                             '"message": "Invalid script! Band CLM not available"}}')
    with pytest.raises(PermanentSourceError, match="HTTP 400.*Band CLM not available"):
        source(stub).fetch_s2(SITE, DAY)
    assert http_server.hits[stub.PROCESS] == 1


def test_token_5xx_is_retried(http_server):
    stub = stub_with_scene(http_server)
    http_server.routes[stub.TOKEN] = [502, stub.token]
    assert source(stub).fetch_s2(SITE, DAY).outcome == "ok"
    assert http_server.hits[stub.TOKEN] == 2


def test_from_airflow_connection(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_FLAREWATCH_SENTINELHUB", json.dumps({
        "conn_type": "http", "login": "client-1", "password": "secret-1", "host": "services.sentinel-hub.com",
        "extra": {"collection": "l1c", "max_cloud": 50}}))
    src = SentinelHubS2.from_airflow_connection()
    assert (src.client_id, src.base_url, src.token_url) == ("client-1", COMMERCIAL_BASE_URL, COMMERCIAL_TOKEN_URL)
    assert (src.level, src.max_cloud, src.cloud_band) == ("l1c", 50.0, "CLM")
    assert SentinelHubS2.from_airflow_connection(max_cloud=20).max_cloud == 20.0

    monkeypatch.setenv("AIRFLOW_CONN_FLAREWATCH_SENTINELHUB", json.dumps({
        "conn_type": "http", "login": "client-2", "password": "secret-2"}))
    src = SentinelHubS2.from_airflow_connection()
    assert (src.base_url, src.token_url, src.level) == (CDSE_BASE_URL, CDSE_TOKEN_URL, "l2a")

    monkeypatch.setenv("AIRFLOW_CONN_FLAREWATCH_SENTINELHUB", json.dumps({"conn_type": "http", "login": "client-3"}))
    with pytest.raises(PermanentSourceError, match="password"):
        SentinelHubS2.from_airflow_connection()
    with pytest.raises(PermanentSourceError, match="AIRFLOW_CONN_FLAREWATCH_NOPE"):
        SentinelHubS2.from_airflow_connection("flarewatch_nope")


@pytest.mark.live
@live
def test_live_sentinel_hub_rumaila():
    """Real Sentinel Hub (CDSE unless FLAREWATCH_SH_BASE_URL): needs FLAREWATCH_SH_CLIENT_ID/_SECRET."""
    cid, secret = os.environ.get("FLAREWATCH_SH_CLIENT_ID"), os.environ.get("FLAREWATCH_SH_CLIENT_SECRET")
    if not (cid and secret):
        pytest.skip("set FLAREWATCH_SH_CLIENT_ID and FLAREWATCH_SH_CLIENT_SECRET")
    site = Site("rumaila-n", "North Rumaila", "Rumaila", "ROO", "Iraq", 30.63, 47.33, aoi_km=5.0)
    src = SentinelHubS2(client_id=cid, client_secret=secret,
                        base_url=os.environ.get("FLAREWATCH_SH_BASE_URL", CDSE_BASE_URL))
    for day in (date(2025, 6, 1), date(2025, 6, 3), date(2025, 6, 6)):
        res = src.fetch_s2(site, day)
        if res.tile_geotiff:
            tile = decode_tile(res.tile_geotiff)
            assert tile.crs_epsg == site.utm_epsg and tile.shape == (250, 250)
            assert 0.0 < float(np.nanmedian(tile.reflectance("B11"))) < 1.0
            return
    pytest.fail("no Sentinel-2 tile over Rumaila on three June 2025 days")
