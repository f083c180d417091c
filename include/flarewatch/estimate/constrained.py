"""Physics-bounded flared-volume model: the published linear calibration times a bounded learned correction.

Why. The unconstrained regressor (``estimate.regressor``) learns every slope freely from meter
totals. Trained on our own simulator it learned a scale true of that simulator only: on scenes from
an independent generator its volume was a median 1.99x the linear calibration of the TRUE radiant
heat, while the linear calibration of the measured radiant heat was within a few per cent of it
(issue 10). Meter totals from one generator cannot tell a real physical effect from that
generator's quirks, so this model keeps the physics and lets the data adjust it only a little::

    v_f = linear_kscm_d(RH_f) * exp(log(B) * tanh(g(x_f) / log(B))),    g(x) = w . z(x)

* ``linear_kscm_d(RH_f)``: Zhizhin et al. 2025 (``estimate.calibrations.volume_linear_kscm_d``) of
  the radiant heat ``estimate.calibrations.estimate_volume`` uses: the matched VIIRS RH, else the
  Sentinel-2 SWIR FRP (the ``linear_kscm_d`` column of ``estimate.regressor.flare_inputs``). A
  flare with neither gets 0, as the calibration does.
* The correction is a smooth clip (tanh) of ``g`` to ``(-log B, log B)``: a flare's volume is never
  more than ``B`` times or less than ``1 / B`` times the calibration, whatever its inputs; where
  ``g`` is small it is ``exp(g)``. The hard ``np.clip`` applied after it is a guard, never active.
  ``w = 0`` is exactly the linear calibration.
* ``B`` (``bound``, default ``DEFAULT_BOUND`` = 1.5) is a physics prior, NOT tuned on the simulator
  (tuning it there would let the simulator's scale back in). Why 1.5: the published calibrations'
  own uncertainty is of this order (Bakken +-50 % against field stations, Zhang et al. 2015;
  linear Zhizhin 2025 vs power law Elvidge 2016 differ by a comparable factor over the usual flare
  sizes, ``/work/shared/docs/domain.md``), and the instrument effects the correction exists for
  (a clipped SWIR pixel making the FRP a lower bound, a thin cloud dimming the flame, a VIIRS pixel
  shared between stacks) are corrections of tens of per cent for the flares both sensors see. A
  2x factor, the size of the simulator-specific scale, stays out of reach.
* ``z(x)`` (``CORRECTION_TERMS``): a few physically meaningful inputs, all zero-centred or
  indicators so the ridge pull towards ``w = 0`` is a pull towards the calibration: which radiant
  heat is used (VIIRS with an S2 detection, VIIRS only, Sentinel-2 FRP), and for the Sentinel-2
  FRP whether it is a lower bound (``swir_frp_lower_bound``), cloud within 2 px, a saturated pixel,
  and the log number of hot pixels relative to ``HOT_PIXELS_REF`` (the median of YOLO detections of
  simulated flares); for the VIIRS RH of an S2 detection, day cloud within 2 px; and the log
  radiant heat relative to ``RH_REF_MW`` per source (intact FRP, lower-bound FRP, VIIRS): a
  size-dependent slope, since a clipped FRP flattens for big flames and volume is not exactly
  linear in RH. Being bounded, a size slope can move the largest and smallest flares by at most B.

Fitting: like the unconstrained model, on site-period meter totals (``training.regressor_data``):
a unit's prediction is the sum of its flares' volumes over its processed days / ``n_days_processed``
and its target the mean daily metered volume. ``w`` minimises the mean squared log ratio
``log((yhat_u + f) / (y_u + f))`` (``f`` = ``LOG_FLOOR_KSCM_D``; units with no calibrated flare
carry no information on ``w`` and are left out) plus ``ridge * |w|^2``, by L-BFGS with the exact
gradient (scipy). ``ridge`` is chosen from ``DEFAULT_RIDGE_GRID`` on site-grouped folds
(``estimate.regressor.grouped_cv_splits``) scoring MAE, as the unconstrained model's grid search.

Prediction interval: cross-conformal on multiplicative residuals, exactly as the unconstrained model
(``estimate.regressor.conformal_log_quantiles`` of out-of-fold unit predictions from models fitted
on the other folds' sites); per-flare intervals ``[v exp(q_lo), v exp(q_hi)]`` add up per site-day.

Persistence: skops, never pickle, with an explicit trusted-type list (``CONSTRAINED_TRUSTED_TYPES``);
``load_volume_model`` loads a file of either model (this one, or a ``VolumeRegressor`` file under
either class path, the pre-split shipped file included) and refuses any other type.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from flarewatch.estimate.regressor import (
    INPUT_COLUMNS,
    INTERVAL_ALPHA,
    LEGACY_TRUSTED_TYPES,
    TRUSTED_TYPES,
    VolumeRegressor,
    conformal_log_quantiles,
    fit_regressor,
    flare_inputs_matrix,
    grouped_cv_splits,
    save_skops,
    skops_io,
)
from flarewatch.evaluation.metrics import volume_metrics

DEFAULT_BOUND = 1.5
HOT_PIXELS_REF = 16.0
RH_REF_MW = 2.0  # ~ the median radiant heat of detected simulated flares: log terms are zero-centred there
LOG_FLOOR_KSCM_D = 1.0  # 1000 m3/day: small next to a site's flow (median ~300 kscm/d in the synthetic units)
DEFAULT_RIDGE_GRID = (1e-3, 1e-2, 1e-1)
MODEL_KINDS = ("constrained", "unconstrained")
DEFAULT_MODEL_KIND = "constrained"

CORRECTION_TERMS: dict[str, str] = {
    "viirs_matched": "1 when the RH is the VIIRS RH of a Sentinel-2 detection",
    "viirs_matched_cloud": "1 when the RH is VIIRS and cloud is within 2 px of the S2 detection",
    "viirs_only": "1 for a VIIRS-only detection (no Sentinel-2 counterpart)",
    "s2_frp": "1 when the RH is the Sentinel-2 SWIR FRP (no flare-like VIIRS match)",
    "s2_frp_lower_bound": "S2 FRP that is a lower bound (a pixel clipped in both bands)",
    "s2_frp_cloud": "S2 FRP with cloud within 2 px",
    "s2_frp_saturated": "S2 FRP with a saturated pixel",
    "s2_frp_log_hot_pixels": "S2 FRP: log(max(hot_pixels, 1) / HOT_PIXELS_REF)",
    "viirs_log_rh": "VIIRS RH (with or without S2): log(RH / RH_REF_MW), a size-dependent slope",
    "s2_frp_log_rh": "S2 FRP: log(FRP / RH_REF_MW)",
    "s2_frp_lower_bound_log_rh": "S2 FRP that is a lower bound: log(FRP / RH_REF_MW)",
}
TERM_NAMES = tuple(CORRECTION_TERMS)

MODULE = "flarewatch.estimate.constrained"
CONSTRAINED_TRUSTED_TYPES = (f"{MODULE}.ConstrainedVolumeModel",)
ALL_TRUSTED_TYPES = (*TRUSTED_TYPES, *CONSTRAINED_TRUSTED_TYPES)

_COL = {c: i for i, c in enumerate(INPUT_COLUMNS)}


# ------------------------------------------------------------------------------------------
# Correction inputs and the bounded factor
# ------------------------------------------------------------------------------------------
def correction_inputs(inputs: np.ndarray) -> np.ndarray:
    """z(x) per flare: shape (n, len(TERM_NAMES)) from ``estimate.regressor.flare_inputs`` rows."""
    x = np.asarray(inputs, dtype=np.float64).reshape(-1, len(INPUT_COLUMNS))
    s2 = x[:, _COL["s2"]] > 0
    viirs = x[:, _COL["viirs_rh_mw"]] > 0
    frp = ~viirs & (x[:, _COL["swir_frp_mw"]] > 0)
    cloud = x[:, _COL["cloud"]] > 0
    hot = np.log(np.maximum(x[:, _COL["hot_pixels"]], 1.0) / HOT_PIXELS_REF)
    log_rh = np.log(np.maximum(x[:, _COL["viirs_rh_mw"]], 1e-3) / RH_REF_MW)
    log_frp = np.log(np.maximum(x[:, _COL["swir_frp_mw"]], 1e-3) / RH_REF_MW)
    lower = frp & (x[:, _COL["frp_lower_bound"]] > 0)
    cols = {
        "viirs_matched": s2 & viirs,
        "viirs_matched_cloud": s2 & viirs & cloud,
        "viirs_only": ~s2 & viirs,
        "s2_frp": frp,
        "s2_frp_lower_bound": lower,
        "s2_frp_cloud": frp & cloud,
        "s2_frp_saturated": frp & (x[:, _COL["saturated"]] > 0),
        "s2_frp_log_hot_pixels": np.where(frp, hot, 0.0),
        "viirs_log_rh": np.where(viirs, log_rh, 0.0),
        "s2_frp_log_rh": np.where(frp & ~lower, log_frp, 0.0),
        "s2_frp_lower_bound_log_rh": np.where(lower, log_frp, 0.0),
    }
    return np.column_stack([np.asarray(cols[n], dtype=np.float64) for n in TERM_NAMES]) if len(x) else \
        np.zeros((0, len(TERM_NAMES)))


def bounded_log_factor(g: np.ndarray, bound: float) -> np.ndarray:
    """``log(B) tanh(g / log(B))`` clipped to ``[-log B, log B]``: the log correction, |.| <= log B."""
    lb = math.log(bound)
    return np.clip(lb * np.tanh(np.asarray(g, dtype=np.float64) / lb), -lb, lb)


def _check_bound(bound: float) -> float:
    bound = float(bound)
    if not (math.isfinite(bound) and bound > 1.0):
        raise ValueError(f"the correction bound B must be a finite number > 1, got {bound}")
    return bound


def _stack(units: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(all flares' input rows, their unit index, n_days_processed per unit)."""
    if not isinstance(units, pd.DataFrame):
        raise TypeError(f"expected a units DataFrame (columns flare_inputs, n_days_processed), got {type(units)!r}")
    n_days = units["n_days_processed"].to_numpy(dtype=np.float64)
    if (n_days <= 0).any():
        raise ValueError("every unit needs n_days_processed >= 1")
    arrays = [np.asarray(a, dtype=np.float64).reshape(-1, len(INPUT_COLUMNS)) for a in units["flare_inputs"]]
    idx = np.repeat(np.arange(len(arrays)), [len(a) for a in arrays])
    flat = np.vstack(arrays) if arrays else np.zeros((0, len(INPUT_COLUMNS)))
    return flat, idx, n_days


# ------------------------------------------------------------------------------------------
# The model object
# ------------------------------------------------------------------------------------------
class ConstrainedVolumeModel:
    """Per-flare volume (kscm/d) = linear calibration x a correction bounded to [1/B, B] (module doc).

    Same interface as ``estimate.regressor.VolumeRegressor`` where the pipeline uses it:
    ``predict_flares``, ``predict_units``, ``interval_units``, ``q_lo`` / ``q_hi`` /
    ``interval_alpha``, ``version``, ``params``, ``metrics``, ``describe``, ``save`` / ``load``.
    """

    kind = "constrained"

    def __init__(self, weights: Sequence[float] | None = None, *, bound: float = DEFAULT_BOUND, q_lo: float = 0.0,
                 q_hi: float = 0.0, interval_alpha: float = INTERVAL_ALPHA,
                 version: str = "regressor-unregistered", params: dict | None = None, metrics: dict | None = None):
        w = np.zeros(len(TERM_NAMES)) if weights is None else np.asarray(weights, dtype=np.float64).copy()
        if w.shape != (len(TERM_NAMES),) or not np.isfinite(w).all():
            raise ValueError(f"weights must be {len(TERM_NAMES)} finite numbers ({', '.join(TERM_NAMES)})")
        self.weights = w
        self.terms = list(TERM_NAMES)
        self.bound = _check_bound(bound)
        self.q_lo = float(q_lo)
        self.q_hi = float(q_hi)
        self.interval_alpha = float(interval_alpha)
        self.version = str(version)
        self.params = dict(params or {})
        self.metrics = dict(metrics or {})

    def factors(self, inputs: np.ndarray) -> np.ndarray:
        """The per-flare correction factor, in [1/B, B], of ``flare_inputs`` rows."""
        return np.exp(bounded_log_factor(correction_inputs(inputs) @ self.weights, self.bound))

    def coefficients(self) -> dict[str, float]:
        """w per correction term (log-factor units; the factor of a 0/1 term alone is exp(w), then bounded)."""
        return {n: float(w) for n, w in zip(self.terms, self.weights)}

    def _flare_volumes(self, inputs: np.ndarray) -> np.ndarray:
        x = np.asarray(inputs, dtype=np.float64).reshape(-1, len(INPUT_COLUMNS))
        if not len(x):
            return np.zeros(0)
        return np.maximum(x[:, _COL["linear_kscm_d"]], 0.0) * self.factors(x)

    def predict_flares(self, features_list: Sequence[dict]) -> list[tuple[float, float, float]]:
        """Per detection ``(volume_kscm_d, lo, hi)``: thousand m3/day, the interval multiplicative."""
        v = self._flare_volumes(flare_inputs_matrix(list(features_list)))
        lo, hi = math.exp(self.q_lo), math.exp(self.q_hi)
        return [(float(x), float(x * lo), float(x * hi)) for x in v]

    def predict_units(self, units_df: pd.DataFrame) -> np.ndarray:
        """Mean daily volume per unit (kscm/d): sum of per-flare volumes / processed days."""
        flat, idx, n_days = _stack(units_df)
        return np.bincount(idx, weights=self._flare_volumes(flat), minlength=len(n_days)) / n_days

    def interval_units(self, units_df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        yhat = self.predict_units(units_df)
        return yhat * math.exp(self.q_lo), yhat * math.exp(self.q_hi)

    def describe(self) -> dict:
        return {"version": self.version, "kind": self.kind, "bound": self.bound, "coefficients": self.coefficients(),
                "q_lo": self.q_lo, "q_hi": self.q_hi, "interval_alpha": self.interval_alpha, "params": self.params,
                "metrics": self.metrics}

    # --- persistence (skops, no pickle) ------------------------------------------------------
    def save(self, path: Path | str) -> Path:
        return save_skops(self, path)

    @classmethod
    def load(cls, path: Path | str) -> ConstrainedVolumeModel:
        """Load a file written by ``save`` (``load_volume_model`` with a type check)."""
        obj = load_volume_model(path)
        if not isinstance(obj, cls):
            raise TypeError(f"{path} holds a {type(obj).__name__}, not a ConstrainedVolumeModel")
        return obj


def load_volume_model(path: Path | str):
    """A saved volume model of either kind: ``ConstrainedVolumeModel`` or ``VolumeRegressor`` (any class path).

    Lists the types the file needs and refuses any outside ``ALL_TRUSTED_TYPES``; loads with exactly
    the types found (never ``trusted=True``). Files of the unconstrained model, including those
    saved before the sub-package split, go through ``VolumeRegressor.load``.
    """
    sio = skops_io()  # without Airflow's import-shim warnings (see there)
    path = Path(path)
    needed = sio.get_untrusted_types(file=path)
    unexpected = sorted(set(needed) - set(ALL_TRUSTED_TYPES))
    if unexpected:
        raise ValueError(f"{path}: refusing to load, it needs types outside the trusted list: {unexpected}")
    if not set(needed) & set(CONSTRAINED_TRUSTED_TYPES):
        return VolumeRegressor.load(path)
    if set(needed) & set(LEGACY_TRUSTED_TYPES):
        raise ValueError(f"{path}: a constrained model file naming the pre-split class path: {sorted(needed)}")
    obj = sio.load(path, trusted=needed)
    if not isinstance(obj, ConstrainedVolumeModel):
        raise TypeError(f"{path} holds a {type(obj).__name__}, not a volume model")
    return obj


# ------------------------------------------------------------------------------------------
# Fitting
# ------------------------------------------------------------------------------------------
def _design(units: pd.DataFrame) -> dict:
    flat, idx, n_days = _stack(units)
    y = units["target_kscm_d"].to_numpy(dtype=np.float64)
    lin = np.maximum(flat[:, _COL["linear_kscm_d"]], 0.0)
    base = np.bincount(idx, weights=lin, minlength=len(n_days))
    keep_unit = base > 0  # units whose flares carry a calibrated volume
    keep_flare = keep_unit[idx] & (lin > 0)
    remap = np.cumsum(keep_unit) - 1
    return {"z": correction_inputs(flat[keep_flare]), "lin": lin[keep_flare], "idx": remap[idx[keep_flare]],
            "n_days": n_days[keep_unit], "y": y[keep_unit]}


def _objective(w: np.ndarray, d: dict, bound: float, ridge: float) -> tuple[float, np.ndarray]:
    lb = math.log(bound)
    t = np.tanh(d["z"] @ w / lb)
    c = np.exp(lb * t)
    n_u = len(d["y"])
    yhat = np.bincount(d["idx"], weights=d["lin"] * c, minlength=n_u) / d["n_days"]
    r = np.log(yhat + LOG_FLOOR_KSCM_D) - np.log(np.maximum(d["y"], 0.0) + LOG_FLOOR_KSCM_D)
    loss = float(np.mean(r ** 2) + ridge * w @ w)
    # d yhat_u / d w = sum_f lin_f c_f (1 - t_f^2) z_f / n_u
    per_flare = (d["lin"] * c * (1.0 - t ** 2))[:, None] * d["z"]
    dy = np.zeros((n_u, len(w)))
    np.add.at(dy, d["idx"], per_flare)
    dy /= d["n_days"][:, None]
    grad = (2.0 / n_u) * ((r / (yhat + LOG_FLOOR_KSCM_D)) @ dy) + 2.0 * ridge * w
    return loss, grad


def fit_weights(units_df: pd.DataFrame, *, bound: float = DEFAULT_BOUND, ridge: float = 1e-2) -> np.ndarray:
    """w minimising the mean squared log ratio of unit predictions to targets + ``ridge |w|^2``."""
    from scipy.optimize import minimize

    bound = _check_bound(bound)
    d = _design(units_df.reset_index(drop=True))
    w0 = np.zeros(len(TERM_NAMES))
    if not len(d["y"]):
        return w0
    res = minimize(_objective, w0, args=(d, bound, float(ridge)), jac=True, method="L-BFGS-B",
                   options={"maxiter": 500})
    return np.asarray(res.x, dtype=np.float64)


def fit_constrained(units_df: pd.DataFrame, *, groups: Sequence | None = None, seed: int = 0,
                    bound: float = DEFAULT_BOUND, ridge_grid: Sequence[float] = DEFAULT_RIDGE_GRID, n_splits: int = 5,
                    interval_alpha: float = INTERVAL_ALPHA) -> tuple[ConstrainedVolumeModel, dict]:
    """Choose ``ridge`` on site-grouped folds (MAE), refit on all units, add the cross-conformal interval.

    Returns the model and a report shaped like ``estimate.regressor.fit_regressor``'s (best_params,
    best_cv_mae, n_units, n_sites, n_splits, folds, candidates, conformal, oof).
    """
    units_df = units_df.reset_index(drop=True)
    groups = np.asarray(units_df["site_id"] if groups is None else groups)
    if len(groups) != len(units_df):
        raise ValueError(f"groups has {len(groups)} entries for {len(units_df)} units")
    bound = _check_bound(bound)
    y = units_df["target_kscm_d"].to_numpy(dtype=np.float64)
    splits = grouped_cv_splits(groups, n_splits, seed)
    candidates, oofs = [], {}
    for ridge in ridge_grid:
        oof = np.zeros(len(y))
        maes = []
        for tr, va in splits:
            m = ConstrainedVolumeModel(fit_weights(units_df.iloc[tr], bound=bound, ridge=ridge), bound=bound)
            oof[va] = m.predict_units(units_df.iloc[va])
            maes.append(float(np.mean(np.abs(oof[va] - y[va]))))
        oofs[ridge] = oof
        candidates.append({"ridge": float(ridge), "bound": bound, "mae_mean": float(np.mean(maes)),
                           "mae_std": float(np.std(maes))})
    candidates.sort(key=lambda c: c["mae_mean"])
    for rank, c in enumerate(candidates, 1):
        c["rank"] = rank
    best = candidates[0]["ridge"]
    conf = conformal_log_quantiles(y, oofs[best], interval_alpha)
    w = fit_weights(units_df, bound=bound, ridge=best)
    best_params = {"model_kind": "constrained", "bound": bound, "ridge": best}
    report = {
        "best_params": best_params,
        "best_cv_mae": candidates[0]["mae_mean"],
        "n_units": int(len(y)), "n_sites": int(len(np.unique(groups))), "n_splits": len(splits),
        "folds": [{"train_sites": sorted(map(str, np.unique(groups[tr]))),
                   "val_sites": sorted(map(str, np.unique(groups[va])))} for tr, va in splits],
        "candidates": candidates,
        "conformal": conf,
        "oof": volume_metrics(oofs[best], y),
    }
    model = ConstrainedVolumeModel(w, bound=bound, q_lo=conf["q_lo"], q_hi=conf["q_hi"], interval_alpha=interval_alpha,
                                   params={**best_params, "seed": seed, "n_splits": len(splits),
                                           "train_sites": sorted(map(str, np.unique(groups)))},
                                   metrics={"cv_mae": report["best_cv_mae"]})
    return model, report


def fit_volume_model(units_df: pd.DataFrame, kind: str = DEFAULT_MODEL_KIND, *, seed: int = 0,
                     param_grid: dict | None = None, bound: float = DEFAULT_BOUND):
    """(model, report) of ``kind``: "constrained" (``fit_constrained``) or "unconstrained"
    (``estimate.regressor.fit_regressor`` with ``param_grid``)."""
    if kind == "constrained":
        return fit_constrained(units_df, seed=seed, bound=bound)
    if kind == "unconstrained":
        model, report = fit_regressor(units_df, seed=seed, param_grid=param_grid)
        report["best_params"] = {"model_kind": "unconstrained", **report["best_params"]}
        return model, report
    raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")
