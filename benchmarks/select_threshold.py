"""Pick the YOLO confidence threshold on the VALIDATION split only (never the test split).

    python benchmarks/select_threshold.py --weights models/detector/flare-yolo11n.pt --out /tmp/sel.json

Runs the detector once at a low confidence (0.05) on the validation sites' tiles, plain simulator
scenes and their domain-randomised versions (``training.randomize``), alone and with the physics
check (``detect.verified``), then scores F1 (``evaluation.detector`` rules: centres within 2 px,
one-to-one) for every threshold of a sweep. The threshold with the best mean F1 over both
validation sets (physics-checked, what is deployed) is reported.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SWEEP = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, required=True)
    p.add_argument("--sites", type=int, default=6, help="validation sites (x 6 days)")
    p.add_argument("--state", type=Path, default=REPO / ".state")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    from flarewatch.detect.yolo import offline_environment

    offline_environment(args.state)
    from flarewatch.detect.verified import PhysicsCheckedDetector
    from flarewatch.detect.yolo import YoloFlareDetector
    from flarewatch.evaluation.metrics import match_detections, prf
    from flarewatch.simulation.scene import simulate_scene
    from flarewatch.training.detector_data import DatasetSpec, scene_days, synthetic_sites, visible_flares
    from flarewatch.training.randomize import randomize_scene

    spec = DatasetSpec(n_sites_val=args.sites)
    yolo = YoloFlareDetector(args.weights, runtime="torch", conf=0.05)
    checked = PhysicsCheckedDetector(yolo)
    counts = {(s, d, t): [0, 0, 0] for s in ("plain", "randomized") for d in ("yolo", "yolo-physics") for t in SWEEP}
    for site in synthetic_sites("val", spec.n_sites_val, spec.seed, spec.aoi_km):
        for day in scene_days(site, spec.days_per_site, spec.seed):
            plain = simulate_scene(site, day)
            for set_name, scene in (("plain", plain), ("randomized", randomize_scene(plain, spec.seed, "val"))):
                labeled, _ = visible_flares(scene, spec)
                true_rc = [(f["row"], f["col"]) for f in labeled]
                for det_name, det in (("yolo", yolo), ("yolo-physics", checked)):
                    preds = det.detect(scene.tile)
                    for t in SWEEP:
                        kept = [(d.row, d.col) for d in preds if d.confidence >= t]
                        pairs, fp, fn = match_detections(kept, true_rc, 2.0)
                        c = counts[(set_name, det_name, t)]
                        c[0] += len(pairs)
                        c[1] += len(fp)
                        c[2] += len(fn)
    res = {"weights": str(args.weights), "split": "val", "scores": {}}
    for (s, d, t), (tp, fp, fn) in counts.items():
        res["scores"].setdefault(d, {}).setdefault(str(t), {})[s] = {"tp": tp, "fp": fp, "fn": fn, **prf(tp, fp, fn)}
    for d, per_t in res["scores"].items():
        best = max(SWEEP, key=lambda t: (per_t[str(t)]["plain"]["f1"] + per_t[str(t)]["randomized"]["f1"]) / 2)
        res[f"best_threshold_{d}"] = best
        for t in SWEEP:
            row = per_t[str(t)]
            print(f"{d:13s} conf {t:4.2f}  plain F1 {row['plain']['f1']:.3f}  randomized F1 {row['randomized']['f1']:.3f}")
        print(f"{d}: best threshold on val {best}")
    args.out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
