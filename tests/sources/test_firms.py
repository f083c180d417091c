"""NASA FIRMS area API source, against a local server serving synthesized FIRMS CSV and its plain-text errors."""

from __future__ import annotations

import re
from datetime import UTC, date

import numpy as np
import pytest

from flarewatch.config import Settings
from flarewatch.ingest.sources.firms import (
    FirmsClient,
    FirmsSource,
    classify_body,
    day_windows,
    keep_row,
    parse_firms_csv,
)
from flarewatch.ingest.sources.http import (
    PermanentSourceError,
    TransientSourceError,
    make_session,
)
from flarewatch.ingest.viirs import (
    VNF_COLUMNS,
    flare_like,
    night_window_utc,
    parse_vnf_csv,
)
from flarewatch.sites import Site

KEY = "0123456789abcdef0123456789abcdef"
HEADER = "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_ti5,frp,daynight"
SITE = Site("rumaila-n", "North Rumaila", "Rumaila", "ROO", "Iraq", 30.630, 47.330, aoi_km=5.0)
DAY = date(2025, 6, 1)  # night window 2025-06-01 14:50 .. 2025-06-02 02:50 UTC at 47.33 E
AREA_RE = re.compile(r"^/api/area/csv/(?P<key>[^/]+)/(?P<source>[A-Z0-9_]+)/(?P<area>[^/]+)/(?P<days>\d+)/(?P<date>[\d-]+)$")


def firms_row(lat=30.632, lon=47.331, acq_date="2025-06-01", acq_time="2230", conf="n", frp=12.5, dn="N",
              sat="N20", version="2.0NRT", **extra):
    row = {"latitude": lat, "longitude": lon, "bright_ti4": 367.0, "scan": 0.5, "track": 0.4, "acq_date": acq_date,
           "acq_time": acq_time, "satellite": sat, "instrument": "VIIRS", "confidence": conf, "version": version,
           "bright_ti5": 301.2, "frp": frp, "daynight": dn, **extra}
    return row


def firms_csv(rows, header=HEADER) -> str:
    cols = header.split(",")
    return "\n".join([header] + [",".join(str(r.get(c, "")) for c in cols) for r in rows]) + "\n"


def client(http_server, **kw) -> FirmsClient:
    kw = {"map_key": KEY, "limit_wait_s": 0.01, "limit_retries": 2, **kw}
    return FirmsClient(base_url=http_server.url, session=make_session(retries=2, backoff_s=0.01, timeout_s=5), **kw)


def settings(http_server, **env) -> Settings:
    return Settings.from_env({"FLAREWATCH_VIIRS_SOURCE": "firms", "FLAREWATCH_FIRMS_URL": http_server.url,
                              "FLAREWATCH_FIRMS_SOURCES": "VIIRS_NOAA20_NRT", **env})


def area_route(http_server, responder):
    """Route the area API to ``responder(match_dict) -> reply``; records the parsed requests."""
    calls = []

    def handle(req):
        m = AREA_RE.match(req.path)
        assert m, req.path
        calls.append(m.groupdict())
        return responder(m.groupdict())

    http_server.routes["/api/area/csv/*"] = handle
    return calls


# -- windows ----------------------------------------------------------------------------------
def test_day_windows_split_into_at_most_five_days():
    assert day_windows(date(2025, 6, 1), date(2025, 6, 12)) == [
        (date(2025, 6, 1), 5), (date(2025, 6, 6), 5), (date(2025, 6, 11), 2)]
    assert day_windows(date(2025, 6, 1), date(2025, 6, 5)) == [(date(2025, 6, 1), 5)]
    assert day_windows(date(2025, 6, 1), date(2025, 6, 1)) == [(date(2025, 6, 1), 1)]
    assert day_windows(date(2025, 6, 1), date(2025, 6, 11), max_days=3)[-1] == (date(2025, 6, 10), 2)
    with pytest.raises(ValueError):
        day_windows(date(2025, 6, 2), date(2025, 6, 1))
    with pytest.raises(ValueError):
        day_windows(date(2025, 6, 1), date(2025, 6, 9), max_days=10)


def test_range_requests_are_split_and_offset(http_server):
    calls = area_route(http_server, lambda m: firms_csv([]))
    out = client(http_server).area_range("VIIRS_SNPP_SP", SITE.bbox(), date(2025, 6, 1), date(2025, 6, 12))
    assert [(c["date"], c["days"]) for c in calls] == [("2025-06-01", "5"), ("2025-06-06", "5"), ("2025-06-11", "2")]
    assert [(d.isoformat(), n) for d, n, _ in out] == [("2025-06-01", 5), ("2025-06-06", 5), ("2025-06-11", 2)]
    assert all(c["key"] == KEY and c["source"] == "VIIRS_SNPP_SP" for c in calls)
    west, south, east, north = (float(v) for v in calls[0]["area"].split(","))
    assert west < SITE.lon < east and south < SITE.lat < north


# -- plain-text errors with HTTP 200 ----------------------------------------------------------
@pytest.mark.parametrize("body, kind", [
    (HEADER + "\n", "csv"), ("", "csv"), ("\ufeff" + HEADER + "\n1,2", "csv"),
    ("Invalid MAP_KEY.", "invalid_key"), ("Exceeding allowed transaction limit.", "limit"),
    ("Invalid day range. Expects [1..5].", "error"), ("<html>maintenance</html>", "error"),
])
def test_classify_body(body, kind):
    assert classify_body(body) == kind


@pytest.mark.parametrize("status", [200, 400, 401])
def test_invalid_map_key_fails_fast_naming_the_connection(http_server, status):
    area_route(http_server, lambda m: http_server.Reply(status, "Invalid MAP_KEY."))
    c = client(http_server)
    with pytest.raises(PermanentSourceError) as err:
        c.area_csv("VIIRS_NOAA20_NRT", SITE.bbox(), DAY, 1)
    msg = str(err.value)
    assert "rejected the MAP_KEY" in msg and "'flarewatch_firms'" in msg
    assert KEY not in msg and KEY not in err.value.url  # the key is in the URL path: never in messages
    assert len(http_server.requests) == 1  # no retries


def test_transaction_limit_waits_with_backoff_then_succeeds(http_server):
    http_server.routes["/api/area/csv/*"] = [
        "Exceeding allowed transaction limit.", (403, "Exceeding allowed transaction limit."), firms_csv([firms_row()])]
    sleeps = []
    text = client(http_server, sleep=sleeps.append, limit_wait_s=30.0).area_csv("VIIRS_NOAA20_NRT", SITE.bbox(), DAY, 2)
    assert text.startswith("latitude") and sleeps == [30.0, 60.0]


def test_transaction_limit_that_persists_is_transient(http_server):
    http_server.routes["/api/area/csv/*"] = "Exceeding allowed transaction limit."
    sleeps = []
    with pytest.raises(TransientSourceError, match="transaction limit") as err:
        client(http_server, sleep=sleeps.append, limit_retries=2).area_csv("VIIRS_NOAA20_NRT", SITE.bbox(), DAY, 1)
    assert len(sleeps) == 2 and len(http_server.requests) == 3 and KEY not in str(err.value)


def test_other_plain_text_is_permanent_with_the_body(http_server):
    http_server.routes["/api/area/csv/*"] = "Invalid day range. Expects [1..5]."
    with pytest.raises(PermanentSourceError, match=r"Invalid day range"):
        client(http_server).area_csv("VIIRS_NOAA20_NRT", SITE.bbox(), DAY, 1)


def test_server_errors_are_retried(http_server):
    http_server.routes["/api/area/csv/*"] = [503, 500, firms_csv([])]
    assert client(http_server).area_csv("VIIRS_NOAA20_NRT", SITE.bbox(), DAY, 1).startswith("latitude")
    assert len(http_server.requests) == 3


# -- conversion to the VNF schema -------------------------------------------------------------
def test_keep_row_filter():
    bbox, window = SITE.bbox(), night_window_utc(SITE.lon, DAY)
    ok = firms_row()
    assert keep_row(ok, bbox=bbox, window=window)
    assert not keep_row(firms_row(dn="D", acq_time="1030"), bbox=bbox, window=window)  # day
    assert not keep_row(firms_row(conf="l"), bbox=bbox, window=window)  # low confidence
    assert keep_row(firms_row(conf="l"), bbox=bbox, window=window, min_confidence="l")
    assert not keep_row(firms_row(lat=31.5), bbox=bbox, window=window)  # outside the AOI
    assert not keep_row(firms_row(acq_date="2025-06-02", acq_time="1900"), bbox=bbox, window=window)  # next night
    assert keep_row(firms_row(acq_date="2025-06-02", acq_time="130"), bbox=bbox, window=window)  # 01:30 UTC, no pad
    assert keep_row(firms_row(type="2"), bbox=bbox, window=window)  # SP: static land source
    assert not keep_row(firms_row(type="0"), bbox=bbox, window=window)  # SP: presumed vegetation fire


def test_fetch_viirs_converts_night_rows_and_keeps_the_raw_csv(http_server):
    rows = [
        firms_row(acq_time="2230", frp=12.5),                                # kept
        firms_row(lat=30.640, lon=47.320, acq_date="2025-06-02", acq_time="0015", conf="h", frp=3.25),  # kept
        firms_row(acq_time="1030", dn="D"),                                  # day pass
        firms_row(conf="l"),                                                 # low confidence
        firms_row(lat=30.9),                                                 # outside the AOI (FIRMS bbox is rounded)
    ]
    body = firms_csv(rows)
    calls = area_route(http_server, lambda m: body)
    src = FirmsSource(settings(http_server), client=client(http_server))
    res = src.fetch_viirs(SITE, DAY)

    assert [(c["date"], c["days"]) for c in calls] == [("2025-06-01", "2")]  # the night spans 2 UTC dates
    assert res.status == "ingested" and res.outcome == "ok"
    df = parse_vnf_csv(res.viirs_csv)
    assert list(df.columns[: len(VNF_COLUMNS)]) == list(VNF_COLUMNS)
    assert len(df) == 2
    assert df["RH"].tolist() == [12.5, 3.25]  # FRP (MW) as RH
    assert df["Temp_BB"].isna().all() and df["Area_BB"].isna().all()  # 999999 fill: no Planck fit in FIRMS
    assert np.allclose(df["Area_Pixel"], 0.2) and np.allclose(df["RHI"], [62.5, 16.25])
    assert str(df["Date_Mscan"].iloc[0]) == "2025-06-01 22:30:00+00:00"
    assert set(df["FW_Origin"]) == {"firms:VIIRS_NOAA20_NRT"}
    assert len(flare_like(df)) == 2  # no temperature: FIRMS rows pass flare_like on RH
    assert "999999" in res.viirs_csv.splitlines()[1]

    [(key, (raw, ctype))] = res.raw_objects.items()
    assert key == ("raw/source=firms/collection=VIIRS_NOAA20_NRT/baseline=2.0NRT/date=2025-06-01/"
                   "site=rumaila-n/area_2025-06-01_2d.csv")
    assert raw == body.encode() and ctype == "text/csv"  # unchanged
    assert res.meta["rows_received"] == 5 and res.meta["rows_kept"] == 2


def test_several_sources_and_empty_answers(http_server):
    def answer(m):
        if m["source"] == "VIIRS_SNPP_NRT":
            return firms_csv([firms_row(sat="N", version="2.0NRT")])
        return HEADER + "\n"  # no detections: the header only

    calls = area_route(http_server, answer)
    s = settings(http_server, FLAREWATCH_FIRMS_SOURCES="VIIRS_SNPP_NRT,VIIRS_NOAA20_NRT,VIIRS_NOAA21_NRT")
    res = FirmsSource(s, client=client(http_server)).fetch_viirs(SITE, DAY)
    assert sorted(c["source"] for c in calls) == ["VIIRS_NOAA20_NRT", "VIIRS_NOAA21_NRT", "VIIRS_SNPP_NRT"]
    assert len(parse_vnf_csv(res.viirs_csv)) == 1 and res.meta["kept_per_source"]["VIIRS_NOAA21_NRT"] == 0
    assert len(res.raw_objects) == 3
    assert any("/baseline=na/" in k for k in res.raw_objects)  # empty answers carry no version


def test_no_detections_is_an_outcome(http_server):
    area_route(http_server, lambda m: HEADER + "\n")
    res = FirmsSource(settings(http_server), client=client(http_server)).fetch_viirs(SITE, DAY)
    assert res.status == "ingested" and res.outcome == "no_detections"
    assert parse_vnf_csv(res.viirs_csv).empty


def test_parse_firms_csv_rejects_a_foreign_csv():
    assert parse_firms_csv("") == [] and parse_firms_csv(HEADER + "\n") == []
    with pytest.raises(PermanentSourceError):
        parse_firms_csv("a,b\n1,2\n")


# -- credentials --------------------------------------------------------------------------------
def test_map_key_comes_lazily_from_the_airflow_connection(http_server, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_FLAREWATCH_FIRMS", raising=False)
    calls = area_route(http_server, lambda m: firms_csv([]))
    src = FirmsSource(settings(http_server))  # no connection yet: constructing reads nothing
    with pytest.raises(PermanentSourceError, match="'flarewatch_firms' is not defined"):
        src.fetch_viirs(SITE, DAY)
    assert calls == []
    monkeypatch.setenv("AIRFLOW_CONN_FLAREWATCH_FIRMS", '{"conn_type": "http", "password": "%s"}' % KEY)
    src = FirmsSource(settings(http_server, FLAREWATCH_HTTP_BACKOFF_S="0.01"))
    assert src.fetch_viirs(SITE, DAY).outcome == "no_detections"
    assert calls[0]["key"] == KEY


# -- live ------------------------------------------------------------------------------------
@pytest.mark.live
def test_live_firms_area_api():
    """Needs AIRFLOW_CONN_FLAREWATCH_FIRMS (password = MAP_KEY) and FLAREWATCH_LIVE_TESTS=1."""
    from datetime import datetime, timedelta

    day = (datetime.now(UTC) - timedelta(days=2)).date()
    res = FirmsSource(Settings.from_env({"FLAREWATCH_FIRMS_SOURCES": "VIIRS_NOAA20_NRT"})).fetch_viirs(SITE, day)
    assert res.status == "ingested" and res.raw_objects
    parse_vnf_csv(res.viirs_csv)
