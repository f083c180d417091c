"""Bad raw objects: each is a recorded outcome, never a published number.

Faults are spread over the suite's site-days (one per site-day) and processed by one
``flare_process`` run per day, as a day's batch would meet them. Then the objects are put back and
a rerun gives the reference run's rows again.
"""

from __future__ import annotations

import json
import resource

import faults
import pytest
from reliability_days import DAYS

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]

A, B = DAYS
# (site, day, sensor, fault, expected scenes.status, expected scenes.outcome)
CASES = [
    ("rumaila-n", A, "sentinel2", faults.truncated, "quarantined", "unreadable"),
    ("ahvaz-w", A, "sentinel2", faults.not_a_tiff, "quarantined", "unreadable"),
    ("hassi-messaoud", A, "sentinel2", faults.wrong_band_count, "quarantined", "wrong_bands"),
    ("ebocha", A, "sentinel2", faults.float_with_nans, "quarantined", "wrong_dtype"),
    ("parshall", A, "sentinel2", faults.all_nodata, "no_data", "nodata"),
    ("rumaila-n", B, "sentinel2", faults.wrong_crs, "quarantined", "wrong_crs"),
    ("ahvaz-w", B, "sentinel2", faults.size_bomb, "quarantined", "too_large"),
    ("hassi-messaoud", B, "sentinel2", faults.maskless_nodata_strip, "quarantined", "no_nodata"),
    # VIIRS faults on the later day: a bad night is also skipped as the history of later days
    ("ebocha", B, "viirs", faults.viirs_bad_header, "quarantined", "bad_file"),
    ("parshall", B, "viirs", faults.viirs_not_utf8, "quarantined", "bad_file"),
]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def test_bad_tiles_and_viirs_files_are_quarantined_and_never_published(pipe):
    from flarewatch.store import objects as storage

    originals, keys = {}, {}
    for site, day, sensor, fault, *_ in CASES:
        key = pipe.tile_key(site, day) if sensor == "sentinel2" else pipe.viirs_key(site, day)
        originals[key] = pipe.get(key)
        keys[(site, day)] = key
        pipe.put(key, fault(originals[key]))
    bomb = keys[("ahvaz-w", B)]
    assert len(pipe.get(bomb)) < 64 * 1024  # a few KB that decode to 20000 x 20000 x 3 uint16 (2.4 GB)

    rss_before = _rss_mb()
    for day in DAYS:
        assert pipe.process(day) == "success"  # a bad input is an outcome, not a task failure
    rss_jump = _rss_mb() - rss_before
    assert pipe.rollup() == "success"
    # the size bomb was refused from its header: decoding it would have taken > 2 GB
    assert rss_jump < 300, f"peak RSS rose by {rss_jump:.0f} MB while processing"

    now = pipe.snapshot()
    for site, day, sensor, _, status, outcome in CASES:
        where = f"{site} {day} {sensor}"
        scene = pipe.scene(site, day, sensor)
        assert (scene["status"], scene["outcome"]) == (status, outcome), (where, scene["detail"])
        assert scene["detail"], where
        key = keys[(site, day)]
        copy = storage.quarantine_key(key)
        if status == "quarantined":
            assert f"s3://rawdata/{key}" in scene["detail"], where
            assert pipe.get(copy) == pipe.get(key), where  # the copy is the bad object, the original stays
            reason = json.loads(pipe.get(copy + ".reason.json"))
            assert reason["reason"] == outcome and reason["source_key"] == key, where
        else:
            with pytest.raises(FileNotFoundError):
                pipe.get(copy)
        # processed, with that sensor not observed: its detections are not there, the other sensor's are
        daily = dict(zip(("status", "n_flares", "n_s2", "n_viirs_only", "volume", "co2", "co2e", "s2_obs", "viirs_obs"),
                         now["daily"][(site, day)]))
        rows = now["detections"].get((site, day), [])
        ref_rows = pipe.reference["detections"].get((site, day), [])
        assert daily["status"] == "processed", where
        if sensor == "sentinel2":
            assert (daily["s2_obs"], daily["viirs_obs"], daily["n_s2"]) == (False, True, 0), where
            assert all(r[1] == "viirs" for r in rows), where
        else:
            assert (daily["s2_obs"], daily["viirs_obs"], daily["n_viirs_only"]) == (True, False, 0), where
            # the Sentinel-2 detections are the reference's (the detector does not read VIIRS)
            assert [r[:2] for r in rows] == [r[:2] for r in ref_rows if r[1] == "sentinel2"], where
        state = pipe.state(site, day)
        assert state["state"] == "processed", where

    bad = {(site, day) for site, day, *_ in CASES}
    pipe.assert_matches_reference(pipe.good(*bad))
    pipe.assert_audit_clean()

    # the objects fixed, a rerun gives the reference rows: a quarantined scene is validated again;
    # a tile found all-nodata is a final outcome (scenes.status no_data) until the site-day is ingested again
    for day in DAYS:
        pipe.restore(day, {k: v for k, v in originals.items() if f"date={day}" in k},
                     reingest=[site for site, d, _, _, status, _ in CASES if d == day and status == "no_data"])
    for site, day, sensor, *_ in CASES:
        assert pipe.scene(site, day, sensor)["status"] == "processed"
    pipe.assert_matches_reference(pipe.good())
    pipe.assert_audit_clean()
