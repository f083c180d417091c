"""Detector inference benchmark: model throughput per runtime, and the per-tile task end to end.

    python benchmarks/bench_inference.py --out benchmarks/results/bench.json     (make bench)

1. Model throughput: chips/s of the production detector on 160 px chips (the representation of
   simulated demo tiles), for PyTorch eager, ONNX Runtime and OpenVINO, batch 16 as in
   production, after a warm-up; the median of ``--repeats`` timed passes over ``--chips`` chips.
2. End to end: tiles/s of ``process.site_day.process_site_day`` -- the per-tile task of ``flare_process``
   (read the tile and VIIRS file from S3, validate and decode the tile, detect with the deployed
   runtime, features, volume and CO2, write the annotated PNG / GeoJSON points and footprints /
   result JSON to S3 and the rows to Postgres) -- over ``--tiles`` demo site-days ingested beforehand (not timed), model loaded once.
   It runs against a real S3 API server (rclone) and a real PostgreSQL (pgserver, or
   ``FLAREWATCH_TEST_DB_URL``) started in a temp dir, like the tests. Per-stage wall times (S3 reads,
   decode, detection, estimate, render, S3 writes, DB) come from a second, instrumented pass. The
   process's VIIRS night cache is emptied before each pass, so each night file is parsed once per
   pass, as in a backfill run by one process (the PNG is rendered in a background thread and the DB
   write's commit waits for it: those stages overlap the others).
Targets (issue 14): deployed runtime >= 3x PyTorch eager chips/s, the median of >= 5 alternating
rounds (``deployed_vs_torch_median`` / ``_min`` / ``_max``); end-to-end >= 50 % of the pure model
throughput in tiles/s (``end_to_end_share_of_model``; model tiles/s = deployed chips/s / chips per
tile), the median of ``--e2e-runs`` passes with its spread.
Nothing else should run on the machine while it measures: it has 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]


def demo_chips(n: int, chip_px: int) -> tuple[list, float]:
    """``n`` detector chips cut from simulated demo tiles, and the chips per tile."""
    import numpy as np

    from flarewatch.detect.representation import chip_windows, detector_image
    from flarewatch.simulation.scene import simulate_scene
    from flarewatch.sites import load_sites

    chips, per_tile = [], []
    day = date(2025, 6, 1)
    sites = load_sites()
    while len(chips) < n:
        for site in sites:
            img = detector_image(simulate_scene(site, day).tile)
            wins = chip_windows(img.shape[0], img.shape[1], chip_px, 32)
            per_tile.append(len(wins))
            for r, c in wins:
                chip = img[r:r + chip_px, c:c + chip_px]
                if chip.shape[:2] != (chip_px, chip_px):
                    chip = np.pad(chip, ((0, chip_px - chip.shape[0]), (0, chip_px - chip.shape[1]), (0, 0)))
                chips.append(chip)
        day += timedelta(days=1)
    return chips[:n], statistics.mean(per_tile)


def _spread(values: list[float], digits: int = 2) -> dict:
    return {"min": round(min(values), digits), "median": round(statistics.median(values), digits),
            "max": round(max(values), digits), "runs": [round(v, digits) for v in values]}


def bench_runtimes(weights: Path, runtimes: tuple[str, ...], chips: list, repeats: int) -> dict:
    """chips/s per runtime, measured in ``repeats`` alternating rounds (each round times one pass of
    every runtime, in a rotated order), so a slow spell of the machine hits all runtimes alike; the
    per-round speedups over PyTorch eager carry the spread."""
    from flarewatch.detect.yolo import YoloFlareDetector

    dets = {rt: YoloFlareDetector(weights, runtime=rt) for rt in runtimes}
    for det in dets.values():
        det.predict_chips(chips[:det.batch])  # warm-up (graph compilation, allocations)
    times: dict[str, list[float]] = {rt: [] for rt in runtimes}
    for r in range(repeats):
        order = list(runtimes[r % len(runtimes):]) + list(runtimes[:r % len(runtimes)])
        for rt in order:
            t = time.perf_counter()
            dets[rt].predict_chips(chips)
            times[rt].append(time.perf_counter() - t)
    out = {}
    for rt, det in dets.items():
        med = statistics.median(times[rt])
        out[rt] = {"runtime": det.runtime, "model": str(det.model_path.name), "chips": len(chips), "batch": det.batch,
                   "seconds_median": round(med, 4), "chips_per_s": round(len(chips) / med, 1),
                   "chips_per_s_spread": _spread([len(chips) / t for t in times[rt]], 1),
                   "ms_per_chip": round(1000 * med / len(chips), 3)}
    out["_rounds"] = times
    return out


@contextmanager
def _servers():
    """A throwaway S3 server (with the rawdata and processed buckets) and a migrated, seeded results DB
    (on ``FLAREWATCH_TEST_DB_URL``'s server when set, else a private pgserver), as the tests use."""
    from flarewatch.dev import servers
    from flarewatch.store import db
    from flarewatch.store.objects import ensure_buckets
    from flarewatch.store.seed import migrate_and_seed

    with ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="flarewatch-bench-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        s3_srv = stack.enter_context(servers.scratch_s3(tmp / "s3", key="bench", secret="bench-secret"))
        s3 = s3_srv.client()
        ensure_buckets(s3, ["rawdata", "processed"])
        server_dsn = stack.enter_context(servers.scratch_postgres(os.environ.get("FLAREWATCH_TEST_DB_URL"), tmp / "pg"))
        conn = db.connect(stack.enter_context(servers.temporary_database(server_dsn, "fw_bench")))
        stack.callback(conn.close)
        migrate_and_seed(conn, site_map=False)
        yield SimpleNamespace(s3=s3, conn=conn)


# process_site_day's callees, timed in place (module attributes wrapped for one pass)
_STAGES = {
    "db_read_scenes": ("flarewatch.store.db", "fetch_scenes"),
    "s3_read (tile, night, previous nights; concurrent)": ("flarewatch.store.objects", "get_bytes"),
    "validate + decode tile": ("flarewatch.validate.tile", "validate_tile"),
    "viirs_parse (each night once per pass)": ("flarewatch.ingest.viirs", "parse_vnf_csv"),
    "estimate (detect + features + volume + CO2)": ("flarewatch.process.site_day", "estimate_site_day"),
    "  of which detect": (None, "detect"),
    "render_png (background thread)": ("flarewatch.process.render", "annotated_png"),
    "s3_write (4 objects, concurrent)": ("flarewatch.store.objects", "put_bytes"),
    "db_write (commit waits for the objects)": ("flarewatch.store.db", "replace_site_day_results"),
}


class _StageTimer:
    """Wraps the stage functions so each call adds its wall time to ``totals`` (thread-safe enough:
    one writer per stage at a time except the concurrent S3 calls, whose times are summed)."""

    def __init__(self, detector):
        import importlib

        self.totals = {k: 0.0 for k in _STAGES}
        self._undo = []
        for stage, (mod, fn) in _STAGES.items():
            target = importlib.import_module(mod) if mod else detector
            orig = getattr(target, fn)
            setattr(target, fn, self._wrap(stage, orig))
            self._undo.append((target, fn, orig, mod is None))

    def _wrap(self, stage, fn):
        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.totals[stage] += time.perf_counter() - t
        return timed

    def restore(self):
        for target, fn, orig, is_instance in self._undo:
            if is_instance:
                delattr(target, fn)
            else:
                setattr(target, fn, orig)


def bench_end_to_end(detector, version: str, n_tiles: int, runs: int = 5) -> dict:
    """tiles/s of ``process_site_day`` with the deployed configuration: ``detector`` (checked by
    physics when ``FLAREWATCH_PHYSICS_CHECK`` is on, as processing does) and the configured volume
    model (``estimate.deployed.configured_regressor``)."""
    from flarewatch.config import Settings
    from flarewatch.estimate.deployed import configured_regressor
    from flarewatch.ingest.site_day import ingest_site_day
    from flarewatch.ingest.sources import get_source
    from flarewatch.ingest.viirs import NIGHTS
    from flarewatch.process.site_day import process_site_day
    from flarewatch.sites import load_sites

    settings = Settings.from_env()
    if settings.physics_check:
        from flarewatch.detect.verified import PHYSICS_CHECK_VERSION, PhysicsCheckedDetector

        detector, version = PhysicsCheckedDetector(detector), f"{version}+{PHYSICS_CHECK_VERSION}"
    regressor, regressor_version = configured_regressor(settings)
    models = {"detector": detector, "detector_version": version, "regressor": regressor,
              "regressor_version": regressor_version}
    sites = load_sites()
    days = [date(2025, 6, 1) + timedelta(days=i) for i in range(-(-n_tiles // len(sites)))]
    site_days = [(s, d) for d in days for s in sites][:n_tiles]
    with _servers() as srv:
        src = get_source("demo")
        for site, day in site_days:
            ingest_site_day(site, day, src, srv.s3, srv.conn, settings)
        process_site_day(*site_days[0], srv.s3, srv.conn, settings, **models)
        passes = []
        for _ in range(runs):
            NIGHTS.clear()  # each pass parses every night once, as a backfill in one process does
            t = time.perf_counter()
            for site, day in site_days:
                process_site_day(site, day, srv.s3, srv.conn, settings, **models)
            passes.append(time.perf_counter() - t)
        elapsed = statistics.median(passes)
        timer = _StageTimer(detector)
        NIGHTS.clear()
        try:
            t = time.perf_counter()
            for site, day in site_days:
                process_site_day(site, day, srv.s3, srv.conn, settings, **models)
            timed_elapsed = time.perf_counter() - t
        finally:
            timer.restore()
    n = len(site_days)
    return {"tiles": n, "seconds": round(elapsed, 3), "tiles_per_s": round(n / elapsed, 2),
            "tiles_per_s_spread": _spread([n / p for p in passes]),
            "ms_per_tile": round(1000 * elapsed / n, 1), "timed_pass_ms_per_tile": round(1000 * timed_elapsed / n, 1),
            "stage_ms_per_tile": {k: round(1000 * v / n, 2) for k, v in timer.totals.items()},
            "viirs_nights_parsed_per_tile": round(NIGHTS.misses / n, 2),
            "viirs_nights_reused_per_tile": round(NIGHTS.hits / n, 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, default=REPO / "models" / "detector" / "flare-yolo11n.pt")
    p.add_argument("--chips", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--tiles", type=int, default=24)
    p.add_argument("--e2e-runs", type=int, default=5, help="timed end-to-end passes over the tiles")
    p.add_argument("--state", type=Path, default=REPO / ".state")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench.json")
    args = p.parse_args(argv)

    os.environ.setdefault("FLAREWATCH_STATE_DIR", str(args.state))
    from flarewatch.detect.yolo import offline_environment

    offline_environment(args.state)
    import torch

    from flarewatch.detect import deployed as detectors
    from flarewatch.detect.yolo import YoloFlareDetector

    sha = detectors.weights_sha8(args.weights)
    weights = detectors.deployable_copy(args.weights, args.state / "models" / "detector" / f"bench-{sha}")
    chips, chips_per_tile = demo_chips(args.chips, 160)
    res = {"weights": str(args.weights), "weights_sha8": sha, "chip_px": 160,
           "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                       "torch_threads": torch.get_num_threads(), "python": platform.python_version()},
           "runtimes": {}}
    deployed = YoloFlareDetector(weights)  # what flare_process uses (runtime auto)
    runtimes = ("torch", "onnx", "openvino")
    measured = bench_runtimes(weights, runtimes, chips, args.repeats)
    rounds = measured.pop("_rounds")
    res["runtimes"] = measured
    for rt in runtimes:
        sp = measured[rt]["chips_per_s_spread"]
        print(f"{rt:9s} {sp['median']:8.1f} chips/s (min {sp['min']}, max {sp['max']}; "
              f"{measured[rt]['ms_per_chip']:.2f} ms/chip)")
    base = res["runtimes"]["torch"]["chips_per_s"]
    dep = res["runtimes"][deployed.runtime]["chips_per_s"]
    ratios = [t / d for t, d in zip(rounds["torch"], rounds[deployed.runtime], strict=True)]
    res["deployed_runtime"] = deployed.runtime
    res["rounds"] = args.repeats
    res["speedup_vs_torch"] = round(dep / base, 2)
    res["deployed_vs_torch_median"] = round(statistics.median(ratios), 2)
    res["deployed_vs_torch_min"] = round(min(ratios), 2)
    res["deployed_vs_torch_max"] = round(max(ratios), 2)
    res["chips_per_tile"] = round(chips_per_tile, 2)
    res["model_tiles_per_s"] = round(dep / chips_per_tile, 2)

    e2e = bench_end_to_end(deployed, f"yolo-bench-{sha}", args.tiles, args.e2e_runs)
    res["end_to_end"] = e2e
    res["end_to_end_fraction_of_model"] = round(e2e["tiles_per_s"] / res["model_tiles_per_s"], 3)
    res["end_to_end_share_of_model"] = res["end_to_end_fraction_of_model"]
    res["end_to_end_share_of_model_spread"] = {k: round(e2e["tiles_per_s_spread"][k] / res["model_tiles_per_s"], 3)
                                               for k in ("min", "median", "max")}
    res["targets"] = {"deployed_vs_torch_median >= 3": res["deployed_vs_torch_median"] >= 3.0,
                      "end_to_end_share_of_model >= 0.5": res["end_to_end_share_of_model"] >= 0.5}

    print(f"deployed runtime {deployed.runtime}: {res['deployed_vs_torch_median']}x PyTorch eager (median of "
          f"{args.repeats} alternating rounds; min {res['deployed_vs_torch_min']}, max {res['deployed_vs_torch_max']}); "
          f"{chips_per_tile:.1f} chips/tile -> model {res['model_tiles_per_s']} tiles/s")
    sp = e2e["tiles_per_s_spread"]
    print(f"end to end (process_site_day, {e2e['tiles']} tiles x {args.e2e_runs} runs): {sp['median']} tiles/s "
          f"(min {sp['min']}, max {sp['max']}; {e2e['ms_per_tile']} ms/tile) = "
          f"{100 * res['end_to_end_share_of_model']:.0f} % of model throughput")
    print(f"per-stage ms/tile (a separate timed pass: {e2e['timed_pass_ms_per_tile']} ms/tile; concurrent S3 "
          f"calls are summed; VIIRS nights parsed {e2e['viirs_nights_parsed_per_tile']} / reused "
          f"{e2e['viirs_nights_reused_per_tile']} per tile):")
    for k, v in e2e["stage_ms_per_tile"].items():
        print(f"  {k:52s} {v:8.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
