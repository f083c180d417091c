"""VIIRS Nightfire nightly files: gzip, token auth, fill values, flare filter, AOI clip, shared per-night cache.

The VNF licence forbids shipping real rows: every row here is synthetic, in the domain.md schema.
"""

from __future__ import annotations

import gzip
from datetime import UTC, date

import pytest

from flarewatch.config import Settings
from flarewatch.ingest.sources.http import PermanentSourceError
from flarewatch.ingest.sources.nightfire import (
    NightfireSource,
    collection_and_baseline,
    decode_vnf_bytes,
    file_url,
)
from flarewatch.ingest.viirs import parse_vnf_csv, vnf_csv_from_records
from flarewatch.sites import Site

SITE = Site("rumaila-n", "North Rumaila", "Rumaila", "ROO", "Iraq", 30.630, 47.330, aoi_km=5.0)
SITE2 = Site("rumaila-s", "South Rumaila", "Rumaila", "ROO", "Iraq", 30.400, 47.400, aoi_km=5.0)
DAY = date(2025, 6, 1)  # night window at 47.33 E: 2025-06-01 14:50 .. 2025-06-02 02:50 UTC
TOKEN = "tok-abc-123"


def vnf_row(n, lat=30.631, lon=47.332, when="2025/06/01 22:21:05.120", temp=1850, rh=7.5, area=0.9, qf_fit=1, **kw):
    row = {"id_Key": f"SYN_npp_{n:04d}", "Date_Mscan": when, "Lat_GMTCO": lat, "Lon_GMTCO": lon, "Temp_BB": temp,
           "Temp_Bkg": 295, "ESF_BB": 0.0011, "RHI": 12.0, "RH": rh, "Area_Pixel": 0.55, "Area_BB": area,
           "Cloud_Mask": 0, "QF_Detect": 1, "QF_Fit": qf_fit, "Rad_M07": 999999, "Rad_M08": 0.31, "Rad_M10": 1.2,
           "Rad_M12": 0.8, "Rad_M13": 0.9, "Rad_M14": 999999, "Rad_M15": 8.1, "Rad_M16": 7.2}
    return {**row, **kw}


FILE_0601 = [
    vnf_row(1),                                                   # flare in the AOI at night: kept
    vnf_row(2, temp=950, rh=3.0),                                 # biomass fire (< 1200 K): dropped
    vnf_row(3, lat=31.5),                                         # flare outside the AOI: dropped
    vnf_row(4, when="2025/06/01 10:30:00.000"),                   # before the night window: dropped
    vnf_row(5, temp=999999, rh=999999, area=999999),              # Planck fit failed (fill values): dropped
    vnf_row(6, qf_fit=7),                                         # QF_Fit excluded by configuration: dropped
    vnf_row(7, lat=30.401, lon=47.399),                           # flare at SITE2: kept for SITE2
]
FILE_0602 = [
    vnf_row(8, lat=30.629, lon=47.328, when="2025/06/02 00:40:00.500", rh=2.25),  # same night, next UTC file
    vnf_row(9, when="2025/06/02 22:10:00.000"),                   # the next night: dropped
]


def gz(rows) -> bytes:
    return gzip.compress(vnf_csv_from_records(rows).encode(), mtime=0)  # deterministic bytes


def serve(http_server, files: dict, token: str | None = TOKEN):
    """Serve ``/vnf/VNF_npp_d<yyyymmdd>_noaa_v30-ez.csv.gz`` (404 when absent), requiring the token."""
    def handle(req):
        if token and req.headers.get("Authorization") != f"Bearer {token}":
            return http_server.Reply(401, '{"error": "invalid token"}')
        name = req.path.rsplit("/", 1)[-1]
        ymd = name.split("_d", 1)[1][:8]
        if ymd not in files:
            return http_server.Reply(404, "Not Found")
        return http_server.Reply(200, files[ymd], {"Content-Type": "application/gzip"})

    http_server.routes["/vnf/*"] = handle


def settings(http_server, **env) -> Settings:
    return Settings.from_env({
        "FLAREWATCH_VIIRS_SOURCE": "nightfire",
        "FLAREWATCH_VNF_URL_TEMPLATE": http_server.url + "/vnf/{yyyy}/VNF_npp_d{yyyymmdd}_noaa_v30-ez.csv.gz",
        "FLAREWATCH_VNF_QF_FIT_EXCLUDE": "7,8", "FLAREWATCH_HTTP_BACKOFF_S": "0.01", **env})


class MemoryStore:
    """storage.RawStore stand-in."""

    def __init__(self):
        self.objects, self.puts = {}, []

    def get(self, key):
        return self.objects.get(key)

    def put(self, key, data, content_type="application/octet-stream"):
        self.objects[key] = data
        self.puts.append(key)


def test_url_template_and_file_name_parts():
    t = "https://eogdata.example/vnf/{yyyy}/{mm}/VNF_j01_d{yyyymmdd}_noaa_v30-ez.csv.gz?doy={doy}&d={date}"
    assert file_url(t, date(2025, 2, 3)) == \
        "https://eogdata.example/vnf/2025/02/VNF_j01_d20250203_noaa_v30-ez.csv.gz?doy=034&d=2025-02-03"
    assert collection_and_baseline("VNF_j01_d20250203_noaa_v30-ez.csv.gz") == ("VNF_j01", "v30")
    assert collection_and_baseline("nightly.csv") == ("VNF", "na")
    with pytest.raises(ValueError, match="placeholder"):
        file_url("https://x/{day}.csv", date(2025, 1, 1))
    assert decode_vnf_bytes(gzip.compress(b"a,b\n")) == decode_vnf_bytes(b"a,b\n") == "a,b\n"


def test_fetch_clips_filters_and_keeps_cells_unchanged(http_server):
    serve(http_server, {"20250601": gz(FILE_0601), "20250602": gz(FILE_0602)})
    store = MemoryStore()
    src = NightfireSource(settings(http_server), raw_store=store, token=TOKEN)
    res = src.fetch_viirs(SITE, DAY)

    assert res.status == "ingested" and res.outcome == "ok"
    df = parse_vnf_csv(res.viirs_csv)
    assert df["id_Key"].tolist() == ["SYN_npp_0001", "SYN_npp_0008"]  # both UTC files of the night
    assert df["Rad_M07"].isna().all()  # fill value 999999 -> NaN when parsed ...
    assert ",999999," in res.viirs_csv.splitlines()[1]  # ... and the cells are copied unchanged
    assert res.meta["rows_in_aoi_window"] == 4  # rows 1, 2, 5 and 8 (6: QF_Fit excluded); flare-like: 1 and 8
    # every request carried the bearer token
    assert {r.headers.get("Authorization") for r in http_server.requests} == {f"Bearer {TOKEN}"}
    # the nightly files are stored unchanged, once, keyed by night (no site in the key)
    assert sorted(store.objects) == [
        "raw/source=nightfire/collection=VNF_npp/baseline=v30/date=2025-06-01/VNF_npp_d20250601_noaa_v30-ez.csv.gz",
        "raw/source=nightfire/collection=VNF_npp/baseline=v30/date=2025-06-02/VNF_npp_d20250602_noaa_v30-ez.csv.gz",
    ]
    assert store.objects[res.raw_keys[0]] == gz(FILE_0601)
    assert res.raw_objects == {}  # already in rawdata: ingest does not store them again


def test_qf_exclusion_is_configuration(http_server):
    serve(http_server, {"20250601": gz(FILE_0601), "20250602": gz(FILE_0602)})
    s = settings(http_server, FLAREWATCH_VNF_QF_FIT_EXCLUDE="")
    ids = parse_vnf_csv(NightfireSource(s, token=TOKEN).fetch_viirs(SITE, DAY).viirs_csv)["id_Key"].tolist()
    assert ids == ["SYN_npp_0001", "SYN_npp_0006", "SYN_npp_0008"]


def test_one_download_per_night_shared_by_sites_and_runs(http_server):
    serve(http_server, {"20250601": gz(FILE_0601), "20250602": gz(FILE_0602)})
    store = MemoryStore()
    first = NightfireSource(settings(http_server), raw_store=store, token=TOKEN)
    a = first.fetch_viirs(SITE, DAY)
    b = first.fetch_viirs(SITE2, DAY)
    assert parse_vnf_csv(b.viirs_csv)["id_Key"].tolist() == ["SYN_npp_0007"]
    assert first.downloads == 2 and len(http_server.requests) == 2
    # another task (a new source object) reads the night back from rawdata: no download, no token read
    later = NightfireSource(settings(http_server), raw_store=store)
    c = later.fetch_viirs(SITE, DAY)
    assert later.downloads == 0 and len(http_server.requests) == 2 and not later._token_loaded
    assert c.viirs_csv == a.viirs_csv and len(store.puts) == 2


def test_missing_nights_are_outcomes_not_failures(http_server):
    serve(http_server, {"20250601": gz(FILE_0601)})  # the 2025-06-02 file is not published yet
    res = NightfireSource(settings(http_server), token=TOKEN).fetch_viirs(SITE, DAY)
    assert res.status == "ingested" and res.outcome == "partial" and "2025-06-02" in res.detail
    assert parse_vnf_csv(res.viirs_csv)["id_Key"].tolist() == ["SYN_npp_0001"]
    # without a raw store the source hands the file to ingest_site_day to store
    assert list(res.raw_objects) == res.raw_keys

    serve(http_server, {})
    res = NightfireSource(settings(http_server), token=TOKEN).fetch_viirs(SITE, DAY)
    assert res.viirs_csv is None and res.status == "no_data" and res.outcome == "nodata"


def test_no_flare_in_the_aoi(http_server):
    serve(http_server, {"20250601": gz([vnf_row(1, lat=10.0)]), "20250602": gz([])})
    res = NightfireSource(settings(http_server), token=TOKEN).fetch_viirs(SITE, DAY)
    assert res.outcome == "no_detections" and parse_vnf_csv(res.viirs_csv).empty


def test_bad_token_fails_fast_naming_the_connection(http_server):
    serve(http_server, {"20250601": gz(FILE_0601)})
    with pytest.raises(PermanentSourceError, match="'flarewatch_vnf'") as err:
        NightfireSource(settings(http_server), token="wrong").fetch_viirs(SITE, DAY)
    assert err.value.status == 401 and len(http_server.requests) == 1 and "wrong" not in str(err.value)


def test_token_from_connection_password_or_password_grant(http_server, monkeypatch):
    serve(http_server, {"20250601": gz(FILE_0601), "20250602": gz(FILE_0602)})
    monkeypatch.setenv("AIRFLOW_CONN_FLAREWATCH_VNF", '{"conn_type": "http", "password": "%s"}' % TOKEN)
    assert NightfireSource(settings(http_server)).fetch_viirs(SITE, DAY).outcome == "ok"

    http_server.requests.clear()
    http_server.routes["/token"] = lambda req: http_server.Reply(
        200, '{"access_token": "%s", "expires_in": 300}' % TOKEN, {"Content-Type": "application/json"})
    monkeypatch.setenv("AIRFLOW_CONN_FLAREWATCH_VNF", (
        '{"conn_type": "http", "login": "me@example.org", "password": "pw-123456", '
        '"extra": {"token_url": "%s/token", "client_id": "eogdata_oidc", "client_secret": "cs-987654"}}') % http_server.url)
    assert NightfireSource(settings(http_server)).fetch_viirs(SITE, DAY).outcome == "ok"
    form = http_server.requests_to("/token")[0].body.decode()
    assert "grant_type=password" in form and "username=me%40example.org" in form and "client_id=eogdata_oidc" in form


def test_no_connection_means_no_auth(http_server, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_FLAREWATCH_VNF", raising=False)
    serve(http_server, {"20250601": FILE_0601 and vnf_csv_from_records(FILE_0601).encode(), "20250602": gz([])}, token=None)
    res = NightfireSource(settings(http_server)).fetch_viirs(SITE, DAY)  # plain (not gzipped) CSV works too
    assert res.outcome == "ok" and "Authorization" not in http_server.requests[0].headers


def test_template_is_required():
    with pytest.raises(PermanentSourceError, match="FLAREWATCH_VNF_URL_TEMPLATE"):
        NightfireSource(Settings.from_env({"FLAREWATCH_VIIRS_SOURCE": "nightfire"}))


def test_a_broken_file_is_permanent(http_server):
    serve(http_server, {"20250601": gzip.compress(b"not,a,vnf\n1,2,3\n")})
    with pytest.raises(PermanentSourceError, match="missing columns"):
        NightfireSource(settings(http_server), token=TOKEN).fetch_viirs(SITE, DAY)


@pytest.mark.integration
def test_s3_template_and_rawdata_cache(s3):
    from flarewatch.store.objects import RawStore, list_keys

    s3.put_object(Bucket="rawdata", Key="vnf-mirror/VNF_npp_d20250601_noaa_v30-ez.csv.gz", Body=gz(FILE_0601))
    s3.put_object(Bucket="rawdata", Key="vnf-mirror/VNF_npp_d20250602_noaa_v30-ez.csv.gz", Body=gz(FILE_0602))
    s = Settings.from_env({"FLAREWATCH_VNF_URL_TEMPLATE": "s3://rawdata/vnf-mirror/VNF_npp_d{yyyymmdd}_noaa_v30-ez.csv.gz",
                           "FLAREWATCH_VNF_QF_FIT_EXCLUDE": "7"})
    res = NightfireSource(s, raw_store=RawStore(s3, "rawdata"), s3_client=s3).fetch_viirs(SITE, DAY)
    assert parse_vnf_csv(res.viirs_csv)["id_Key"].tolist() == ["SYN_npp_0001", "SYN_npp_0008"]
    keys = list_keys(s3, "rawdata", "raw/source=nightfire/")
    assert "raw/source=nightfire/collection=VNF_npp/baseline=v30/date=2025-06-01/VNF_npp_d20250601_noaa_v30-ez.csv.gz" in keys


@pytest.mark.live
def test_live_nightfire():
    """Needs FLAREWATCH_VNF_URL_TEMPLATE, AIRFLOW_CONN_FLAREWATCH_VNF and FLAREWATCH_LIVE_TESTS=1."""
    from datetime import datetime, timedelta

    day = (datetime.now(UTC) - timedelta(days=10)).date()
    res = NightfireSource(Settings.from_env()).fetch_viirs(SITE, day)
    assert res.status in ("ingested", "no_data")


def test_night_window_matches_the_simulators_night():
    """The window real sources clip to holds the demo's VIIRS scans for every demo site."""
    from flarewatch.ingest.viirs import in_time_window, night_window_utc
    from flarewatch.simulation.scene import simulate_scene
    from flarewatch.sites import load_sites

    for site in load_sites():
        for day in (date(2025, 1, 10), date(2025, 6, 1)):
            df = parse_vnf_csv(simulate_scene(site, day).viirs_csv)
            assert in_time_window(df, *night_window_utc(site.lon, day)).all(), (site.site_id, day)
