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
TABLES = ("calibration_measurements", "calibration_measurement_versions", "calibration_quarantine",
          "calibration_imports", "calibration_site_map")


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
        cur.execute("SELECT * FROM calibration_measurement_versions"
                    " ORDER BY source, source_key, site_id, period_start, report_version")
        out["versions"] = cur.fetchall()
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
            "20210503221516,ND,api,33061014590000,2019-02-01,EOG,37.0\n"
            "20210503221516,ND,api,33061009690000,2019-02-01,WLL,51.0\n"
            "20210503221516,ND,api,33061009690000,2019-03-01,WLL,0\n")
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
# real state-reported releases: versions, resent lines, truncation, gzip, quarantined volume
# ------------------------------------------------------------------------------------------------
OLDER = SAMPLE.with_name("reported_flares_sample_older_release.csv")
NEW_RUN, OLD_RUN = "20210503221516", "20210329211814"


def _sample_map() -> dict:
    import csv
    import io

    keys = set()
    for path in (SAMPLE, OLDER):
        keys |= {(r["state"], r["key_type"], r["key"]) for r in csv.DictReader(io.StringIO(path.read_text()))}
    return {k: "parshall" for k in keys}


def _measurements(conn) -> dict:
    with conn.cursor() as cur:
        cur.execute("SELECT source, source_key, period_start, volume_reported, operator, report_version"
                    " FROM calibration_measurements")
        out = {r[:3]: r[3:] for r in cur.fetchall()}
    conn.commit()
    return out


def test_an_older_release_after_the_newer_one_changes_no_newer_value(clean):
    """The real releases: newer (run 20210503221516, gzip as published) then older (20210329211814).
    The older one is recorded as versions, not applied; only the well-months the newer release
    does not have are added."""
    import gzip

    conn, site_map = clean, _sample_map()
    newer = cal.import_calibration(conn, gzip.compress(SAMPLE.read_bytes()), site_map=site_map,
                                   imported_from="s3://rawdata/calibration/reported_flares.csv.gz")
    assert newer["compressed"] and newer["report_versions"] == [NEW_RUN] and newer["inserted"] == 1317
    after_newer = _measurements(conn)
    older = cal.import_calibration(conn, OLDER.read_bytes(), site_map=site_map, imported_from="white-paper.csv")
    assert (older["inserted"], older["updated"], older["older_not_applied"]) == (4, 0, 1094)
    assert older["newest_stored_version"] == NEW_RUN and older["unchanged"] == 0
    after_older = _measurements(conn)
    assert {k: v for k, v in after_older.items() if k in after_newer} == after_newer  # nothing newer replaced
    added = {k: v for k, v in after_older.items() if k not in after_newer}
    assert len(added) == 4 and {v[2] for v in added.values()} == {OLD_RUN}
    # the renamed operator of lease O09-32724 keeps its newer name; the older name is a recorded version
    assert {v[1] for k, v in after_older.items() if k[1] == "lease:O09-32724"} == {"MASH OILFIELD SERVICES, LP"}
    assert _scalar(conn, "SELECT count(DISTINCT operator) FROM calibration_measurement_versions"
                         " WHERE source_key = 'lease:O09-32724'") == 2
    assert _scalar(conn, "SELECT count(*) FROM calibration_measurement_versions") == 1317 + 1098
    before = _snapshot(conn)
    again = cal.import_calibration(conn, OLDER.read_bytes(), site_map=site_map, imported_from="white-paper.csv")
    assert (again["inserted"], again["updated"], again["versions_recorded"]) == (0, 0, 0)
    assert _snapshot(conn) == before  # a rerun changes no row

    # the other order: the newer release updates the older values (and their version)
    _clear(conn)
    cal.import_calibration(conn, OLDER.read_bytes(), site_map=site_map, imported_from="white-paper.csv")
    res = cal.import_calibration(conn, SAMPLE.read_bytes(), site_map=site_map, imported_from="newer.csv")
    assert (res["inserted"], res["updated"], res["older_not_applied"]) == (1317 - 1094, 1094, 0)
    assert {k: v for k, v in _measurements(conn).items() if k in after_newer} == after_newer


def test_a_corrected_volume_in_an_older_release_is_not_applied_but_a_newer_one_is(clean):
    conn = clean
    line = "{run},ND,api,33061014590000,2019-02-01,EOG,{v}\n"
    head = "run,state,key_type,key,month,operator,flared\n"
    cal.import_calibration(conn, head + line.format(run=NEW_RUN, v=37.0), imported_from="new.csv")
    res = cal.import_calibration(conn, head + line.format(run=OLD_RUN, v=99.0), imported_from="old.csv")
    assert res["older_not_applied"] == 1 and res["updated"] == 0
    assert _scalar(conn, "SELECT volume_reported FROM calibration_measurements") == 37.0
    res = cal.import_calibration(conn, head + line.format(run="20210601000000", v=40.0), imported_from="june.csv")
    assert res["updated"] == 1
    assert _scalar(conn, "SELECT volume_reported FROM calibration_measurements") == 40.0
    assert _scalar(conn, "SELECT array_agg(volume_reported ORDER BY report_version)"
                         " FROM calibration_measurement_versions") == [99.0, 37.0, 40.0]
    # a file without run: its version comes from its name, else it is unversioned (older than any)
    no_run = "state,key_type,key,month,operator,flared\nND,api,33061014590000,2019-02-01,EOG,1.0\n"
    res = cal.import_calibration(conn, no_run, imported_from="reported_flares_2021-04-01.csv")
    assert (res["version_source"], res["older_not_applied"]) == ("file name", 1)
    res = cal.import_calibration(conn, no_run, imported_from="x.csv", report_version="2021-07-01")
    assert (res["version_source"], res["updated"]) == ("given", 1)


def test_text_with_tabs_and_backslashes_survives_the_copy(clean):
    conn = clean
    text = ('run,state,key_type,key,month,operator,flared\n'
            f'{NEW_RUN},ND,api,33061014590000,2019-02-01,"A\\B\tC \\N",37.0\n'
            f'{NEW_RUN},ND,api,33061009690000,2019-02-01,,1.0\n')
    cal.import_calibration(conn, text, imported_from="odd.csv")
    with conn.cursor() as cur:
        cur.execute("SELECT operator FROM calibration_measurements ORDER BY source_key DESC")
        assert cur.fetchall() == [("A\\B\tC \\N",), (None,)]
    conn.commit()


def test_both_releases_in_one_file_are_not_summed(clean):
    """Lines identical except for run used to be taken as parts and summed (totals doubled)."""
    conn, site_map = clean, _sample_map()
    cal.import_calibration(conn, SAMPLE.read_bytes(), site_map=site_map, imported_from="newer.csv")
    expected = _measurements(conn)
    _clear(conn)
    both = SAMPLE.read_text() + "".join(OLDER.read_text().splitlines(keepends=True)[1:])
    res = cal.import_calibration(conn, both, site_map=site_map, imported_from="both.csv")
    assert res["superseded_in_file"] == 1094 and res["rows"] == 1385 + 1148
    got = _measurements(conn)
    assert {k: v for k, v in got.items() if k in expected} == expected and len(got) == len(expected) + 4
    assert _scalar(conn, "SELECT sum(volume_reported) FROM calibration_measurements WHERE source = 'NDIC'") == \
        sum(v[0] for k, v in expected.items() if k[0] == "NDIC")


def test_a_cut_file_quarantines_its_last_line_with_the_reason(clean):
    import gzip

    conn = clean
    text = ("run,state,key_type,key,month,operator,flared\n"
            f"{NEW_RUN},ND,api,33061014590000,2019-02-01,EOG,37.0\n"
            f"{NEW_RUN},ND,api,33061009690000,2019-02-01,WLL,544.0\n")
    for data, name in ((text[:-4], "cut.csv"), (gzip.compress(text.encode())[:-12], "cut.csv.gz")):
        res = cal.import_calibration(conn, data, imported_from=name)
        assert res["by_reason"] == {"truncated line": 1} and res["accepted"] == 1
        assert any("no line end" in n or "gzip stream" in n for n in res["notes"])
        assert _scalar(conn, "SELECT count(*) FROM calibration_measurements WHERE source_key = %s",
                       ("api:33061009690000",)) == 0  # never 54
        assert "truncated line: " in _scalar(conn, "SELECT reason FROM calibration_quarantine"
                                                   " WHERE imported_from = %s", (name,))
    with pytest.raises(CalibrationFileError, match="binary file, not gzip and not CSV text .looks like a ZIP"):
        cal.import_calibration(conn, b"PK\x03\x04" + b"\x00" * 40, imported_from="flares.csv.gz")


def test_quarantined_volume_per_operator_and_reason_in_summary_and_view(clean):
    conn = clean
    site_map = {k: v for k, v in _sample_map().items() if k[0] != "NM"}  # NM wells unmapped
    res = cal.import_calibration(conn, SAMPLE.read_bytes(), site_map=site_map, imported_from="sample.csv")
    qv = res["quarantined_volume"]
    assert set(res["by_reason"]) == {"duplicate", "no site mapping"}
    assert 0 < qv["percent_of_file_volume"] < 100
    assert sum(g["rows"] for g in qv["by_operator_and_reason"]) == res["quarantined"]
    with conn.cursor() as cur:
        cur.execute("SELECT source, operator, kind, n_rows, volume_kscm, share_of_file_volume"
                    " FROM v_calibration_quarantine_summary WHERE imported_from = 'sample.csv'")
        view = {(s, o, k): (n, v, sh) for s, o, k, n, v, sh in cur.fetchall()}
    conn.commit()
    assert {k[0] for k in view} == {"NMOCD", "TXRRC"}
    for g in qv["by_operator_and_reason"]:
        n, v, share = view[(g["source"], g["operator"], g["kind"])]
        assert n == g["rows"] and v == pytest.approx(g["volume_kscm"], abs=1e-5)
        assert 100 * share == pytest.approx(g["percent_of_file_volume"], abs=1e-3)
    assert sum(v for _, v, _ in view.values()) == pytest.approx(qv["volume_kscm"], abs=1e-4)
    assert "quarantined volume" in cal.format_summary(res)


# ------------------------------------------------------------------------------------------------
# the DAG
# ------------------------------------------------------------------------------------------------
def _run(dag, **conf):
    """dag.test() with every Param given: in one process, Airflow 3.3's process_params resolves the
    run conf into the DAG's own Param objects, so a value left out would keep the previous run's."""
    return dag.test(logical_date=None, run_conf={"s3_key": None, "path": None, "format": "auto",
                                                  "report_version": None, **conf})


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
