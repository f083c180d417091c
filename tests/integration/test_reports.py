"""Monthly reports on the real database: the PDF (pages, site names in its text), the workbook
(sheets, headers, numbers equal to the analytics tables), the CSVs, the daily series adding up to
the month's estimate; ``flarewatch report`` writes one locally; a dag.test() run of
``emissions_report`` writes the expected keys and a second run changes no object."""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from datetime import date, timedelta
from pathlib import Path

import psycopg2.errors
import pytest

from flarewatch.analytics.refresh import refresh_analytics
from flarewatch.config import Settings
from flarewatch.ingest.site_day import ingest_site_day
from flarewatch.ingest.sources import get_source
from flarewatch.process.batch import process_batch
from flarewatch.reports import publish
from flarewatch.reports.data import group_report, read_month
from flarewatch.store import db

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CFG = dataclasses.replace(Settings(), detector_kind="threshold", volume_model="calibration")
MONTH = date(2025, 7, 1)
OPERATOR = "Rumaila Operating Organisation"
# a second Rumaila site, monitored from 3 July: the operator's report has two sites
EXTRA_SITE = ("rumaila-s", "South Rumaila test site", "Rumaila", OPERATOR, "Iraq", 30.42, 47.36, 5.0)
PLAN = {"rumaila-n": range(6), "ahvaz-w": range(6), "rumaila-s": range(2, 6)}


def _rows(conn, sql, args=()):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        rows = cur.fetchall()
    conn.commit()
    return rows


@pytest.fixture(scope="module")
def month_data(pg_dsn, s3_server):
    from flarewatch.store.objects import ensure_buckets

    conn, s3 = db.connect(pg_dsn), s3_server.client()
    ensure_buckets(s3, ["rawdata", "processed"])
    with conn.cursor() as cur:
        cur.execute("INSERT INTO sites (site_id, name, field, operator, country, lat, lon, aoi_km) VALUES"
                    " (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (site_id) DO NOTHING", EXTRA_SITE)
        cur.execute("INSERT INTO calibration_measurements (site_id, period_start, period_end, volume_kscm,"
                    " volume_reported, unit_reported, source, source_key, imported_from, import_batch)"
                    " VALUES ('rumaila-n', '2025-07-01', '2025-07-31', 5.0, 5.0, 'kscm', 'TEST', 'r1', 'test', 't')"
                    " ON CONFLICT DO NOTHING")
    conn.commit()
    days = [MONTH + timedelta(days=i) for i in range(6)]
    for i, day in enumerate(days):
        sites = [s for s in PLAN if i in PLAN[s]]
        for site in db.fetch_sites(conn, sites):
            ingest_site_day(site, day, get_source("demo"), s3, conn, CFG)
        process_batch(conn, s3, CFG, day, sites)
    db.refresh_rollups(conn, days)
    refresh_analytics(conn, CFG, [MONTH])
    yield conn, s3, read_month(conn, MONTH, CFG)
    _drop_site(conn, EXTRA_SITE[0])  # other modules see the demo sites only
    conn.close()


def _drop_site(conn, site_id: str) -> None:
    """Delete a site and every row naming it (tables with a site_id column, in foreign-key order)."""
    tables = [r[0] for r in _rows(conn, "SELECT c.table_name FROM information_schema.columns c JOIN"
                                        " information_schema.tables t USING (table_schema, table_name)"
                                        " WHERE c.column_name = 'site_id' AND c.table_schema = 'public'"
                                        " AND t.table_type = 'BASE TABLE' AND c.table_name <> 'sites'")]
    for _ in range(len(tables) + 1):
        left = []
        for table in tables:
            try:
                with conn.cursor() as cur:
                    cur.execute(f"DELETE FROM {table} WHERE site_id = %s", (site_id,))
                conn.commit()
            except psycopg2.errors.ForeignKeyViolation:  # still referenced from a table not emptied yet
                conn.rollback()
                left.append(table)
        tables = left
        if not tables:
            break
    with conn.cursor() as cur:
        cur.execute("DELETE FROM sites WHERE site_id = %s", (site_id,))
    conn.commit()


@pytest.fixture(scope="module")
def operator_report(month_data):
    data = group_report(month_data[2], "operator", OPERATOR)
    files = publish.render(data)
    dump = os.environ.get("FLAREWATCH_REPORT_DUMP")  # a folder to look at the files in
    if dump:
        Path(dump).mkdir(parents=True, exist_ok=True)
        for name, body in files.items():
            (Path(dump) / name).write_bytes(body)
    return data, files


def _pdf_pages(body: bytes) -> list[str]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(body)
    try:
        # words as a reader sees them: line breaks and hyphen-free wraps become single spaces
        return [" ".join(pdf[i].get_textpage().get_text_range().split()) for i in range(len(pdf))]
    finally:
        pdf.close()


def test_pdf_has_its_pages_and_names_every_site(operator_report):
    data, files = operator_report
    assert [s["site_id"] for s in data.sites] == ["rumaila-n", "rumaila-s"]
    pages = _pdf_pages(files["report.pdf"])
    assert len(pages) == 5  # title, charts, map, tables, methods
    text = "\n".join(pages)
    assert "Operator: Rumaila Operating Organisation" in pages[0] and "July 2025" in pages[0]
    for name in ("North Rumaila degassing stations", "South Rumaila test site"):
        assert name in pages[0] and name in pages[3]
    assert "site-days observed" in pages[0] and "Daily flared volume" in pages[1]
    assert "Plant et al. 2022" in pages[4] and "0.91" in pages[4] and "0.98" in pages[4]
    assert "Reported vs observed" in text and "TEST" in pages[3]


def test_workbook_sheets_headers_and_numbers_equal_the_tables(operator_report, month_data):
    from openpyxl import load_workbook

    conn = month_data[0]
    data, files = operator_report
    wb = load_workbook(io.BytesIO(files["report.xlsx"]))
    assert wb.sheetnames == ["daily", "monthly", "sites", "alerts", "reconciliation", "methods"]
    sites = list(wb["sites"].iter_rows(values_only=True))
    head = sites[0]
    assert "month estimate [thousand m3]" in head and "CO2e [t] (measured efficiency 0.91)" in head
    col = {h: i for i, h in enumerate(head)}
    db_rows = {r[0]: r[1:] for r in _rows(
        conn, "SELECT group_value, volume_estimate_kscm, volume_lo_kscm, volume_hi_kscm, co2e_t, co2e_measured_ce_t,"
              " observed_site_days FROM emissions_monthly_estimate WHERE month = %s AND group_level = 'site'",
        (MONTH,))}
    assert [r[col["site_id"]] for r in sites[1:]] == ["rumaila-n", "rumaila-s"]
    for r in sites[1:]:
        est, lo, hi, co2e, co2e_m, obs = db_rows[r[col["site_id"]]]
        # equal up to the workbook's 15-16 significant digits
        assert (r[col["month estimate [thousand m3]"]], r[col["estimate 90 % low [thousand m3]"]],
                r[col["estimate 90 % high [thousand m3]"]]) == pytest.approx((est, lo, hi), rel=1e-14)
        assert r[col["CO2e [t] (combustion efficiency 0.98)"]] == pytest.approx(co2e, rel=1e-14)
        assert r[col["CO2e [t] (measured efficiency 0.91)"]] == pytest.approx(co2e_m, rel=1e-14)
        assert r[col["observed site-days"]] == obs
    monthly = list(wb["monthly"].iter_rows(values_only=True))
    mcol = {h: i for i, h in enumerate(monthly[0])}
    [(op_est,)] = _rows(conn, "SELECT volume_estimate_kscm FROM emissions_monthly_estimate WHERE month = %s"
                              " AND group_level = 'operator' AND group_value = %s", (MONTH, OPERATOR))
    assert monthly[1][mcol["group"]] == OPERATOR and monthly[1][mcol["month estimate [thousand m3]"]] == pytest.approx(
        op_est, rel=1e-14)
    daily = list(wb["daily"].iter_rows(values_only=True))
    assert len(daily) == 1 + 2 * 31 and "volume counted in the month [thousand m3/day]" in daily[0]
    recon = list(wb["reconciliation"].iter_rows(values_only=True))
    assert {r[0] for r in recon[1:]} == {"site", "operator"} and recon[1][2] == "TEST"
    methods = dict(wb["methods"].iter_rows(min_row=2, values_only=True))
    assert "Plant et al. 2022" in methods["scenario measured_ce: source"]
    assert wb.properties.created.date() == MONTH


def test_daily_values_add_up_to_the_month_estimate(operator_report):
    data, _ = operator_report
    for s in data.sites:
        days = [r for r in data.daily if r["site_id"] == s["site_id"]]
        assert sum(r["estimate"] for r in days if r["estimate"] is not None) == pytest.approx(s["volume_estimate_kscm"])
        assert sum(1 for r in days if r["observed"]) == s["observed_site_days"]
        assert all(r["est_lo"] <= r["estimate"] <= r["est_hi"] for r in days if r["estimate"] is not None)
    late = [r for r in data.daily if r["site_id"] == "rumaila-s" and r["day"] < date(2025, 7, 3)]
    assert late and all(r["status"] == "not monitored yet" and r["estimate"] is None for r in late)


def test_csvs_have_headers_and_the_rows(operator_report):
    data, files = operator_report
    assert {"daily.csv", "sites.csv", "alerts.csv", "reconciliation.csv"} <= set(files)
    sites = list(csv.DictReader(io.StringIO(files["sites.csv"].decode())))
    assert [r["site_id"] for r in sites] == ["rumaila-n", "rumaila-s"]
    assert float(sites[0]["month estimate [thousand m3]"]) == pytest.approx(data.sites[0]["volume_estimate_kscm"])
    alerts = list(csv.DictReader(io.StringIO(files["alerts.csv"].decode())))
    assert len(alerts) == len(data.alerts)
    assert len(files["daily.csv"].decode().splitlines()) == 1 + 62


def test_same_data_same_bytes(month_data, operator_report):
    _, files = operator_report
    again = publish.render(group_report(month_data[2], "operator", OPERATOR))
    assert {k: v for k, v in again.items()} == files


def test_cli_writes_one_report_locally(month_data, pg_dsn, tmp_path, capsys):
    from flarewatch.cli import main as cli

    os.environ["FLAREWATCH_DB_URL"] = pg_dsn
    try:
        assert cli(["report", "--month", "2025-07", "--level", "field", "--value", "Rumaila",
                    "--out", str(tmp_path)]) == 0
        assert cli(["report", "--month", "2025-07", "--level", "field", "--value", "Nowhere",
                    "--out", str(tmp_path)]) == 1
    finally:
        os.environ.pop("FLAREWATCH_DB_URL")
    folder = tmp_path / "month=2025-07" / "field=rumaila"
    assert sorted(p.name for p in folder.iterdir()) == sorted(publish.FILES)
    out = capsys.readouterr()
    assert str(folder) in out.out and "no field 'Nowhere'" in out.err


@pytest.mark.slow
def test_report_dag_writes_the_keys_and_a_rerun_changes_nothing(month_data, airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    _, s3, _ = month_data
    dag = DagBag(dag_folder=str(REPO / "dags")).dags["emissions_report"]

    def objects() -> dict:
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket="processed", Prefix="reports/month=2025-07/"):
            for o in page.get("Contents", []):
                out[o["Key"]] = (o["ETag"], o["LastModified"])
        return out

    run = dag.test(logical_date=None, run_conf={"month": "2025-07", "level": "", "value": ""})
    assert run.state == "success"
    first = objects()
    groups = ["operator=rumaila-operating-organisation", "operator=national-iranian-south-oil-company",
              "field=rumaila", "field=ahvaz", "country=iraq", "country=iran"]
    # other test modules may leave July rows of other sites in the session's database: theirs too
    assert set(groups) <= {k.rsplit("/", 1)[0].split("/", 2)[2] for k in first}
    for g in groups:
        for name in publish.FILES:
            assert f"reports/month=2025-07/{g}/{name}" in first
    body = s3.get_object(Bucket="processed", Key=f"reports/month=2025-07/{groups[0]}/report.pdf")["Body"].read()
    assert body[:5] == b"%PDF-"

    run = dag.test(logical_date=None, run_conf={"month": "2025-07", "level": "", "value": ""})
    assert run.state == "success"
    assert objects() == first  # same ETags and not even rewritten
