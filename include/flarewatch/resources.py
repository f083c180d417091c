"""Files shipped with the package: the SQL migrations and queries, and the shipped models.

They live at the repository root (``sql/``, ``models/``) and reach the package through the links
``flarewatch/_shipped/sql`` and ``flarewatch/_shipped/models``: an editable install follows the
links, a built wheel (a non-editable install, the Docker image) holds copies as package data.
``FLAREWATCH_SQL_DIR`` and ``FLAREWATCH_MODELS_DIR`` point elsewhere when set.

A file that should be there and is not is an error that names the path and the setting: the
pipeline never falls back silently to a baseline because a shipped model went missing.
"""

from __future__ import annotations

import os
from pathlib import Path

_SHIPPED = Path(__file__).resolve().parent / "_shipped"

DETECTOR_WEIGHTS = "detector/flare-yolo11n.pt"
REGRESSOR_MODEL = "regressor/flare-volume.skops"


def sql_dir() -> Path:
    """The folder of the numbered migrations and ``queries/``."""
    env = os.environ.get("FLAREWATCH_SQL_DIR")
    return Path(env) if env else _SHIPPED / "sql"


def models_dir() -> Path:
    """The folder of the shipped models (``detector/``, ``regressor/``)."""
    env = os.environ.get("FLAREWATCH_MODELS_DIR")
    return Path(env) if env else _SHIPPED / "models"


def shipped_model(relative: str) -> Path:
    """Path of a shipped model file, e.g. ``shipped_model(DETECTOR_WEIGHTS)``; FileNotFoundError
    (naming the path and ``FLAREWATCH_MODELS_DIR``) when it is not there."""
    path = models_dir() / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"shipped model {relative} not found at {path}: the package was installed without its models, "
            f"or FLAREWATCH_MODELS_DIR points to the wrong folder")
    return path
