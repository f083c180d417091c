"""The FlareWatch page in a real browser (headless Chromium through Selenium) on the whole local stack.

The stack (S3, PostgreSQL, Airflow with our plugin on its api-server) starts on free ports in a
temporary state folder, with its DAGs paused so that the scheduler adds nothing meanwhile; a few
demo site-days are ingested, processed, rolled up and reported in-process into its results
database and S3 server, and one alert is opened. Then the browser signs in through Airflow's own
login form, sees every site on the map and the totals, a site's chart and annotated tile,
acknowledges the alert (the database records ``admin``), and finds the page inside the Airflow UI
under its navigation entry (``/plugin/flarewatch``). A request without the session gets 401.

Screenshots (overview, site, alerts after the acknowledgement, the Airflow UI with the page) go to
``$FLAREWATCH_SCREENSHOT_DIR``, else to the test's temporary folder; their paths are printed.

About 1.5 min on 2 cores (the stack alone ~1 min), so it runs only with FLAREWATCH_STACK_TESTS=1
(``.ci/run`` sets it); skipped with the reason when Chromium, chromedriver (Debian's ``chromium``
and ``chromium-driver``, ``/usr/bin``) or selenium are missing. Selenium gets the driver's path, so
its Selenium Manager never downloads anything.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest

from flarewatch.dev import localstack, servers
from flarewatch.dev.localstack import StackPaths

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("FLAREWATCH_STACK_TESTS") != "1",
                       reason="starts the whole local stack and a browser (~1.5 min): FLAREWATCH_STACK_TESTS=1"),
]

CHROMIUM = os.environ.get("FLAREWATCH_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FLAREWATCH_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROME_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-dev-shm-usage", "--disable-component-update", "--no-first-run", "--window-size=1400,1000"]
SITES = ["rumaila-n", "parshall", "cantarell"]
MONTH = date(2025, 11, 1)
DAYS = [MONTH + timedelta(days=i) for i in range(4)]
ALERT_SITE = "parshall"
WAIT_S = 30


@pytest.fixture(scope="module")
def tools():
    """Skip (before the stack starts) when the browser, its driver or selenium are missing."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() and os.access(path, os.X_OK)):
            pytest.skip(f"{path} missing: apt-get install {package} (Debian; .ci/run installs it)")
    pytest.importorskip("selenium", reason="selenium missing (requirements.txt; make venv)")


@pytest.fixture(scope="module")
def stack(tools):
    # not under pytest's basetemp: the private PostgreSQL, run as user pgserver under root, must
    # traverse every parent folder (see test_localstack_stack.py)
    base = Path(tempfile.mkdtemp(prefix="fw-web-"))
    paths = StackPaths(base / "state")
    mp = pytest.MonkeyPatch()
    mp.setenv("FLAREWATCH_STATE_DIR", str(paths.state))
    mp.setenv("FLAREWATCH_S3_PORT", str(servers.free_port()))
    mp.setenv("FLAREWATCH_API_PORT", str(servers.free_port()))
    mp.delenv("AIRFLOW__CORE__UNIT_TEST_MODE", raising=False)
    for var in ("FLAREWATCH_DB_URL", "FLAREWATCH_AIRFLOW_DB_URL"):
        mp.delenv(var, raising=False)
    stack_env = localstack.stack_env  # paused DAGs: the scheduler must not add days under the test's feet
    mp.setattr(localstack, "stack_env",
               lambda p=None: {**stack_env(p), "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True"})
    try:
        endpoints = localstack.up(paths, log=lambda _m: None, settle=5)
        yield {"paths": paths, **endpoints}
    finally:
        localstack.down(paths, log=lambda _m: None)
        mp.undo()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def seeded(stack):
    """Demo site-days in the stack's results DB and S3, their rollups, analytics and a report, and
    one open alert of our own (its id)."""
    from flarewatch.analytics.refresh import refresh_analytics
    from flarewatch.config import Settings
    from flarewatch.ingest.site_day import ingest_site_day
    from flarewatch.ingest.sources import get_source
    from flarewatch.process.batch import process_batch
    from flarewatch.reports.publish import publish_month
    from flarewatch.store import db

    paths = stack["paths"]
    cfg = dataclasses.replace(Settings(), detector_kind="threshold", volume_model="regressor")  # 90 % intervals
    sec = localstack.ensure_secrets(paths)
    s3 = servers.S3Server(stack["s3"], sec["s3_key"], sec["s3_secret"], paths.s3).client()
    conn = db.connect(localstack.results_db_dsn(paths))
    sites = db.fetch_sites(conn, SITES)
    for day in DAYS:
        for site in sites:
            ingest_site_day(site, day, get_source("demo"), s3, conn, cfg)
        process_batch(conn, s3, cfg, day, SITES)
    db.refresh_rollups(conn, DAYS)
    refresh_analytics(conn, cfg, [MONTH])
    with conn.cursor() as cur:
        cur.execute("INSERT INTO alerts (kind, severity, site_id, period_start, period_end, metric, message)"
                    " VALUES ('threshold', 'warning', %s, %s, %s, 'volume_kscm', 'browser test alert')"
                    " ON CONFLICT (kind, site_id, period_start, metric) DO UPDATE SET status = 'open',"
                    " acknowledged_by = NULL, acknowledged_at = NULL RETURNING alert_id",
                    (ALERT_SITE, DAYS[0], DAYS[-1]))
        alert_id = cur.fetchone()[0]
    conn.commit()
    publish_month(conn, s3, cfg, MONTH, "operator", "EOG Resources")
    yield {"conn": conn, "alert_id": alert_id, "password": localstack.airflow_password(paths)}
    conn.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory, request):
    """Where the screenshots go; their paths are printed at the end of the module."""
    folder = Path(os.environ.get("FLAREWATCH_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    yield folder, saved
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():  # shown without -s too
        for p in saved:
            print(f"\nscreenshot: {p}", end="")
        print()


@pytest.fixture(scope="module")
def browser(tools, stack):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    mp = pytest.MonkeyPatch()
    mp.setenv("SE_OFFLINE", "true")  # belt and braces: the driver's path is given, Selenium Manager is not run
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in CHROME_ARGS:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        mp.undo()


def _wait(driver, condition, timeout: float = WAIT_S):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _css(selector: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    return ec.presence_of_element_located((By.CSS_SELECTOR, selector))


def _shoot(driver, shots, name: str, full_page: bool = True) -> Path:
    """A screenshot of the viewport, or of the whole page (the window made as tall as the page)."""
    folder, saved = shots
    path = folder / f"{name}.png"
    size = driver.get_window_size()
    if full_page:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(size["width"], max(size["height"], height + 150))  # + the window's chrome
    try:
        _wait(driver, lambda d: d.execute_script("return Array.from(document.images).every(i => i.complete)"))
        assert driver.save_screenshot(str(path)), path
    finally:
        driver.set_window_size(size["width"], size["height"])
    saved.append(path)
    return path


@pytest.fixture(scope="module")
def signed_in(browser, stack, seeded):
    """Sign in through Airflow's login form, as a person does: what the browser saw on the way."""
    from selenium.webdriver.common.by import By

    browser.get(f"{stack['api']}/flarewatch/")
    user = _wait(browser, _css("input[name=username]"))
    seen = {"login_url": browser.current_url}
    user.send_keys("admin")
    browser.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(seeded["password"])
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(browser, lambda d: "/auth/login" not in d.current_url)
    _wait(browser, lambda d: d.execute_script("return document.readyState") == "complete")
    seen["landed_url"] = browser.current_url
    seen["token_cookie"] = browser.get_cookie("_token")
    if not browser.current_url.startswith(f"{stack['api']}/flarewatch/"):  # `next` not honoured: go there
        browser.get(f"{stack['api']}/flarewatch/")
    return seen


def test_signing_in_through_airflows_login_lands_on_the_page(signed_in, stack):
    assert signed_in["login_url"].startswith(f"{stack['api']}/auth/login?next=")
    assert "flarewatch" in signed_in["login_url"]
    # Airflow 3.3.2's login page sets the session cookie from JavaScript: path "/", not httpOnly
    assert signed_in["token_cookie"] and signed_in["token_cookie"]["path"] == "/"
    assert signed_in["landed_url"] == f"{stack['api']}/flarewatch/"


def test_the_overview_shows_every_site_on_the_map_and_the_totals(browser, signed_in, stack, seeded, shots):
    from selenium.webdriver.common.by import By

    from flarewatch.store import db

    browser.get(f"{stack['api']}/flarewatch/")
    _wait(browser, _css("a.fw-site"))
    on_map = {a.get_attribute("data-site") for a in browser.find_elements(By.CSS_SELECTOR, "a.fw-site")}
    assert set(SITES) <= on_map
    for site in SITES:
        marker = browser.find_element(By.CSS_SELECTOR, f'a.fw-site[data-site="{site}"]')
        assert marker.is_displayed() and marker.get_dom_attribute("href").endswith(f"/flarewatch/site/{site}")
    total = db.fetch_dicts(seeded["conn"], "SELECT sum(volume_kscm) AS v FROM emissions_daily")[0]["v"]
    shown = browser.find_element(By.CSS_SELECTOR, '#fw-totals [data-period="All data"] .fw-volume').text
    assert shown == f"{total:,.1f}" and total > 0
    assert "signed in as admin" in browser.find_element(By.CSS_SELECTOR, ".fw-user").text
    _shoot(browser, shots, "overview")


def test_a_site_page_draws_the_series_and_the_annotated_tile(browser, signed_in, stack, shots):
    from selenium.webdriver.common.by import By

    browser.get(f"{stack['api']}/flarewatch/")
    link = _wait(browser, _css(f'#fw-sites tr[data-site="{ALERT_SITE}"] a'))
    link.click()  # through the page's own link
    _wait(browser, lambda d: d.current_url.endswith(f"/flarewatch/site/{ALERT_SITE}"))
    line = _wait(browser, _css("svg.fw-daily-volume path.fw-line"))
    assert line.get_attribute("d").count("L") >= len(DAYS) - 1  # one segment per day
    assert browser.execute_script("return arguments[0].getBBox().width", line) > 100
    band = browser.find_element(By.CSS_SELECTOR, "svg.fw-daily-volume path.fw-band")
    assert browser.execute_script("return arguments[0].getBBox().height", band) > 0  # the 90 % interval
    img = browser.find_element(By.CSS_SELECTOR, "figure.fw-png img")
    browser.execute_script("arguments[0].scrollIntoView()", img)  # loading="lazy"
    _wait(browser, lambda d: d.execute_script("return arguments[0].complete", img))
    assert browser.execute_script("return arguments[0].naturalWidth", img) > 0, img.get_attribute("src")
    browser.execute_script("window.scrollTo(0, 0)")
    _shoot(browser, shots, "site")


def test_acknowledging_an_alert_records_the_signed_in_user(browser, signed_in, stack, seeded, shots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    from flarewatch.store import db

    alert_id = seeded["alert_id"]
    browser.get(f"{stack['api']}/flarewatch/alerts?status=open&site_id={ALERT_SITE}")
    button = _wait(browser, _css(f'tr[data-alert="{alert_id}"] button.fw-ack'))
    button.click()
    _wait(browser, ec.staleness_of(button))
    _wait(browser, _css("#fw-alerts"))
    assert not browser.find_elements(By.CSS_SELECTOR, f'tr[data-alert="{alert_id}"] button.fw-ack')
    browser.get(f"{stack['api']}/flarewatch/alerts?status=&site_id={ALERT_SITE}")
    row = _wait(browser, _css(f'tr[data-alert="{alert_id}"]'))
    assert row.find_element(By.CSS_SELECTOR, ".fw-alert-status").text == "acknowledged"
    assert "admin" in row.text
    seeded["conn"].rollback()
    got = db.fetch_dicts(seeded["conn"], "SELECT status, acknowledged_by, acknowledged_at FROM alerts"
                                         " WHERE alert_id = %s", (alert_id,))[0]
    assert got["status"] == "acknowledged" and got["acknowledged_by"] == "admin" and got["acknowledged_at"]
    _shoot(browser, shots, "alerts-acknowledged")


def test_the_airflow_ui_shows_the_page_under_its_navigation_entry(browser, signed_in, stack, shots):
    from selenium.webdriver.common.by import By

    browser.get(f"{stack['api']}/plugin/flarewatch")
    frame = _wait(browser, _css("iframe"))
    assert frame.get_attribute("src").rstrip("/").endswith("/flarewatch")
    _wait(browser, lambda d: "Emissions" in d.find_element(By.TAG_NAME, "body").text)  # the nav entry
    browser.switch_to.frame(frame)
    try:
        _wait(browser, _css(f'a.fw-site[data-site="{ALERT_SITE}"]'))
        assert "Gas flaring overview" in browser.find_element(By.TAG_NAME, "h1").text
    finally:
        browser.switch_to.default_content()
    _shoot(browser, shots, "airflow-ui", full_page=False)


def test_the_api_refuses_a_request_without_the_session(stack, seeded):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{stack['api']}/flarewatch/api/v1/sites", timeout=WAIT_S)
    assert err.value.code == 401
