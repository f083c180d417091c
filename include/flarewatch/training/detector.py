"""The detector retraining step behind the ``detector_retrain`` DAG (no Airflow imports here)."""

from __future__ import annotations

import shutil
from pathlib import Path

from flarewatch.config import Settings, state_dir
from flarewatch.detect.deployed import shipped_weights
from flarewatch.store import objects as storage
from flarewatch.store import registry

MODEL_NAME = "detector"


def _library_versions() -> dict:
    import importlib.metadata as md

    return {p: md.version(p) for p in ("ultralytics", "torch", "numpy", "flarewatch")}


def _download_prefix(s3, bucket: str, prefix: str, dest: Path) -> int:
    n = 0
    for key in storage.list_keys(s3, bucket, prefix):
        rel = key[len(prefix):].lstrip("/")
        if not rel:
            continue
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(storage.get_bytes(s3, bucket, key))
        n += 1
    return n


def champion_weights(conn, s3, bucket: str, workdir: Path) -> tuple[Path | None, int | None]:
    """Local path of the champion's weights (registry, else the shipped file), and its version."""
    champ = registry.champion(conn, MODEL_NAME)
    if champ is not None:
        key = registry.s3_prefix(MODEL_NAME, champ["version"]) + "best.pt"
        path = workdir / f"champion-v{champ['version']}.pt"
        path.write_bytes(storage.get_bytes(s3, bucket, key))
        return path, champ["version"]
    return shipped_weights(), None


def train_challenger(conn, s3, settings: Settings, params: dict, run_id: str = "manual") -> dict:
    """Build data, fine-tune from the champion, evaluate both on the same test tiles, register the challenger."""
    state = state_dir() / "detector_retrain"
    from flarewatch.detect.yolo import offline_environment

    offline_environment(state)
    from flarewatch.detect.yolo import YoloFlareDetector, train
    from flarewatch.evaluation.detector import evaluate_detectors
    from flarewatch.training.detector_data import (
        DatasetSpec,
        build_dataset,
        merge_external,
    )

    work = state / run_id.replace(":", "_").replace("+", "_")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spec = DatasetSpec(n_sites_train=int(params["train_sites"]), n_sites_val=int(params["eval_sites"]),
                       n_sites_test=int(params["eval_sites"]), days_per_site=int(params["days_per_site"]))
    summary = build_dataset(work / "dataset", spec)
    external = 0
    if _download_prefix(s3, settings.processed_bucket, params.get("chips_prefix") or "training/chips/", work / "external"):
        external = merge_external(work / "dataset", work / "external")

    base, champion_version = champion_weights(conn, s3, settings.processed_bucket, work)
    best = train(work / "dataset" / "data.yaml", work / "run", base=str(base) if base else "yolo11n.yaml",
                 epochs=int(params["epochs"]), imgsz=spec.chip_px, patience=max(3, int(params["epochs"]) // 3))

    detectors = {"challenger": YoloFlareDetector(best, runtime="torch")}
    if base is not None:
        detectors["champion"] = YoloFlareDetector(base, runtime="torch")
    scores = evaluate_detectors(detectors, spec)
    metrics = {name: {"f1": d["cases"]["all"]["f1"], "precision": d["cases"]["all"]["precision"],
                      "recall": d["cases"]["all"]["recall"],
                      "cases": {c: v["f1"] for c, v in d["cases"].items()}}
               for name, d in scores["detectors"].items()}

    if base is not None and champion_version is None:
        # bootstrap the registry with the shipped weights, scored on the same test tiles
        v0 = registry.register(conn, s3, settings.processed_bucket, MODEL_NAME, {"best.pt": base},
                               metrics["champion"], params={"source": "shipped models/detector"},
                               library_versions=_library_versions())
        registry.decide_and_promote(conn, MODEL_NAME, v0, "f1")
        champion_version = v0
    elif champion_version is not None:
        # the champion's stored metrics must come from the same test tiles as the challenger's
        registry.merge_metrics(conn, MODEL_NAME, champion_version, metrics["champion"])

    version = registry.register(
        conn, s3, settings.processed_bucket, MODEL_NAME, {"best.pt": best}, metrics["challenger"],
        params={"epochs": int(params["epochs"]), "base": f"v{champion_version}" if champion_version else "yolo11n.yaml",
                "spec": spec.__dict__, "external_chips": external, "run_id": run_id},
        data_snapshot=f"simulator:{spec.seed}:{summary['splits']['train']['chips']}+ext{external}",
        library_versions=_library_versions())
    return {"version": version, "champion_version": champion_version, "metrics": metrics}
