"""The volume-regressor steps behind the ``regressor_retrain`` DAG, and the production choice.

- ``train_challenger``: calibration periods aligned with their detections (``regressor_data``),
  optionally plus synthetic bootstrap units; sites held out deterministically; the param
  ``model_kind`` (default "constrained": ``estimate.constrained``, the linear calibration times a
  correction bounded to [1/B, B]; "unconstrained": ``estimate.regressor``) fitted with its
  hyper-parameters chosen on site-grouped folds of the training sites; challenger, champion and both published calibrations
  scored on the SAME held-out units; the challenger registered as
  ``s3://<processed>/models/regressor/v<N>/`` (``model.skops`` + ``metadata.json``) and a
  ``model_versions`` row.
- ``promote``: the challenger must beat both calibrations on the held-out units (lower MAE), then
  the registry's gate (``metric='mae'``, lower is better) against the champion.
- ``backfill_volumes``: re-estimate existing ``flare_detections`` of a date range with a model and
  upsert their ``flare_emissions`` rows (natural key; idempotent), recording the model version.
- ``production_regressor``: (model, version) for ``flare_process``: the registry champion (cached
  under the state folder by version), else the shipped ``models/regressor/flare-volume.skops``,
  else None (the published linear calibration).

No Airflow imports here.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import date

from flarewatch.config import Settings, state_dir
from flarewatch.estimate.deployed import (
    ARTIFACT,
    load_registered,
    shipped_model,
    shipped_version,
)
from flarewatch.estimate.site_day import emission_rows
from flarewatch.store import db, registry

log = logging.getLogger(__name__)

MODEL_NAME = "regressor"

DEFAULT_PARAMS = {
    "test_fraction": 0.25,
    "min_coverage": 0.5,
    "synthetic_sites": 0,
    "synthetic_days": 20,
    "synthetic_detector": None,  # None = the production detector (settings.detector_kind)
    "synthetic_seed": 1,  # the shipped model's sites are seed 0: bootstrap sites must differ
    "seed": 0,
    "calibration_start": None,
    "calibration_end": None,
    "model_kind": "constrained",  # estimate.constrained.MODEL_KINDS: "constrained" (calibration x bounded correction) or "unconstrained"
}
MIN_UNITS = 12


def library_versions() -> dict:
    import importlib.metadata as md

    out = {}
    for p in ("scikit-learn", "skops", "numpy", "pandas", "scipy", "flarewatch"):
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = None
    return out


# ------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------
def _day(x) -> date | None:
    if x in (None, ""):
        return None
    return x if isinstance(x, date) else date.fromisoformat(str(x))


def build_units(conn, params: dict, settings: Settings | None = None):
    """(units, info): calibration-period units from the DB plus ``synthetic_sites`` bootstrap sites
    (processed with ``synthetic_detector``, default the production detector ``settings.detector_kind``)."""
    import pandas as pd

    from flarewatch.training.regressor_data import synthetic_units, units_from_db

    units = units_from_db(conn, start=_day(params.get("calibration_start")), end=_day(params.get("calibration_end")),
                          min_coverage=float(params["min_coverage"]))
    info = {"db_periods": int(units.attrs.get("n_periods", 0)), "db_units": int(len(units)),
            "db_sites": int(units["site_id"].nunique()) if len(units) else 0,
            "dropped": units.attrs.get("dropped", [])}
    n_syn = int(params.get("synthetic_sites") or 0)
    if n_syn > 0:
        syn = synthetic_units(n_syn, int(params["synthetic_days"]), seed=int(params["synthetic_seed"]),
                              detector=params.get("synthetic_detector") or (settings or Settings()).detector_kind,
                              cache_dir=state_dir() / "regressor")
        info["synthetic_units"] = int(len(syn))
        info["synthetic_sites"] = n_syn
        cols = list(units.columns)
        units = pd.concat([units, syn[cols]], ignore_index=True) if len(units) else syn[cols].reset_index(drop=True)
    return units, info


def _summary(m: dict) -> dict:
    keys = ("n", "n_sites", "mae", "rmse", "r2", "bias", "coverage", "coverage_all", "missed_share")
    return {k: (None if isinstance(m.get(k), float) and not math.isfinite(m[k]) else m.get(k)) for k in keys if k in m}


def train_challenger(conn, s3, settings: Settings, *, params: dict | None = None, run_id: str = "manual") -> dict:
    """Build units, hold out sites, fit, score challenger / champion / calibrations on the same
    held-out units, register the challenger (and the shipped model as the first champion when the
    registry has none). Returns ``{"version", "champion_version", "metrics", "units", "test_sites"}``.
    """
    from flarewatch.estimate.constrained import fit_volume_model, load_volume_model
    from flarewatch.estimate.regressor import holdout_split, split_sites
    from flarewatch.evaluation.regressor import compare
    from flarewatch.training.regressor_data import data_snapshot

    p = {**DEFAULT_PARAMS, **{k: v for k, v in (params or {}).items() if v is not None}}
    seed = int(p["seed"])
    units, info = build_units(conn, p, settings)
    n_sites = int(units["site_id"].nunique()) if len(units) else 0
    if len(units) < MIN_UNITS or n_sites < 4:
        dropped = info["dropped"]
        why = "; ".join(f"{d['site_id']} {d['period_start']}..{d['period_end']}: {d['reason']}" for d in dropped[:5])
        raise ValueError(
            f"too little calibration data to train and hold out sites: {len(units)} usable period(s) at {n_sites} "
            f"site(s) ({info['db_periods']} calibration period(s) read, {len(dropped)} dropped"
            f"{': ' + why if why else ''}); need >= {MIN_UNITS} periods at >= 4 sites (3 to train with "
            f"site-grouped CV + 1 held out). Import more calibration data, lower min_coverage, or set "
            f"synthetic_sites to add simulated sites.")
    train_sites, test_sites = split_sites(units["site_id"].unique(), float(p["test_fraction"]), seed)
    train, test = holdout_split(units, float(p["test_fraction"]), seed)
    model, cv = fit_volume_model(train, str(p["model_kind"]), seed=seed)

    work = state_dir() / "regressor_retrain" / run_id.replace(":", "_").replace("+", "_")
    work.mkdir(parents=True, exist_ok=True)
    models = {"challenger": model}
    champ = registry.champion(conn, MODEL_NAME)
    champion_version = champ["version"] if champ else None
    if champ is not None:
        models["champion"] = load_registered(conn, s3, settings, champ["version"])
    else:
        models["champion"] = load_volume_model(shipped_model())
    scores = compare(models, test)
    metrics = {name: _summary(m) for name, m in scores.items()}
    baselines = {k: metrics[k] for k in ("calibration_linear", "calibration_power")}

    if "champion" in models and champion_version is None:
        # bootstrap the registry with the shipped model, scored on the same held-out units
        shipped = shipped_model()
        v0 = registry.register(conn, s3, settings.processed_bucket, MODEL_NAME, {ARTIFACT: shipped},
                               {**metrics["champion"], "baselines": baselines},
                               params={"source": "shipped models/regressor", "sha256_8": shipped_version()[-8:]},
                               library_versions=library_versions())
        registry.decide_and_promote(conn, MODEL_NAME, v0, "mae", higher_is_better=False)
        champion_version = v0
    elif champion_version is not None:
        # the champion's stored metrics must come from the same held-out units as the challenger's
        registry.merge_metrics(conn, MODEL_NAME, champion_version, {**metrics["champion"], "baselines": baselines})

    version = registry.next_version(conn, MODEL_NAME)
    model.version = f"regressor-v{version}"
    model.metrics = {"cv": {"mae": cv["best_cv_mae"], **cv["best_params"]}, "test": metrics["challenger"],
                     "baselines": baselines}
    model.params.update(test_sites=test_sites, test_fraction=float(p["test_fraction"]),
                        min_coverage=float(p["min_coverage"]), synthetic_sites=int(p["synthetic_sites"]), run_id=run_id)
    path = model.save(work / ARTIFACT)
    snapshot = data_snapshot(units)
    registry.register(
        conn, s3, settings.processed_bucket, MODEL_NAME, {ARTIFACT: path},
        {**metrics["challenger"], "baselines": baselines, "cv_mae": cv["best_cv_mae"],
         "interval": cv["conformal"]},
        params={**{k: p[k] for k in DEFAULT_PARAMS}, **cv["best_params"], "n_train_units": len(train),
                "n_test_units": len(test), "train_sites": train_sites, "test_sites": test_sites, "run_id": run_id,
                "cv_folds": cv["n_splits"]},
        data_snapshot=snapshot, library_versions=library_versions(), version=version)
    log.info("regressor v%d: held-out MAE %.1f (champion %s, linear %.1f, power %.1f) on %d units at %d sites",
             version, metrics["challenger"]["mae"],
             f"{metrics['champion']['mae']:.1f}" if "champion" in metrics else "none",
             baselines["calibration_linear"]["mae"], baselines["calibration_power"]["mae"],
             len(test), len(test_sites))
    return {"version": version, "champion_version": champion_version, "metrics": metrics,
            "cv": {"mae": cv["best_cv_mae"], **cv["best_params"]}, "data_snapshot": snapshot,
            "units": {"train": len(train), "test": len(test), **{k: v for k, v in info.items() if k != "dropped"},
                      "dropped": len(info["dropped"])},
            "train_sites": train_sites, "test_sites": test_sites}


def promote(conn, version: int, *, min_delta: float = 0.0, model_name: str = MODEL_NAME) -> registry.GateDecision:
    """Gate ``version``: it must beat both published calibrations on its held-out units (lower
    MAE), then be at least as good as the champion (``store.registry.decide_and_promote`` on ``mae``).
    The decision is recorded on the version's row either way."""
    metrics = registry.version_metrics(conn, model_name, version)
    mae = metrics.get("mae")
    for name, base in (metrics.get("baselines") or {}).items():
        b = (base or {}).get("mae")
        if mae is None or b is None or not float(mae) < float(b):
            decision = registry.GateDecision(False, f"challenger mae={mae} does not beat {name} mae={b}")
            registry.record_decision(conn, model_name, version, decision.reason)
            return decision
    return registry.decide_and_promote(conn, model_name, version, "mae", higher_is_better=False, min_delta=min_delta)


def backfill_volumes(conn, model, settings: Settings, start: date, end: date, *, site_ids=None) -> dict:
    """Re-estimate every ``flare_detections`` row with ``start <= acquisition_date <= end`` with ``model``.

    Upserts ``flare_emissions`` on (site_id, acquisition_date, detection_key) with
    ``volume_method = 'regressor'`` and ``model_version = model.version`` (rows outside the range
    keep the version that produced them); idempotent. The affected site-days' processed scenes get
    ``processed_at = now()`` (only where nothing is pending), so ``store.db.stale_rollup_days`` and the
    rollup sweep refresh their daily and monthly rows. Returns days, site-days and row counts.
    """
    start, end = _day(start), _day(end)
    if end < start:
        raise ValueError(f"backfill end {end} is before start {start}")
    sql = ("SELECT site_id, acquisition_date, detection_key, features FROM flare_detections"
           " WHERE acquisition_date BETWEEN %s AND %s")
    args: list = [start, end]
    if site_ids:
        sql += " AND site_id = ANY(%s)"
        args.append(list(site_ids))
    with conn.cursor() as cur:
        cur.execute(sql + " ORDER BY site_id, acquisition_date, detection_key", args)
        rows = cur.fetchall()
    conn.commit()
    by_day: dict[tuple[str, date], list] = {}
    for site_id, day, key, feats in rows:
        if isinstance(feats, str):
            feats = json.loads(feats)
        by_day.setdefault((site_id, day), []).append((key, feats or {}))
    em_rows = []
    for (site_id, day), items in by_day.items():
        em_rows += emission_rows(site_id, day, [k for k, _ in items], [f for _, f in items], model, settings)
    db.upsert_reestimated_emissions(conn, em_rows, list(by_day))
    days = sorted({d for _, d in by_day})
    log.info("backfill %s..%s with %s: %d flare_emissions rows on %d site-days", start, end, model.version,
             len(em_rows), len(by_day))
    return {"version": model.version, "start": start.isoformat(), "end": end.isoformat(),
            "days": [d.isoformat() for d in days], "site_days": len(by_day), "rows": len(em_rows),
            "volume_kscm_d": round(sum(e["volume_kscm_d"] for e in em_rows), 4)}
