#!/usr/bin/env python
"""Learned volume regressor vs the published calibrations on held-out synthetic sites.

    python benchmarks/evaluate_regressor.py --out benchmarks/results/evaluation.json

Builds (or reads from ``--cache``) the synthetic calibration units: ``--sites`` simulated sites x
``--days`` daily meter readings, processed exactly as ``flare_process`` does
(``estimate.site_day.estimate_site_day`` with ``--detector``: detection, features, VIIRS matching), the
meter being the simulator's true site flow x lognormal(0, 0.05). Holds out ``--test-fraction`` of
the SITES (deterministic, ``--seed``), grid-searches the additive per-flare model on site-grouped
folds of the others, and scores it, the shipped model (``--model``, when it did not train on a
held-out site) and both calibrations (linear VIIRS, RH^0.7 power law) on the same held-out
units: MAE, RMSE, R2, bias (thousand m3/day), 90 % interval coverage. ``--repeats`` more split
seeds show the spread. Prints a table and MERGES the results under key ``"regressor"`` into the
JSON at ``--out`` (other keys, e.g. ``"detector"``, are kept). No database, no S3, no network.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from flarewatch.values import json_value

REPO = Path(__file__).resolve().parents[1]


def merge_json(path: Path, key: str, value: dict) -> None:
    """Replace ``key`` in the JSON object at ``path`` (created if missing), keeping the other keys."""
    data = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            data = {}
        if not isinstance(data, dict):
            data = {}
    data[key] = json_value(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n")
    tmp.replace(path)


def build_units(args):
    from flarewatch.training.regressor_data import (
        SyntheticRecipe,
        detector_version,
        site_days_cache_path,
        synthetic_site_days,
        units_from_site_days,
    )

    recipe = SyntheticRecipe(n_sites=args.sites, days=args.days, seed=args.seed, detector=args.detector,
                             period_days=args.period_days)
    t0 = time.perf_counter()
    det_version = detector_version(args.detector)
    cache_file = site_days_cache_path(recipe, args.cache)
    cached = cache_file.exists()
    records = synthetic_site_days(recipe, cache_dir=args.cache, progress=True)
    build_s = time.perf_counter() - t0
    meta = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    units = units_from_site_days(records, args.period_days, recipe.meter_noise_sd, args.seed)
    n = len(records)
    timing = {"site_days": n, "cached": cached, "seconds_now": round(build_s, 1),
              "seconds_when_built": meta.get("seconds"),
              "seconds_per_site_day_when_built": round(meta["seconds"] / n, 4) if meta.get("seconds") and n else None}
    return recipe, det_version, units, timing


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sites", type=int, default=48, help="synthetic sites (default 48)")
    p.add_argument("--days", type=int, default=20, help="days per site (default 20)")
    p.add_argument("--seed", type=int, default=0, help="sites, meter noise, held-out split and CV folds")
    p.add_argument("--detector", default="yolo", choices=["yolo", "threshold"],
                   help="detector run on the simulated tiles (default: yolo, what flare_process uses)")
    p.add_argument("--period-days", type=int, default=1, help="calibration period length (1 = daily meter)")
    p.add_argument("--test-fraction", type=float, default=0.25, help="share of sites held out")
    p.add_argument("--repeats", type=int, default=3, help="extra split seeds for the spread (default 3)")
    p.add_argument("--model", type=Path, default=REPO / "models" / "regressor" / "flare-volume.skops",
                   help="a saved model to score on the same held-out units (skipped if missing)")
    p.add_argument("--cache", type=Path, default=REPO / ".state" / "regressor", help="dataset cache folder")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "evaluation.json")
    args = p.parse_args(argv)

    from flarewatch.detect.yolo import offline_environment

    offline_environment(args.cache.parent)
    from flarewatch.estimate.constrained import load_volume_model
    from flarewatch.evaluation.regressor import heldout_experiment, table_text

    t0 = time.perf_counter()
    recipe, det_version, units, timing = build_units(args)
    models, shipped = {}, None
    if args.model and args.model.exists():
        shipped = load_volume_model(args.model)
        models["shipped"] = shipped
    exp = heldout_experiment(units, test_fraction=args.test_fraction, seed=args.seed, models=models,
                             repeat_seeds=[args.seed + k for k in range(1, args.repeats + 1)],
                             kind="constrained", other_kinds=["unconstrained"])
    table = exp["table"]
    print(f"\nHeld-out sites: {len(exp['split']['test_sites'])} of {units['site_id'].nunique()} "
          f"({exp['split']['n_test_units']} site-periods; {exp['split']['n_train_units']} for training); "
          f"detector {det_version}; volumes in thousand m3/day")
    extra = [("shipped", f"shipped model ({args.model.name})")] if shipped is not None else []
    print(table_text(table, extra, learned_label="constrained (fitted here)"))
    cv = exp["cv"]
    print(f"grid search: {cv['n_candidates']} candidates x {cv['n_splits']} site-grouped folds, best "
          f"{cv['best_params']}, CV MAE {cv['best_cv_mae']:.1f}; interval: log-ratio quantiles "
          f"[{cv['conformal']['q_lo']:.3f}, {cv['conformal']['q_hi']:.3f}] (x{math.exp(cv['conformal']['q_lo']):.2f}"
          f" .. x{math.exp(cv['conformal']['q_hi']):.2f})")
    for r in exp["repeats"]:
        print(f"  split seed {r['seed']}: MAE learned {r['learned_mae']:.1f}, "
              f"linear {r['calibration_linear_mae']:.1f}, "
              f"power {r['calibration_power_mae']:.1f}; coverage {r['learned_coverage']:.3f}")
    wins = all(r["learned_mae"] < min(r["calibration_linear_mae"], r["calibration_power_mae"])
               for r in [{"learned_mae": table["learned"]["mae"],
                          "calibration_linear_mae": table["calibration_linear"]["mae"],
                          "calibration_power_mae": table["calibration_power"]["mae"]}, *exp["repeats"]])
    print(f"learned model beats both calibrations on every split: {wins}")
    seconds = round(time.perf_counter() - t0, 1)
    result = {
        "recipe": {**recipe.__dict__, "detector_version": det_version, "test_fraction": args.test_fraction},
        "units": {"n": len(units), "n_sites": int(units["site_id"].nunique()),
                  "n_flares": int(units["n_flares"].sum())},
        "timing": {"dataset": timing, "fit_seconds": exp["seconds"]["fit"], "total_seconds": seconds},
        "split": exp["split"], "cv": cv, "table": table, "repeats": exp["repeats"],
        "learned_beats_both_on_every_split": wins,
        "model": {"basis": exp["model"].describe()},
        "shipped_model": ({"path": str(args.model), "params": shipped.params, "version_in_file": shipped.version}
                          if shipped is not None else None),
        "units_definition": "site-day (daily meter): target = true site flow x lognormal(0, 0.05)",
    }
    merge_json(args.out, "regressor", result)
    print(f"{len(units)} units in {seconds:.1f} s (dataset {timing['seconds_now']:.1f} s"
          f"{', cached' if timing['cached'] else ''}); merged under 'regressor' into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
