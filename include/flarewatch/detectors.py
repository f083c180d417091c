"""Which flare detector processing uses: the registry's YOLO champion, the shipped YOLO weights, or
the physics threshold detector (``FLAREWATCH_DETECTOR=threshold``, or when no weights exist)."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from . import registry, storage
from .config import Settings

log = logging.getLogger(__name__)
SHIPPED_WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "detector" / "flare-yolo11n.pt"


def _state_dir() -> Path:
    return Path(os.environ.get("FLAREWATCH_STATE_DIR") or Path(tempfile.gettempdir()) / "flarewatch")


def production_detector(conn, s3, settings: Settings):
    """(detector or None for the threshold detector, detector_version) for ``flare_process``.

    The YOLO champion's weights are cached under the state folder by version, so a retried task
    does not download them again.
    """
    if settings.detector_kind == "threshold":
        return None, "threshold-tai-nhi-v1"
    champ = registry.champion(conn, "detector")
    if champ is not None:
        path = _state_dir() / "models" / "detector" / f"v{champ['version']}" / "best.pt"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(storage.get_bytes(s3, settings.processed_bucket,
                                               registry.s3_prefix("detector", champ["version"]) + "best.pt"))
        version = f"yolo-v{champ['version']}"
    elif SHIPPED_WEIGHTS.exists():
        path = SHIPPED_WEIGHTS
        version = "yolo-shipped-" + hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    else:
        log.warning("no YOLO weights (registry champion or %s): using the threshold detector", SHIPPED_WEIGHTS)
        return None, "threshold-tai-nhi-v1"
    from .yolo import YoloFlareDetector, offline_environment

    offline_environment(_state_dir())
    return YoloFlareDetector(path, runtime="auto"), version

