"""Which volume model processing uses: the registry champion, else the shipped regressor.

``production_regressor`` returns ``(model, version)``: the registry champion (cached under the
state folder by version), else the regressor shipped with the package
(``models/regressor/flare-volume.skops``, package data: ``flarewatch.resources``), else, only when
``FLAREWATCH_VOLUME_MODEL=calibration`` asks for it, the published calibration. A configured model
that cannot be found is an error, never a silent fall-back.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flarewatch import resources
from flarewatch.config import Settings, state_dir
from flarewatch.estimate.calibrations import volume_model_version
from flarewatch.store import objects as storage
from flarewatch.store import registry

log = logging.getLogger(__name__)

MODEL_NAME = "regressor"
ARTIFACT = "model.skops"


def shipped_model() -> Path:
    """The volume regressor shipped with the package; FileNotFoundError when it is missing."""
    return resources.shipped_model(resources.REGRESSOR_MODEL)


# ------------------------------------------------------------------------------------------
# Which model production uses
# ------------------------------------------------------------------------------------------
def shipped_version(path: Path | None = None) -> str:
    from flarewatch.estimate.regressor import file_sha256

    return "regressor-shipped-" + file_sha256(path or shipped_model())[:8]


_LOADED: dict[tuple[str, int, int], object] = {}


def _load(path: Path):
    """``estimate.constrained.load_volume_model`` (either model kind) memoised per process by (path, mtime, size): importing skops costs
    ~2 s (it imports scikit-learn's estimator registry), loading the file ~10 ms. Returns a copy
    whose ``version`` the caller may set."""
    import copy

    from flarewatch.estimate.constrained import load_volume_model

    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_mtime_ns, st.st_size)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_volume_model(path)
    return copy.copy(_LOADED[key])


def load_shipped_regressor():
    """The shipped regressor (memoised load, a copy), its version set to ``regressor-shipped-<sha8>``."""
    path = shipped_model()
    model = _load(path)
    model.version = shipped_version(path)
    return model


def load_registered(conn, s3, settings: Settings, version: int):
    """The registered regressor ``version`` (cached under the state folder), its version set to ``regressor-v<N>``."""
    path = state_dir() / "models" / MODEL_NAME / f"v{version}" / ARTIFACT
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(storage.get_bytes(s3, settings.processed_bucket, registry.s3_prefix(MODEL_NAME, version) + ARTIFACT))
        tmp.replace(path)
    model = _load(path)
    model.version = f"regressor-v{version}"
    return model


def production_regressor(conn, s3, settings: Settings):
    """(volume model or None, version string) for estimating volumes in ``flare_process``; the model is a
    ``estimate.constrained.ConstrainedVolumeModel`` or an ``estimate.regressor.VolumeRegressor``.

    ``settings.volume_model == "calibration"`` (``FLAREWATCH_VOLUME_MODEL``): ``(None,
    "calibration-<method>-v1")``, the published calibration. Otherwise the registry champion
    (``regressor-v<N>``), else the shipped model (``regressor-shipped-<sha8>``); FileNotFoundError
    when neither exists (a missing model is never replaced by the calibration without a word).
    """
    if getattr(settings, "volume_model", "regressor") == "calibration":
        return None, volume_model_version(settings.calibration)
    champ = registry.champion(conn, MODEL_NAME)
    if champ is not None:
        model = load_registered(conn, s3, settings, champ["version"])
        return model, model.version
    path = shipped_model()
    model = _load(path)
    model.version = shipped_version(path)
    return model, model.version


def configured_regressor(settings: Settings):
    """(VolumeRegressor or None, version string) without a results DB, for files processed outside
    the pipeline (``process.files``): ``(None, "calibration-<method>-v1")`` when
    ``FLAREWATCH_VOLUME_MODEL=calibration``, else the shipped regressor (``regressor-shipped-<sha8>``);
    the registry's champion needs the database and is not consulted. FileNotFoundError when the
    shipped model is missing.
    """
    if getattr(settings, "volume_model", "regressor") == "calibration":
        return None, volume_model_version(settings.calibration)
    path = shipped_model()
    model = _load(path)
    model.version = shipped_version(path)
    return model, model.version
