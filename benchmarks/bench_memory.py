"""Peak memory of the per-tile processing step, for a normal tile and as tiles grow.

    python benchmarks/bench_memory.py --out benchmarks/results/bench_memory.json     (make bench-memory)

Each measurement runs in a fresh Python process (so the peak is its own): validate and decode the
tile (``validate.tile``), detect with the deployed detector (YOLO on OpenVINO with the physics
check, as ``flare_process`` runs it; ``--detector threshold`` for the baseline), features, volume
and CO2 (``estimate.site_day``), and render the annotated PNG and GeoJSON (``process.render``): the
work of ``process.site_day.process_site_day`` without the S3 and database round trips (bytes in
and out, a few hundred kB). Reported per tile size, ``--repeats`` runs each (min / median / max):

- ``rss_models_mb``: the process's peak RSS (VmHWM) after imports and loading the models;
- ``rss_peak_mb``: its peak RSS after processing the tile (the task's peak);
- ``traced_peak_mb``: the peak of Python and NumPy allocations while processing the tile
  (tracemalloc; the models' native buffers are not in it), and that per tile pixel.

Tiles: the demo tile of rumaila-n (250 x 250 px, a 5 km AOI) and the same scene tiled to larger
sides (a site with a larger AOI). ``TileLimits.max_pixels`` (4096 x 4096) bounds what a task can
be asked to decode; the bytes-per-pixel figure gives the peak at that bound.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, resource, sys, tracemalloc
from datetime import date
import numpy as np
from affine import Affine

def hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

side, detector_kind = int(sys.argv[1]), sys.argv[2]
from dataclasses import replace
from flarewatch.config import Settings, TileLimits
from flarewatch.detect.deployed import configured_detector
from flarewatch.estimate.site_day import estimate_site_day
from flarewatch.ingest.sources import get_source
from flarewatch.process.render import annotated_png, detections_geojson
from flarewatch.sites import load_sites
from flarewatch.tiles import decode_tile, encode_tile
from flarewatch.validate.tile import validate_tile

cfg = replace(Settings.from_env(), detector_kind=detector_kind)
site = next(s for s in load_sites() if s.site_id == "rumaila-n")
day = date(2025, 7, 2)
orig_site, orig = site, get_source("demo").fetch(site, day).tile_geotiff
base = decode_tile(orig)
if side != base.shape[0]:
    reps = -(-side // base.shape[0])
    dn = np.tile(base.dn, (1, reps, reps))[:, :side, :side].copy()
    half = (side - base.shape[0]) / 2 * 20.0
    t = base.transform
    base = replace(base, dn=dn, transform=Affine(20, 0, t.c - half, 0, -20, t.f + half), cloud_mask=None)
    site = replace(site, aoi_km=min(50.0, side * 20 / 1000.0))
data = encode_tile(base)
detector, version = configured_detector(cfg) if detector_kind == "yolo" else (None, "threshold")
warm = validate_tile(orig, orig_site).tile
estimate_site_day(orig_site, day, warm, None, cfg, detector=detector, detector_version=version)  # warm-up
models = hwm_mb()
tracemalloc.start()
tile = validate_tile(data, site, TileLimits(max_pixels=side * side)).tile
est = estimate_site_day(site, day, tile, None, cfg, detector=detector, detector_version=version)
png = annotated_png(tile, est.detections, title="bench")
gj = detections_geojson(tile, est.detections, [p for p in est.properties if p["sensor"] == "sentinel2"])
traced = tracemalloc.get_traced_memory()[1] / 2**20
tracemalloc.stop()
print(json.dumps({"side": side, "pixels": side * side, "flares": len(est.detections), "rss_models_mb": models,
                  "rss_peak_mb": hwm_mb(), "traced_peak_mb": traced}))
"""


def run_child(side: int, detector: str) -> dict:
    res = subprocess.run([sys.executable, "-c", _CHILD, str(side), detector], capture_output=True, text=True,
                         cwd=REPO, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"side {side}: {res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> dict:
    return {"min": round(min(values), 1), "median": round(statistics.median(values), 1), "max": round(max(values), 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sides", type=int, nargs="+", default=[250, 1000, 2000])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--detector", choices=("yolo", "threshold"), default="yolo")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_memory.json")
    args = p.parse_args(argv)

    rows = []
    for side in args.sides:
        runs = [run_child(side, args.detector) for _ in range(args.repeats)]
        row = {"side_px": side, "pixels": side * side, "flares": runs[0]["flares"], "runs": len(runs)}
        for k in ("rss_models_mb", "rss_peak_mb", "traced_peak_mb"):
            row[k] = spread([r[k] for r in runs])
        row["task_increase_mb"] = spread([r["rss_peak_mb"] - r["rss_models_mb"] for r in runs])
        row["traced_bytes_per_pixel"] = round(statistics.median(r["traced_peak_mb"] for r in runs) * 2**20
                                              / (side * side), 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    from flarewatch.config import TileLimits

    largest = rows[-1]
    budget = TileLimits().max_pixels
    report = {
        "command": "python benchmarks/bench_memory.py" + ("" if argv is None else " " + " ".join(argv)),
        "detector": args.detector,
        "sizes": rows,
        "normal_tile_peak_rss_mb": rows[0]["rss_peak_mb"],
        "max_tile_pixels": budget,
        "traced_mb_at_max_tile_pixels": round(largest["traced_bytes_per_pixel"] * budget / 2**20, 0),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    hdr = f"{'side px':>8s} {'flares':>6s} {'RSS models MB':>14s} {'RSS peak MB (min/med/max)':>26s} " \
          f"{'+task MB':>9s} {'traced MB':>10s} {'B/px':>6s}"
    print(hdr)
    for r in rows:
        pk = r["rss_peak_mb"]
        print(f"{r['side_px']:8d} {r['flares']:6d} {r['rss_models_mb']['median']:14.0f} "
              f"{pk['min']:8.0f} {pk['median']:8.0f} {pk['max']:8.0f} {r['task_increase_mb']['median']:9.0f} "
              f"{r['traced_peak_mb']['median']:10.1f} {r['traced_bytes_per_pixel']:6.0f}")
    print(f"at the pixel budget ({budget:,} px): ~{report['traced_mb_at_max_tile_pixels']:.0f} MB of traced "
          f"allocations on top of the models; written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
