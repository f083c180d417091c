"""A hard validation set of our own, for choosing detector variants and thresholds (issue 10).

The independent generator (``evaluation.independent``) is for evaluation only: nothing may be
chosen on it. Our simulator's plain validation split is too easy to tell detector variants apart
(every variant scores F1 ~0.96-0.99 there), so variants are chosen on this set instead: scenes of
OUR domain-randomised generator (``training.randomize``) with a ``RandomizeSpec`` rich in what the
independent scenes punish (``HARD_SPEC``: close pairs 1.5-4 px apart in almost every scene, extra
weak and bright flares, wildfire fronts, glint, roofs, bright pads, towns, PSF wings,
misregistration, saturation as DN 65535 or as a plateau). Sites are ``synthetic_sites("val", ...,
seed=VALIDATION_SEED)`` (ids ``val-s101-*``) and the randomisation seed is ``VALIDATION_SEED``: the
training recipe uses seed 0 (``DatasetSpec.seed``: sites ``train-s0-*``, ``val-s0-*``,
``test-s0-*``), so no site, day or randomisation draw is shared with training.

Truth: the flares our generator placed, labelled as the training data labels them
(``training.detector_data.visible_flares``); detections within 2 px of a hidden flare are neither
hits nor false positives. Scores (``score``): precision / recall / F1 (centres within 2 px,
``evaluation.metrics.match_detections``), recall of stacks with another stack within 4 px and of
isolated ones, of saturated and of weak flares (RH < 0.3 MW), and false positives by cause:
``wildfire`` (within the fire's half extent + 3 px of a truth fire), ``flare_duplicate`` (within
4 px of a true flare: a bad split or a duplicate box), else ``elsewhere``.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass

from flarewatch.evaluation.metrics import match_detections, prf
from flarewatch.simulation.scene import simulate_scene
from flarewatch.training.detector_data import DatasetSpec, scene_days, synthetic_sites, visible_flares
from flarewatch.training.randomize import RandomizeSpec, randomize_scene

VALIDATION_SEED = 101  # training uses DatasetSpec.seed = 0: disjoint sites, days and draws
VALIDATION_SPLIT = "val"
NEIGHBOUR_PX = 4.0
DUPLICATE_PX = 4.0
MATCH_PX = 2.0
WEAK_RH_MW = 0.3
HARD_SPEC = RandomizeSpec(
    p_pads=0.8, p_roofs=0.8, p_town=0.4, p_glint=0.45, p_extra_flares=0.9, p_pairs=0.95, p_fire=0.7,
    p_wings=0.5, p_misregister=0.7, p_dn65535=0.5,
)


@dataclass(frozen=True)
class HardScene:
    """One validation scene: the randomised scene, its labelled (visible) and hidden flares."""

    scene: object
    labeled: list
    hidden: list


def hard_scenes(n_sites: int = 40, days_per_site: int = 4, seed: int = VALIDATION_SEED,
                spec: RandomizeSpec = HARD_SPEC):
    """Yield ``HardScene``s: ``n_sites`` x ``days_per_site`` randomised scenes (module docstring)."""
    label_spec = DatasetSpec(seed=seed)
    for site in synthetic_sites(VALIDATION_SPLIT, n_sites, seed):
        for day in scene_days(site, days_per_site, seed):
            scene = randomize_scene(simulate_scene(site, day), seed, VALIDATION_SPLIT, spec)
            labeled, hidden = visible_flares(scene, label_spec)
            yield HardScene(scene, labeled, hidden)


def _neighbour(f: dict, others: list[dict]) -> bool:
    return any(o is not f and math.hypot(f["row"] - o["row"], f["col"] - o["col"]) <= NEIGHBOUR_PX
               for o in others)


def score_scene(hs: HardScene, dets) -> dict:
    """Counts and per-flare hits of one scene's detections (module docstring)."""
    vis, hidden = hs.labeled, hs.hidden
    allf = vis + hidden
    fires = hs.scene.truth.get("fires", [])
    keep = [d for d in dets if not any(math.hypot(d.row - h["row"], d.col - h["col"]) <= MATCH_PX for h in hidden)]
    pairs, fp_idx, _ = match_detections([(d.row, d.col) for d in keep], [(f["row"], f["col"]) for f in vis], MATCH_PX)
    hit = {t for _, t in pairs}
    causes = []
    for i in fp_idx:
        d = keep[i]
        if any(math.hypot(d.row - fi["row"], d.col - fi["col"]) <= fi.get("extent_px", 2.0) / 2 + 3.0 for fi in fires):
            causes.append("wildfire")
        elif any(math.hypot(d.row - f["row"], d.col - f["col"]) <= DUPLICATE_PX for f in vis):
            causes.append("flare_duplicate")
        else:
            causes.append("elsewhere")
    flares = [{"hit": j in hit, "neighbour": _neighbour(f, allf), "saturated": bool(f.get("saturated")),
               "weak": f["radiant_heat_mw"] < WEAK_RH_MW} for j, f in enumerate(vis)]
    return {"tp": len(pairs), "fp": len(fp_idx), "fn": len(vis) - len(pairs), "causes": causes, "flares": flares}


def summarise(scores: list[dict], seconds: float = 0.0) -> dict:
    """Overall and per-group figures of ``score_scene`` results."""
    tp, fp, fn = (sum(s[k] for s in scores) for k in ("tp", "fp", "fn"))
    flares = [f for s in scores for f in s["flares"]]
    causes = defaultdict(int)
    for s in scores:
        for c in s["causes"]:
            causes[c] += 1

    def rec(sel) -> dict:
        v = [f["hit"] for f in flares if sel(f)]
        return {"n": len(v), "recall": sum(v) / len(v) if v else None}

    return {"tp": tp, "fp": fp, "fn": fn, **prf(tp, fp, fn),
            "fp_by_cause": {k: causes.get(k, 0) for k in ("wildfire", "flare_duplicate", "elsewhere")},
            "recall_with_neighbour_4px": rec(lambda f: f["neighbour"]),
            "recall_isolated": rec(lambda f: not f["neighbour"]),
            "recall_saturated": rec(lambda f: f["saturated"]),
            "recall_weak": rec(lambda f: f["weak"]),
            "seconds": round(seconds, 2)}


def evaluate(detectors: dict, scenes) -> dict:
    """Score ``detectors`` (name -> ``detect(tile)`` callable) on ``scenes`` (``HardScene``s)."""
    scores: dict = {name: [] for name in detectors}
    secs: dict = defaultdict(float)
    n = n_flares = 0
    for hs in scenes:
        n += 1
        n_flares += len(hs.labeled)
        for name, run in detectors.items():
            t0 = time.perf_counter()
            dets = run(hs.scene.tile)
            secs[name] += time.perf_counter() - t0
            scores[name].append(score_scene(hs, dets))
    return {"scenes": n, "visible_flares": n_flares,
            "detectors": {name: summarise(s, secs[name]) for name, s in scores.items()}}
