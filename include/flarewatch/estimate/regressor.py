"""Learned flared-volume regressor: an additive per-flare model fitted on site-period meter totals.

Why additive. Calibration data are SITE-level metered volumes over a period (daily meters in the
demo, monthly state reports in real data), while the pipeline estimates one volume per detected
flare. The model is therefore a per-flare function ``g(x_f) = beta . phi(x_f)`` (``beta >= 0``,
no intercept) whose sum over a site-day's flares is the site-day volume; a calibration period's
mean daily volume is the mean over its processed site-days of those sums. Because ``g`` is linear
in ``beta``, a period's design row is exactly::

    X_period = (1 / n_days_processed) * sum over the period's flares f of phi(x_f)

and its target is the metered volume / number of days (thousand m3/day). This holds for daily and
monthly periods alike (a month's row is the mean of its days' rows) and needs no allocation of
site volumes to flares. A unit with no detection has an all-zero row and predicts 0.

Per-flare inputs (``flare_inputs``: one numeric row per ``flare_detections.features`` dict,
columns ``INPUT_COLUMNS``): whether it is a Sentinel-2 detection (``s2``), the matched VIIRS radiant
heat (``viirs_rh_mw``, MW, after ``features.extract.share_viirs_radiant_heat``; 0 without a flare-like
VIIRS match, the rule ``estimate.calibrations.estimate_volume`` uses), the Sentinel-2 SWIR FRP (``swir_frp_mw``,
MW) and whether it is a lower bound (``frp_lower_bound``: a pixel clipped in both bands),
``cloud`` (cloud within 2 px) and ``saturated`` flags, ``hot_pixels`` and the B11/B12 excess sums,
and the two published calibrations' volumes of the flare (``linear_kscm_d``, ``power_kscm_d``;
for the baselines only, not model inputs).

Basis ``phi(x)`` (``BASIS_TERMS``). Why these terms, from the simulator (``simulation/``
docstring), the sensors and measurements on simulated flares (threshold and YOLO detections
matched to the truth):

* flow -> radiant heat is ``RH = flow / 31.5 * e_k * (flow / 50) ** 0.1`` with a per-stack
  factor ``e_k ~ lognormal(0, 0.25)``: volume grows like ``RH ** (1 / 1.1) ~ RH ** 0.91``, so the
  VIIRS terms are ``RH ** p_viirs`` with ``p_viirs`` searched around 0.9 (the published linear
  calibration is 1). ``e_k`` is a per-stack property no feature reveals: it is the irreducible
  scatter of any calibration.
* The VIIRS RH (night; ``Area_BB`` lognormal(0, 0.3), ``Temp_BB`` +-60 K, dimmed by night cloud,
  stacks in one 750 m pixel merged) and the Sentinel-2 SWIR FRP (day) are two noisy measurements
  of one flame. With both present the best estimate is a weighted mix, with one alone it needs
  the full slope: separate terms for S2 detections with and without a VIIRS match.
* Nearly every simulated flare clips B12 and the larger ones B11 as well: the FRP is then a lower
  bound that flattens for big flames (true RH grows like FRP ** ~1.5 for ``swir_frp_lower_bound``
  flares, like FRP ** ~0.8 otherwise), so lower-bound and intact FRP get separate terms and
  exponents (``p_lb``, ``p_s2``).
* Day cloud dims the flame to 5-30 % under thick cloud: cloud-flagged detections get their own
  slopes.
* The Sentinel-2 proxy ``S2P`` is a hyper-parameter: ``frp`` (the FRP) or ``frp_hot`` (FRP x
  ``hot_pixels``). For the threshold detector the number of candidate pixels grows with the
  brightness of a clipped flame and carries information the clipped FRP lacks (log-RH residual sd
  0.37 with both vs 0.50 with the FRP alone); the YOLO detector counts hot pixels in its ~12 px
  box differently and ``frp`` wins there. The grid search decides on the training sites.
* A VIIRS-only detection (S2 clouded or missed the flame) has only the VIIRS RH: its own term.
* Per-detection counts (``n_s2``, ``n_viirs_only``): a volume per detection independent of its
  brightness; with ``beta >= 0`` it can only add volume (the weakest flames are what both sensors
  measure worst, and detected flares drag undetected neighbours' volume along at the site level).
* Flame temperature is not a term: in the simulator RH does not depend on T for a given flow, so
  the power law's ``sigma T^4 S^0.7`` form carries no extra signal here (real data may differ: add
  a term, the data decide its slope).

The sklearn pipeline is ``FlareBasis -> StandardScaler(with_mean=False) ->
Ridge(alpha, positive=True, fit_intercept=False)``; scaling keeps the ridge penalty comparable
between terms and, being a positive per-column factor, keeps ``beta >= 0``, so every per-flare
volume is >= 0. The basis hyper-parameters and ``alpha`` are chosen by ``GridSearchCV`` on
site-grouped folds (``GroupKFold``: no site is in both a training and a validation fold),
scoring negative MAE.

Prediction interval: cross-conformal on multiplicative residuals. With the chosen
hyper-parameters every training unit gets an out-of-fold prediction from a model fitted on the
other folds' *sites*; the residuals ``log(max(y, 1e-3) / yhat)`` of units with ``yhat > 0`` give
the finite-sample conformal quantiles ``q_lo`` (alpha / 2) and ``q_hi`` (1 - alpha / 2); a flare's
interval is ``[v exp(q_lo), v exp(q_hi)]`` and, being multiplicative with the same factors, the
per-flare intervals of a unit add up to the unit's interval. Units with no detection get no
interval (there is no flare row to carry one); their share is reported separately.

Persistence: skops (``save`` / ``load``), never pickle. ``load`` lists the types the file needs,
refuses any type outside ``TRUSTED_TYPES`` and loads with exactly the types found. Never call
``skops.io.load(..., trusted=True)`` on a file you did not produce: an untrusted file could name
any importable callable.

Saved files and the class path. skops records each object's class by module path. Files saved
before the package was split into sub-packages (the shipped ``models/regressor/flare-volume.skops``,
registry models saved by older versions) name ``flarewatch.regressor.VolumeRegressor`` and
``flarewatch.regressor.FlareBasis``; the classes now live here, in ``flarewatch.estimate.regressor``.
``load`` trusts both paths (``LEGACY_TRUSTED_TYPES``) and, for an old file, makes the old module
name an alias of this module (``sys.modules["flarewatch.regressor"]``, left in place), so the old
file loads into today's classes, unchanged on disk. The shipped file is deliberately not
re-saved: its sha256 is the model version stored on every estimate (``regressor-shipped-<sha8>``).
``save`` always records the new path. How to migrate a file: load it and save it again (it
then names ``flarewatch.estimate.regressor``; its sha256, hence a shipped model's version, changes).
"""

from __future__ import annotations

import hashlib
import math
import numbers
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from flarewatch.config import VolumeCalibration
from flarewatch.estimate.calibrations import estimate_volume
from flarewatch.evaluation.metrics import volume_metrics
from flarewatch.values import finite_or_none

MODEL_NAME = "regressor"
INPUTS_VERSION = "3"  # bump when INPUT_COLUMNS or flare_inputs change (invalidates cached datasets)

INPUT_COLUMNS = ("s2", "viirs_rh_mw", "swir_frp_mw", "frp_lower_bound", "cloud", "saturated", "hot_pixels",
                 "b11_excess_sum", "b12_excess_sum", "linear_kscm_d", "power_kscm_d")
_S2, _RH, _FRP, _LB, _CLOUD, _SAT, _HOT, _EX11, _EX12, _LIN, _POW = range(len(INPUT_COLUMNS))

# name -> what it is (per flare). V = a flare-like VIIRS match; S2P = the Sentinel-2 brightness proxy
# (``s2_proxy``: "frp" = swir_frp_mw, or "frp_hot" = swir_frp_mw x hot_pixels); LB = swir_frp_lower_bound
# (a clipped pixel in both bands); p_viirs / p_s2 / p_lb = exponent hyper-parameters.
_S2_CASES = {
    "matched_clear": "S2 detection with V, no cloud within 2 px",
    "matched_cloudy": "S2 detection with V, cloud within 2 px",
    "clear": "S2 detection without V, no cloud",
    "cloudy": "S2 detection without V, cloud within 2 px",
}
BASIS_TERMS: dict[str, str] = {
    "viirs_rh_matched": "S2 detection with V: viirs_rh_mw ** p_viirs",
    "viirs_rh_only": "VIIRS-only detection (no S2 counterpart): viirs_rh_mw ** p_viirs",
    "n_s2": "1 per Sentinel-2 detection",
    "n_viirs_only": "1 per VIIRS-only detection",
    **{f"s2_{case}{suffix}": f"{text}, {kind}"
       for case, text in _S2_CASES.items()
       for suffix, kind in (("", "FRP not a lower bound: S2P ** p_s2"), ("_lb", "FRP a lower bound: S2P ** p_lb"))},
}
BASIS_NAMES = tuple(BASIS_TERMS)
S2_PROXIES = ("frp", "frp_hot")

DEFAULT_PARAM_GRID = {
    "basis__p_viirs": [0.8, 0.9, 1.0],
    "basis__p_s2": [0.4, 0.6, 0.8, 1.0],
    "basis__p_lb": [0.6, 0.9, 1.2],
    "basis__s2_proxy": list(S2_PROXIES),
    "ridge__alpha": [1e-3, 1.0],
}
INTERVAL_ALPHA = 0.1  # 90 % prediction interval
RESIDUAL_FLOOR_KSCM_D = 1e-3  # y below this counts as this in the log residual

# The types of a saved VolumeRegressor that skops does not trust by default (its defaults cover the
# scikit-learn estimators, numpy and builtins used here); ``load`` refuses a file needing any other.
# The same two classes under the module path files saved before the sub-package split record
# (module docstring, "Saved files and the class path").
LEGACY_MODULE = "flarewatch.regressor"
LEGACY_TRUSTED_TYPES = (f"{LEGACY_MODULE}.VolumeRegressor", f"{LEGACY_MODULE}.FlareBasis")
TRUSTED_TYPES = ("flarewatch.estimate.regressor.VolumeRegressor", "flarewatch.estimate.regressor.FlareBasis",
                 *LEGACY_TRUSTED_TYPES)


# ------------------------------------------------------------------------------------------
# Per-flare inputs and the basis
# ------------------------------------------------------------------------------------------
def flare_inputs(features: dict) -> np.ndarray:
    """The numeric input row (``INPUT_COLUMNS``) of one detection's ``features`` dict.

    ``s2``: 1 for a Sentinel-2 detection (its dict has ``swir_frp_mw`` or ``hot_pixels``), 0 for a
    VIIRS-only one. ``viirs_rh_mw``: the matched VIIRS RH (MW) when ``viirs_n > 0`` and it is
    finite and >= 0, else 0 (as ``estimate.calibrations.estimate_volume``). ``swir_frp_mw``: finite and > 0, else
    0. ``cloud`` / ``saturated``: ``cloud_flag`` / ``saturated`` as 0/1. ``linear_kscm_d`` /
    ``power_kscm_d``: ``estimate.calibrations.estimate_volume`` with the default constants and that method.
    """

    s2 = "swir_frp_mw" in features or "hot_pixels" in features
    rh = finite_or_none(features.get("viirs_rh_mw"))
    viirs = (features.get("viirs_n") or 0) > 0 and rh is not None and rh >= 0
    frp = finite_or_none(features.get("swir_frp_mw"))
    cal = VolumeCalibration()
    return np.array([
        1.0 if s2 else 0.0,
        rh if viirs else 0.0,
        frp if frp is not None and frp > 0 else 0.0,
        1.0 if features.get("swir_frp_lower_bound") else 0.0,
        1.0 if features.get("cloud_flag") else 0.0,
        1.0 if features.get("saturated") else 0.0,
        finite_or_none(features.get("hot_pixels")) or 0.0,
        finite_or_none(features.get("b11_excess_sum")) or 0.0,
        finite_or_none(features.get("b12_excess_sum")) or 0.0,
        estimate_volume(features, replace(cal, method="linear")).volume_kscm_d,
        estimate_volume(features, replace(cal, method="power")).volume_kscm_d,
    ], dtype=np.float64)


def flare_inputs_matrix(features_list: Sequence[dict]) -> np.ndarray:
    """``flare_inputs`` of each dict, stacked: shape (n, len(INPUT_COLUMNS)) (n may be 0)."""
    if not features_list:
        return np.zeros((0, len(INPUT_COLUMNS)))
    return np.vstack([flare_inputs(f) for f in features_list])


def flare_basis(inputs: np.ndarray, p_viirs: float, p_s2: float, p_lb: float | None = None,
                s2_proxy: str = "frp") -> np.ndarray:
    """phi(x) per flare: shape (n, len(BASIS_NAMES)) from ``flare_inputs`` rows (module doc).

    ``p_lb`` defaults to ``p_s2``; ``s2_proxy``: "frp" or "frp_hot" (``S2_PROXIES``).
    """
    if s2_proxy not in S2_PROXIES:
        raise ValueError(f"s2_proxy must be one of {S2_PROXIES}, got {s2_proxy!r}")
    p_lb = p_s2 if p_lb is None else p_lb
    x = np.asarray(inputs, dtype=np.float64).reshape(-1, len(INPUT_COLUMNS))
    if not len(x):
        return np.zeros((0, len(BASIS_NAMES)))
    s2 = x[:, _S2] > 0
    matched = s2 & (x[:, _RH] > 0)
    unmatched = s2 & ~matched
    viirs_only = ~s2 & (x[:, _RH] > 0)
    cloud = x[:, _CLOUD] > 0
    lb = x[:, _LB] > 0
    rh_p = np.power(x[:, _RH], p_viirs)
    proxy = x[:, _FRP] * (np.maximum(x[:, _HOT], 1.0) if s2_proxy == "frp_hot" else 1.0)
    proxy_p, proxy_lb = np.power(proxy, p_s2), np.power(proxy, p_lb)
    cases = {"matched_clear": matched & ~cloud, "matched_cloudy": matched & cloud,
             "clear": unmatched & ~cloud, "cloudy": unmatched & cloud}
    cols = {
        "viirs_rh_matched": matched * rh_p,
        "viirs_rh_only": viirs_only * rh_p,
        "n_s2": s2.astype(np.float64),
        "n_viirs_only": viirs_only.astype(np.float64),
    }
    for case, m in cases.items():
        cols[f"s2_{case}"] = (m & ~lb) * proxy_p
        cols[f"s2_{case}_lb"] = (m & lb) * proxy_lb
    return np.column_stack([cols[n] for n in BASIS_NAMES])


def _unit_arrays(units) -> tuple[list[np.ndarray], np.ndarray]:
    if isinstance(units, pd.DataFrame):
        return list(units["flare_inputs"]), units["n_days_processed"].to_numpy(dtype=np.float64)
    raise TypeError(f"expected a units DataFrame (columns flare_inputs, n_days_processed), got {type(units)!r}")


def _stack_units(units) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(all flares' input rows, their unit index, n_days_processed per unit)."""
    inputs, n_days = _unit_arrays(units)
    if (n_days <= 0).any():
        bad = int(np.flatnonzero(n_days <= 0)[0])
        raise ValueError(f"unit {bad} has n_days_processed={n_days[bad]}; units need at least one processed day")
    arrays = [np.asarray(x, dtype=np.float64).reshape(-1, len(INPUT_COLUMNS)) for x in inputs]
    idx = np.repeat(np.arange(len(arrays)), [len(a) for a in arrays])
    flat = np.vstack(arrays) if arrays else np.zeros((0, len(INPUT_COLUMNS)))
    return flat, idx, n_days


def unit_basis(units: pd.DataFrame, p_viirs: float, p_s2: float, p_lb: float | None = None,
               s2_proxy: str = "frp") -> np.ndarray:
    """Design matrix: per unit, sum over its flares of phi(x_f) / n_days_processed."""
    flat, idx, n_days = _stack_units(units)
    out = np.zeros((len(n_days), len(BASIS_NAMES)))
    np.add.at(out, idx, flare_basis(flat, p_viirs, p_s2, p_lb, s2_proxy))
    return out / n_days[:, None] if len(n_days) else out


def unit_calibration(units: pd.DataFrame, method: str) -> np.ndarray:
    """Per unit, mean daily volume (kscm/d) of a published calibration (``linear`` / ``power``)."""
    col = {"linear": _LIN, "power": _POW}.get(method)
    if col is None:
        raise ValueError(f"calibration method must be 'linear' or 'power', got {method!r}")
    flat, idx, n_days = _stack_units(units)
    return np.bincount(idx, weights=flat[:, col], minlength=len(n_days)) / n_days


def baseline_predictions(units_df: pd.DataFrame, method: str) -> np.ndarray:
    """A published calibration's prediction per unit (kscm/d): the per-flare ``estimate.calibrations.estimate_volume``
    volumes summed per site-day and averaged over the processed days, the learned model's aggregation."""
    return unit_calibration(units_df, method)


class FlareBasis(TransformerMixin, BaseEstimator):
    """sklearn transformer: units DataFrame (``flare_inputs``, ``n_days_processed``) -> ``unit_basis``.

    Pure and stateless apart from its hyper-parameters (searched by GridSearchCV): the exponents
    ``p_viirs``, ``p_s2``, ``p_lb`` and the Sentinel-2 proxy ``s2_proxy``.
    """

    def __init__(self, p_viirs: float = 0.9, p_s2: float = 0.6, p_lb: float = 0.9, s2_proxy: str = "frp"):
        self.p_viirs = p_viirs
        self.p_s2 = p_s2
        self.p_lb = p_lb
        self.s2_proxy = s2_proxy

    def basis_params(self) -> dict:
        return {"p_viirs": float(self.p_viirs), "p_s2": float(self.p_s2), "p_lb": float(self.p_lb),
                "s2_proxy": str(self.s2_proxy)}

    def fit(self, X, y=None):
        self.n_features_out_ = len(BASIS_NAMES)
        return self

    def transform(self, X):
        return unit_basis(X, **self.basis_params())

    def get_feature_names_out(self, input_features=None):
        return np.asarray(BASIS_NAMES, dtype=object)


def make_pipeline(alpha: float = 1.0, **basis):
    """FlareBasis(**basis) -> StandardScaler(with_mean=False) -> Ridge(alpha, positive, no intercept)."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("basis", FlareBasis(**basis)), ("scale", StandardScaler(with_mean=False)),
                     ("ridge", Ridge(alpha=alpha, fit_intercept=False, positive=True, tol=1e-10, max_iter=10000))])


# ------------------------------------------------------------------------------------------
# The model object
# ------------------------------------------------------------------------------------------
def skops_io():
    """``skops.io``, its first import made without Airflow's ``DeprecatedImportWarning`` flood.

    On its first import skops builds its default trusted types: for each of the ~230
    ``scipy.special`` ufuncs without a ``__module__`` it looks the name up in every loaded module
    (``skops.io._utils.whichmodule``: ``getattr(module, name, None)``). In an Airflow worker five of
    those modules are Airflow 3's deprecated-import shims (``airflow.utils.timezone``,
    ``airflow.utils.trigger_rule``, ``airflow.utils.operator_resources``,
    ``airflow.utils.entry_points``, ``airflow.serialization.serde``), which warn on any attribute
    asked of them: 1,160 ``DeprecatedImportWarning`` lines (``The `airflow.utils.timezone.agm`
    attribute is deprecated ...``) in every ``flare_process`` task log. They are harmless: the
    lookups find nothing and no code imports those names (skops silences only
    ``DeprecationWarning`` there; Airflow's class derives from ``FutureWarning``). Only that
    warning, raised from that skops module, is ignored, and only during this import.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The `airflow\.", category=FutureWarning,
                                module=r"skops\.io\._utils")
        import skops.io as sio
    return sio


def save_skops(model, path: Path | str) -> Path:
    """Write a volume model with skops (no pickle); the folder is created. Returns the path."""
    sio = skops_io()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sio.dump(model, path)
    return path


class VolumeRegressor:
    """A fitted volume model: per-flare volume (kscm/d) with a prediction interval and a version.

    ``pipeline``: the fitted sklearn pipeline (units -> kscm/d); ``q_lo`` / ``q_hi``: conformal
    log-ratio quantiles of the ``1 - interval_alpha`` interval; ``version``: stored with every
    estimate (the registry sets ``regressor-v<N>`` on load); ``params``: hyper-parameters, data
    recipe, training sites; ``metrics``: CV and held-out scores.
    """

    def __init__(self, pipeline, *, q_lo: float, q_hi: float, interval_alpha: float = INTERVAL_ALPHA,
                 version: str = "regressor-unregistered", params: dict | None = None, metrics: dict | None = None):
        self.pipeline = pipeline
        self.q_lo = float(q_lo)
        self.q_hi = float(q_hi)
        self.interval_alpha = float(interval_alpha)
        self.version = str(version)
        self.params = dict(params or {})
        self.metrics = dict(metrics or {})

    @property
    def basis_params(self) -> dict:
        """The basis hyper-parameters (p_viirs, p_s2, p_lb, s2_proxy)."""
        return self.pipeline.named_steps["basis"].basis_params()

    def coefficients(self) -> dict[str, float]:
        """beta per basis term in the basis' own units (kscm/d per MW**p, or per detection)."""
        scale = self.pipeline.named_steps["scale"].scale_
        coef = self.pipeline.named_steps["ridge"].coef_
        return {n: float(c / s) for n, c, s in zip(BASIS_NAMES, coef, scale)}

    def _flare_volumes(self, inputs: np.ndarray) -> np.ndarray:
        if len(inputs) == 0:
            return np.zeros(0)
        v = self.pipeline[1:].predict(flare_basis(inputs, **self.basis_params))
        return np.maximum(v, 0.0)

    def predict_flares(self, features_list: Sequence[dict]) -> list[tuple[float, float, float]]:
        """Per detection ``(volume_kscm_d, lo, hi)``: thousand m3/day, the interval multiplicative."""
        v = self._flare_volumes(flare_inputs_matrix(list(features_list)))
        lo, hi = math.exp(self.q_lo), math.exp(self.q_hi)
        return [(float(x), float(x * lo), float(x * hi)) for x in v]

    def predict_units(self, units_df: pd.DataFrame) -> np.ndarray:
        """Mean daily volume per unit (kscm/d): sum of per-flare volumes / processed days."""
        return np.maximum(self.pipeline.predict(units_df), 0.0)

    def interval_units(self, units_df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        yhat = self.predict_units(units_df)
        return yhat * math.exp(self.q_lo), yhat * math.exp(self.q_hi)

    def describe(self) -> dict:
        return {"version": self.version, **self.basis_params, "alpha": float(self.pipeline.named_steps["ridge"].alpha),
                "coefficients": self.coefficients(), "q_lo": self.q_lo, "q_hi": self.q_hi,
                "interval_alpha": self.interval_alpha, "params": self.params, "metrics": self.metrics}

    # --- persistence (skops, no pickle) ------------------------------------------------------
    def save(self, path: Path | str) -> Path:
        return save_skops(self, path)

    @classmethod
    def load(cls, path: Path | str) -> VolumeRegressor:
        """Load a file written by ``save``; refuses types outside ``TRUSTED_TYPES`` (never trusted=True).

        A file saved before the sub-package split (class path ``flarewatch.regressor.*``) loads
        too, into this module's classes (module docstring, "Saved files and the class path");
        saving the loaded model again writes the new path.
        """
        sio = skops_io()
        path = Path(path)
        needed = sio.get_untrusted_types(file=path)
        unexpected = sorted(set(needed) - set(TRUSTED_TYPES))
        if unexpected:
            raise ValueError(f"{path}: refusing to load, it needs types outside the trusted list: {unexpected}")
        if set(needed) & set(LEGACY_TRUSTED_TYPES):
            # skops imports the recorded module by name: let the old name resolve to this module
            sys.modules.setdefault(LEGACY_MODULE, sys.modules[__name__])
        obj = sio.load(path, trusted=needed)
        if not isinstance(obj, cls):
            raise TypeError(f"{path} holds a {type(obj).__name__}, not a VolumeRegressor")
        return obj


def file_sha256(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------
# Splits: held-out sites and site-grouped folds
# ------------------------------------------------------------------------------------------
def _site_rank(site_id: str, seed: int) -> str:
    return hashlib.sha256(f"flarewatch-regressor-split|{seed}|{site_id}".encode()).hexdigest()


def split_sites(site_ids: Sequence[str], test_fraction: float = 0.25, seed: int = 0,
                min_train_sites: int = 3) -> tuple[list[str], list[str]]:
    """Deterministic held-out split of SITES: (train_sites, test_sites), both sorted.

    Sites are ordered by SHA-256 of (seed, site_id) and the first ``round(test_fraction * n)``
    (at least 1) are the test sites: the same site set always gives the same split, whatever the
    order or the other data. Raises ValueError when fewer than ``min_train_sites + 1`` sites exist.
    """
    sites = sorted(set(site_ids))
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    need = min_train_sites + 1
    if len(sites) < need:
        raise ValueError(f"too few sites to hold any out: found {len(sites)} site(s) with usable calibration "
                         f"periods, need at least {need} ({min_train_sites} to train with site-grouped CV + 1 to test)")
    n_test = min(max(1, int(round(test_fraction * len(sites)))), len(sites) - min_train_sites)
    ranked = sorted(sites, key=lambda s: _site_rank(s, seed))
    return sorted(ranked[n_test:]), sorted(ranked[:n_test])


def holdout_split(units_df: pd.DataFrame, test_fraction: float = 0.25, seed: int = 0,
                  min_train_sites: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train units, test units) split by ``split_sites`` on ``units_df.site_id`` (no site in both)."""
    train_sites, test_sites = split_sites(units_df["site_id"].unique(), test_fraction, seed, min_train_sites)
    test = units_df["site_id"].isin(test_sites)
    return units_df[~test].reset_index(drop=True), units_df[test].reset_index(drop=True)


def grouped_cv_splits(groups: Sequence, n_splits: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Site-grouped K-fold splits (train_idx, val_idx): no group is in both sides of any split.

    ``n_splits`` is capped at the number of groups (>= 2 needed). GroupKFold with shuffling seeded
    by ``seed``, so folds are balanced in size and deterministic.
    """
    from sklearn.model_selection import GroupKFold

    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"site-grouped cross-validation needs >= 2 sites, got {n_groups}")
    k = min(int(n_splits), n_groups)
    cv = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(tr, va) for tr, va in cv.split(np.zeros(len(groups)), groups=groups)]


# ------------------------------------------------------------------------------------------
# Fitting, intervals, evaluation
# ------------------------------------------------------------------------------------------
def conformal_log_quantiles(y: np.ndarray, yhat: np.ndarray, alpha: float = INTERVAL_ALPHA) -> dict:
    """Finite-sample split-conformal quantiles of ``log(max(y, floor) / yhat)`` over ``yhat > 0``.

    ``q_hi`` is the ceil((n + 1)(1 - alpha / 2))-th smallest residual, ``q_lo`` the
    floor((n + 1) alpha / 2)-th (the extreme residual when n is too small for the level).
    """
    y, yhat = np.asarray(y, dtype=np.float64), np.asarray(yhat, dtype=np.float64)
    ok = yhat > 0
    r = np.sort(np.log(np.maximum(y[ok], RESIDUAL_FLOOR_KSCM_D) / yhat[ok]))
    n = len(r)
    if n == 0:
        raise ValueError("no unit with a positive prediction to calibrate the interval on")
    k_hi = math.ceil((n + 1) * (1 - alpha / 2))
    k_lo = math.floor((n + 1) * alpha / 2)
    q_hi = float(r[min(k_hi, n) - 1])
    q_lo = float(r[max(k_lo, 1) - 1])
    return {"q_lo": q_lo, "q_hi": q_hi, "n": n, "alpha": alpha, "n_zero_pred": int((~ok).sum())}


def _plain(v):
    """numpy scalars -> float / str (JSON-safe)."""
    if isinstance(v, (str, bool)) or v is None:
        return v
    if isinstance(v, numbers.Real):
        return float(v)
    return str(v)


def fit_regressor(units_df: pd.DataFrame, *, groups: Sequence | None = None, seed: int = 0,
                  param_grid: dict | None = None, n_splits: int = 5, interval_alpha: float = INTERVAL_ALPHA,
                  n_jobs: int | None = None) -> tuple[VolumeRegressor, dict]:
    """Grid-search the basis hyper-parameters and ``alpha`` on site-grouped folds, refit on all units,
    add the conformal interval.

    ``groups``: one site id per unit (default ``units_df.site_id``). Returns the model and a CV
    report: best params, per-candidate MAE, the folds' site sets (what was actually used), the
    conformal calibration and the out-of-fold scores.
    """
    from sklearn.model_selection import GridSearchCV

    units_df = units_df.reset_index(drop=True)
    groups = np.asarray(units_df["site_id"] if groups is None else groups)
    if len(groups) != len(units_df):
        raise ValueError(f"groups has {len(groups)} entries for {len(units_df)} units")
    y = units_df["target_kscm_d"].to_numpy(dtype=np.float64)
    splits = grouped_cv_splits(groups, n_splits, seed)
    grid = param_grid or DEFAULT_PARAM_GRID
    search = GridSearchCV(make_pipeline(), grid, scoring="neg_mean_absolute_error", cv=splits, refit=True,
                          n_jobs=n_jobs, error_score="raise")
    search.fit(units_df, y)
    basis_best = search.best_estimator_.named_steps["basis"].basis_params()
    best_params = {**basis_best, "alpha": float(search.best_estimator_.named_steps["ridge"].alpha)}

    # out-of-fold predictions with the chosen hyper-parameters (each unit predicted by a model
    # that never saw its site) -> conformal quantiles
    oof = np.zeros(len(y))
    for tr, va in splits:
        m = make_pipeline(alpha=best_params["alpha"], **basis_best).fit(units_df.iloc[tr], y[tr])
        oof[va] = np.maximum(m.predict(units_df.iloc[va]), 0.0)
    conf = conformal_log_quantiles(y, oof, interval_alpha)


    res = search.cv_results_
    candidates = [{**{k.split("__", 1)[1]: _plain(v) for k, v in res["params"][i].items()},
                   "mae_mean": float(-res["mean_test_score"][i]), "mae_std": float(res["std_test_score"][i]),
                   "rank": int(res["rank_test_score"][i])} for i in range(len(res["params"]))]
    report = {
        "best_params": best_params,
        "best_cv_mae": float(-search.best_score_),
        "n_units": int(len(y)), "n_sites": int(len(np.unique(groups))), "n_splits": len(splits),
        "folds": [{"train_sites": sorted(map(str, np.unique(groups[tr]))),
                   "val_sites": sorted(map(str, np.unique(groups[va])))} for tr, va in splits],
        "candidates": sorted(candidates, key=lambda c: c["rank"]),
        "conformal": conf,
        "oof": volume_metrics(oof, y),
    }
    model = VolumeRegressor(search.best_estimator_, q_lo=conf["q_lo"], q_hi=conf["q_hi"],
                            interval_alpha=interval_alpha,
                            params={**report["best_params"], "seed": seed, "n_splits": len(splits),
                                    "train_sites": sorted(map(str, np.unique(groups)))},
                            metrics={"cv_mae": report["best_cv_mae"]})
    return model, report


