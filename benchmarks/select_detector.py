#!/usr/bin/env python
"""Choose the deployed detector variant on validation data of our own (issue 10).

    PYTHONPATH=include python benchmarks/select_detector.py --out benchmarks/results/validation.json

Runs every ``detect.variants.VARIANTS`` entry on the hard validation set
(``evaluation.hard_validation``: our domain-randomised generator, seeds disjoint from training,
rich in close pairs, weak flares, fires, glint, roofs, pads, saturation) and on our simulator's
plain validation split (``DatasetSpec()`` val sites), then applies the choice rule, written down
before any independent-scene figure of these variants was looked at:

1. highest F1 on the hard validation set; variants within ``--tie`` (0.002) F1 of the best are tied;
2. among tied variants, the highest recall of stacks with another stack within 4 px;
3. a variant is eligible only if its F1 on the plain validation split is at most 0.01 below that of
   the detector deployed before (``yolo-physics-v2``): a change must not break our own scenes.

The independent generator is not touched here. YOLO runs once per scene (and merge setting) at the
lowest confidence of the variants; the others filter its boxes (``detect.variants``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _plain_val_scenes():
    from flarewatch.evaluation.hard_validation import HardScene
    from flarewatch.simulation.scene import simulate_scene
    from flarewatch.training.detector_data import DatasetSpec, scene_days, synthetic_sites, visible_flares

    spec = DatasetSpec()
    for site in synthetic_sites("val", spec.n_sites_val, spec.seed):
        for day in scene_days(site, spec.days_per_site, spec.seed):
            scene = simulate_scene(site, day)
            labeled, hidden = visible_flares(scene, spec)
            yield HardScene(scene, labeled, hidden)


def choose(hard: dict, plain: dict, tie: float, before: str = "yolo-physics-v2") -> str:
    """The choice rule of the module docstring."""
    floor = plain[before]["f1"] - 0.01
    ok = [n for n in hard if plain[n]["f1"] >= floor]
    best = max(hard[n]["f1"] for n in ok)
    tied = [n for n in ok if hard[n]["f1"] >= best - tie]
    return max(tied, key=lambda n: (hard[n]["recall_with_neighbour_4px"]["recall"], hard[n]["f1"]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=40, help="hard validation sites (x --days scenes)")
    ap.add_argument("--days", type=int, default=4)
    ap.add_argument("--tie", type=float, default=0.002)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "validation.json")
    ap.add_argument("--state", type=Path, default=None)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _results import merge_into

    from flarewatch.detect.variants import VARIANTS, YoloPool
    from flarewatch.evaluation import hard_validation as hv
    from flarewatch.evaluation.independent.harness import yolo_detector

    t0 = time.perf_counter()
    base = yolo_detector(args.state)
    pool = YoloPool(base.weights, base.runtime)
    dets = {name: pool.build(name).detect for name in VARIANTS}
    hard = hv.evaluate(dets, hv.hard_scenes(args.sites, args.days))
    plain = hv.evaluate(dets, _plain_val_scenes())
    chosen = choose(hard["detectors"], plain["detectors"], args.tie)
    res = {"hard_validation": {**hard, "seed": hv.VALIDATION_SEED, "sites": args.sites, "days": args.days},
           "plain_validation": plain, "choice_rule": __doc__.split("rule, written")[1].split("The independent")[0].strip(),
           "chosen": chosen, "yolo_runtime": base.runtime, "seconds": round(time.perf_counter() - t0, 1)}
    merge_into(args.out, "selection", res)
    print(f"hard validation: {hard['scenes']} scenes, {hard['visible_flares']} visible flares; "
          f"plain validation: {plain['scenes']} scenes, {plain['visible_flares']} flares")
    print(f"{'variant':44s} {'P':>6s} {'R':>6s} {'F1':>6s} {'FP fire/dup/else':>17s} {'R nb4':>6s} {'R iso':>6s} "
          f"{'R sat':>6s} {'R weak':>6s} {'plainF1':>7s}")
    for n, v in hard["detectors"].items():
        fp = "/".join(str(x) for x in v["fp_by_cause"].values())
        print(f"{n:44s} {v['precision']:6.3f} {v['recall']:6.3f} {v['f1']:6.4f} {fp:>17s} "
              f"{v['recall_with_neighbour_4px']['recall']:6.3f} {v['recall_isolated']['recall']:6.3f} "
              f"{v['recall_saturated']['recall']:6.3f} {v['recall_weak']['recall']:6.3f} {plain['detectors'][n]['f1']:7.4f}")
    print(f"chosen by the rule: {chosen}; {res['seconds']} s; written under 'selection' in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
