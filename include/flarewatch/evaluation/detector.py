"""Detector evaluation on the held-out test split: any detector vs the simulator's visible flares.

Every detector sees the same full tiles of the test sites (sites disjoint from training), and is
scored against the flares the training data would label (``training.detector_data.visible_flares``:
active, in the scene, visible above the local noise). Matching rule: one-to-one, greedy by
distance, a prediction matches a true flare when their **centres are within 2 pixels** (40 m)
(``evaluation.metrics.match_detections``). Hard cases are subsets of test scenes:

- ``glint``: scenes with sun glint; ``fire``: scenes with a wildfire;
- ``cloud``: scenes with cloud fraction >= 0.2;
- ``small``: scenes with a labelled small flare (flow < 25 thousand m3/day or RH < 0.3 MW);
  ``small_flare_recall`` is the recall on those flares alone.
"""

from __future__ import annotations

import time
from collections import defaultdict

from flarewatch.config import ThresholdDetectorConfig
from flarewatch.detect.threshold import detect_flares
from flarewatch.evaluation.metrics import match_detections, prf
from flarewatch.simulation.scene import simulate_scene
from flarewatch.training.detector_data import (
    DatasetSpec,
    scene_days,
    synthetic_sites,
    visible_flares,
)
from flarewatch.training.randomize import randomize_scene

CASES = ("all", "glint", "cloud", "fire", "small")
SMALL_FLOW_KSCM_D = 25.0
SMALL_RH_MW = 0.3


def _is_small(f: dict) -> bool:
    return f.get("flow_kscm_d", 0.0) < SMALL_FLOW_KSCM_D or f.get("radiant_heat_mw", 0.0) < SMALL_RH_MW


def scene_cases(scene, labeled: list[dict]) -> set[str]:
    cases = {"all"}
    if scene.truth.get("glint"):
        cases.add("glint")
    if scene.truth.get("fires"):
        cases.add("fire")
    if scene.cloud_fraction >= 0.2:
        cases.add("cloud")
    if any(_is_small(f) for f in labeled):
        cases.add("small")
    return cases


def evaluate_detectors(detectors: dict, spec: DatasetSpec = DatasetSpec(), split: str = "test",
                       max_dist_px: float = 2.0) -> dict:
    """Score each detector (name -> object with ``detect(tile)``) on the ``split`` scenes."""
    counts = {name: {c: [0, 0, 0] for c in CASES} for name in detectors}
    small = {name: [0, 0] for name in detectors}  # tp, fn on small flares
    seconds = defaultdict(float)
    n_scenes = 0
    for site in synthetic_sites(split, spec.n_sites(split), spec.seed, spec.aoi_km):
        for day in scene_days(site, spec.days_per_site, spec.seed):
            scene = simulate_scene(site, day)
            if spec.randomize:  # domain-randomised scenes (training.randomize), same split seeds
                scene = randomize_scene(scene, spec.seed, split)
            labeled, _hidden = visible_flares(scene, spec)
            true_rc = [(f["row"], f["col"]) for f in labeled]
            cases = scene_cases(scene, labeled)
            n_scenes += 1
            for name, det in detectors.items():
                t = time.perf_counter()
                preds = det.detect(scene.tile)
                seconds[name] += time.perf_counter() - t
                pairs, fp_idx, fn_idx = match_detections([(d.row, d.col) for d in preds], true_rc, max_dist_px)
                for case in cases:
                    c = counts[name][case]
                    c[0] += len(pairs)
                    c[1] += len(fp_idx)
                    c[2] += len(fn_idx)
                matched_true = {t_i for _, t_i in pairs}
                for i, f in enumerate(labeled):
                    if _is_small(f):
                        small[name][0 if i in matched_true else 1] += 1
    out = {"split": split, "n_scenes": n_scenes, "match_rule": f"centre distance <= {max_dist_px} px, one-to-one",
           "detectors": {}}
    for name in detectors:
        per_case = {}
        for case in CASES:
            tp, fp, fn = counts[name][case]
            per_case[case] = {"tp": tp, "fp": fp, "fn": fn, **prf(tp, fp, fn)}
        tp_s, fn_s = small[name]
        out["detectors"][name] = {
            "cases": per_case,
            "small_flare_recall": tp_s / (tp_s + fn_s) if tp_s + fn_s else None,
            "seconds_per_tile": seconds[name] / max(1, n_scenes),
        }
    return out


class ThresholdDetector:
    """The physics baseline behind the same ``detect(tile)`` interface as the YOLO detector."""

    name = "threshold-tai-nhi"

    def __init__(self, cfg=None):

        self.cfg = cfg or ThresholdDetectorConfig()

    def detect(self, tile):

        return detect_flares(tile, self.cfg)
