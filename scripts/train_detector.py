"""Reproduce the shipped detector: build the simulator dataset and train YOLO11n from its config.

    python scripts/train_detector.py --epochs 35 --out .state/training
    # -> .state/training/run/train/weights/best.pt (copy to models/detector/flare-yolo11n.pt)

Deterministic dataset (``training.detector_data.DatasetSpec()`` defaults, seed 0) and training seed 0;
CPU unless CUDA is available. Nothing is downloaded (``yolo.offline_environment``).

Domain-randomised fine-tune (issue 10, item 2; ``models/detector/flare-yolo11n.pt`` (shipped since issue 10), recipe in the
model card): ``--randomize --base models/detector/flare-yolo11n.pt``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=35)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--base", default="yolo11n.yaml", help="model config, or a checkpoint to fine-tune from")
    p.add_argument("--out", type=Path, default=REPO / ".state" / "training")
    p.add_argument("--state", type=Path, default=REPO / ".state")
    p.add_argument("--randomize", action="store_true",
                   help="domain-randomised scenes (training.randomize) in every split (issue 10, item 2)")
    p.add_argument("--sites-train", type=int, default=None, help="training sites (default DatasetSpec's 24)")
    p.add_argument("--sites-val", type=int, default=None, help="validation sites (default 6)")
    p.add_argument("--patience", type=int, default=15)
    p.add_argument("--lr0", type=float, default=None, help="initial learning rate (ultralytics default 0.01)")
    p.add_argument("--skip-dataset", action="store_true", help="reuse the dataset already under --out/dataset")
    args = p.parse_args(argv)

    from flarewatch.detect.yolo import offline_environment

    offline_environment(args.state)
    from flarewatch.detect.yolo import train
    from flarewatch.training.detector_data import DatasetSpec, build_dataset

    spec = DatasetSpec(randomize=args.randomize)
    if args.sites_train:
        spec = replace(spec, n_sites_train=args.sites_train)
    if args.sites_val:
        spec = replace(spec, n_sites_val=args.sites_val)
    t0 = time.time()
    if args.skip_dataset:
        summary = json.loads((args.out / "dataset" / "summary.json").read_text())
    else:
        summary = build_dataset(args.out / "dataset", spec)
        (args.out / "dataset" / "summary.json").write_text(json.dumps(summary, indent=1))
    t1 = time.time()
    extra = {"lr0": args.lr0} if args.lr0 else {}
    best = train(args.out / "dataset" / "data.yaml", args.out / "run", base=args.base, epochs=args.epochs,
                 imgsz=spec.chip_px, batch=args.batch, patience=args.patience, **extra)
    print(json.dumps({"dataset_seconds": round(t1 - t0, 1), "train_seconds": round(time.time() - t1, 1),
                      "best": str(best), "splits": {k: {kk: v[kk] for kk in ("sites", "chips", "positives")}
                                                    for k, v in summary["splits"].items()}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
