"""Failures of the pipeline's own steps: a failed ingest, a poison site-day, duplicate keys, a full rerun."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from reliability_days import DAYS, SITES

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]

A, B = DAYS


def test_scene_failed_at_ingest_is_never_observed_or_processed(pipe, monkeypatch):
    from flarewatch.ingest.sources.demo import DemoSource

    site = "cantarell"
    real_fetch = DemoSource.fetch

    def failing_fetch(self, s, day):
        data = real_fetch(self, s, day)
        if s.site_id == site:  # the provider answered 503: ingest records sentinel2 failed / error
            data.tile_geotiff, data.errors = None, {"sentinel2": ConnectionError("503 from the provider")}
        return data

    monkeypatch.setattr(DemoSource, "fetch", failing_fetch)
    assert pipe.ingest(A) == "failed"  # that site's ingest task failed; the others succeeded
    monkeypatch.undo()
    scene = pipe.scene(site, A, "sentinel2")
    assert (scene["status"], scene["outcome"]) == ("failed", "error") and "503" in scene["detail"]
    # the tile of the reference ingest is still in rawdata under the same key: it must not be read
    assert pipe.get(pipe.tile_key(site, A))[:2] == b"II"

    assert pipe.process(A) == "success"
    assert pipe.rollup([A]) == "success"
    scene = pipe.scene(site, A, "sentinel2")
    assert (scene["status"], scene["outcome"]) == ("failed", "error")  # not overwritten to processed
    assert pipe.scene(site, A, "viirs")["status"] == "processed"
    daily = pipe.snapshot()["daily"][(site, A)]
    assert daily[0] == "processed" and daily[2] == 0 and daily[-2:] == (False, True)  # S2 not observed, no S2 row
    assert all(r[1] == "viirs" for r in pipe.snapshot()["detections"].get((site, A), []))
    pipe.assert_matches_reference(pipe.good((site, A)))
    pipe.assert_audit_clean()

    pipe.restore(A, {}, reingest=[site])  # the provider answers again
    pipe.assert_matches_reference(pipe.good())


def test_poison_site_day_is_isolated_then_requeued(pipe, capsys):
    from flarewatch import cli
    from flarewatch.orchestration import batching, tasks
    from flarewatch.orchestration.dags import RAW_SCENES
    from flarewatch.store import db

    site = "parshall"
    assert pipe.ingest(B, [site]) == "success"  # a new ingest of the site-day ...
    original = pipe.get(pipe.tile_key(site, B))
    pipe.s3.delete_object(Bucket="rawdata", Key=pipe.tile_key(site, B))  # ... whose tile then disappears
    assert (site, B) in db.pending_site_days(pipe.conn)

    # the task fails, retries twice (at once here), and gives up: the third failure is permanent
    assert pipe.process(B, retries=2) == "failed"
    state = pipe.state(site, B)
    assert state["state"] == "failed" and state["attempts"] == 3, state
    assert "does not exist" in state["last_error"]
    assert pipe.rollup([B]) == "success"
    daily = pipe.snapshot()["daily"][(site, B)]
    assert daily == ("failed", None, None, None, None, None, None, False, False)  # missing, never zero
    pipe.assert_matches_reference(pipe.good((site, B)))  # the batch's other site-days were written
    pipe.assert_audit_clean()

    # later runs leave it out and succeed
    assert (site, B) not in db.pending_site_days(pipe.conn)
    for params in ({}, {"acquisition_date": B.isoformat()}):  # a sweep, a manual run of the day
        planned = tasks.plan_process({"params": params, "triggering_asset_events": {}}, RAW_SCENES)
        assert all(site not in batching.batch_days(b).get(B, []) for b in planned)
    assert pipe.process(B) == "success"
    assert pipe.state(site, B)["state"] == "failed"

    assert cli.main(["failed", "--start", B.isoformat()]) == 0
    assert f"{site}" in capsys.readouterr().out
    assert cli.main(["requeue", "--date", B.isoformat(), "--site", site, "--by", "reliability-test"]) == 0
    assert f"re-queued {site} {B}" in capsys.readouterr().out
    assert pipe.state(site, B)["state"] == "retrying"
    assert (site, B) in db.pending_site_days(pipe.conn)

    pipe.put(pipe.tile_key(site, B), original)  # the fix
    assert pipe.process(B) == "success"
    assert pipe.state(site, B)["state"] == "processed"
    assert pipe.rollup([B]) == "success"
    pipe.assert_matches_reference(pipe.good())
    pipe.assert_audit_clean()


def test_two_detections_sharing_a_peak_pixel_get_distinct_keys(pipe, monkeypatch):
    from flarewatch.process import batch
    from flarewatch.store import objects as storage

    site, day = next(k for k, rows in sorted(pipe.reference["detections"].items(), key=lambda x: (x[0][1], x[0][0]))
                     if sum(r[1] == "sentinel2" for r in rows) >= 1)
    ref_s2 = [r[0] for r in pipe.reference["detections"][(site, day)] if r[1] == "sentinel2"]
    real = batch.production_detector

    class PairSplitter:
        """The deployed detector, plus a second flare on the first one's peak pixel (a close pair)."""

        def __init__(self, det):
            self.det = det

        def detect(self, tile):
            found = self.det.detect(tile)
            return [*found, replace(found[0], confidence=found[0].confidence * 0.9)] if found else found

    monkeypatch.setattr(batch, "production_detector", lambda *a: (PairSplitter(real(*a)[0]), real(*a)[1]))
    assert pipe.process(day, [site]) == "success"
    monkeypatch.undo()
    rows = pipe.snapshot()["detections"][(site, day)]
    keys = [r[0] for r in rows if r[1] == "sentinel2"]
    assert len(keys) == len(ref_s2) + 1 and len(set(keys)) == len(keys)
    twins = [k for k in keys if k.endswith("~2")]
    assert len(twins) == 1 and twins[0][:-2] in keys and twins[0][:-2] in ref_s2, keys
    result = json.loads(storage.get_bytes(pipe.s3, "processed", storage.processed_keys(day, site)["result"]))
    rec = pipe.query("SELECT n_detections, n_sentinel2 FROM site_day_processing WHERE site_id = %s"
                     " AND acquisition_date = %s", (site, day))[0]
    assert rec == (len(rows), len(keys)) and result["n_detections"] == len(rows)  # DB count == produced
    pipe.assert_audit_clean()

    assert pipe.process(day, [site]) == "success"  # the real detector again: the extra row goes
    assert pipe.rollup([day]) == "success"
    pipe.assert_matches_reference(pipe.good())


def test_clear_and_rerun_everything_changes_no_row(pipe):
    from flarewatch.store import objects as storage

    def objects():
        return (len(storage.list_keys(pipe.s3, "rawdata", "")), len(storage.list_keys(pipe.s3, "processed", "")))

    before, processing = objects(), pipe.query(
        "SELECT site_id, acquisition_date, state, n_detections, n_sentinel2, n_viirs_only, volume_kscm_d"
        " FROM site_day_processing WHERE acquisition_date = ANY(%s) ORDER BY 1, 2", (DAYS,))
    for day in DAYS:
        assert pipe.ingest(day) == "success"
        assert pipe.process(day) == "success"
    assert pipe.rollup() == "success"
    assert pipe.snapshot() == pipe.reference
    assert objects() == before
    assert pipe.query("SELECT site_id, acquisition_date, state, n_detections, n_sentinel2, n_viirs_only,"
                      " volume_kscm_d FROM site_day_processing WHERE acquisition_date = ANY(%s) ORDER BY 1, 2",
                      (DAYS,)) == processing
    assert len(processing) == len(SITES) * len(DAYS)
    pipe.assert_audit_clean()
