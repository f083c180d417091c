"""Source composition: per-deployment and per-site providers, lanes, and ingest_site_day storing raw objects and outcomes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from flarewatch.config import Settings
from flarewatch.ingest.sources import (
    INGEST_LANES,
    CompositeSource,
    ViirsResult,
    build_source,
    get_source,
    plan_lanes,
    pool_for,
)
from flarewatch.ingest.sources.http import PermanentSourceError, TransientSourceError
from flarewatch.ingest.sources.s2common import S2Result
from flarewatch.ingest.viirs import VNF_COLUMNS, vnf_csv_from_records
from flarewatch.sites import Site, load_sites, parse_sites_csv

REPO = Path(__file__).resolve().parents[2]
SITE = Site("site-a", "A", "F", "O", "C", 30.63, 47.33)
SITE_SH = Site("site-b", "B", "F", "O", "C", 31.29, 48.63, s2_source="sentinel-hub", viirs_source="nightfire")
DAY = date(2025, 6, 1)
FAKE_TIFF = b"II*\x00" + b"\x00" * 60


class StubS2:
    def __init__(self, result: S2Result | None = None, exc: Exception | None = None):
        self.result, self.exc, self.calls = result, exc, []

    def fetch_s2(self, site, day):
        self.calls.append((site.site_id, day))
        if self.exc:
            raise self.exc
        return self.result


class StubViirs:
    def __init__(self, result: ViirsResult | None = None, exc: Exception | None = None):
        self.result, self.exc, self.calls = result, exc, []

    def fetch_viirs(self, site, day):
        self.calls.append((site.site_id, day))
        if self.exc:
            raise self.exc
        return self.result


def s2_ok(outcome="ok", tile=FAKE_TIFF, status=None, **meta) -> S2Result:
    meta = {"collection": "sentinel-2-c1-l2a", "processing_baseline": "05.11", "cloud_fraction": 0.1,
            "valid_fraction": 1.0, "crs_epsg": 32638, "width_px": 250, "height_px": 250, **meta}
    return S2Result(tile_geotiff=tile, status=status or ("ingested" if tile else "no_data"), outcome=outcome,
                    detail=f"stub {outcome}", meta=meta,
                    raw_objects={"search/page-001.json": (b'{"type": "FeatureCollection"}', "application/geo+json"),
                                 "items/S2B_T38RQV.json": (b'{"id": "S2B_T38RQV"}', "application/json")})


def viirs_ok(rows=1, key="raw/source=firms/collection=VIIRS_NOAA20_NRT/baseline=2.0NRT/date=2025-06-01/site=x/a.csv",
             lat=30.63, lon=47.33, rh=42.0) -> ViirsResult:
    recs = [{"id_Key": f"FIRMS_{i}", "Date_Mscan": "2025/06/01 22:30:00.000", "Lat_GMTCO": lat, "Lon_GMTCO": lon,
             "RH": rh, "FW_Origin": "firms:VIIRS_NOAA20_NRT"} for i in range(rows)]
    return ViirsResult(viirs_csv=vnf_csv_from_records(recs, ["FW_Origin"]), status="ingested",
                       outcome="ok" if rows else "no_detections", detail="stub firms",
                       raw_objects={key: (b"latitude,longitude\n", "text/csv")})


def env(**kw) -> Settings:
    return Settings.from_env({k.upper(): v for k, v in kw.items()})


# -- configuration ------------------------------------------------------------------------------
def test_settings_select_providers_and_validate():
    s = Settings.from_env({})
    assert (s.scene_source, s.s2_source, s.viirs_source) == ("demo", "demo", "demo")
    s = env(flarewatch_s2_source="earth-search", flarewatch_viirs_source="firms")
    assert (s.s2_source, s.viirs_source) == ("earth-search", "firms")
    with pytest.raises(ValueError, match="FLAREWATCH_S2_SOURCE"):
        env(flarewatch_s2_source="landsat")
    with pytest.raises(ValueError, match="FLAREWATCH_VIIRS_SOURCE"):
        env(flarewatch_viirs_source="modis")
    with pytest.raises(ValueError, match="FLAREWATCH_SCENE_SOURCE"):
        env(flarewatch_scene_source="earth-search")
    with pytest.raises(ValueError, match="FLAREWATCH_FIRMS_SOURCES"):
        env(flarewatch_firms_sources="MODIS_NRT")
    with pytest.raises(ValueError, match="FLAREWATCH_VNF_URL_TEMPLATE"):
        env(flarewatch_vnf_url_template="ftp://x/{yyyymmdd}")
    with pytest.raises(ValueError, match="FLAREWATCH_HTTP_RETRIES"):
        env(flarewatch_http_retries="many")


def test_sites_csv_optional_source_columns():
    text = ("site_id,name,field,operator,country,lat,lon,s2_source,viirs_source\n"
            "a,A,F,O,C,30,47,,\nb,B,F,O,C,31,48,sentinel-hub,nightfire\n")
    a, b = parse_sites_csv(text)
    assert (a.s2_source, a.viirs_source) == ("", "")
    assert (b.s2_source, b.viirs_source) == ("sentinel-hub", "nightfire")
    with pytest.raises(ValueError, match="line 2: site a: viirs_source 'modis'"):
        parse_sites_csv("site_id,name,field,operator,country,lat,lon,viirs_source\na,A,F,O,C,30,47,modis\n")
    assert all(s.s2_source == "" for s in load_sites())  # the demo seed keeps the deployment default


def test_site_bbox_is_the_aoi():
    w, s, e, n = SITE.bbox()
    assert w < SITE.lon < e and s < SITE.lat < n
    assert (n - s) * 111.32 == pytest.approx(SITE.aoi_km)


def test_plan_lanes_and_pools():
    s = env(flarewatch_s2_source="earth-search", flarewatch_viirs_source="firms")
    demo_site = Site("d", "D", "F", "O", "C", 1, 1, s2_source="demo", viirs_source="demo")
    lanes = plan_lanes([SITE, SITE_SH, demo_site], s)
    assert lanes["demo"] == ["d"]
    assert lanes["s2_earth_search"] == ["site-a"] and lanes["viirs_firms"] == ["site-a"]
    assert lanes["s2_sentinel_hub"] == ["site-b"] and lanes["viirs_nightfire"] == ["site-b"]
    assert set(lanes) == {lane.lane for lane in INGEST_LANES}
    assert plan_lanes([SITE], Settings.from_env({}))["demo"] == ["site-a"]
    assert pool_for("firms") == "flarewatch_firms" and pool_for("nightfire") == "flarewatch_nightfire"
    assert pool_for("earth-search") == "flarewatch_earth_search" and pool_for("demo") == "default_pool"
    assert {lane.task_id for lane in INGEST_LANES} >= {"ingest", "ingest_s2_sentinel_hub", "ingest_viirs_firms"}


def test_importing_sources_is_light_and_providers_are_lazy():
    code = ("import sys; sys.path.insert(0, %r); import flarewatch.ingest.sources as s; "
            "s.build_source(s.Settings.from_env({'FLAREWATCH_S2_SOURCE': 'sentinel-hub', 'FLAREWATCH_VIIRS_SOURCE': 'firms'})); "
            "bad = [m for m in ('requests', 'pandas', 'numpy', 'sentinelhub', 'rasterio', 'airflow', "
            "'flarewatch.ingest.sources.firms', 'flarewatch.ingest.sources.sentinel_hub') if m in sys.modules]; print('BAD=' + ','.join(bad))"
            ) % str(REPO / "include")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "BAD=\n" in out.stdout or out.stdout.strip().endswith("BAD="), out.stdout


def test_get_source():
    assert get_source("demo").name == "demo"
    assert isinstance(get_source("composite"), CompositeSource)
    with pytest.raises(ValueError, match="known sources"):
        get_source("landsat")


# -- composition ----------------------------------------------------------------------------------
def test_both_demo_is_exactly_the_demo_source():
    from flarewatch.ingest.sources.demo import DemoSource

    site = load_sites()[0]
    got = build_source(Settings.from_env({})).fetch(site, DAY)
    want = DemoSource().fetch(site, DAY)
    assert got.source == "demo" and got.tile_geotiff == want.tile_geotiff and got.viirs_csv == want.viirs_csv
    assert got.truth == want.truth and got.raw_objects == {}


def test_per_site_overrides_route_to_their_providers():
    stubs = {"earth-search": StubS2(s2_ok()), "sentinel-hub": StubS2(s2_ok("partial", collection="sentinel-2-l2a",
                                                                          processing_baseline="05.10")),
             "firms": StubViirs(viirs_ok()), "nightfire": StubViirs(viirs_ok(0))}
    src = build_source(env(flarewatch_s2_source="earth-search", flarewatch_viirs_source="firms"), providers=stubs)

    a = src.fetch(SITE, DAY)
    assert (a.s2_source, a.viirs_source, a.source) == ("earth-search", "firms", "earth-search+firms")
    assert a.tile_geotiff == FAKE_TIFF and a.s2_outcome == "ok" and a.viirs_outcome == "ok"
    assert ("raw/source=earth-search/collection=sentinel-2-c1-l2a/baseline=05.11/date=2025-06-01/site=site-a/"
            "search/page-001.json") in a.raw_objects
    assert any(k.startswith("raw/source=firms/") for k in a.raw_objects)

    b = src.fetch(SITE_SH, DAY)
    assert (b.s2_source, b.viirs_source) == ("sentinel-hub", "nightfire")
    assert b.s2_outcome == "partial" and b.viirs_outcome == "no_detections"
    assert ("raw/source=sentinel-hub/collection=sentinel-2-l2a/baseline=05.10/date=2025-06-01/site=site-b/"
            "items/S2B_T38RQV.json") in b.raw_objects
    assert stubs["earth-search"].calls == [("site-a", DAY)] and stubs["sentinel-hub"].calls == [("site-b", DAY)]
    assert stubs["firms"].calls == [("site-a", DAY)] and stubs["nightfire"].calls == [("site-b", DAY)]


def test_demo_tile_with_real_viirs_and_sensor_subsets():
    firms = StubViirs(viirs_ok())
    src = build_source(env(flarewatch_viirs_source="firms"), providers={"firms": firms})
    site = load_sites()[0]
    both = src.fetch(site, DAY)
    assert both.s2_source == "demo" and both.tile_geotiff and both.truth is not None
    assert both.viirs_source == "firms" and both.viirs_csv.startswith(",".join(VNF_COLUMNS))
    only_s2 = src.fetch(site, DAY, sensors=("sentinel2",))
    assert only_s2.viirs_csv is None and len(firms.calls) == 1
    only_viirs = src.fetch(site, DAY, sensors=("viirs",))
    assert only_viirs.tile_geotiff is None and only_viirs.truth is None and len(firms.calls) == 2
    with pytest.raises(ValueError, match="unknown sensors"):
        src.fetch(site, DAY, sensors=("landsat",))


def test_fetch_errors_are_kept_per_sensor():
    boom = PermanentSourceError("sentinel-hub: HTTP 401; check the credentials", provider="sentinel-hub", status=401)
    src = build_source(env(flarewatch_s2_source="sentinel-hub", flarewatch_viirs_source="firms"),
                       providers={"sentinel-hub": StubS2(exc=boom), "firms": StubViirs(viirs_ok())})
    data = src.fetch(SITE, DAY)
    assert data.errors == {"sentinel2": boom} and data.viirs_outcome == "ok"


# -- ingest_site_day on the real Postgres + S3 ------------------------------------------------
@pytest.mark.integration
class TestIngest:
    DAY = date(2025, 7, 15)

    @pytest.fixture
    def site(self, conn):
        from flarewatch.store import db

        return db.fetch_sites(conn, ["parshall"])[0]

    def scenes(self, conn, site):
        with conn.cursor() as cur:
            cur.execute("SELECT sensor, source, status, outcome, s3_key, n_records, cloud_fraction, detail FROM scenes"
                        " WHERE site_id = %s AND acquisition_date = %s ORDER BY sensor, source", (site.site_id, self.DAY))
            rows = cur.fetchall()
        conn.commit()
        return rows

    def test_raw_objects_and_outcomes_are_stored(self, conn, s3, site):
        from flarewatch.ingest.site_day import ingest_site_day
        from flarewatch.store import objects as storage

        cfg = env(flarewatch_s2_source="earth-search", flarewatch_viirs_source="firms")
        s2 = s2_ok("full_cloud", tile=None, cloud_fraction=1.0)
        vkey = f"raw/source=firms/collection=VIIRS_NOAA20_NRT/baseline=2.0NRT/date={self.DAY}/site=parshall/a.csv"
        src = build_source(cfg, providers={"earth-search": StubS2(s2), "firms": StubViirs(viirs_ok(2, key=vkey))})
        summary = ingest_site_day(site, self.DAY, src, s3, conn, cfg)

        rows = self.scenes(conn, site)
        assert [r[:4] for r in rows] == [("sentinel2", "earth-search", "no_data", "full_cloud"),
                                         ("viirs", "firms", "ingested", "ok")]
        assert rows[0][6] == 1.0 and rows[0][7] == "stub full_cloud" and rows[1][5] == 2
        assert rows[1][4] == storage.raw_viirs_key("firms", self.DAY, "parshall") == summary["viirs"]
        prefix = f"raw/source=earth-search/collection=sentinel-2-c1-l2a/baseline=05.11/date={self.DAY}/site=parshall/"
        assert storage.get_bytes(s3, "rawdata", prefix + "items/S2B_T38RQV.json") == b'{"id": "S2B_T38RQV"}'
        assert storage.get_bytes(s3, "rawdata", vkey) == b"latitude,longitude\n"
        assert set(summary["raw"]) == {prefix + "search/page-001.json", prefix + "items/S2B_T38RQV.json", vkey}
        assert summary["outcomes"] == {"sentinel2": "full_cloud", "viirs": "ok"}

        before = len(storage.list_keys(s3, "rawdata", "raw/"))
        ingest_site_day(site, self.DAY, src, s3, conn, cfg)  # a rerun changes nothing
        assert len(storage.list_keys(s3, "rawdata", "raw/")) == before and len(self.scenes(conn, site)) == 2

    def test_partial_tile_is_ingested_with_its_outcome(self, conn, s3, site):
        from flarewatch.ingest.site_day import ingest_site_day

        cfg = env(flarewatch_s2_source="earth-search", flarewatch_viirs_source="firms")
        src = build_source(cfg, providers={"earth-search": StubS2(s2_ok("partial", valid_fraction=0.4))})
        out = ingest_site_day(site, self.DAY, src, s3, conn, cfg, sensors=("sentinel2",))
        rows = self.scenes(conn, site)
        assert rows[0][:4] == ("sentinel2", "earth-search", "ingested", "partial") and rows[0][4] == out["sentinel2"]
        assert "viirs" not in out  # only the sensor asked for

    def test_fetch_error_is_recorded_then_raised(self, conn, s3, site):
        from flarewatch.ingest.site_day import ingest_site_day

        cfg = env(flarewatch_s2_source="sentinel-hub", flarewatch_viirs_source="firms")
        boom = PermanentSourceError("sentinel-hub: HTTP 401; check the credentials in Airflow connection "
                                    "'flarewatch_sentinelhub'", provider="sentinel-hub", status=401)
        flaky = TransientSourceError("firms: HTTP 503 after retries", provider="firms", status=503)
        src = build_source(cfg, providers={"sentinel-hub": StubS2(exc=boom), "firms": StubViirs(exc=flaky)})
        with pytest.raises(PermanentSourceError, match="flarewatch_sentinelhub"):  # permanent wins
            ingest_site_day(site, self.DAY, src, s3, conn, cfg)
        rows = {r[0]: r for r in self.scenes(conn, site)}
        assert rows["sentinel2"][1:4] == ("sentinel-hub", "failed", "error") and "401" in rows["sentinel2"][7]
        assert rows["viirs"][1:4] == ("firms", "failed", "error") and "503" in rows["viirs"][7]

    def test_moving_provider_keeps_one_row_per_sensor(self, conn, s3, site):
        from flarewatch.ingest.site_day import ingest_site_day

        demo_cfg = Settings.from_env({})
        ingest_site_day(site, self.DAY, build_source(demo_cfg), s3, conn, demo_cfg)
        assert {(r[0], r[1]) for r in self.scenes(conn, site)} == {("sentinel2", "demo"), ("viirs", "demo")}
        cfg = env(flarewatch_viirs_source="firms")
        ingest_site_day(site, self.DAY, build_source(cfg, providers={"firms": StubViirs(viirs_ok())}), s3, conn, cfg,
                        sensors=("viirs",))
        assert {(r[0], r[1]) for r in self.scenes(conn, site)} == {("sentinel2", "demo"), ("viirs", "firms")}

    def test_firms_rows_flow_through_processing(self, conn, s3, site):
        """FIRMS rows have no temperature: processing must still use them (flare_like on RH)."""
        from flarewatch.ingest.site_day import ingest_site_day
        from flarewatch.process.site_day import process_site_day

        w, s, e, n = site.bbox()
        lat, lon = s + 0.1 * (n - s), w + 0.1 * (e - w)  # an AOI corner, away from the demo's flares
        cfg = env(flarewatch_viirs_source="firms", flarewatch_detector="threshold")
        src = build_source(cfg, providers={"firms": StubViirs(viirs_ok(1, lat=lat, lon=lon, rh=42.0))})
        ingest_site_day(site, self.DAY, src, s3, conn, cfg)
        result = process_site_day(site, self.DAY, s3, conn, cfg)
        assert result["n_viirs_only"] >= 1
        with conn.cursor() as cur:
            cur.execute("SELECT d.viirs_rh_mw, d.viirs_temp_k, e.rh_source FROM flare_detections d JOIN flare_emissions e"
                        " USING (site_id, acquisition_date, detection_key)"
                        " WHERE d.site_id = %s AND d.acquisition_date = %s AND d.sensor = 'viirs'", (site.site_id, self.DAY))
            rows = cur.fetchall()
        conn.commit()
        assert (42.0, None, "viirs") in rows


@pytest.mark.integration
def test_localstack_creates_the_provider_pools(airflow_env, tmp_path):
    import os

    from flarewatch.dev.localstack import StackPaths, ensure_pools
    from flarewatch.ingest.sources import PROVIDER_POOLS

    paths = StackPaths(tmp_path)
    paths.airflow_home.mkdir(parents=True)
    airflow = str(Path(sys.executable).parent / "airflow")
    logged = []
    ensure_pools(paths, airflow, dict(os.environ), logged.append)
    ensure_pools(paths, airflow, dict(os.environ), logged.append)  # unchanged spec: no second CLI call
    assert len(logged) == 1
    out = subprocess.run([airflow, "pools", "list", "--output", "json"], capture_output=True, text=True, env=os.environ)
    pools = {p["pool"]: int(p["slots"]) for p in json.loads(out.stdout[out.stdout.index("[{"):])}
    for name, slots, _ in PROVIDER_POOLS.values():
        assert pools[name] == slots


def test_real_s2_providers_are_built_from_settings(monkeypatch):
    cfg = env(flarewatch_s2_source="earth-search", flarewatch_earth_search_url="http://127.0.0.1:1/v1",
              flarewatch_earth_search_collection="sentinel-2-l2a", flarewatch_s2_max_cloud="30")
    es = build_source(cfg).provider("earth-search")
    assert (es.stac_url, es.collection, es.max_cloud) == ("http://127.0.0.1:1/v1", "sentinel-2-l2a", 30.0)
    assert es.session is not None

    monkeypatch.setenv("AIRFLOW_CONN_FLAREWATCH_SENTINELHUB",
                       '{"conn_type": "http", "login": "cid", "password": "csecret-123", "host": "https://sh.example"}')
    sh = build_source(env(flarewatch_s2_max_cloud="30")).provider("sentinel-hub")
    assert (sh.client_id, sh.base_url, sh.max_cloud) == ("cid", "https://sh.example", 30.0)
    monkeypatch.delenv("AIRFLOW_CONN_FLAREWATCH_SENTINELHUB")
    with pytest.raises(PermanentSourceError, match="flarewatch_sentinelhub"):
        build_source(Settings.from_env({})).provider("sentinel-hub")
