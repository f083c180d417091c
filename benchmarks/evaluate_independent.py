#!/usr/bin/env python
"""Deployed YOLO vs threshold detector, features and volume models on the independent scenes.

    python benchmarks/evaluate_independent.py --scenes 200 --out benchmarks/results/evaluation.json

The scenes come from ``flarewatch.evaluation.independent`` (a generator written without the
training simulator, never used for training or model selection). Each scene goes through the
GeoTIFF round trip and the deployed detectors, features and volume models
(``flarewatch.evaluation.independent.harness.evaluate``). Prints tables and merges the result under
``--key`` into the JSON at ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from flarewatch.evaluation.independent.harness import DEFAULT_SCENES, DEFAULT_SEED, evaluate


def _f(x, fmt="{:.3f}") -> str:
    return "-" if x is None else fmt.format(x)


def _ferr(e) -> str | None:
    """'n_T of n / T bias / FRP ratio p50 / log R2' of a harness ``_feature_errors`` block."""
    if not e:
        return None
    q = e["swir_frp_over_true_rh"]
    return (f"{e['n_temperature']} of {e['n']} / {_f(e['temperature_bias_median_k'], '{:+.0f}')} / "
            f"{_f(q.get('p50'), '{:.2f}')} / {_f(e['swir_frp_log_r2'], '{:.2f}')}")


def print_tables(res: dict) -> None:
    from flarewatch.detect.variants import VARIANTS

    dets = [d for d in dict.fromkeys(("yolo-physics", "yolo", "yolo-physics-split", "threshold", *VARIANTS)) if d in res]
    print(f"\nIndependent scenes: {res['scenes']} x {res['size_px']} px, seed {res['seed']}; census {res['census']}")
    print(f"{'':34s}" + "".join(f"{d[:21]:>22s}" for d in dets))

    def row(label, fn, fmt="{:.3f}"):
        print(f"{label:34s}" + "".join(f"{_f(fn(res[d]), fmt):>22s}" for d in dets))

    row("precision", lambda r: r["overall"]["precision"])
    row("recall", lambda r: r["overall"]["recall"])
    row("F1", lambda r: r["overall"]["f1"])
    row("TP / FP / FN", lambda r: "{tp} / {fp} / {fn}".format(**r["overall"]), "{}")
    for cause in ("wildfire", "glint", "roof", "flare_duplicate", "elsewhere"):
        row(f"  FP on {cause}", lambda r, c=cause: r["false_positives_by_cause"][c], "{}")
    row("recall, stack with neighbour <=4px", lambda r: r["recall_with_neighbour_4px"]["recall"])
    row("recall, isolated", lambda r: r["recall_isolated"]["recall"])
    row("recall, B12 saturated", lambda r: r["recall_saturated_b12"]["recall"])
    edges = res[dets[0]]["recall_by_rh_quartile"]["edges_mw"]
    for q in ("Q1", "Q2", "Q3", "Q4"):
        row(f"recall RH {q}", lambda r, q=q: r["recall_by_rh_quartile"].get(q, {}).get("recall"))
    print(f"  (RH quartile edges, MW: {', '.join(f'{e:.2f}' for e in edges)})")
    for sc in ("Sentinel-2A", "Sentinel-2B"):
        row(f"{sc} F1", lambda r, sc=sc: r["per_spacecraft"].get(sc, {}).get("f1"))
        row(f"{sc} T bias (K)", lambda r, sc=sc: r["per_spacecraft"].get(sc, {}).get("temperature_bias_k"), "{:+.0f}")
    row("matched / with temperature", lambda r: f"{r['features']['n_matched']} / {r['features']['n_temperature']}", "{}")
    row("T abs error median (K)", lambda r: r["features"]["temperature_abs_error_median_k"], "{:.0f}")
    row("T bias median (K)", lambda r: r["features"]["temperature_bias_median_k"], "{:+.0f}")
    row("SWIR FRP / true RH median", lambda r: r["features"]["swir_frp_over_true_rh"].get("p50"), "{:.2f}")
    row("SWIR FRP / true RH p10-p90", lambda r: "{:.2f}-{:.2f}".format(r["features"]["swir_frp_over_true_rh"]["p10"],
                                                                     r["features"]["swir_frp_over_true_rh"]["p90"])
        if r["features"]["swir_frp_over_true_rh"]["n"] else None, "{}")
    row("SWIR FRP log R2", lambda r: r["features"]["swir_frp_log_r2"], "{:.2f}")
    v = "volume_per_matched_flare"
    row("flare vol regressor/true median", lambda r: r[v]["regressor_ratio"].get("p50"), "{:.2f}")
    row("flare vol regressor 90% coverage", lambda r: r[v]["regressor_90_coverage"], "{:.2f}")
    row("flare vol linear/true median", lambda r: r[v]["linear_ratio"].get("p50"), "{:.2f}")
    s = "volume_per_scene"
    row("scene vol regressor/true median", lambda r: r[s]["regressor_ratio"].get("p50"), "{:.2f}")
    row("scene vol linear/true median", lambda r: r[s]["linear_ratio"].get("p50"), "{:.2f}")
    for k in ("none", "b12", "b12+b11"):
        row(f"  clip {k}: nT/n,bias,FRP,R2", lambda r, k=k: _ferr(r["features_by_saturation"].get(k)), "{}")
    row("detector seconds", lambda r: r["seconds"], "{:.1f}")
    ref = res.get("feature_reference")
    if ref:
        print(f"\nFeature reference ({ref['n_visible_flares']} visible flares, no detector): n / T bias (K) / FRP/RH p50 / log R2")
        for name in ("ideal_toa", "ideal_surface", "features_at_true_position"):
            print(f"  {name:32s} {_ferr(ref[name])}")
        for group in ("by_saturation", "by_spacecraft"):
            for k, v in ref[f"features_at_true_position_{group}"].items():
                print(f"  at true position, {k:16s} {_ferr(v)}")
    print(f"setup {res['setup']}; wall {res['wall_seconds']:.0f} s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=DEFAULT_SCENES)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--size", type=int, default=512, help="scene side in pixels")
    ap.add_argument("--detectors", default="yolo-physics,yolo,yolo-physics-split,threshold",
                    help="yolo-physics is what processing deploys (FLAREWATCH_PHYSICS_CHECK=on)")
    ap.add_argument("--runtime", default="auto", help="YOLO runtime: auto, openvino, onnx, torch")
    ap.add_argument("--weights", type=Path, default=None, help="YOLO weights (default: the shipped ones)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/evaluation.json"))
    ap.add_argument("--key", default="independent")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _results import merge_into

    t0 = time.perf_counter()

    def progress(i, n):
        if i % 20 == 0 or i == n:
            print(f"  {i}/{n} scenes, {time.perf_counter() - t0:.0f} s", flush=True)

    res = evaluate(n_scenes=args.scenes, seed=args.seed, size=args.size,
                   detectors=tuple(d.strip() for d in args.detectors.split(",") if d.strip()),
                   yolo_runtime=args.runtime, yolo_weights=args.weights, progress=progress)
    merge_into(args.out, args.key, res)
    print_tables(res)
    print(f"written under '{args.key}' in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
