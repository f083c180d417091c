"""Reproduce the shipped detector: build the simulator dataset and train YOLO11n from its config.

    python scripts/train_detector.py --epochs 35 --out .state/training
    # -> .state/training/run/train/weights/best.pt (copy to models/detector/flare-yolo11n.pt)

Deterministic dataset (``training.detector_data.DatasetSpec()`` defaults, seed 0) and training seed 0;
CPU unless CUDA is available. Nothing is downloaded (``yolo.offline_environment``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=35)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--base", default="yolo11n.yaml", help="model config, or a checkpoint to fine-tune from")
    p.add_argument("--out", type=Path, default=REPO / ".state" / "training")
    p.add_argument("--state", type=Path, default=REPO / ".state")
    args = p.parse_args(argv)

    from flarewatch.detect.yolo import offline_environment

    offline_environment(args.state)
    from flarewatch.detect.yolo import train
    from flarewatch.training.detector_data import DatasetSpec, build_dataset

    t0 = time.time()
    summary = build_dataset(args.out / "dataset", DatasetSpec())
    t1 = time.time()
    best = train(args.out / "dataset" / "data.yaml", args.out / "run", base=args.base, epochs=args.epochs,
                 imgsz=DatasetSpec().chip_px, batch=args.batch, patience=15)
    print(json.dumps({"dataset_seconds": round(t1 - t0, 1), "train_seconds": round(time.time() - t1, 1),
                      "best": str(best), "splits": {k: {kk: v[kk] for kk in ("sites", "chips", "positives")}
                                                    for k, v in summary["splits"].items()}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
