"""Scoring the volume regressor against the published calibrations on the same held-out units.

``compare`` scores models and both calibrations on one set of units; ``heldout_experiment`` fits
on the training sites and scores on held-out sites (optionally repeated over seeds);
``table_text`` prints the result as ``make evaluate`` and the model card show it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from flarewatch.estimate.constrained import DEFAULT_BOUND, DEFAULT_MODEL_KIND, fit_volume_model
from flarewatch.estimate.regressor import (
    VolumeRegressor,
    baseline_predictions,
    holdout_split,
    split_sites,
)
from flarewatch.evaluation.metrics import volume_metrics


def _coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, mask: np.ndarray) -> float:
    if not mask.any():
        return float("nan")
    return float(np.mean((y[mask] >= lo[mask] - 1e-9) & (y[mask] <= hi[mask] + 1e-9)))


def median_ratio(yhat: np.ndarray, units_df: pd.DataFrame) -> float:
    """Median over units with a positive truth of predicted / true volume. Truth: ``true_kscm_d`` (the
    noise-free simulator flow) when the units have it, else the metered ``target_kscm_d``. A unit
    with no detection counts with ratio 0. 1 = no scale error; the issue-10 check of a learned scale."""
    col = "true_kscm_d" if "true_kscm_d" in units_df.columns else "target_kscm_d"
    truth = units_df[col].to_numpy(dtype=np.float64)
    ok = truth > 0
    return float(np.median(np.asarray(yhat, dtype=np.float64)[ok] / truth[ok])) if ok.any() else float("nan")


def evaluate_units(model: VolumeRegressor, units_df: pd.DataFrame) -> dict:
    """Scores of ``model`` on ``units_df`` (kscm/d): ``evaluation.metrics.volume_metrics`` (n, MAE, RMSE,
    R2, bias, ...) plus n_sites, interval coverage over units with a prediction > 0
    (``coverage``), over all units (``coverage_all``: a unit with no detection is covered only when
    its target is 0), the share of units with no detection but a positive target, and ``median_ratio``.
    ``model``: any volume model (``VolumeRegressor``, ``estimate.constrained.ConstrainedVolumeModel``)."""

    y = units_df["target_kscm_d"].to_numpy(dtype=np.float64)
    yhat = model.predict_units(units_df)
    lo, hi = yhat * math.exp(model.q_lo), yhat * math.exp(model.q_hi)
    out = volume_metrics(yhat, y)
    pos = yhat > 0
    out.update(
        n_sites=int(units_df["site_id"].nunique()),
        median_ratio=median_ratio(yhat, units_df),
        coverage=_coverage(y, lo, hi, pos),
        coverage_all=_coverage(y, lo, hi, np.ones(len(y), dtype=bool)),
        interval_level=1.0 - model.interval_alpha,
        n_no_detection=int((~pos).sum()),
        missed_share=float(np.mean(~pos & (y > 0))) if len(y) else float("nan"),
        mean_rel_width=float(np.mean(hi[pos] / yhat[pos] - lo[pos] / yhat[pos])) if pos.any() else float("nan"),
    )
    return out


def evaluate_baseline(units_df: pd.DataFrame, method: str) -> dict:
    """``evaluation.metrics.volume_metrics`` of a published calibration on ``units_df`` plus n_sites."""

    y = units_df["target_kscm_d"].to_numpy(dtype=np.float64)
    yhat = baseline_predictions(units_df, method)
    out = volume_metrics(yhat, y)
    out["n_sites"] = int(units_df["site_id"].nunique())
    out["median_ratio"] = median_ratio(yhat, units_df)
    return out


def compare(models: dict[str, VolumeRegressor], units_df: pd.DataFrame) -> dict:
    """Every model (name -> VolumeRegressor) and both calibrations on the same units."""
    out = {name: evaluate_units(m, units_df) for name, m in models.items()}
    for method in ("linear", "power"):
        out[f"calibration_{method}"] = evaluate_baseline(units_df, method)
    return out


def heldout_experiment(units_df: pd.DataFrame, *, test_fraction: float = 0.25, seed: int = 0,
                       param_grid: dict | None = None, models: dict[str, VolumeRegressor] | None = None,
                       repeat_seeds: Sequence[int] = (), kind: str = DEFAULT_MODEL_KIND,
                       other_kinds: Sequence[str] = (), bound: float = DEFAULT_BOUND) -> dict:
    """Hold out sites, fit a ``kind`` model ("constrained" / "unconstrained",
    ``estimate.constrained.fit_volume_model``) on the rest, score it ("learned"), one model of each of
    ``other_kinds`` fitted on the same sites ("learned_<kind>"), ``models`` and both calibrations on
    the same held-out units. ``repeat_seeds``: redo split + fit + scoring with other split seeds (MAE
    spread of the comparison). ``bound``: the constrained model's B.
    Returns ``{"model", "kind", "others", "cv", "split", "table", "repeats", "seconds"}``."""
    import time

    t0 = time.perf_counter()
    train_sites, test_sites = split_sites(units_df["site_id"].unique(), test_fraction, seed)
    train, test = holdout_split(units_df, test_fraction, seed)
    model, cv = fit_volume_model(train, kind, seed=seed, param_grid=param_grid, bound=bound)
    fit_s = time.perf_counter() - t0
    others = {f"learned_{k}": fit_volume_model(train, k, seed=seed, param_grid=param_grid, bound=bound)[0]
              for k in other_kinds}
    usable = {}
    for name, m in (models or {}).items():
        seen = set(m.params.get("train_sites") or []) & set(test_sites)
        if seen:
            usable[name] = None  # trained on held-out sites: not scored
        else:
            usable[name] = m
    table = compare({"learned": model, **others, **{k: m for k, m in usable.items() if m is not None}}, test)
    for name, m in usable.items():
        if m is None:
            table[name] = {"skipped": "trained on some of the held-out sites"}
    repeats = []
    for s in repeat_seeds:
        tr, te = holdout_split(units_df, test_fraction, s)
        m, _ = fit_volume_model(tr, kind, seed=s, param_grid=param_grid, bound=bound)
        rest = {f"learned_{k}": fit_volume_model(tr, k, seed=s, param_grid=param_grid, bound=bound)[0]
                for k in other_kinds}
        r = compare({"learned": m, **rest}, te)
        repeats.append({"seed": s, "n_test_units": len(te), "n_test_sites": int(te["site_id"].nunique()),
                        **{f"{k}_mae": r[k]["mae"] for k in r}, "learned_r2": r["learned"]["r2"],
                        "learned_coverage": r["learned"]["coverage"],
                        **{f"{k}_median_ratio": r[k]["median_ratio"] for k in r}})
    return {
        "model": model,
        "kind": kind,
        "others": others,
        "cv": {k: v for k, v in cv.items() if k != "candidates"} | {"top_candidates": cv["candidates"][:10],
                                                                   "n_candidates": len(cv["candidates"])},
        "split": {"test_fraction": test_fraction, "seed": seed, "train_sites": train_sites, "test_sites": test_sites,
                  "n_train_units": len(train), "n_test_units": len(test)},
        "table": table,
        "repeats": repeats,
        "seconds": {"fit": round(fit_s, 2), "total": round(time.perf_counter() - t0, 2)},
    }


TABLE_ROWS = (("learned", "learned model"), ("learned_constrained", "constrained (calibration x [1/B, B])"),
              ("learned_unconstrained", "unconstrained regressor"), ("calibration_linear", "linear calibration (Zhizhin 2025)"),
              ("calibration_power", "power law RH^0.7 (Elvidge 2016)"))


def table_text(table: dict, extra: Sequence[tuple[str, str]] = (), learned_label: str | None = None) -> str:
    """Fixed-width text of a ``compare`` / ``heldout_experiment`` table (kscm/d; ``ratio``: median
    predicted / true volume per unit, ``median_ratio``)."""
    def f(x, d=1):
        return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{d}f}"

    head = (f"{'estimator':36s} {'MAE':>7s} {'RMSE':>7s} {'R2':>6s} {'bias':>7s} {'units':>6s} {'sites':>5s} {'cov90':>6s}"
            f" {'ratio':>6s}")
    lines = [head, "-" * len(head)]
    for key, label in (*TABLE_ROWS, *extra):
        label = learned_label if key == "learned" and learned_label else label
        m = table.get(key)
        if m is None:
            continue
        if "skipped" in m:
            lines.append(f"{label:36s} skipped: {m['skipped']}")
            continue
        lines.append(f"{label:36s} {f(m['mae']):>7s} {f(m['rmse']):>7s} {f(m['r2'], 3):>6s} {f(m['bias']):>7s} "
                     f"{m['n']:>6d} {m['n_sites']:>5d} {f(m.get('coverage'), 3):>6s} {f(m.get('median_ratio'), 3):>6s}")
    return "\n".join(lines)
