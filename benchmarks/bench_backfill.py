"""Backfill throughput: site-days/s through the real Airflow scheduler, and the same work in-process.

    python benchmarks/bench_backfill.py [--sites 6] [--days 60] [--repeats N]          (make bench-backfill)
    python benchmarks/bench_backfill.py --only airflow --executor celery --workers 2

1. Through Airflow (``airflow_site_days_per_s``): a fresh local stack (``dev.localstack``: S3
   server, PostgreSQL, scheduler, dag-processor, triggerer, api-server, LocalExecutor with
   ``[core] parallelism`` 4) in a temporary state folder on free ports; the pipeline DAGs
   (flare_ingest, flare_process, emissions_rollup) unpaused, every other DAG paused; then ONE
   flare_ingest run over all the site-days (``acquisition_start`` / ``acquisition_end``,
   ``site_ids``) is triggered, its asset event triggers flare_process, whose event triggers
   emissions_rollup. The clock runs from the trigger until every site-day is ingested, processed
   and rolled up, as the results database shows (``dev.demo.progress_counts``). The detector's
   OpenVINO export is made before (a deployment does it once per model version, not per backfill).
2. In-process (``inprocess_site_days_per_s``): the same work in one Python process on throwaway
   servers (an S3 server and a PostgreSQL database): ``ingest_site_days`` over every site-day,
   ``process_site_days`` with the models loaded once, then what emissions_rollup does (audit,
   ``refresh_rollups``, GIS layers).

``--executor celery --workers N`` runs part 1 under CeleryExecutor (``FLAREWATCH_EXECUTOR=celery``,
``FLAREWATCH_CELERY_WORKERS=N``; the local stack must support it) and writes
``celery_workers_<N>_site_days_per_s``. Each figure is the median of ``--repeats`` runs (default 1
through Airflow, 3 in-process) with min / median / max; the load averages before and after each run
are recorded (the machine may be shared). Results are merged into ``--out`` (other keys kept).
Targets (issue 14): >= 2 site-days/s through Airflow on 2 cores, and >= 40 % of in-process.
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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "include"))

PIPELINE_DAGS = ("flare_ingest", "flare_process", "emissions_rollup")
TARGET_SITE_DAYS_PER_S, TARGET_SHARE = 2.0, 0.40


def _spread(values: list[float], digits: int = 3) -> dict:
    return {"min": round(min(values), digits), "median": round(statistics.median(values), digits),
            "max": round(max(values), digits), "runs": [round(v, digits) for v in values]}


def load_averages() -> dict:
    one, five, fifteen = os.getloadavg()
    return {"1m": round(one, 2), "5m": round(five, 2), "15m": round(fifteen, 2)}


def pick_sites(n: int) -> list[str]:
    from flarewatch.sites import load_sites

    sites = sorted(s.site_id for s in load_sites(os.environ.get("FLAREWATCH_SITES_FILE") or None))
    if n > len(sites):
        raise SystemExit(f"--sites {n}: the sites file has {len(sites)} sites (set FLAREWATCH_SITES_FILE for more)")
    return sites[:n]


def warm_model_cache(state: Path) -> None:
    """The detector's deployable copy and exports in ``state`` (copied from the repo's .state when it
    has them, else exported now): made once per model version, not part of a backfill."""
    from flarewatch.config import Settings
    from flarewatch.detect import deployed

    src = REPO / ".state" / "models" / "detector"
    dst = state / "models" / "detector"
    if src.is_dir() and not dst.exists():
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".*.lock"))
    old = os.environ.get("FLAREWATCH_STATE_DIR")
    os.environ["FLAREWATCH_STATE_DIR"] = str(state)
    try:
        deployed.configured_detector(Settings.from_env())
    finally:
        if old is None:
            os.environ.pop("FLAREWATCH_STATE_DIR", None)
        else:
            os.environ["FLAREWATCH_STATE_DIR"] = old


# ------------------------------------------------------------------------------------------
# 2. in-process
# ------------------------------------------------------------------------------------------
@contextmanager
def _throwaway_servers(pg_server: str):
    from flarewatch.dev import servers
    from flarewatch.store import db
    from flarewatch.store.objects import ensure_buckets
    from flarewatch.store.seed import migrate_and_seed

    with ExitStack() as stack:
        s3_srv = stack.enter_context(servers.scratch_s3(key="bench", secret="bench-secret"))
        s3 = s3_srv.client()
        ensure_buckets(s3, ["rawdata", "processed"])
        conn = db.connect(stack.enter_context(servers.temporary_database(pg_server, "fw_bench_backfill")))
        stack.callback(conn.close)
        migrate_and_seed(conn, site_map=False)
        yield s3, conn


def inprocess_once(pg_server: str, site_ids: list[str], days: list[date]) -> dict:
    """Ingest, process and roll up every site-day in this process (models loaded once)."""
    from flarewatch.config import Settings
    from flarewatch.ingest.site_day import ingest_site_days
    from flarewatch.ingest.sources import build_source
    from flarewatch.process.audit import audit_site_days
    from flarewatch.process.batch import process_site_days
    from flarewatch.process.layers import publish_layers
    from flarewatch.store import db
    from flarewatch.store import objects as storage

    cfg = Settings.from_env()
    site_days = {d: list(site_ids) for d in days}
    load = load_averages()
    with _throwaway_servers(pg_server) as (s3, conn):
        sites = {s.site_id: s for s in db.fetch_sites(conn, site_ids)}
        t0 = time.perf_counter()
        source = build_source(cfg, raw_store=storage.RawStore(s3, cfg.raw_bucket))
        ingest_site_days(site_days, sites, source, s3, conn, cfg)
        t1 = time.perf_counter()
        processed = process_site_days(conn, s3, cfg, site_days)
        t2 = time.perf_counter()
        audit = audit_site_days(conn, s3, cfg, days[0], days[-1], days)
        if audit["problems"]:
            raise RuntimeError(f"audit: {audit['problems'][:5]}")
        db.refresh_rollups(conn, days)
        publish_layers(conn, s3, cfg, days)
        t3 = time.perf_counter()
        rows = db.fetch_dicts(conn, "SELECT (SELECT count(*) FROM emissions_daily WHERE day = ANY(%s)) AS daily,"
                                    " (SELECT count(*) FROM flare_detections) AS detections", (days,))[0]
    n = len(site_ids) * len(days)
    return {"wall_s": round(t3 - t0, 2), "ingest_s": round(t1 - t0, 2), "process_s": round(t2 - t1, 2),
            "rollup_s": round(t3 - t2, 2), "site_days_per_s": round(n / (t3 - t0), 3),
            "detections": rows["detections"], "daily_rows": rows["daily"], "n_detections": processed["n_detections"],
            "load_before": load, "load_after": load_averages()}


# ------------------------------------------------------------------------------------------
# 1. through Airflow
# ------------------------------------------------------------------------------------------
def _stack_env(executor: str, workers: int) -> dict[str, str]:
    from flarewatch.dev import servers

    env = {"FLAREWATCH_S3_PORT": str(servers.free_port()), "FLAREWATCH_API_PORT": str(servers.free_port()),
           "FLAREWATCH_INGEST_SCHEDULE": "off"}
    if executor == "celery":
        env.update(FLAREWATCH_EXECUTOR="celery", FLAREWATCH_CELERY_WORKERS=str(workers))
    return env


def check_executor(executor: str, workers: int) -> None:
    """Fail clearly when this checkout's local stack cannot run ``executor``."""
    if executor == "local":
        return
    from flarewatch.dev import localstack

    saved = {k: os.environ.get(k) for k in ("FLAREWATCH_EXECUTOR", "FLAREWATCH_CELERY_WORKERS", "FLAREWATCH_STATE_DIR")}
    tmp = Path(tempfile.mkdtemp(prefix="fw-bench-check-"))
    try:
        os.environ.update(FLAREWATCH_EXECUTOR="celery", FLAREWATCH_CELERY_WORKERS=str(workers),
                          FLAREWATCH_STATE_DIR=str(tmp / "state"))
        got = localstack.stack_env(localstack.StackPaths(tmp / "state")).get("AIRFLOW__CORE__EXECUTOR", "")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(tmp, ignore_errors=True)
    if "celery" not in got.lower():
        raise SystemExit(f"--executor celery: this checkout's local stack does not run CeleryExecutor "
                         f"(with FLAREWATCH_EXECUTOR=celery it still sets AIRFLOW__CORE__EXECUTOR={got or 'nothing'}); "
                         "it needs the Celery local stack (dev/localstack.py, FLAREWATCH_EXECUTOR / "
                         "FLAREWATCH_CELERY_WORKERS)")


def _pause(api, dag_id: str) -> None:
    from airflow_client.client.models import DAGPatchBody

    api.dags_api.patch_dag(dag_id, DAGPatchBody(is_paused=True), update_mask=["is_paused"])


def _all_active_runs(api, dag_ids) -> int:
    return sum(api.count_runs(d, ["queued", "running"]) for d in dag_ids)


def _task_stats(paths, run_after: datetime) -> dict:
    """Per pipeline task: mapped instances, tries and summed durations (the Airflow database)."""
    import psycopg2

    conn = psycopg2.connect(f"postgresql://postgres@/airflow?host={paths.pg}")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ti.dag_id, ti.task_id, count(*), sum(ti.try_number), sum(ti.duration)"
                        " FROM task_instance ti JOIN dag_run r ON r.dag_id = ti.dag_id AND r.run_id = ti.run_id"
                        " WHERE r.run_after >= %s AND ti.dag_id = ANY(%s) GROUP BY 1, 2 ORDER BY 1, 2",
                        (run_after, list(PIPELINE_DAGS)))
            rows = cur.fetchall()
            cur.execute("SELECT dag_id, count(*) FROM dag_run WHERE run_after >= %s AND dag_id = ANY(%s) GROUP BY 1",
                        (run_after, list(PIPELINE_DAGS)))
            runs = dict(cur.fetchall())
    finally:
        conn.close()
    return {"runs": runs, "tasks": {f"{d}.{t}": {"instances": n, "tries": int(tries or 0),
                                                 "task_seconds": round(float(dur or 0), 1)}
                                    for d, t, n, tries, dur in rows}}


def airflow_once(site_ids: list[str], days: list[date], executor: str, workers: int, timeout: float,
                 log=print, keep: bool = False) -> dict:
    """One backfill through the scheduler of a fresh local stack in a temp folder."""
    from flarewatch.dev import localstack
    from flarewatch.dev.airflow_api import for_stack
    from flarewatch.dev.demo import progress_counts
    from flarewatch.store import db

    base = Path(tempfile.mkdtemp(prefix="fw-bench-backfill-"))
    paths = localstack.StackPaths(base / "state")
    env = {**_stack_env(executor, workers), "FLAREWATCH_STATE_DIR": str(paths.state)}
    saved = dict(os.environ)
    os.environ.update(env)
    for k in ("FLAREWATCH_DB_URL", "FLAREWATCH_AIRFLOW_DB_URL", "AIRFLOW__CORE__UNIT_TEST_MODE"):
        os.environ.pop(k, None)
    n = len(site_ids) * len(days)
    try:
        paths.mkdirs()
        warm_model_cache(paths.state)
        t_up = time.time()
        localstack.up(paths, log=lambda m: None, settle=5)
        log(f"  stack up in {time.time() - t_up:.0f} s ({paths.state})")
        with for_stack(paths) as api:
            deadline = time.time() + 300
            while True:
                try:
                    dags = api.dags(limit=100)
                except RuntimeError:
                    dags = {}
                if set(PIPELINE_DAGS) <= set(dags) and len(dags) >= 8:
                    break
                if time.time() > deadline:
                    raise RuntimeError(f"DAGs not parsed after 300 s; see {paths.logs}/dag-processor.log")
                time.sleep(2)
            for dag_id, paused in dags.items():
                if dag_id in PIPELINE_DAGS and paused:
                    api.unpause(dag_id)
                elif dag_id not in PIPELINE_DAGS and not paused:
                    _pause(api, dag_id)
            settle = time.time() + 180  # runs created at unpause (an empty sweep) finish before the clock starts
            while _all_active_runs(api, dags) and time.time() < settle:
                time.sleep(2)
            conn = db.connect(localstack.results_db_dsn(paths))
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT now()")
                    db_since = cur.fetchone()[0]
                conn.commit()
                load = load_averages()
                since = datetime.now(UTC)
                t0 = time.time()
                run_id = api.trigger("flare_ingest", conf={"acquisition_start": f"{days[0]}",
                                                           "acquisition_end": f"{days[-1]}", "site_ids": site_ids})
                marks, sweeps, idle, last, polls = {}, 0, 0, "", 0
                while True:  # the results DB every second; the API (which costs the api-server CPU) every 5 s
                    c = progress_counts(conn, days[0], days[-1], db_since)
                    now = time.time() - t0
                    for key in ("ingested", "processed", "rolled_up"):
                        if c[key] >= n and key not in marks:
                            marks[key] = round(now, 1)
                    progress = f"ingested {c['ingested']}/{n} | processed {c['processed']}/{n} | rolled up {c['rolled_up']}/{n}"
                    if progress != last and (polls % 5 == 0 or len(marks) == 3):
                        log(f"  [{now:5.0f}s] {progress}")
                        last = progress
                    if "rolled_up" in marks:
                        break
                    polls += 1
                    if polls % 5 == 0:
                        failed = [f"{d}/{r}" for d in PIPELINE_DAGS for r in api.run_ids(d, "failed", since)]
                        if failed:
                            raise RuntimeError(f"failed runs {failed}; logs under {paths.airflow_home / 'logs'}")
                        ingest_done = api.run_state("flare_ingest", run_id) in ("success", "failed")
                        idle = idle + 1 if ingest_done and not _all_active_runs(api, PIPELINE_DAGS) else 0
                        if idle >= 2:  # nothing running but work pending: the sweep, now rather than at :00/:30
                            api.trigger("flare_process" if c["processed"] < n else "emissions_rollup")
                            sweeps, idle = sweeps + 1, 0
                    if now > timeout:
                        raise RuntimeError(f"not done after {timeout} s: {progress}")
                    time.sleep(1)
                wall = marks["rolled_up"]
                load_after = load_averages()
            finally:
                conn.close()
            deadline = time.time() + 120  # let the runs finish, so the task statistics are whole
            while _all_active_runs(api, PIPELINE_DAGS) and time.time() < deadline:
                time.sleep(2)
        stats = _task_stats(paths, since)
        return {"wall_s": wall, "site_days_per_s": round(n / wall, 3), "ingested_at_s": marks["ingested"],
                "processed_at_s": marks["processed"], "rolled_up_at_s": marks["rolled_up"],
                "sweeps_triggered": sweeps, **stats, "load_before": load, "load_after": load_after}
    finally:
        try:
            if keep:
                log(f"  stack kept running in {paths.state} (ports {env['FLAREWATCH_S3_PORT']}, "
                    f"{env['FLAREWATCH_API_PORT']}); stop it with FLAREWATCH_STATE_DIR={paths.state} "
                    f"FLAREWATCH_S3_PORT={env['FLAREWATCH_S3_PORT']} FLAREWATCH_API_PORT={env['FLAREWATCH_API_PORT']} "
                    "python -m flarewatch.cli down, then delete the folder")
            else:
                localstack.down(paths, log=lambda m: None)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            if not keep:
                shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------------------------------
def merge_json(path: Path, values: dict) -> dict:
    doc = json.loads(path.read_text()) if path.exists() and path.stat().st_size else {}
    doc.update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return doc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sites", type=int, default=6)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--start", type=date.fromisoformat, default=date(2025, 6, 1))
    p.add_argument("--only", choices=("airflow", "inprocess"), help="run one of the two parts")
    p.add_argument("--executor", choices=("local", "celery"), default="local")
    p.add_argument("--workers", type=int, default=1, help="Celery workers (--executor celery)")
    p.add_argument("--repeats", type=int, help="runs per part (default: 1 through Airflow, 3 in-process)")
    p.add_argument("--timeout", type=float, default=1800, help="seconds one Airflow run may take")
    p.add_argument("--keep", action="store_true", help="leave the (last) local stack running, for its logs")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_backfill.json")
    args = p.parse_args(argv)
    if args.executor == "celery" and args.only == "inprocess":
        p.error("--executor celery measures the Airflow part; drop --only inprocess")
    check_executor(args.executor, args.workers)

    site_ids = pick_sites(args.sites)
    days = [args.start + timedelta(days=i) for i in range(args.days)]
    n = len(site_ids) * len(days)
    print(f"backfill of {len(site_ids)} sites x {len(days)} days = {n} site-days ({days[0]}..{days[-1]}); "
          f"load {load_averages()}", flush=True)
    out: dict = {"site_days": n, "sites": len(site_ids), "days": len(days), "start": f"{days[0]}",
                 "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                             "python": platform.python_version()},
                 "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    uptime = {"before": load_averages()}
    # the in-process part's state folder (model exports, ultralytics' settings, which the imported
    # package keeps writing there) lives until the end; the environment is restored after each part
    state, env0 = Path(tempfile.mkdtemp(prefix="fw-bench-inproc-")), dict(os.environ)
    try:
        if args.only != "airflow":
            from flarewatch.dev import servers

            warm_model_cache(state)
            os.environ["FLAREWATCH_STATE_DIR"] = str(state)
            runs = []
            with servers.scratch_postgres(os.environ.get("FLAREWATCH_TEST_DB_URL"), state / "pg") as pg:
                for i in range(args.repeats or 3):
                    r = inprocess_once(pg, site_ids, days)
                    print(f"  in-process run {i + 1}: {r['wall_s']} s = {r['site_days_per_s']} site-days/s (ingest "
                          f"{r['ingest_s']} s, process {r['process_s']} s, rollup {r['rollup_s']} s; load "
                          f"{r['load_before']['1m']})", flush=True)
                    runs.append(r)
            os.environ.clear()
            os.environ.update(env0)
            sp = _spread([r["site_days_per_s"] for r in runs])
            out.update(inprocess_site_days_per_s=sp["median"], inprocess_site_days_per_s_spread=sp,
                       inprocess_runs=runs)
        if args.only != "inprocess":
            runs = []
            for i in range(args.repeats or 1):
                print(f"  through Airflow ({args.executor}{f', {args.workers} workers' if args.executor == 'celery' else ''})"
                      f", run {i + 1}:", flush=True)
                r = airflow_once(site_ids, days, args.executor, args.workers, args.timeout,
                                 log=lambda m: print(m, flush=True), keep=args.keep and i == (args.repeats or 1) - 1)
                print(f"  -> {r['wall_s']} s = {r['site_days_per_s']} site-days/s (tasks: "
                      + ", ".join(f"{k} {v['instances']}" for k, v in r["tasks"].items()) + ")", flush=True)
                runs.append(r)
            key = "airflow" if args.executor == "local" else f"celery_workers_{args.workers}"
            sp = _spread([r["site_days_per_s"] for r in runs])
            out.update({f"{key}_site_days_per_s": sp["median"], f"{key}_site_days_per_s_spread": sp, f"{key}_runs": runs})
    finally:
        os.environ.clear()
        os.environ.update(env0)
        shutil.rmtree(state, ignore_errors=True)
    uptime["after"] = load_averages()
    out[f"uptime{'' if args.only is None else '_' + args.only}{'' if args.executor == 'local' else '_celery'}"] = uptime
    if args.only is None or args.out.exists():
        doc = {**(json.loads(args.out.read_text()) if args.out.exists() and args.out.stat().st_size else {}), **out}
        shares = {k.removesuffix("_site_days_per_s"): round(v / doc["inprocess_site_days_per_s"], 3)
                  for k, v in doc.items() if k.endswith("_site_days_per_s") and k != "inprocess_site_days_per_s"
                  and doc.get("inprocess_site_days_per_s") and doc.get("site_days") == n}
        out.update({f"{k}_share_of_inprocess": v for k, v in shares.items()})
        if "airflow" in shares:
            out["targets"] = {f"airflow_site_days_per_s >= {TARGET_SITE_DAYS_PER_S}":
                              doc["airflow_site_days_per_s"] >= TARGET_SITE_DAYS_PER_S,
                              f"airflow_share_of_inprocess >= {TARGET_SHARE}": shares["airflow"] >= TARGET_SHARE}
    doc = merge_json(args.out, out)

    print(f"\n{'':34s} {'site-days/s':>12s} {'min':>7s} {'max':>7s} {'runs':>5s} {'share':>7s}")
    for key in sorted(k for k in doc if k.endswith("_site_days_per_s")):
        sp = doc.get(f"{key}_spread", {})
        share = doc.get(key.replace("_site_days_per_s", "_share_of_inprocess"))
        print(f"{key:34s} {doc[key]:12.3f} {sp.get('min', 0):7.3f} {sp.get('max', 0):7.3f} "
              f"{len(sp.get('runs', [])):5d} {'' if share is None else f'{100 * share:6.0f}%':>7s}")
    print(f"{doc['site_days']} site-days; load averages {uptime}; targets {doc.get('targets', {})}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
