"""Calibration import on the real Postgres + S3 servers, and the calibration_import DAG with dag.test()."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from flarewatch.config import Settings
from flarewatch.meters import importer as cal
from flarewatch.meters.formats import CalibrationFileError
from flarewatch.simulation.meters import upload_demo_calibration
from flarewatch.sites import load_sites
from flarewatch.store import objects as storage

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "fixtures" / "reported-flares" / "reported_flares_sample.csv"
SITES = {s.site_id: s for s in load_sites()}
TABLES = ("calibration_measurements", "calibration_quarantine", "calibration_imports", "calibration_site_map")


def _clear(conn) -> None:
    with conn.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(TABLES)}")
    conn.commit()


@pytest.fixture
def clean(conn):
    """Empty calibration tables before and after each test (the database is shared by the session)."""
    _clear(conn)
    cal.seed_site_map(conn, cal.load_site_map())
    yield conn
    _clear(conn)


def _snapshot(conn) -> dict:
    out = {}
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM calibration_measurements ORDER BY source, source_key, site_id, period_start")
        out["measurements"] = cur.fetchall()
        cur.execute("SELECT * FROM calibration_quarantine ORDER BY import_batch, row_number")
        out["quarantine"] = cur.fetchall()
    conn.commit()
    return out


def _scalar(conn, sql: str, args=()):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        value = cur.fetchone()[0]
    conn.commit()
    return value


NATIVE = (
    "site_id,period_start,period_end,volume,unit,source,source_key,operator\n"
    "parshall,2025-06-01,2025-06-30,3000,Mcf,field-meter,pad-7,EOG\n"
    "parshall,2025-07-01,2025-07-31,100,kscm/d,field-meter,pad-7,EOG\n"
    "cantarell,2025-06-01,2025-06-30,2.5,mmscm,pemex,,Pemex\n"
    "parshall,2025-08-01,2025-08-31,-5,kscm,field-meter,pad-7,EOG\n"
    "nowhere,2025-06-01,2025-06-30,5,kscm,field-meter,pad-7,EOG\n"
    "parshall,2025-06-01,2025-06-30,3000,Mcf,field-meter,pad-7,EOG\n"
)


def test_import_twice_leaves_the_tables_identical(clean):
    conn = clean
    first = cal.import_calibration(conn, NATIVE, imported_from="native.csv")
    assert (first["rows"], first["accepted"], first["inserted"], first["quarantined"]) == (6, 3, 3, 3)
    assert first["by_reason"] == {"duplicate": 1, "negative volume": 1, "unknown site": 1}
    sample = SAMPLE.read_bytes()
    rep = cal.import_calibration(conn, sample, imported_from=str(SAMPLE))
    assert rep["format"] == "reported" and rep["rows"] == 1385
    assert rep["accepted_rows"] + rep["quarantined"] == rep["rows"]
    assert rep["accepted"] == 30 and rep["by_reason"] == {"no site mapping": 1355}
    before = _snapshot(conn)

    again = cal.import_calibration(conn, NATIVE, imported_from="native.csv")
    rep_again = cal.import_calibration(conn, sample, imported_from=str(SAMPLE))
    assert (again["inserted"], again["updated"], again["unchanged"], again["quarantined"]) == (0, 0, 3, 3)
    assert (rep_again["inserted"], rep_again["updated"], rep_again["unchanged"]) == (0, 0, 30)
    assert _snapshot(conn) == before  # same rows, same loaded_at / quarantined_at, no duplicates
    assert _scalar(conn, "SELECT count(*) FROM calibration_imports") == 2

    with conn.cursor() as cur:
        cur.execute("SELECT volume_kscm, volume_reported, unit_reported, import_batch FROM calibration_measurements"
                    " WHERE source = 'field-meter' ORDER BY period_start")
        june, july = cur.fetchall()
        cur.execute("SELECT row_number, reason, raw->>'site_id' FROM calibration_quarantine"
                    " WHERE imported_from = 'native.csv' ORDER BY row_number")
        quarantine = cur.fetchall()
    conn.commit()
    assert june[:3] == (pytest.approx(84.950539776), 3000.0, "Mcf") and june[3] == cal.content_hash(NATIVE)
    assert july[:3] == (3100.0, 100.0, "kscm/d")
    assert quarantine == [(4, "negative volume -5.0", "parshall"), (5, "unknown site 'nowhere'", "nowhere"),
                          (6, "duplicate of row 1", "parshall")]


def test_corrected_value_updates_and_overlaps_with_stored_rows_are_quarantined(clean):
    conn = clean
    cal.import_calibration(conn, NATIVE, imported_from="v1.csv")
    corrected = NATIVE.replace("2025-06-30,3000,Mcf", "2025-06-30,3100,Mcf")
    res = cal.import_calibration(conn, corrected, imported_from="v2.csv")
    assert (res["inserted"], res["updated"], res["unchanged"]) == (0, 1, 2)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), max(volume_reported), max(imported_from), max(import_batch)"
                    " FROM calibration_measurements WHERE source = 'field-meter' AND period_start = '2025-06-01'")
        n, vol, src, batch = cur.fetchone()
    conn.commit()
    assert (n, vol, src, batch) == (1, 3100.0, "v2.csv", cal.content_hash(corrected))

    overlapping = ("site_id,period_start,period_end,volume,unit,source,source_key\n"
                   "parshall,2025-06-15,2025-06-15,90,kscm,field-meter,pad-7\n"
                   "parshall,2025-06-15,2025-06-15,90,kscm,field-meter,pad-8\n")
    res = cal.import_calibration(conn, overlapping, imported_from="daily.csv")
    assert (res["inserted"], res["quarantined"]) == (1, 1)
    assert _scalar(conn, "SELECT reason FROM calibration_quarantine WHERE imported_from = 'daily.csv'") == \
        "overlaps stored period 2025-06-01..2025-06-30"


def test_quarantine_follows_the_latest_import_of_a_file(clean):
    """A row quarantined for an unknown site is accepted once the site exists; its quarantine row goes."""
    from flarewatch.sites import Site
    from flarewatch.store import db

    conn = clean
    text = ("site_id,period_start,period_end,volume,unit,source\n"
            "late-site,2025-06-01,2025-06-01,5,kscm,meter\n"
            "late-site,2025-06-02,2025-06-02,-1,kscm,meter\n")
    res = cal.import_calibration(conn, text, imported_from="late.csv")
    assert (res["accepted"], res["by_reason"]) == (0, {"negative volume": 1, "unknown site": 1})
    db.upsert_sites(conn, [Site("late-site", "Late", "f", "o", "c", 10.0, 10.0)])
    try:
        res = cal.import_calibration(conn, text, imported_from="late.csv")
        assert (res["inserted"], res["by_reason"]) == (1, {"negative volume": 1})
        with conn.cursor() as cur:
            cur.execute("SELECT row_number, reason FROM calibration_quarantine")
            assert cur.fetchall() == [(2, "negative volume -1.0")]
        conn.commit()
    finally:
        _clear(conn)
        with conn.cursor() as cur:
            cur.execute("DELETE FROM sites WHERE site_id = 'late-site'")
        conn.commit()


def test_view_sums_wells_of_a_site_per_period(clean):
    conn = clean
    text = ("run,state,key_type,key,month,operator,flared\n"
            "r,ND,api,33061014590000,2019-02-01,EOG,37.0\n"
            "r,ND,api,33061009690000,2019-02-01,WLL,51.0\n"
            "r,ND,api,33061009690000,2019-03-01,WLL,0\n")
    cal.import_calibration(conn, text, imported_from="two-wells.csv")
    with conn.cursor() as cur:
        cur.execute("SELECT site_id, period_start, period_end, volume_kscm, volume_kscm_d, n_records, sources"
                    " FROM v_calibration_site_periods ORDER BY period_start")
        feb, mar = cur.fetchall()
    conn.commit()
    kscm = 88.0 * 28.316846592 / 1000
    assert feb[:3] == ("parshall", date(2019, 2, 1), date(2019, 2, 28))
    assert feb[3] == pytest.approx(kscm) and feb[4] == pytest.approx(kscm / 28)
    assert feb[5:] == (2, ["NDIC"])
    assert mar[3:6] == (0.0, 0.0, 1)


def test_unreadable_file_writes_nothing(clean):
    conn = clean
    with pytest.raises(CalibrationFileError, match=r"s3://rawdata/calibration/bad.csv: missing required columns"
                                                       r" \['period_end', 'unit', 'source'\]"):
        cal.import_calibration(conn, "site_id,period_start,volume\nparshall,2025-01-01,1\n",
                               imported_from="s3://rawdata/calibration/bad.csv")
    assert _scalar(conn, "SELECT count(*) FROM calibration_imports") == 0


# ------------------------------------------------------------------------------------------------
# the DAG
# ------------------------------------------------------------------------------------------------
def _run(dag, **conf):
    """dag.test() with every Param given: in one process, Airflow 3.3's process_params resolves the
    run conf into the DAG's own Param objects, so a value left out would keep the previous run's."""
    return dag.test(logical_date=None, run_conf={"s3_key": None, "path": None, "format": "auto", **conf})


@pytest.mark.slow
def test_calibration_import_dag(airflow_env, clean, s3, tmp_path):
    from airflow.dag_processing.dagbag import DagBag

    conn = clean
    dag = DagBag(dag_folder=str(REPO / "dags")).dags["calibration_import"]
    settings = Settings()
    start, end = date(2025, 6, 1), date(2025, 6, 14)
    demo_sites = [SITES["parshall"], SITES["rumaila-n"]]
    uri = upload_demo_calibration(s3, settings, demo_sites, start, end)
    assert uri == f"s3://rawdata/calibration/simulated-meter/{start}_{end}.csv"
    storage.put_bytes(s3, "rawdata", "calibration/reported/sample.csv", SAMPLE.read_bytes())
    alias = "calibration/reported/sample-copy.csv"  # the same content under two keys
    storage.put_bytes(s3, "rawdata", alias, SAMPLE.read_bytes())
    bad_key = "incoming/not-calibration.csv"
    storage.put_bytes(s3, "rawdata", bad_key, b"date,flare_count\n2025-06-01,3\n")
    try:
        # the daily run: every object under calibration/
        run = _run(dag)
        assert run.state == "success"
        first = _snapshot(conn)
        n_meter = _scalar(conn, "SELECT count(*) FROM calibration_measurements WHERE source = 'simulated-meter'")
        assert 2 * 14 * 0.8 <= n_meter <= 2 * 14  # a few gap days
        assert _scalar(conn, "SELECT count(*) FROM calibration_measurements WHERE source = 'NDIC'") == 30
        with conn.cursor() as cur:
            cur.execute("SELECT kind, count(*) FROM calibration_quarantine WHERE imported_from = %s GROUP BY kind"
                        " ORDER BY kind", (uri,))
            assert cur.fetchall() == [("duplicate", 2), ("negative volume", 2), ("overlapping period", 2),
                                      ("unknown unit", 2)]
            cur.execute("SELECT imported_from, summary ? 'same_content_as' FROM calibration_imports"
                        " ORDER BY imported_from")
            logged = dict(cur.fetchall())
            # one of the two copies was imported, the other (whichever task ran second) skipped as an alias
            assert logged.pop(uri) is False and sorted(logged.values()) == [False, True]
        conn.commit()

        # the next daily run finds nothing new; a manual re-import and a path import change nothing
        assert _run(dag).state == "success"
        assert _run(dag, s3_key=uri).state == "success"
        local = tmp_path / "meter.csv"
        local.write_bytes(storage.get_bytes(s3, "rawdata", uri.removeprefix("s3://rawdata/")))
        assert _run(dag, path=str(local), format="native").state == "success"
        assert _snapshot(conn)["measurements"] == first["measurements"]
        assert _scalar(conn, "SELECT count(*) FROM calibration_imports") == 4  # + the local path

        # an unreadable file fails its task at once (no retries), naming the file and the columns
        bad = _run(dag, s3_key=bad_key)
        assert bad.state == "failed"
        (ti,) = [t for t in bad.get_task_instances() if t.task_id == "import_file"]
        assert ti.state == "failed" and ti.try_number == 1
        assert _snapshot(conn)["measurements"] == first["measurements"]
    finally:
        for key in storage.list_keys(s3, "rawdata", "calibration/") + [bad_key]:
            s3.delete_object(Bucket="rawdata", Key=key)
