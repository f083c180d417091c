#!/usr/bin/env python
"""Score the physics baseline (threshold detector + published calibrations) on simulated site-days.

    python benchmarks/evaluate_baseline.py --days 30 --start 2025-06-01 \
        --out benchmarks/results/baseline.json

Runs ``flarewatch.evaluation.evaluate`` over the demo sites (or ``--sites-file`` / ``--site``)
for ``--days`` consecutive days from ``--start``, prints detection and volume tables and writes
the full result (with every site-day unless ``--no-site-days``) as JSON. No database, no S3.
Volumes are thousand m3/day (kscm/d).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from flarewatch.evaluation.baseline import CALIBRATION_METHODS, FP_CAUSES, evaluate
from flarewatch.sites import load_sites
from flarewatch.values import json_value


def _f(x, digits: int = 3) -> str:
    return "nan" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def report(result: dict) -> str:
    det = result["detection"]
    out = [f"site-days: {result['n_site_days']}  (match radius {result['config']['max_dist_px']} px)", "",
           "Sentinel-2 detection vs lit in-scene flares (clear = not under the cloud mask)"]
    rows = []
    for name, d in [*det["per_site"].items(), ("ALL", det)]:
        a, c = d["all"], d["clear_sky"]
        rows.append([name, str(a["tp"]), str(a["fp"]), str(a["fn"]), _f(a["precision"]), _f(a["recall"]),
                     _f(a["f1"]), str(c["tp"]), str(c["fn"]), _f(c["recall"]), _f(c["f1"]),
                     *(str(d["fp_causes"][k]) for k in FP_CAUSES)])
    out.append(_table(["site", "TP", "FP", "FN", "prec", "recall", "F1", "clrTP", "clrFN", "clrRec", "clrF1",
                       *(f"FP:{k}" for k in FP_CAUSES)], rows))
    out.append(f"missed flares under cloud: {det['fn_cloud_covered']} of {det['all']['fn']}")
    bins = det["recall_by_flow_kscm_d"]
    out += ["", "Recall by true flare flow (thousand m3/day)",
            _table(["flow", "TP", "FN", "recall"],
                   [[k, str(b["tp"]), str(b["fn"]), _f(b["recall"])] for k, b in bins.items()])]
    for method in CALIBRATION_METHODS:
        v = result["volume"][method]
        out += ["", f"Site-day total volume, calibration '{method}' (thousand m3/day; pred incl. VIIRS-only)"]
        rows = []
        for name, m in [*v["per_site"].items(), ("ALL", v)]:
            rows.append([name, str(m["n"]), _f(m["true_mean"], 1), _f(m["pred_mean"], 1), _f(m["mae"], 1),
                         _f(m["rmse"], 1), _f(m["r2"]), _f(m["bias"], 1), _f(m["median_ratio"]),
                         _f(m["total_ratio"]), _f(m["pred_share_by_rh_source"].get("viirs", 0.0), 2),
                         _f(m["pred_share_viirs_only"], 2)])
        out.append(_table(["site", "n", "true", "pred", "MAE", "RMSE", "R2", "bias", "med p/t", "sum p/t",
                           "RH:viirs", "viirsOnly"], rows))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=int, default=30, help="number of consecutive days (default 30)")
    ap.add_argument("--start", type=date.fromisoformat, default=date(2025, 6, 1), help="first day, YYYY-MM-DD")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/baseline.json"), help="JSON output path")
    ap.add_argument("--sites-file", default=None, help="sites CSV (default: the packaged demo sites)")
    ap.add_argument("--site", action="append", default=None, help="only this site id (repeatable)")
    ap.add_argument("--key", default=None,
                    help="write the results under this key of the JSON at --out (other keys kept)")
    ap.add_argument("--no-site-days", action="store_true", help="leave per site-day records out of the JSON")
    args = ap.parse_args(argv)
    if args.days < 1:
        ap.error("--days must be >= 1")

    sites = load_sites(args.sites_file)
    if args.site:
        unknown = set(args.site) - {s.site_id for s in sites}
        if unknown:
            ap.error(f"unknown site id(s): {', '.join(sorted(unknown))}")
        sites = [s for s in sites if s.site_id in args.site]
    days = [args.start + timedelta(days=i) for i in range(args.days)]

    t0 = time.perf_counter()
    result = evaluate(sites, days, include_site_days=not args.no_site_days)
    elapsed = time.perf_counter() - t0
    result["runtime_s"] = round(elapsed, 2)

    print(report(result))
    print(f"\n{len(sites)} sites x {len(days)} days from {days[0]} in {elapsed:.1f} s")
    from _results import merge_into

    merge_into(args.out, args.key, json_value(result))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
