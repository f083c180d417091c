"""sources.http: retries with backoff on 429/5xx/timeouts, permanent errors fail fast; the local server fixture."""

from __future__ import annotations

import time

import pytest
import requests

from flarewatch.ingest.sources import http
from flarewatch.ingest.sources.http import (
    PermanentSourceError,
    SourceError,
    TransientSourceError,
    make_session,
    request,
)


def fast_session(**kw):
    return make_session(**{"retries": 3, "backoff_s": 0.01, "timeout_s": 5, **kw})


def test_5xx_then_ok_is_retried(http_server):
    http_server.routes["/busy"] = [503, 502, http_server.Reply(200, "ok")]
    r = request(fast_session(), "GET", http_server.url + "/busy", provider="demo-api")
    assert r.text == "ok"
    assert http_server.hits["/busy"] == 3


def test_post_is_retried_too(http_server):
    http_server.routes["/process"] = [500, http_server.Reply(200, b"tif")]
    r = request(fast_session(), "POST", http_server.url + "/process", provider="x", json={"a": 1})
    assert r.content == b"tif" and http_server.hits["/process"] == 2
    assert http_server.requests[-1].json() == {"a": 1}


def test_429_honours_retry_after(http_server):
    R = http_server.Reply
    http_server.routes["/limited"] = [R(429, "slow down", {"Retry-After": "1"}), R(200, "ok")]
    t0 = time.monotonic()
    r = request(fast_session(), "GET", http_server.url + "/limited", provider="x")
    assert r.text == "ok"
    assert time.monotonic() - t0 >= 0.9  # waited what the server asked, not the 10 ms backoff


def test_retry_after_is_capped(http_server, monkeypatch):
    monkeypatch.setattr(http, "MAX_RETRY_AFTER_S", 0.2)
    R = http_server.Reply
    http_server.routes["/limited"] = [R(503, "maintenance", {"Retry-After": "3600"}), R(200, "ok")]
    t0 = time.monotonic()
    assert request(fast_session(), "GET", http_server.url + "/limited", provider="x").text == "ok"
    assert time.monotonic() - t0 < 5


def test_retries_exhausted_is_transient(http_server):
    http_server.routes["/down"] = [503]
    with pytest.raises(TransientSourceError, match=r"x: GET .*/down still answered HTTP 503") as err:
        request(fast_session(retries=2), "GET", http_server.url + "/down", provider="x")
    assert http_server.hits["/down"] == 3  # first try + 2 retries
    assert err.value.status == 503 and isinstance(err.value, SourceError)


def test_bad_credentials_fail_fast_with_a_clear_message(http_server):
    http_server.routes["/secure"] = (401, '{"error": "invalid_client", "detail": "' + "x" * 400 + '"}')
    t0 = time.monotonic()
    with pytest.raises(PermanentSourceError) as err:
        request(fast_session(retries=5, backoff_s=1.0), "GET", http_server.url + "/secure", provider="sentinel-hub")
    msg = str(err.value)
    assert time.monotonic() - t0 < 1.0 and http_server.hits["/secure"] == 1  # no retries
    assert "sentinel-hub" in msg and "401" in msg and "invalid_client" in msg
    assert "check the credentials in Airflow connection 'flarewatch_sentinel_hub'" in msg
    assert len(err.value.body) == http.BODY_EXCERPT_CHARS  # first 300 characters of the body


def test_403_names_the_given_connection_and_404_has_no_hint(http_server):
    http_server.routes["/forbidden"] = (403, "no")
    http_server.routes["/missing"] = (404, "not here")
    s = fast_session()
    with pytest.raises(PermanentSourceError, match="Airflow connection 'my_conn'"):
        request(s, "GET", http_server.url + "/forbidden", provider="p", conn_id="my_conn")
    with pytest.raises(PermanentSourceError) as err:
        request(s, "GET", http_server.url + "/missing", provider="p")
    assert err.value.status == 404 and "credentials" not in str(err.value)
    assert http_server.hits["/missing"] == 1


def test_timeouts_are_retried_then_transient(http_server):
    R = http_server.Reply
    http_server.routes["/slow"] = [R(200, "late", delay_s=1.0), R(200, "ok")]
    s = fast_session(timeout_s=0.25)  # the default timeout applies without timeout=
    assert request(s, "GET", http_server.url + "/slow", provider="x").text == "ok"
    assert http_server.hits["/slow"] == 2

    http_server.routes["/stuck"] = R(200, "never", delay_s=1.0)
    with pytest.raises(TransientSourceError, match="timed out"):
        request(fast_session(timeout_s=0.2, retries=1), "GET", http_server.url + "/stuck", provider="x")
    assert http_server.hits["/stuck"] == 2


def test_connection_refused_is_transient():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientSourceError, match="failed after retries"):
        request(fast_session(retries=1), "GET", f"http://127.0.0.1:{port}/x", provider="x")


def test_secrets_are_redacted(http_server):
    http_server.routes["/api/*"] = (400, "Invalid key SECRETKEY123")
    with pytest.raises(PermanentSourceError) as err:
        request(fast_session(), "GET", http_server.url + "/api/SECRETKEY123/x", provider="firms",
                redact=["SECRETKEY123"])
    assert "SECRETKEY123" not in str(err.value) and "SECRETKEY123" not in err.value.url
    assert "***" in str(err.value)


def test_user_agent_and_session_defaults(http_server):
    http_server.routes["/ua"] = "ok"
    request(make_session(user_agent="flarewatch-test"), "GET", http_server.url + "/ua", provider="x")
    assert http_server.requests[-1].headers["User-Agent"] == "flarewatch-test"


def test_airflow_connection_is_read_lazily_and_missing_ones_are_named(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_FLAREWATCH_TESTCONN", raising=False)
    with pytest.raises(PermanentSourceError, match="'flarewatch_testconn' is not defined"):
        http.airflow_connection("flarewatch_testconn", provider="x")
    assert http.airflow_connection("flarewatch_testconn", provider="x", required=False) is None
    monkeypatch.setenv("AIRFLOW_CONN_FLAREWATCH_TESTCONN", '{"conn_type": "http", "password": "s3cr3t-key"}')
    assert http.airflow_connection("flarewatch_testconn", provider="x").password == "s3cr3t-key"


# -- the fixture itself (the Sentinel-2 tests rely on it too) ---------------------------------
def test_fixture_serves_ranges(http_server):
    data = bytes(range(100))
    http_server.routes["/cog.tif"] = http_server.static(data, "image/tiff")
    s = requests.Session()
    r = s.get(http_server.url + "/cog.tif", headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["Content-Range"] == "bytes 10-19/100"
    assert s.get(http_server.url + "/cog.tif", headers={"Range": "bytes=95-"}).content == data[95:]
    assert s.get(http_server.url + "/cog.tif", headers={"Range": "bytes=-5"}).content == data[-5:]
    assert s.get(http_server.url + "/cog.tif", headers={"Range": "bytes=200-300"}).status_code == 416
    full = s.get(http_server.url + "/cog.tif")
    assert full.status_code == 200 and full.content == data and full.headers["Accept-Ranges"] == "bytes"
    assert s.head(http_server.url + "/cog.tif").headers["Content-Length"] == "100"


def test_fixture_scripts_patterns_and_404(http_server):
    http_server.routes["/seq"] = [503, (200, "a", {"X-N": "1"}), "b"]
    http_server.routes["/items/*"] = lambda req: http_server.Reply(200, f"{req.path}?{req.arg('page', '1')}")
    s = requests.Session()
    assert [s.get(http_server.url + "/seq").status_code for _ in range(4)] == [503, 200, 200, 200]
    assert s.get(http_server.url + "/items/7", params={"page": "3"}).text == "/items/7?3"
    assert s.get(http_server.url + "/nowhere").status_code == 404
    assert [r.path for r in http_server.requests_to("/seq")] == ["/seq"] * 4
