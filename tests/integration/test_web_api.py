"""The FlareWatch web app (``flarewatch.web``) on the real database and S3 server: the JSON API's
bodies against SQL, its status codes for bad parameters, refusal without an Airflow login, the
alert acknowledgement (who and when), report downloads, and the HTML pages."""

from __future__ import annotations

import dataclasses
import time
from datetime import date, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from flarewatch.analytics.refresh import refresh_analytics
from flarewatch.config import Settings
from flarewatch.ingest.site_day import ingest_site_day
from flarewatch.ingest.sources import get_source
from flarewatch.process.batch import process_batch
from flarewatch.reports.publish import publish_month
from flarewatch.store import db
from flarewatch.web import auth
from flarewatch.web.access import Access
from flarewatch.web.app import URL_PREFIX, create_app

pytestmark = pytest.mark.integration

CFG = dataclasses.replace(Settings(), detector_kind="threshold", volume_model="calibration")
SITES = ["rumaila-n", "parshall"]
MONTH = date(2025, 11, 1)
DAYS = [MONTH + timedelta(days=i) for i in range(5)]


class _User:
    def get_name(self) -> str:
        return "analyst-ana"


def _mount(app: FastAPI) -> FastAPI:
    root = FastAPI()
    root.mount(URL_PREFIX, app)
    return root


@pytest.fixture(scope="module")
def data(pg_dsn, s3_server):
    from flarewatch.store.objects import ensure_buckets

    conn, s3 = db.connect(pg_dsn), s3_server.client()
    ensure_buckets(s3, ["rawdata", "processed"])
    sites = db.fetch_sites(conn, SITES)
    for day in DAYS:
        for site in sites:
            ingest_site_day(site, day, get_source("demo"), s3, conn, CFG)
        process_batch(conn, s3, CFG, day, SITES)
    db.refresh_rollups(conn, DAYS)
    refresh_analytics(conn, CFG, [MONTH])
    with conn.cursor() as cur:  # one open alert of our own, so the acknowledgement has something to act on
        cur.execute("INSERT INTO alerts (kind, severity, site_id, period_start, period_end, metric, message)"
                    " VALUES ('threshold', 'warning', 'parshall', %s, %s, 'volume_kscm', 'web test alert')"
                    " ON CONFLICT (kind, site_id, period_start, metric) DO UPDATE SET status = 'open',"
                    " acknowledged_by = NULL, acknowledged_at = NULL RETURNING alert_id", (DAYS[0], DAYS[-1]))
        alert_id = cur.fetchone()[0]
    conn.commit()
    publish_month(conn, s3, CFG, MONTH, "operator", "EOG Resources")
    yield {"conn": conn, "alert_id": alert_id}
    conn.close()


@pytest.fixture(scope="module")
def access(pg_dsn, s3_server, data):
    acc = Access(lambda: db.connect(pg_dsn), s3_server.client, "processed")
    yield acc
    acc.close()


@pytest.fixture(scope="module")
def client(access):
    app = create_app(access)
    app.dependency_overrides[auth.api_user] = _User
    app.dependency_overrides[auth.page_user] = _User
    with TestClient(_mount(app)) as c:
        yield c


@pytest.fixture(scope="module")
def anonymous(access):
    with TestClient(_mount(create_app(access)), follow_redirects=False) as c:
        yield c


def _sql(conn, sql, args=()):
    rows = db.fetch_dicts(conn, sql, args)
    return rows


def test_sites_match_the_database(client, data):
    r = client.get("/flarewatch/api/v1/sites")
    assert r.status_code == 200, r.text
    body = r.json()
    by_id = {s["site_id"]: s for s in body["sites"]}
    assert set(SITES) <= set(by_id)
    want = _sql(data["conn"], "SELECT site_id, coalesce(sum(volume_kscm), 0) AS v, coalesce(sum(co2e_t), 0) AS c,"
                              " coalesce(sum(n_flares), 0) AS n FROM emissions_daily GROUP BY site_id")
    for w in want:
        assert by_id[w["site_id"]]["volume_kscm"] == pytest.approx(w["v"])
        assert by_id[w["site_id"]]["co2e_t"] == pytest.approx(w["c"])
        assert by_id[w["site_id"]]["flares"] == w["n"]
    assert body["totals"]["volume_kscm"] == pytest.approx(sum(w["v"] for w in want))
    assert body["totals"]["volume_lo_kscm"] <= body["totals"]["volume_kscm"] <= body["totals"]["volume_hi_kscm"]


def test_daily_series_with_interval_and_paging(client, data):
    r = client.get("/flarewatch/api/v1/sites/rumaila-n/daily", params={"start": str(DAYS[0]), "end": str(DAYS[-1])})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [d["day"] for d in body["days"]] == [str(d) for d in DAYS]
    assert body["total"] == len(DAYS) and body["next"] is None
    for d in body["days"]:
        assert d["status"] == "processed" and d["detector_version"] and d["volume_model_version"]
        if d["volume_kscm"]:
            assert d["volume_lo_kscm"] <= d["volume_kscm"] <= d["volume_hi_kscm"]
    page = client.get("/flarewatch/api/v1/sites/rumaila-n/daily",
                      params={"start": str(DAYS[0]), "end": str(DAYS[-1]), "limit": 2}).json()
    assert len(page["days"]) == 2 and page["total"] == len(DAYS) and "offset=2" in page["next"]
    second = client.get(page["next"]).json()
    assert [d["day"] for d in second["days"]] == [str(d) for d in DAYS[2:4]]


@pytest.mark.parametrize(("path", "params", "status", "parameter"), [
    ("/sites/rumaila-n/daily", {"start": "2025-13-01"}, 422, "start"),
    ("/sites/rumaila-n/daily", {"start": "2025-06-10", "end": "2025-06-01"}, 422, "end"),
    ("/sites/rumaila-n/daily", {"start": "2020-01-01", "end": "2025-01-01"}, 422, "end"),
    ("/sites/rumaila/daily", {}, 404, "site_id"),
    ("/sites/rumaila-n/daily", {"limit": 0}, 422, "limit"),
    ("/sites/rumaila-n/daily", {"limit": "many"}, 422, "limit"),
    ("/monthly", {"level": "planet"}, 422, "level"),
    ("/monthly", {"month": "2025-6"}, 422, "month"),
    ("/alerts", {"status": "closed"}, 422, "status"),
    ("/alerts", {"site_id": "nowhere"}, 404, "site_id"),
    ("/reports", {"level": "site"}, 422, "level"),
])
def test_bad_parameters_say_which_and_why(client, path, params, status, parameter):
    r = client.get(f"/flarewatch/api/v1{path}", params=params)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["parameter"] == parameter and body["message"]
    if parameter == "site_id":
        assert "rumaila-n" in body["message"]  # names the known sites


def test_monthly_per_level(client, data):
    for level in ("operator", "field", "country"):
        body = client.get("/flarewatch/api/v1/monthly", params={"level": level, "month": "2025-11"}).json()
        want = _sql(data["conn"], "SELECT group_value, volume_kscm FROM emissions_monthly"
                                  " WHERE group_level = %s AND month = %s", (level, MONTH))
        got = {r["value"]: r["volume_kscm"] for r in body["rows"]}
        assert got == pytest.approx({w["group_value"]: w["volume_kscm"] for w in want})
        assert body["total"] == len(want)


def test_acknowledge_records_who_and_when(client, data):
    alert_id = data["alert_id"]
    listed = client.get("/flarewatch/api/v1/alerts", params={"status": "open", "site_id": "parshall"}).json()
    assert alert_id in [a["alert_id"] for a in listed["alerts"]]
    r = client.post(f"/flarewatch/api/v1/alerts/{alert_id}/acknowledge")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["changed"] is True
    assert body["alert"]["status"] == "acknowledged" and body["alert"]["acknowledged_by"] == "analyst-ana"
    assert body["alert"]["acknowledged_at"]
    again = client.post(f"/flarewatch/api/v1/alerts/{alert_id}/acknowledge").json()
    assert again["changed"] is False and again["alert"]["acknowledged_at"] == body["alert"]["acknowledged_at"]
    assert client.post("/flarewatch/api/v1/alerts/987654321/acknowledge").status_code == 404
    assert client.post("/flarewatch/api/v1/alerts/abc/acknowledge").status_code == 422


def test_reports_list_and_download(client):
    body = client.get("/flarewatch/api/v1/reports", params={"month": "2025-11"}).json()
    files = {r["file"]: r for r in body["reports"] if r["value"] == "eog-resources"}
    assert {"report.pdf", "report.xlsx", "daily.csv"} <= set(files)
    pdf = client.get(files["report.pdf"]["url"])
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert "attachment" in pdf.headers["content-disposition"]
    assert client.get("/flarewatch/files/reports/../secrets.json").status_code == 404
    assert client.get("/flarewatch/files/models/detector/v1/weights.pt").status_code == 404


@pytest.mark.parametrize("path", ["/flarewatch/api/v1/sites", "/flarewatch/api/v1/alerts",
                                  "/flarewatch/api/v1/sites/rumaila-n/daily", "/flarewatch/api/v1/reports",
                                  "/flarewatch/api/v1/monthly?level=operator"])
def test_the_api_refuses_requests_without_a_login(anonymous, path):
    r = anonymous.get(path)
    assert r.status_code == 401, r.text


@pytest.fixture(scope="module")
def airflow_token(monkeypatch_module, airflow_env):
    """A JWT issued by Airflow's own (simple) auth manager, as ``POST /auth/token`` issues it."""
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    monkeypatch_module.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "web-test-secret")
    am = init_auth_manager()
    return am.generate_jwt(SimpleAuthManagerUser(username="viewer-vic", role="viewer"))


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_airflow_tokens_are_checked_by_airflow(anonymous, data, airflow_token):
    assert anonymous.post(f"/flarewatch/api/v1/alerts/{data['alert_id']}/acknowledge").status_code == 401
    bad = anonymous.get("/flarewatch/api/v1/sites", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code in (401, 403), bad.text
    good = anonymous.get("/flarewatch/api/v1/sites", headers={"Authorization": f"Bearer {airflow_token}"})
    assert good.status_code == 200, good.text
    page = anonymous.get("/flarewatch/", cookies={"_token": airflow_token})
    assert page.status_code == 200 and "viewer-vic" in page.text


def test_pages_redirect_to_the_airflow_login(anonymous):
    r = anonymous.get("/flarewatch/site/rumaila-n?start=2025-11-01")
    assert r.status_code == 303
    assert "/auth/" in r.headers["location"] and "next=" in r.headers["location"]


def test_openapi_schema_lists_the_paths(anonymous):
    schema = anonymous.get("/flarewatch/openapi.json").json()
    assert {"/api/v1/sites", "/api/v1/sites/{site_id}/daily", "/api/v1/monthly", "/api/v1/alerts",
            "/api/v1/alerts/{alert_id}/acknowledge", "/api/v1/reports"} <= set(schema["paths"])


def test_pages_render_with_the_numbers(client, data):
    t0 = time.perf_counter()
    r = client.get("/flarewatch/")
    elapsed = time.perf_counter() - t0
    assert r.status_code == 200, r.text
    html = r.text
    assert 'class="fw-site"' in html and 'data-site="rumaila-n"' in html and "Pipeline runs" in html
    print(f"overview rendered in {elapsed * 1000:.0f} ms")
    site = client.get("/flarewatch/site/parshall", params={"start": str(DAYS[0]), "end": str(DAYS[-1])})
    assert site.status_code == 200 and 'fw-daily-volume' in site.text and "Reconciliation" in site.text
    assert client.get("/flarewatch/site/nowhere").status_code == 404
    alerts = client.get("/flarewatch/alerts", params={"status": ""})
    assert alerts.status_code == 200 and "web test alert" in alerts.text
    reports = client.get("/flarewatch/reports")
    assert reports.status_code == 200 and "report.pdf" in reports.text
    day_png = client.get(f"/flarewatch/files/tiles/date={DAYS[0]}/site=parshall/annotated.png")
    assert day_png.status_code == 200 and day_png.content.startswith(b"\x89PNG")


def test_the_app_reads_as_the_api_role_and_cannot_write_elsewhere(access):
    import psycopg2

    with access.db() as conn:
        assert db.fetch_dicts(conn, "SELECT current_user AS u")[0]["u"] == "flarewatch_api"
    with access.db(write=True) as conn, pytest.raises(psycopg2.errors.InsufficientPrivilege):
        with conn.cursor() as cur:
            cur.execute("UPDATE emissions_daily SET volume_kscm = 0")
    with access.db() as conn, pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
        with conn.cursor() as cur:
            cur.execute("UPDATE alerts SET acknowledged_by = 'x'")


def test_sites_over_a_period_carry_the_summary_totals(client, data):
    """The numbers ``flarewatch summary`` prints for the same acquisition dates."""
    from flarewatch.store.summary import site_rows

    body = client.get("/flarewatch/api/v1/sites", params={"start": str(DAYS[0]), "end": str(DAYS[-1])}).json()
    assert body["period"] == {"start": str(DAYS[0]), "end": str(DAYS[-1])}
    rows = site_rows(data["conn"], DAYS[0], DAYS[-1])
    by_id = {s["site_id"]: s for s in body["sites"]}
    for site, _country, days, n, _n_s2, _n_v, vol, co2, co2e in rows:
        assert (by_id[site]["days"], by_id[site]["flares"]) == (days, n)
        assert (by_id[site]["volume_kscm"], by_id[site]["co2_t"], by_id[site]["co2e_t"]) == pytest.approx((vol, co2, co2e))
    assert body["totals"]["volume_kscm"] == pytest.approx(sum(r[6] for r in rows))
    assert body["totals"]["co2e_t"] == pytest.approx(sum(r[8] for r in rows))
    page = client.get("/flarewatch/", params={"start": str(DAYS[0]), "end": str(DAYS[-1])})
    assert page.status_code == 200 and "Selected period" in page.text
    assert f'{sum(r[6] for r in rows):,.1f}' in page.text
    assert client.get("/flarewatch/api/v1/sites", params={"start": "yesterday"}).json()["parameter"] == "start"
