#!/usr/bin/env python
"""Train the shipped volume regressor on synthetic calibration units and write its model card.

    python scripts/train_regressor.py            # -> models/regressor/flare-volume.skops + MODEL_CARD.md
    python scripts/train_regressor.py --model unconstrained   # the free additive regressor instead

``--model constrained`` (default): ``estimate.constrained``, the linear calibration of the flare's
radiant heat times a learned correction bounded to [1/B, B] (``--bound``, default 1.5);
``--model unconstrained``: ``estimate.regressor``, the additive per-flare regressor (issue 10: it
learned a scale true of our simulator only). The held-out table always scores both kinds, fitted on
the same training sites, and both calibrations.

Same recipe and split as ``benchmarks/evaluate_regressor.py`` (so its held-out table is this
model's): ``--sites`` simulated sites x ``--days`` daily meter readings processed as
``flare_process`` does with ``--detector`` (default yolo, the production detector), ``--test-fraction``
of the sites held out, grid search on site-grouped folds of the others. The model shipped is the
one fitted on the training sites, so the held-out figures in the card describe exactly this file.
``--cross-detector`` also scores it on units from the other detector (detector mismatch).
No database, no S3, no network.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _f(x, d=1):
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{d}f}"


def _other(r: dict, metric: str):
    """The other kind's figure of a repeat row (``learned_<kind>_<metric>``), None when absent."""
    keys = [k for k in r if k.startswith("learned_") and k.endswith("_" + metric) and k != f"learned_{metric}"]
    return r[keys[0]] if keys else None


def _unconstrained_section(model, cv) -> list[str]:
    from flarewatch.estimate.regressor import BASIS_TERMS, DEFAULT_PARAM_GRID, INPUT_COLUMNS

    coef = model.coefficients()
    bp = model.basis_params
    return [
        "## Model",
        "",
        "Additive per-flare model fitted on site-period totals: a site-day's volume is the sum over its",
        "detections of `g(x) = beta . phi(x)` (`beta >= 0`, no intercept); a period's mean daily volume is",
        "the mean over its processed days, so a period's design row is `sum_f phi(x_f) / n_days_processed`",
        "(exact for daily and monthly periods alike; no allocation of site volumes to flares). Pipeline:",
        "`FlareBasis -> StandardScaler(with_mean=False) -> Ridge(positive=True, fit_intercept=False)`.",
        "",
        f"Per-flare inputs (`regressor.flare_inputs`): {', '.join(f'`{c}`' for c in INPUT_COLUMNS[:-2])}",
        "(the two calibration volumes are stored for the baselines only).",
        "",
        f"Hyper-parameters chosen: p_viirs = {bp['p_viirs']}, p_s2 = {bp['p_s2']}, p_lb = {bp['p_lb']}, "
        f"s2_proxy = `{bp['s2_proxy']}`, alpha = {model.pipeline.named_steps['ridge'].alpha}",
        f"(grid {json.dumps({k.split('__')[1]: v for k, v in DEFAULT_PARAM_GRID.items()})}: {cv['n_candidates']}",
        f"candidates x {cv['n_splits']} site-grouped folds (GroupKFold on site id), scoring MAE; best CV MAE",
        f"{cv['best_cv_mae']:.1f} thousand m3/day).",
        "",
        "| basis term (per flare) | what it is | beta (kscm/d per unit of the term) |",
        "|---|---|---|",
        *[f"| `{n}` | {BASIS_TERMS[n]} | {coef[n]:.3f} |" for n in BASIS_TERMS],
        "",
        "Why these terms (see the `regressor` module docstring): the simulator's flow -> radiant heat has a",
        "`(flow/50)^0.1` nonlinearity and a per-stack efficiency factor `e_k ~ lognormal(0, 0.25)` (irreducible",
        "scatter); almost every simulated flare clips B12 (and large ones B11), so the SWIR FRP flattens for",
        "big flames (`swir_frp_lower_bound` flares get their own exponent); S2 FRP is dimmed under cloud (own",
        "slopes for cloud-flagged detections); VIIRS RH and S2 FRP are two noisy measurements of one flame",
        "(both carry a slope when both exist); VIIRS-only detections have only the VIIRS RH.",
        "",
        "Unbounded: trained on one generator's meter totals it can learn that generator's scale (issue 10:",
        "a median 1.99x the linear calibration of the true radiant heat on an independent generator's scenes).",
        "",
    ]


def _constrained_section(model, cv) -> list[str]:
    from flarewatch.estimate.constrained import CORRECTION_TERMS, HOT_PIXELS_REF, RH_REF_MW

    coef = model.coefficients()
    b = model.bound
    return [
        "## Model: bounded by physics",
        "",
        "Per flare: `v = linear_kscm_d(RH) x exp(log(B) tanh(g(x) / log(B)))`, `g(x) = w . z(x)`",
        "(`flarewatch.estimate.constrained`). `linear_kscm_d(RH)` is the published linear calibration",
        "(Zhizhin et al. 2025, 1 MW -> 31.5 thousand m3/day) of the radiant heat `estimate_volume` uses: the",
        "matched VIIRS RH, else the Sentinel-2 SWIR FRP. The learned correction is a smooth clip to",
        f"`[1/B, B]` with **B = {b}**: no input, however extreme, moves a flare's volume more than a factor {b}",
        "away from the calibration; `w = 0` is exactly the calibration.",
        "",
        "Why bounded. The previous shipped model (free additive regressor) learned a correction true of our",
        "simulator only: on scenes from an independent generator its volume was a median 1.99x the linear",
        "calibration of the TRUE radiant heat, while the calibration of the measured radiant heat was near 1",
        "(issue 10). Meter totals from one generator cannot separate physics from that generator's quirks.",
        f"Why B = {b}: the size of the published calibrations' own uncertainty (Bakken +-50 % against field",
        "stations, Zhang et al. 2015; linear vs power-law calibrations differ by a comparable factor) and of",
        "the instrument effects the correction is for (clipped SWIR pixels, thin cloud, shared VIIRS pixels);",
        "a 2x scale stays out of reach. B is a prior, not tuned on the simulator.",
        "",
        "Fitted on site-period meter totals (unit prediction = sum of its flares' volumes / processed days):",
        "least squares of the log ratio of unit prediction to metered volume (+1 thousand m3/day), plus",
        f"`ridge |w|^2` (a pull towards the calibration); ridge = {model.params.get('ridge')} chosen from",
        f"{sorted(c['ridge'] for c in cv.get('top_candidates', []))} on {cv['n_splits']} site-grouped folds,",
        f"scoring MAE (best CV MAE {cv['best_cv_mae']:.1f} thousand m3/day).",
        "",
        "| correction term z (per flare) | what it is | w | exp(w) (before the bound) |",
        "|---|---|---|---|",
        *[f"| `{n}` | {CORRECTION_TERMS[n]} | {coef[n]:.3f} | {math.exp(coef[n]):.3f} |" for n in CORRECTION_TERMS],
        "",
        f"(`HOT_PIXELS_REF` = {HOT_PIXELS_REF:g}, `RH_REF_MW` = {RH_REF_MW:g} MW: the log terms are zero there.)",
        "",
    ]


def model_card(model, exp, args, det_version, timing, snapshot, libs, cross) -> str:
    from flarewatch.evaluation.regressor import table_text

    t, cv = exp["table"], exp["cv"]
    kind = exp.get("kind", "unconstrained")
    constrained = kind == "constrained"
    cmd = (f"python scripts/train_regressor.py --sites {args.sites} --days {args.days} --seed {args.seed} "
           f"--detector {args.detector} --test-fraction {args.test_fraction} --model {kind}"
           + (f" --bound {args.bound}" if constrained else ""))
    label = (f"constrained x[1/{model.bound:g},{model.bound:g}] SHIPPED" if constrained
             else "unconstrained regressor SHIPPED")
    loader = ("flarewatch.estimate.constrained.load_volume_model" if constrained
              else "flarewatch.estimate.regressor.VolumeRegressor.load")
    lines = [
        "# Flared-volume model `flare-volume.skops`",
        "",
        "Estimates each detected flare's flared gas volume (thousand m3/day) with a 90 % prediction",
        "interval, from the features `flare_process` stores for it (`flare_detections.features`).",
        "Used by `flare_process` when the registry holds no `regressor` champion",
        "(`estimate.deployed.production_regressor`; version `regressor-shipped-<sha256[:8]>`).",
        f"Kind: **{kind}**. Load it with `{loader}` (skops with an explicit trusted-type",
        "list, never `trusted=True`); `predict_flares(list_of_feature_dicts) -> [(volume, lo, hi)]`.",
        "",
        f"Trained {date.today().isoformat()} with `{cmd}` ({timing['fit_seconds']:.0f} s fit; the dataset",
        "build is cached under `.state/regressor/`).",
        "",
        "## Data",
        "",
        f"- {args.sites} synthetic sites (`regressor_data.regressor_sites`, ids `reg-s{args.seed}-NNN`, positions and",
        "  land covers as the detector's synthetic sites, disjoint from them) x "
        f"{args.days} consecutive days each",
        "  from a per-site start date in 2023-2024: "
        f"{timing['site_days']} site-days, {exp['split']['n_train_units'] + exp['split']['n_test_units']} units.",
        "- Each site-day is simulated (`simulator.simulate_scene`) and processed exactly as `flare_process`",
        f"  does (`estimate.site_day.estimate_site_day`: detector `{det_version}`, features, VIIRS matching and",
        "  radiant-heat sharing, VIIRS-only detections).",
        "- Unit = one site x day (a daily meter). Target = the simulator's true site flow",
        "  (`simulator.site_day_flows`) x lognormal(0, 0.05) meter noise.",
        f"- Held out: {len(exp['split']['test_sites'])} of {args.sites} sites (deterministic SHA-256 rank of the site id,",
        f"  seed {args.seed}; {exp['split']['n_test_units']} units), never seen in training, CV or interval calibration.",
        f"- Data snapshot (sha256 of the sorted units' targets and inputs): `{snapshot}`.",
        f"- Dataset build: {_f(timing.get('seconds_per_site_day_when_built'), 3)} s per site-day on this 2-core machine "
        f"({_f(timing.get('seconds_when_built'), 0)} s in all).",
        "",
        *(_constrained_section(model, cv) if constrained else _unconstrained_section(model, cv)),
        "## Held-out sites: constrained vs unconstrained vs the published calibrations",
        "",
        "Same held-out units for every row; per unit (site-day) volume in thousand m3/day; both learned",
        "kinds fitted on the same training sites; the calibrations are `estimate_volume` per flare (VIIRS RH,",
        "else S2 FRP) summed per site-day. `ratio`: median over units of predicted / TRUE (noise-free) volume.",
        "",
        "```",
        table_text(t, learned_label=label),
        "```",
        "",
        "These are our own simulator's sites: a model free to learn this simulator's quirks scores best here.",
        "The ratio that matters for the issue-10 failure, predicted volume / linear calibration of the TRUE",
        "radiant heat on scenes from an independent generator, is measured by `make evaluate`'s independent",
        "section, not here; for the constrained model the bound caps it at B by construction.",
        "",
        "Other split seeds (same recipe, model refitted on each split's training sites):",
        "",
        f"| split seed | test units | {kind} MAE | other kind MAE | linear MAE | power MAE | "
        f"{kind} R2 | 90 % coverage | {kind} ratio | other ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *[f"| {r['seed']} | {r['n_test_units']} | {r['learned_mae']:.1f} | {_f(_other(r, 'mae'))} | "
          f"{r['calibration_linear_mae']:.1f} | {r['calibration_power_mae']:.1f} | {r['learned_r2']:.3f} | "
          f"{r['learned_coverage']:.3f} | {r['learned_median_ratio']:.3f} | {_f(_other(r, 'median_ratio'), 3)} |"
          for r in exp["repeats"]],
        "",
        "## Prediction interval",
        "",
        "Cross-conformal on multiplicative residuals: every training unit gets an out-of-fold prediction",
        "from a model fitted on the other folds' sites; the finite-sample quantiles of",
        f"`log(y / yhat)` give the 90 % interval `[v x {math.exp(model.q_lo):.3f}, v x {math.exp(model.q_hi):.3f}]` per flare",
        f"(log-ratio quantiles {model.q_lo:.3f} / {model.q_hi:.3f}; the per-flare intervals of a site-day add up to",
        f"its interval). Empirical coverage on the held-out units with a detection: {_f(t['learned']['coverage'], 3)}",
        f"(all held-out units: {_f(t['learned']['coverage_all'], 3)}; units with no detection get no interval).",
        "",
    ]
    if cross:
        lines += ["## Detector mismatch", "",
                  f"The same file scored on held-out units processed with `{cross['detector_version']}` instead:",
                  "", "```", table_text(cross["table"], learned_label=label), "```", "",
                  "The Sentinel-2 terms depend on how the detector draws its boxes and counts hot pixels: retrain",
                  "(the `regressor_retrain` DAG uses the production detections) when the detector changes.", ""]
    lines += [
        "## Limitations",
        "",
        *(["- Bounded: where the calibration is far off (most flares of a site missed, a clipped FRP far below",
           f"  the true radiant heat) the model cannot follow beyond a factor {model.bound:g}; that is the price of not",
           "  learning a generator's scale, and it shows as MAE lost to the unconstrained model on our simulator.",
           "- The correction's direction within the bound is still learned from synthetic meters: the",
           "  independent-scene check in `make evaluate` is the test that it transfers."] if constrained else []),
        "- Synthetic calibration only: the simulator's flow -> radiant heat relation is a stated simulator",
        "  assumption (`simulation/`), not a measurement; real metered or state-reported volumes enter",
        "  through `calibration_measurements` and the `regressor_retrain` DAG.",
        "- A site-day whose flares were all missed (small flares, cloud by day and night) predicts 0; wildfire",
        "  false positives add volume. Per-stack efficiency scatter (~25 %) is not observable.",
        "- YOLO boxes: when `features` finds no flame core in a box (a dim flare under cloud) it sums the",
        "  whole ~15 px box, cloud included: ~2 % of the YOLO detections of simulated flares, all",
        "  cloud-flagged, with an FRP ~7x the true radiant heat. The cloud-flagged terms absorb part of it.",
        "- The interval is calibrated on synthetic sites; its coverage on real sites must be re-measured",
        "  (the retrain DAG reports it on the held-out real sites).",
        "",
        "## Library versions",
        "",
        *[f"- {k} {v}" for k, v in libs.items()],
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sites", type=int, default=48)
    p.add_argument("--days", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--detector", default="yolo", choices=["yolo", "threshold"])
    p.add_argument("--test-fraction", type=float, default=0.25)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cross-detector", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--model", dest="kind", default="constrained", choices=["constrained", "unconstrained"],
                   help="which model to ship (default constrained: calibration x bounded correction)")
    p.add_argument("--bound", type=float, default=None, help="constrained model's bound B (default DEFAULT_BOUND)")
    p.add_argument("--cache", type=Path, default=REPO / ".state" / "regressor")
    p.add_argument("--out", type=Path, default=REPO / "models" / "regressor")
    args = p.parse_args(argv)

    from flarewatch.detect.yolo import offline_environment

    offline_environment(args.cache.parent)
    from evaluate_regressor import build_units

    from flarewatch.estimate.constrained import DEFAULT_BOUND, MODEL_KINDS
    from flarewatch.evaluation.regressor import compare, heldout_experiment, table_text
    from flarewatch.training.regressor import library_versions
    from flarewatch.training.regressor_data import data_snapshot

    args.period_days = 1
    recipe, det_version, units, timing = build_units(args)
    args.bound = DEFAULT_BOUND if args.bound is None else args.bound
    exp = heldout_experiment(units, test_fraction=args.test_fraction, seed=args.seed,
                             repeat_seeds=[args.seed + k for k in range(1, args.repeats + 1)], kind=args.kind,
                             other_kinds=[k for k in MODEL_KINDS if k != args.kind], bound=args.bound)
    timing["fit_seconds"] = exp["seconds"]["fit"]
    model = exp["model"]
    snapshot = data_snapshot(units)
    cross = None
    if args.cross_detector:
        other = argparse.Namespace(**{**vars(args), "detector": "threshold" if args.detector == "yolo" else "yolo"})
        _, other_version, other_units, _ = build_units(other)
        test = other_units[other_units["site_id"].isin(exp["split"]["test_sites"])]
        cross = {"detector_version": other_version,
                 "table": compare({"learned": model, **exp["others"]}, test)}
    libs = library_versions()
    model.version = "regressor-shipped"
    model.params.update(recipe={**recipe.__dict__, "test_fraction": args.test_fraction}, detector_version=det_version,
                        data_snapshot=snapshot, test_sites=exp["split"]["test_sites"], library_versions=libs)
    model.metrics = {"heldout": exp["table"], "cv_mae": exp["cv"]["best_cv_mae"], "repeats": exp["repeats"]}
    args.out.mkdir(parents=True, exist_ok=True)
    path = model.save(args.out / "flare-volume.skops")
    card = model_card(model, exp, args, det_version, timing, snapshot, libs, cross)
    (args.out / "MODEL_CARD.md").write_text(card)
    print(table_text(exp["table"], learned_label=f"{args.kind} SHIPPED"))
    if cross:
        print(f"\nscored on {cross['detector_version']} units:\n" + table_text(cross["table"], learned_label=args.kind))
    print(f"\nwrote {path} ({path.stat().st_size} bytes) and {args.out / 'MODEL_CARD.md'}")
    return 0


if __name__ == "__main__":
    t0 = time.perf_counter()
    rc = main()
    print(f"{time.perf_counter() - t0:.1f} s")
    sys.exit(rc)
