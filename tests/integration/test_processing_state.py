"""Processing state on the real database: poison site-days leave the pending set, rollups count
unprocessed site-days as missing (never zero), re-queueing, and the write check."""

from __future__ import annotations

import dataclasses
import os
from datetime import date

import pytest

from flarewatch.cli import main as cli
from flarewatch.config import Settings
from flarewatch.ingest.site_day import ingest_site_day
from flarewatch.ingest.sources import get_source
from flarewatch.process.audit import audit_site_days
from flarewatch.process.batch import BatchFailed, process_batch
from flarewatch.store import db, processing
from flarewatch.store import objects as storage

pytestmark = pytest.mark.integration

CFG = dataclasses.replace(Settings(), detector_kind="threshold", volume_model="calibration")


def _daily(conn, site_id, day):
    with conn.cursor() as cur:
        cur.execute("SELECT status, n_flares, volume_kscm, s2_observed, viirs_observed FROM emissions_daily"
                    " WHERE site_id = %s AND day = %s", (site_id, day))
        row = cur.fetchone()
    conn.commit()
    return row


def test_unprocessed_site_days_are_pending_in_the_rollup_not_zero(conn, s3):
    day = date(2025, 8, 1)
    site = db.fetch_sites(conn, ["ebocha"])[0]
    ingest_site_day(site, day, get_source("demo"), s3, conn, CFG)
    assert ("ebocha", day) in db.pending_site_days(conn)
    db.refresh_rollups(conn, [day])
    assert _daily(conn, "ebocha", day) == ("pending", None, None, False, False)

    process_batch(conn, s3, CFG, day, ["ebocha"])
    db.refresh_rollups(conn, [day])
    status, n, volume, s2, viirs = _daily(conn, "ebocha", day)
    assert (status, s2, viirs) == ("processed", True, True) and n is not None and volume is not None
    assert audit_site_days(conn, s3, CFG, day, day) == {"checked": 1, "problems": [], "unrecorded": 0}


def test_a_poison_site_day_is_marked_failed_left_out_and_requeued(conn, s3, pg_dsn, capsys):
    day = date(2025, 8, 2)
    sites = db.fetch_sites(conn, ["parshall", "rumaila-n"])
    for site in sites:
        ingest_site_day(site, day, get_source("demo"), s3, conn, CFG)
    key = storage.raw_tile_key("demo", day, "parshall")
    body = storage.get_bytes(s3, CFG.raw_bucket, key)
    s3.delete_object(Bucket=CFG.raw_bucket, Key=key)  # a lost object: every attempt fails

    for attempt in (1, 2, 3):
        with pytest.raises(BatchFailed) as info:
            process_batch(conn, s3, CFG, day, ["parshall", "rumaila-n"])
        assert [s for s, _ in info.value.errors] == ["parshall"]
        assert info.value.permanent == (attempt == 3)
    assert "flarewatch requeue --date 2025-08-02" in str(info.value)
    [failed] = processing.failed_site_days(conn, days=[day])
    assert (failed["site_id"], failed["attempts"]) == ("parshall", 3)
    assert "does not exist" in failed["last_error"]
    assert ("parshall", day) not in db.pending_site_days(conn)  # later runs go on without it
    assert ("rumaila-n", day) not in db.pending_site_days(conn)  # processed on the first try
    assert day in db.stale_rollup_days(conn)  # the failure must reach the rollup
    db.refresh_rollups(conn, db.stale_rollup_days(conn))
    assert _daily(conn, "parshall", day) == ("failed", None, None, False, False)
    assert _daily(conn, "rumaila-n", day)[0] == "processed"
    with conn.cursor() as cur:
        cur.execute("SELECT site_days_unprocessed FROM emissions_monthly WHERE group_level = 'operator'"
                    " AND group_value = (SELECT operator FROM sites WHERE site_id = 'parshall') AND month = %s",
                    (day.replace(day=1),))
        assert cur.fetchone()[0] >= 1
    conn.commit()

    # a later try of the batch skips it and says why, without retrying
    with pytest.raises(BatchFailed) as info:
        process_batch(conn, s3, CFG, day, ["parshall", "rumaila-n"])
    assert info.value.permanent and info.value.errors == [] and info.value.gave_up == ["parshall"]

    storage.put_bytes(s3, CFG.raw_bucket, key, body)  # the operator restores the object ...
    os.environ["FLAREWATCH_DB_URL"] = pg_dsn
    try:
        assert cli(["failed", "--start", "2025-08-02"]) == 0
        assert cli(["requeue", "--date", "2025-08-02", "--site", "parshall", "--by", "tester"]) == 0
    finally:
        os.environ.pop("FLAREWATCH_DB_URL")
    out = capsys.readouterr().out
    assert "parshall" in out and "3 attempts" in out and "re-queued parshall 2025-08-02" in out
    assert ("parshall", day) in db.pending_site_days(conn)
    process_batch(conn, s3, CFG, day, ["parshall"])  # ... and the next run processes it
    db.refresh_rollups(conn, db.stale_rollup_days(conn))
    assert _daily(conn, "parshall", day)[0] == "processed"
    [rec] = [r for r in processing.processing_records(conn, day, day) if r["site_id"] == "parshall"]
    assert (rec["state"], rec["attempts"], rec["requeued_by"]) == ("processed", 0, "tester")
    assert audit_site_days(conn, s3, CFG, day, day)["problems"] == []


def test_a_new_ingest_puts_a_failed_site_day_back(conn, s3):
    day = date(2025, 8, 3)
    site = db.fetch_sites(conn, ["cantarell"])[0]
    ingest_site_day(site, day, get_source("demo"), s3, conn, CFG)
    for _ in range(CFG.max_process_attempts):
        processing.record_failure(conn, "cantarell", day, "RuntimeError: boom", CFG.max_process_attempts)
    assert ("cantarell", day) not in db.pending_site_days(conn)
    ingest_site_day(site, day, get_source("demo"), s3, conn, CFG)  # fresh data: try again
    assert ("cantarell", day) in db.pending_site_days(conn)
    assert processing.failed_site_days(conn, days=[day]) == []
    assert processing.record_failure(conn, "cantarell", day, "RuntimeError: again", 3) == {"state": "retrying",
                                                                                            "attempts": 1}


def test_a_scene_that_failed_at_ingest_is_never_observed(conn, s3):
    day = date(2025, 8, 4)
    site = db.fetch_sites(conn, ["hassi-messaoud"])[0]
    ingest_site_day(site, day, get_source("demo"), s3, conn, CFG)
    with conn.cursor() as cur:
        cur.execute("UPDATE scenes SET status = 'failed', outcome = 'error', detail = 'HTTP 500', s3_key = NULL"
                    " WHERE site_id = 'hassi-messaoud' AND acquisition_date = %s AND sensor = 'sentinel2'", (day,))
    conn.commit()
    process_batch(conn, s3, CFG, day, ["hassi-messaoud"])
    assert db.fetch_scenes(conn, "hassi-messaoud", day)["sentinel2"]["status"] == "failed"
    db.refresh_rollups(conn, [day])
    status, _, _, s2, viirs = _daily(conn, "hassi-messaoud", day)
    assert (status, s2, viirs) == ("processed", False, True)


def test_duplicate_keys_or_lost_rows_never_commit(conn):
    day = date(2025, 8, 5)
    row = {c: None for c in db.DETECTION_COLUMNS} | {"site_id": "ebocha", "acquisition_date": day,
                                                   "detection_key": "s2:1:1", "sensor": "sentinel2",
                                                   "detector": "t", "detector_version": "t", "lat": 5.0,
                                                   "lon": 6.0, "features": {}}
    with pytest.raises(db.WriteMismatch, match="produced twice"):
        db.replace_site_day_results(conn, "ebocha", day, [row, dict(row)], [], scene_sensors=[])
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM flare_detections WHERE site_id = 'ebocha' AND acquisition_date = %s", (day,))
        assert cur.fetchone()[0] == 0
    conn.commit()


def test_the_audit_finds_objects_that_disagree_with_the_rows(conn, s3):
    import json

    day = date(2025, 8, 6)
    site = db.fetch_sites(conn, ["rumaila-n"])[0]
    ingest_site_day(site, day, get_source("demo"), s3, conn, CFG)
    process_batch(conn, s3, CFG, day, ["rumaila-n"])
    assert audit_site_days(conn, s3, CFG, day, day)["problems"] == []
    keys = storage.processed_keys(day, "rumaila-n")
    gj = json.loads(storage.get_bytes(s3, CFG.processed_bucket, keys["geojson"]))
    gj["features"] = gj["features"][1:]  # a detection lost from the GeoJSON
    storage.put_bytes(s3, CFG.processed_bucket, keys["geojson"], json.dumps(gj).encode())
    result = json.loads(storage.get_bytes(s3, CFG.processed_bucket, keys["result"]))
    result["volume_kscm_d"] *= 2  # a doubled total in result.json
    storage.put_bytes(s3, CFG.processed_bucket, keys["result"], json.dumps(result).encode())
    problems = audit_site_days(conn, s3, CFG, day, day)["problems"]
    assert any("detections.geojson has" in p for p in problems)
    assert any("result.json volume" in p for p in problems)
    assert audit_site_days(conn, s3, CFG, day, day, days=[date(2025, 8, 7)])["checked"] == 0


def test_processing_records_whether_sentinel2_was_usable_over_the_flares(conn, s3):
    day = date(2025, 8, 7)
    site = db.fetch_sites(conn, ["cantarell"])[0]
    ingest_site_day(site, day, get_source("demo"), s3, conn, CFG)
    result = process_batch(conn, s3, CFG, day, ["cantarell"])
    assert result["n_detections"] >= 0
    scene = db.fetch_scenes(conn, "cantarell", day)["sentinel2"]
    with conn.cursor() as cur:
        cur.execute("SELECT usable, usable_fraction FROM scenes WHERE site_id = 'cantarell' AND acquisition_date = %s"
                    " AND sensor = 'sentinel2'", (day,))
        usable, frac = cur.fetchone()
    conn.commit()
    assert scene["status"] == "processed" and usable is not None and 0.0 <= frac <= 1.0
    db.refresh_rollups(conn, [day])
    assert _daily(conn, "cantarell", day)[3] is True  # s2_observed
    with conn.cursor() as cur:
        cur.execute("SELECT s2_usable FROM emissions_daily WHERE site_id = 'cantarell' AND day = %s", (day,))
        assert cur.fetchone()[0] == usable
    conn.commit()
