"""The analytics layer on the real database: gap-aware monthly estimates, KPIs, alerts and the
reconciliation are written for processed site-days, unchanged by a rerun, and alerts are
acknowledged from the CLI."""

from __future__ import annotations

import dataclasses
import os
from datetime import date, timedelta

import pytest

from flarewatch.analytics.refresh import refresh_analytics
from flarewatch.cli import main as cli
from flarewatch.config import Settings
from flarewatch.ingest.site_day import ingest_site_day
from flarewatch.ingest.sources import get_source
from flarewatch.process.batch import process_batch
from flarewatch.store import db

pytestmark = pytest.mark.integration

CFG = dataclasses.replace(Settings(), detector_kind="threshold", volume_model="calibration")
SITES = ["ahvaz-w", "cantarell"]
MONTH = date(2025, 9, 1)
DAYS = [MONTH + timedelta(days=i) for i in range(6)]


def _rows(conn, sql, args=()):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        rows = cur.fetchall()
    conn.commit()
    return rows


@pytest.fixture(scope="module")
def processed(pg_dsn, s3_server):
    from flarewatch.store.objects import ensure_buckets

    conn, s3 = db.connect(pg_dsn), s3_server.client()
    ensure_buckets(s3, ["rawdata", "processed"])
    sites = db.fetch_sites(conn, SITES)
    for day in DAYS:
        for site in sites:
            ingest_site_day(site, day, get_source("demo"), s3, conn, CFG)
        process_batch(conn, s3, CFG, day, SITES)
    with conn.cursor() as cur:  # a meter report for September at one site, well below what was seen
        cur.execute("INSERT INTO calibration_measurements (site_id, period_start, period_end, volume_kscm,"
                    " volume_reported, unit_reported, source, source_key, imported_from, import_batch)"
                    " VALUES ('ahvaz-w', '2025-09-01', '2025-09-30', 1.0, 1.0, 'kscm', 'TEST', 'm1', 'test', 't')"
                    " ON CONFLICT DO NOTHING")
    conn.commit()
    db.refresh_rollups(conn, DAYS)
    yield conn
    conn.close()


def test_monthly_estimate_fills_the_calendar_month_with_an_interval(processed):
    conn = processed
    counts = refresh_analytics(conn, CFG, [MONTH])
    assert counts["emissions_monthly_estimate"] >= len(SITES) + 3
    rows = _rows(conn, "SELECT group_value, calendar_site_days, observed_site_days, completeness, volume_observed_kscm,"
                       " volume_estimate_kscm, volume_lo_kscm, volume_hi_kscm, co2e_t, co2e_measured_ce_t"
                       " FROM emissions_monthly_estimate WHERE group_level = 'site' AND month = %s"
                       " AND group_value = ANY(%s) ORDER BY 1", (MONTH, SITES))
    for _site, cal, obs, compl, vol_obs, est, lo, hi, co2e, co2e_m in rows:
        assert cal == 30 and obs <= 6 and compl == pytest.approx(obs / 30, abs=1e-4)
        assert lo <= est <= hi and est >= vol_obs > 0
        assert co2e_m > co2e  # less efficient combustion: more methane, more CO2e
    assert len(rows) == len(SITES)
    ops = _rows(conn, "SELECT sum(e.volume_estimate_kscm) FROM emissions_monthly_estimate e WHERE group_level = 'operator'"
                      " AND month = %s AND group_value IN (SELECT operator FROM sites WHERE site_id = ANY(%s))",
                (MONTH, SITES))[0][0]
    assert ops >= sum(r[5] for r in rows) - 1e-6
    kpi = _rows(conn, "SELECT observed_days, flaring_days FROM kpi_monthly WHERE group_level = 'site'"
                      " AND group_value = 'ahvaz-w' AND month = %s", (MONTH,))[0]
    assert kpi[0] >= kpi[1] > 0


def test_reconciliation_flags_under_reporting_and_raises_an_alert(processed):
    conn = processed
    refresh_analytics(conn, CFG, [MONTH])
    [(flag, reported, est, lo, ratio)] = _rows(
        conn, "SELECT flag, reported_kscm, estimate_kscm, estimate_lo_kscm, ratio FROM reconciliation_monthly"
              " WHERE group_level = 'site' AND group_value = 'ahvaz-w' AND month = %s AND source = 'TEST'", (MONTH,))
    assert flag == "under_reported" and reported == pytest.approx(1.0) and lo > reported and ratio > 1
    assert _rows(conn, "SELECT count(*) FROM reconciliation_monthly WHERE group_level = 'operator' AND month = %s",
                 (MONTH,))[0][0] == 1
    assert _rows(conn, "SELECT severity FROM alerts WHERE kind = 'reported_gap' AND site_id = 'ahvaz-w'")[0][0] \
        == "critical"


def test_a_rerun_changes_nothing_and_alerts_are_acknowledged(processed, pg_dsn, capsys):
    conn = processed
    refresh_analytics(conn, CFG, [MONTH])
    snapshot = {t: _rows(conn, f"SELECT * FROM {t} WHERE month = %s ORDER BY 1, 2, 3", (MONTH,))
                for t in ("kpi_monthly", "reconciliation_monthly")}
    alerts = _rows(conn, "SELECT alert_id, kind, site_id, period_start, updated_at FROM alerts ORDER BY 1")
    refresh_analytics(conn, CFG, [MONTH])
    for table, rows in snapshot.items():
        again = _rows(conn, f"SELECT * FROM {table} WHERE month = %s ORDER BY 1, 2, 3", (MONTH,))
        assert [r[:-1] for r in again] == [r[:-1] for r in rows]  # refreshed_at aside
    assert _rows(conn, "SELECT alert_id, kind, site_id, period_start, updated_at FROM alerts ORDER BY 1") == alerts

    alert_id = alerts[0][0]
    os.environ["FLAREWATCH_DB_URL"] = pg_dsn
    try:
        assert cli(["alerts", "--status", "open"]) == 0
        assert cli(["ack", str(alert_id), "--by", "analyst-1"]) == 0
        assert cli(["ack", "999999", "--by", "x"]) == 1
    finally:
        os.environ.pop("FLAREWATCH_DB_URL")
    out = capsys.readouterr()
    assert f"#{alert_id}" in out.out and "acknowledged" in out.out and "no alert 999999" in out.err
    assert _rows(conn, "SELECT status, acknowledged_by FROM alerts WHERE alert_id = %s", (alert_id,))[0] \
        == ("acknowledged", "analyst-1")
    refresh_analytics(conn, CFG, [MONTH])  # a rerun keeps the users' status
    assert _rows(conn, "SELECT status FROM alerts WHERE alert_id = %s", (alert_id,))[0][0] == "acknowledged"


def test_views_carry_intervals_and_a_date_range(processed):
    conn = processed
    cols = [r[0] for r in _rows(conn, "SELECT column_name FROM information_schema.columns WHERE table_name = 'v_flares'")]
    assert {"volume_lo_kscm_d", "volume_hi_kscm_d", "model_version", "detector_version"} <= set(cols)
    rows = _rows(conn, "SELECT site_id, days, observed_days, volume_kscm, volume_lo_kscm, volume_hi_kscm"
                       " FROM site_summary(%s, %s) WHERE site_id = ANY(%s) ORDER BY 1", (DAYS[0], DAYS[-1], SITES))
    assert [r[0] for r in rows] == sorted(SITES)
    for _site, days, observed, vol, lo, hi in rows:
        assert days == len(DAYS) and observed <= days and lo <= vol <= hi
    assert _rows(conn, "SELECT days FROM site_summary('1990-01-01', '1990-01-31') WHERE site_id = %s",
                 (SITES[0],))[0][0] == 0


def test_merged_day_and_month_layers_hold_the_published_flares(processed, s3_server):
    import json

    from flarewatch.process.layers import layer_keys, publish_layers
    from flarewatch.store import objects as storage

    conn, s3 = processed, s3_server.client()
    out = publish_layers(conn, s3, CFG, DAYS[:2])
    day_key, month_key = layer_keys(DAYS[0])
    assert set(out["layers"]) == {month_key, day_key, layer_keys(DAYS[1])[0]}
    day = json.loads(storage.get_bytes(s3, "processed", day_key))
    month = json.loads(storage.get_bytes(s3, "processed", month_key))
    n_day = _rows(conn, "SELECT count(*) FROM flare_detections WHERE acquisition_date = %s", (DAYS[0],))[0][0]
    n_month = _rows(conn, "SELECT count(*) FROM flare_detections WHERE acquisition_date BETWEEN %s AND %s",
                    (MONTH, MONTH + timedelta(days=29)))[0][0]
    assert len(day["features"]) == n_day > 0 and len(month["features"]) == n_month
    props = day["features"][0]["properties"]
    assert {"site_id", "operator", "acquisition_date", "volume_kscm_d", "volume_lo_kscm_d", "detector_version",
            "volume_model_version", "units"} <= set(props)
    before = storage.get_bytes(s3, "processed", month_key)
    publish_layers(conn, s3, CFG, DAYS[:2])
    assert storage.get_bytes(s3, "processed", month_key) == before  # a rerun writes the same bytes


def test_monthly_rollup_carries_the_interval_of_its_observed_days(processed):
    conn = processed
    rows = _rows(conn, "SELECT volume_kscm, volume_lo_kscm, volume_hi_kscm FROM emissions_monthly"
                       " WHERE month = %s AND group_level = 'country'", (MONTH,))
    assert rows and all(lo <= v <= hi for v, lo, hi in rows)
    daily = _rows(conn, "SELECT sum(volume_lo_kscm), sum(volume_hi_kscm) FROM emissions_daily"
                        " WHERE day BETWEEN %s AND %s", (MONTH, MONTH + timedelta(days=29)))[0]
    assert sum(r[1] for r in rows) == pytest.approx(daily[0]) and sum(r[2] for r in rows) == pytest.approx(daily[1])


def test_alerts_lapse_only_when_settled_and_reopen_when_the_condition_returns(processed):
    from flarewatch.config import AnalyticsConfig

    conn = processed
    cfg = dataclasses.replace(CFG, analytics=dataclasses.replace(AnalyticsConfig(), consecutive_flaring_days=3))
    refresh_analytics(conn, cfg, [MONTH])
    runs = _rows(conn, "SELECT alert_id, site_id FROM alerts WHERE kind = 'consecutive_flaring' AND site_id = ANY(%s)"
                       " ORDER BY site_id", (SITES,))
    assert [s for _, s in runs] == sorted(SITES)
    a_id, b_id = runs[0][0], runs[1][0]
    with conn.cursor() as cur:  # a day of the first site is being reprocessed: its month is not settled
        cur.execute("UPDATE emissions_daily SET status = 'pending' WHERE site_id = %s AND day = ANY(%s)",
                    (runs[0][1], DAYS[1:5]))
        cur.execute("UPDATE alerts SET status = 'resolved', resolved_by = 'flarewatch', resolved_at = now()"
                    " WHERE alert_id = %s", (b_id,))  # flarewatch had resolved the second one
    conn.commit()
    refresh_analytics(conn, cfg, [MONTH])
    assert _rows(conn, "SELECT status FROM alerts WHERE alert_id = %s", (a_id,))[0][0] == "open"  # no flapping
    assert _rows(conn, "SELECT status, resolved_by FROM alerts WHERE alert_id = %s", (b_id,))[0] == ("open", None)
    with conn.cursor() as cur:
        cur.execute("UPDATE emissions_daily SET status = 'processed' WHERE site_id = %s", (runs[0][1],))
        cur.execute("UPDATE alerts SET status = 'resolved', resolved_by = 'analyst-2', resolved_at = now()"
                    " WHERE alert_id = %s", (b_id,))  # a person resolved it: it stays resolved
    conn.commit()
    refresh_analytics(conn, cfg, [MONTH])
    assert _rows(conn, "SELECT status, resolved_by FROM alerts WHERE alert_id = %s", (b_id,))[0] == ("resolved",
                                                                                                   "analyst-2")
    refresh_analytics(conn, CFG, [MONTH])  # back to the default rule (10 days): the runs lapse
    assert _rows(conn, "SELECT status, resolved_by FROM alerts WHERE alert_id = %s", (a_id,))[0] == ("resolved",
                                                                                                   "flarewatch")
