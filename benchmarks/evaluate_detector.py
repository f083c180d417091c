"""YOLO flare detector vs the threshold baseline on the held-out test sites.

    python benchmarks/evaluate_detector.py --weights models/detector/flare-yolo11n.pt \
        --out benchmarks/results/detector.json

Both detectors run on the same full test tiles (sites disjoint from training) and are scored
with ``flarewatch.detector_eval`` (match = centres within 2 px, one-to-one), overall and by hard
case. YOLO's mAP50 / mAP50-95 come from ultralytics' validator on the test chips of the dataset
(built under ``--dataset`` when missing). No database, no S3, no network.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, default=REPO / "models" / "detector" / "flare-yolo11n.pt")
    p.add_argument("--runtime", default="auto", choices=["auto", "torch", "onnx", "openvino"])
    p.add_argument("--test-sites", type=int, default=24,
                   help="held-out test sites (x 6 days each); the first 6 are the training recipe's test split")
    p.add_argument("--dataset", type=Path, default=None,
                   help="dataset whose test chips give mAP (default .state/training/eval-t<test-sites>)")
    p.add_argument("--state", type=Path, default=REPO / ".state")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "detector.json")
    p.add_argument("--key", default=None, help="write the results under this key of the JSON at --out (other keys kept)")
    p.add_argument("--randomize", action="store_true",
                   help="score on the domain-randomised scenes of the test sites (training.randomize)")
    p.add_argument("--conf", type=float, default=0.25, help="YOLO confidence threshold")
    args = p.parse_args(argv)

    from flarewatch.detect.yolo import offline_environment

    offline_environment(args.state)
    from flarewatch.detect.yolo import YoloFlareDetector
    from flarewatch.evaluation.detector import ThresholdDetector, evaluate_detectors
    from flarewatch.training.detector_data import DatasetSpec, build_dataset

    t0 = time.time()
    spec = DatasetSpec(n_sites_test=args.test_sites, randomize=args.randomize)
    dataset = args.dataset or args.state / "training" / f"eval-t{args.test_sites}{'-dr' if args.randomize else ''}"
    weights = args.weights
    if args.runtime in ("auto", "onnx", "openvino") and weights.suffix == ".pt":
        # score what production runs: the OpenVINO/ONNX exports, made once into the state folder
        from flarewatch.detect.deployed import deployable_copy, weights_sha8

        weights = deployable_copy(args.weights, args.state / "models" / "detector" / f"eval-{weights_sha8(weights)}")
    yolo = YoloFlareDetector(weights, runtime=args.runtime, conf=args.conf)
    from flarewatch.detect.variants import DEPLOYED, deployed_detector

    # yolo-physics is what processing deploys (FLAREWATCH_PHYSICS_CHECK=on, detect.variants.DEPLOYED)
    res = evaluate_detectors({"yolo-physics": deployed_detector(weights, args.runtime), "yolo": yolo,
                              "threshold": ThresholdDetector()}, spec)
    res["yolo_runtime"] = yolo.runtime
    res["deployed_variant"] = DEPLOYED
    res["weights"] = str(args.weights)

    if not (dataset / "data.yaml").exists():
        build_dataset(dataset, spec)
    from ultralytics import YOLO

    val = YOLO(str(args.weights)).val(data=str(dataset / "data.yaml"), split="test", imgsz=spec.chip_px,
                                      plots=False, verbose=False, device="cpu", workers=0,
                                      project=str(args.state / "training" / "val"), name="test", exist_ok=True)
    res["detectors"]["yolo"]["map50"] = float(val.box.map50)
    res["detectors"]["yolo"]["map50_95"] = float(val.box.map)
    res["seconds"] = round(time.time() - t0, 1)

    print(f"Held-out test split: {res['n_scenes']} tiles; match: {res['match_rule']}")
    names = ("yolo-physics", "yolo", "threshold")
    print(f"{'case':8s} " + " ".join(f"{n + ' ' + m:>15s}" for n in names for m in ("P", "R", "F1")))
    for case in res["detectors"]["yolo"]["cases"]:
        row = []
        for n in names:
            c = res["detectors"][n]["cases"][case]
            row += [c["precision"], c["recall"], c["f1"]]
        print(f"{case:8s} " + " ".join(f"{v:15.3f}" for v in row))
    for n in names:
        d = res["detectors"][n]
        print(f"{n}: small-flare recall {d['small_flare_recall']:.3f}, {1000 * d['seconds_per_tile']:.1f} ms/tile")
    print(f"yolo mAP50 {res['detectors']['yolo']['map50']:.3f}, mAP50-95 {res['detectors']['yolo']['map50_95']:.3f}"
          f" (ultralytics val, test chips); runtime {yolo.runtime}; {res['seconds']} s")
    from _results import merge_into

    merge_into(args.out, args.key, res)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
