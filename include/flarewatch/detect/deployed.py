"""Which flare detector processing uses: the registry's YOLO champion, else the shipped YOLO weights;
the physics threshold detector only when ``FLAREWATCH_DETECTOR=threshold`` asks for it. Shipped
weights that are missing are an error (``resources.shipped_model``), never a silent fall-back.

Deployed runtime. ``production_detector`` runs the chosen weights with the fastest CPU runtime:
the first task that loads a model version exports it to OpenVINO (and ONNX) into the state folder
(``$FLAREWATCH_STATE_DIR/models/detector/<version>/``), under a file lock so parallel mapped tasks
export it once; later tasks load the export directly. ``FLAREWATCH_DETECTOR_RUNTIME`` forces
``torch``/``onnx``/``openvino`` (default ``auto``: OpenVINO > ONNX Runtime > PyTorch, PyTorch on a
GPU). If an export fails, the task logs why and runs PyTorch: detections are identical within
tolerance across runtimes (tests/unit/test_detector_runtimes.py), only slower.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
from contextlib import contextmanager
from pathlib import Path

from flarewatch import resources
from flarewatch.config import Settings, state_dir
from flarewatch.store import objects as storage
from flarewatch.store import registry

log = logging.getLogger(__name__)
EXPORT_FORMATS = ("openvino", "onnx")
MODEL_FILE = "best.pt"


def shipped_weights() -> Path:
    """The YOLO weights shipped with the package; FileNotFoundError when they are missing."""
    return resources.shipped_model(resources.DETECTOR_WEIGHTS)


@contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _exported(model_dir: Path, fmt: str) -> bool:
    stem = Path(MODEL_FILE).stem
    if fmt == "onnx":
        return (model_dir / f"{stem}.onnx").exists()
    return (model_dir / f"{stem}_openvino_model" / f"{stem}.xml").exists()


def deployable_weights(fetch, model_dir: Path, formats=EXPORT_FORMATS, imgsz: int = 160) -> Path:
    """``model_dir/best.pt`` with its runtime exports next to it (what ``YoloFlareDetector`` looks for).

    ``fetch(dest: Path)`` writes the weights to ``dest`` when they are not cached yet. Exports are
    made once per model directory under an exclusive file lock; a failed export is logged and
    skipped (the detector then falls back to the next runtime). Returns the .pt path.
    """
    model_dir = Path(model_dir)
    weights = model_dir / MODEL_FILE

    def missing() -> list[str]:
        return [f for f in formats if not _exported(model_dir, f)]

    if weights.exists() and not missing():
        return weights
    with _file_lock(model_dir.parent / f".{model_dir.name}.lock"):
        if not weights.exists():
            model_dir.mkdir(parents=True, exist_ok=True)
            tmp = model_dir / f".{MODEL_FILE}.part"
            fetch(tmp)
            tmp.replace(weights)
        todo = missing()
        if todo:
            from flarewatch.detect.yolo import export, offline_environment

            offline_environment(state_dir())
            for fmt in todo:
                try:
                    export(weights, formats=(fmt,), imgsz=imgsz)
                    log.info("exported %s to %s", weights, fmt)
                except Exception as exc:  # noqa: BLE001 - export is an optimisation: fall back to the next runtime
                    log.warning("could not export %s to %s (%s: %s); using another runtime",
                                weights, fmt, type(exc).__name__, exc)
                    if fmt == "openvino":  # a half-written export must not be picked up later
                        shutil.rmtree(model_dir / f"{weights.stem}_openvino_model", ignore_errors=True)
    return weights


def weights_sha8(path: Path) -> str:
    """First 8 hex digits of the sha256 of a weights file: names its version and export folder."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:8]


def export_formats(runtime: str) -> tuple[str, ...]:
    """The exports a YOLO runtime setting needs (none for ``torch``)."""
    return EXPORT_FORMATS if runtime in ("auto", "onnx", "openvino") else ()


def deployable_copy(source: Path, model_dir: Path, runtime: str = "auto") -> Path:
    """``deployable_weights`` of a local weights file: copied into ``model_dir`` and exported for
    ``runtime`` (name the folder by ``weights_sha8`` so other weights never reuse its exports)."""
    source = Path(source)
    return deployable_weights(lambda dest: shutil.copyfile(source, dest), model_dir, export_formats(runtime))


def production_weights(conn, s3, settings: Settings) -> tuple[Path | None, str]:
    """(local .pt path with exports, detector_version) of the champion, else the shipped weights.

    (None, "threshold-tai-nhi-v1") when the threshold detector is configured; FileNotFoundError
    when there is no champion and the shipped weights are missing.
    """
    if settings.detector_kind == "threshold":
        return None, "threshold-tai-nhi-v1"
    root = state_dir() / "models" / "detector"
    champ = registry.champion(conn, "detector")
    formats = export_formats(settings.detector_runtime)
    if champ is not None:
        key = registry.s3_prefix("detector", champ["version"]) + MODEL_FILE

        def fetch(dest: Path) -> None:
            dest.write_bytes(storage.get_bytes(s3, settings.processed_bucket, key))

        version = f"yolo-v{champ['version']}"
        return deployable_weights(fetch, root / f"v{champ['version']}", formats), version
    return _shipped_deployable(settings)


def _shipped_deployable(settings: Settings) -> tuple[Path, str]:
    """(local .pt path with exports, "yolo-shipped-<sha8>") of the shipped weights."""
    shipped = shipped_weights()
    version = "yolo-shipped-" + weights_sha8(shipped)
    return deployable_copy(shipped, state_dir() / "models" / "detector" / version, settings.detector_runtime), version


def production_detector(conn, s3, settings: Settings):
    """(detector or None for the threshold detector, detector_version) for ``flare_process``.

    The champion's weights and their exports are cached under the state folder by version, so a
    retried or later task neither downloads nor exports them again.
    """
    return _load(*production_weights(conn, s3, settings), settings)


def configured_detector(settings: Settings):
    """(detector or None for the threshold detector, detector_version) without a results DB.

    For files processed outside the pipeline (``process.files``): the threshold detector when
    ``FLAREWATCH_DETECTOR=threshold`` (``settings.detector_kind``), else the shipped YOLO weights
    (exported and cached as ``production_detector`` does); the registry's champion needs the
    database and is not consulted. FileNotFoundError when the shipped weights are missing.
    """
    if settings.detector_kind == "threshold":
        return None, "threshold-tai-nhi-v1"
    return _load(*_shipped_deployable(settings), settings)


def _load(weights: Path | None, version: str, settings: Settings):
    if weights is None:
        return None, version
    from flarewatch.detect.yolo import YoloFlareDetector, offline_environment

    offline_environment(state_dir())
    if settings.physics_check:  # the variant chosen on validation (detect.variants.DEPLOYED)
        from flarewatch.detect.variants import deployed_detector
        from flarewatch.detect.verified import PHYSICS_CHECK_VERSION

        checked = deployed_detector(weights, settings.detector_runtime)
        log.info("detector %s on %s (%s)", version, checked.proposer.runtime, checked.proposer.model_path)
        return checked, f"{version}+{PHYSICS_CHECK_VERSION}"
    det = YoloFlareDetector(weights, runtime=settings.detector_runtime)
    log.info("detector %s on %s (%s)", version, det.runtime, det.model_path)
    return det, version
