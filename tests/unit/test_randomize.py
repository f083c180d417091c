"""Domain randomisation of training scenes (training.randomize, issue 10 item 2)."""

import math

import numpy as np
import pytest

from flarewatch.detect.threshold import S2_SATURATED_DN as SATURATED_DN
from flarewatch.simulation.scene import simulate_scene
from flarewatch.training.detector_data import (
    DatasetSpec,
    build_dataset,
    scene_days,
    synthetic_sites,
    visible_flares,
    yolo_label_lines,
)
from flarewatch.training.randomize import (
    RandomizeSpec,
    randomize_scene,
)

SPEC = DatasetSpec()
ALL_ON = RandomizeSpec(**{f: 1.0 for f in RandomizeSpec.__dataclass_fields__ if f.startswith("p_")})


def _scenes(split="train", n_sites=3, days=2):
    for site in synthetic_sites(split, n_sites, 0, 6.4):
        for day in scene_days(site, days, 0):
            yield simulate_scene(site, day)


@pytest.fixture(scope="module")
def scene():
    return next(_scenes())


def test_deterministic_per_seed(scene):
    a, b = randomize_scene(scene, 0, "train"), randomize_scene(scene, 0, "train")
    assert np.array_equal(a.tile.dn, b.tile.dn)
    assert a.truth == b.truth
    c = randomize_scene(scene, 1, "train")
    assert not np.array_equal(a.tile.dn, c.tile.dn)
    # the input scene is not modified
    assert "randomization" not in scene.truth


def test_close_pairs_are_two_labels():
    n_pairs = 0
    for sc in _scenes(n_sites=2, days=1):
        r = randomize_scene(sc, 0, "train", ALL_ON)
        labeled, _ = visible_flares(r, SPEC)
        ids = {f["flare_id"]: f for f in labeled}
        for a_id, b_id in r.truth["randomization"]["pairs"]:
            if a_id in ids and b_id in ids:
                a, b = ids[a_id], ids[b_id]
                d = math.hypot(a["row"] - b["row"], a["col"] - b["col"])
                assert 1.5 <= d <= 4.0 + 1e-3
                r0, c0 = int(a["row"]) - 80, int(a["col"]) - 80
                lines = yolo_label_lines([(f["row"], f["col"], f["box_px"]) for f in (a, b)], r0, c0, 160)
                assert len(lines) == 2 and lines[0] != lines[1]
                n_pairs += 1
    assert n_pairs >= 1


def test_dn65535_saturation_and_plateau_both_occur():
    kinds = set()
    for sc in _scenes(n_sites=4, days=2):
        r = randomize_scene(sc, 0, "train")
        applied = r.truth["randomization"]["applied"]
        if "dn65535" in applied:
            assert (r.tile.dn == SATURATED_DN).any()
            kinds.add("dn65535")
        if "plateau" in applied:
            assert not (r.tile.dn == SATURATED_DN).any()
            kinds.add("plateau")
    assert kinds == {"dn65535", "plateau"}


def test_saturated_flag_follows_dn(scene):
    r = randomize_scene(scene, 0, "train", ALL_ON)
    if "dn65535" in r.truth["randomization"]["applied"]:
        sat = (r.tile.dn == SATURATED_DN).any(axis=0)
        for f in r.truth["flares"]:
            if f["active"] and f["in_scene"]:
                i, j = int(f["row"]), int(f["col"])
                assert f["saturated"] == bool(sat[max(i - 2, 0) : i + 3, max(j - 2, 0) : j + 3].any())


def test_labels_follow_flame_truth(scene):
    r = randomize_scene(scene, 0, "train", ALL_ON)
    labeled, hidden = visible_flares(r, SPEC)
    truth_ids = {f["flare_id"] for f in r.truth["flares"] if f["active"] and f["in_scene"]}
    assert {f["flare_id"] for f in labeled + hidden} == truth_ids
    fire_rc = [(f["row"], f["col"]) for f in r.truth["fires"]]
    for f in labeled:  # no label sits on a wildfire centre
        assert all(math.hypot(f["row"] - fr, f["col"] - fc) > 3 for fr, fc in fire_rc)


def test_hard_negatives_in_every_split(tmp_path):
    spec = DatasetSpec(n_sites_train=5, n_sites_val=5, n_sites_test=5, days_per_site=2, randomize=True)
    summary = build_dataset(tmp_path, spec)
    for split, counts in summary["splits"].items():
        tags = counts["tags"]
        assert tags["fire"] > 0 and tags["glint"] > 0 and tags["cloud"] > 0, (split, tags)
        assert counts["positives"] > 0
    # roofs and pairs are recorded per scene
    applied = set()
    for split in ("train", "val", "test"):
        for site in synthetic_sites(split, 5, 0, 6.4):
            for day in scene_days(site, 2, 0):
                applied |= set(randomize_scene(simulate_scene(site, day), 0, split).truth["randomization"]["applied"])
    assert {"roofs", "pairs", "fire", "glint", "cloud", "dn65535", "nodata"} <= applied
