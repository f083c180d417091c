"""Scale curve: the pipeline's cost per site-day, its rollups and analytics as the site count grows.

    python benchmarks/bench_scale.py --out benchmarks/results/bench_scale.json     (make bench-scale)

In process (no Airflow), against a real S3 API server (rclone) and a real PostgreSQL started in a
temp dir like ``make bench`` (``FLAREWATCH_TEST_DB_URL``'s server when set). For each size --
6, 60 and 600 synthetic sites (``simulation.many_sites``) x 1 day and x 7 days -- in a fresh
database:

1. ingest: ``ingest.site_day.ingest_site_day`` with the ``demo`` source, every site-day, day by day
   (the simulator renders the tile and the VIIRS night: its cost is not a real provider's download);
2. process: ``process.site_day.process_site_day`` with the deployed detector and volume model loaded
   once (``production_detector`` / ``production_regressor``, as ``process.batch`` does per batch);
3. rollups: ``store.db.refresh_rollups`` for the changed days (first run: inserts), then again for
   all the days and for ONE day (upserts; the median of ``--repeats`` runs);
4. analytics: ``analytics.refresh.refresh_analytics`` for the days' month (first run and median);
5. sizes: ``pg_database_size``, the largest tables, rows per site-day, S3 bytes written per site-day
   (raw and processed, counted at ``store.objects.put_bytes``).

Sizes of at most ``--small-max`` site-days are run ``--repeats`` times (min / median / max). A size of
more than ``--full-max`` site-days (600 x 7) is ingested and processed for a sample of ``--sample-sites``
sites only (its per-site-day costs come from them); the other sites' rows (scenes, detections,
emissions, site_day_processing) are then synthesised with SQL by copying a sampled site's rows under
the other site's id, so that the rollups and analytics run on full-size tables. The JSON says which.

At the largest size the rollup and analytics queries are EXPLAIN ANALYZEd, then ``--history-days``
of earlier site-days are synthesised the same way (copies of the measured week, shifted back), and
the one-day / one-week rollups and the month's analytics are timed with and without the indexes of
``sql/014_scale_indexes.sql``: rollups must touch only the changed days, whatever the history.

Machine load (``os.getloadavg``) is recorded before, between and after: the development machine has
2 cores shared with other work, so compare figures of one run with each other.
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
SIZES = ((6, 1), (6, 7), (60, 1), (60, 7), (600, 1), (600, 7))
START = date(2025, 6, 2)
SCALE_INDEXES = "014_scale_indexes.sql"
PER_SITE_DAY_TABLES = ("scenes", "flare_detections", "flare_emissions", "site_day_processing")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class _Cpu:
    """CPU seconds (user + system) of this process (all threads), the S3 server (rclone) and the private
    PostgreSQL server (postmaster, its reaped children and its live backends): wall time on a machine shared
    with other work overstates the cost, CPU time much less so. The servers' part is None when not found
    (e.g. ``FLAREWATCH_TEST_DB_URL``: a shared server)."""

    def __init__(self, pgdata: Path | None):
        import psutil

        self._psutil = psutil
        me = psutil.Process()
        self.s3 = [p for p in me.children(recursive=True) if "rclone" in p.name()]
        self.pg = None
        if pgdata is not None:
            for p in psutil.process_iter(["name", "cmdline"]):
                cmd = " ".join(p.info["cmdline"] or [])
                if "postgres" in (p.info["name"] or "") and str(pgdata) in cmd and "-D" in cmd:
                    self.pg = p
                    break

    def _tree(self, root) -> float:
        t = root.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for c in root.children():
            try:
                ct = c.cpu_times()
                total += ct.user + ct.system
            except self._psutil.Error:
                pass  # exited in between: counted in the parent's children times from now on
        return total

    def snapshot(self) -> dict:
        out = {"bench": time.process_time(), "s3": None, "postgres": None}
        try:
            out["s3"] = sum(self._tree(p) for p in self.s3) if self.s3 else None
            out["postgres"] = self._tree(self.pg) if self.pg is not None else None
        except self._psutil.Error:
            pass
        return out

    @staticmethod
    def ms_per(before: dict, after: dict, n: int) -> dict:
        return {k: (round(1000 * (after[k] - before[k]) / n, 1) if after[k] is not None and before[k] is not None
                    else None) for k in before}


def _spread(values: list[float], nd: int = 2) -> dict:
    return {"min": round(min(values), nd), "median": round(statistics.median(values), nd),
            "max": round(max(values), nd), "n": len(values)}


@contextmanager
def _servers():
    """A throwaway S3 server (rawdata and processed buckets) and a PostgreSQL server (its maintenance DSN)."""
    from flarewatch.dev import servers
    from flarewatch.store.objects import ensure_buckets

    with ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="flarewatch-bench-scale-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        s3_srv = stack.enter_context(servers.scratch_s3(tmp / "s3", key="bench", secret="bench-secret"))
        s3 = s3_srv.client()
        ensure_buckets(s3, ["rawdata", "processed"])
        shared = os.environ.get("FLAREWATCH_TEST_DB_URL")
        server_dsn = stack.enter_context(servers.scratch_postgres(shared, tmp / "pg"))
        yield SimpleNamespace(s3=s3, server_dsn=server_dsn, stack=stack, cpu=_Cpu(None if shared else tmp / "pg"))


@contextmanager
def _database(server_dsn: str, sites):
    """A fresh, migrated results DB holding ``sites`` (and no demo sites)."""
    from flarewatch.dev import servers
    from flarewatch.store import db
    from flarewatch.store.seed import migrate_and_seed

    with servers.temporary_database(server_dsn, "fw_scale") as dsn:
        conn = db.connect(dsn)
        try:
            migrate_and_seed(conn, seed=False)
            db.upsert_sites(conn, sites)
            yield conn
        finally:
            conn.close()


class _PutCounter:
    """Counts the bytes and objects ``store.objects.put_bytes`` writes, per bucket (thread-safe enough)."""

    def __init__(self):
        import threading

        from flarewatch.store import objects

        self.bytes: dict[str, int] = {}
        self.objects: dict[str, int] = {}
        self._lock = threading.Lock()
        self._mod, self._orig = objects, objects.put_bytes

        def put_bytes(s3, bucket, key, data, content_type="application/octet-stream"):
            self._orig(s3, bucket, key, data, content_type)
            with self._lock:
                self.bytes[bucket] = self.bytes.get(bucket, 0) + len(data)
                self.objects[bucket] = self.objects.get(bucket, 0) + 1

        objects.put_bytes = put_bytes

    def reset(self):
        with self._lock:
            self.bytes, self.objects = {}, {}

    def restore(self):
        self._mod.put_bytes = self._orig


def _scalar(conn, sql: str, args=()):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        v = cur.fetchone()[0]
    conn.commit()
    return v


def _db_sizes(conn, top: int = 8) -> dict:
    from flarewatch.store.db import fetch_dicts

    tables = fetch_dicts(conn, "SELECT c.relname AS table, pg_total_relation_size(c.oid) AS total_bytes,"
                               " pg_relation_size(c.oid) AS heap_bytes, pg_indexes_size(c.oid) AS index_bytes"
                               " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                               " WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 2 DESC")
    rows = {}
    for t in ("scenes", "flare_detections", "flare_emissions", "site_day_processing", "emissions_daily",
              "emissions_monthly", "emissions_monthly_estimate", "kpi_monthly", "alerts", "reconciliation_monthly"):
        rows[t] = _scalar(conn, f"SELECT count(*) FROM {t}")
    return {"database_bytes": _scalar(conn, "SELECT pg_database_size(current_database())"),
            "largest_tables": tables[:top], "rows": rows,
            "per_site_day_tables_bytes": sum(t["total_bytes"] for t in tables if t["table"] in PER_SITE_DAY_TABLES)}


def _copy_columns(conn, table: str) -> list[tuple[str, str]]:
    from flarewatch.store.db import fetch_dicts

    return [(r["column_name"], r["data_type"]) for r in fetch_dicts(
        conn, "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'"
              " AND table_name = %s ORDER BY ordinal_position", (table,))]


def _synthesise_sites(conn, mapping: list[tuple[str, str]], days: list[date]) -> dict:
    """Copy each donor site's rows of ``days`` to the mapped site (site_id and every text naming the donor
    rewritten), for the per-site-day tables. ``mapping``: (site_id, donor_site_id). Returns rows added."""
    added = {}
    columns = {t: _copy_columns(conn, t) for t in PER_SITE_DAY_TABLES}
    ids, donors = [m[0] for m in mapping], [m[1] for m in mapping]
    with conn.cursor() as cur:
        for table in PER_SITE_DAY_TABLES:  # detections before emissions (foreign key)
            cols = columns[table]
            exprs = []
            for name, typ in cols:
                if name == "site_id":
                    exprs.append("m.site_id")
                elif typ in ("text", "character varying"):
                    exprs.append(f"replace(t.{name}, m.donor, m.site_id)")
                else:
                    exprs.append(f"t.{name}")
            cur.execute(f"INSERT INTO {table} ({', '.join(n for n, _ in cols)}) SELECT {', '.join(exprs)}"
                        f" FROM {table} t JOIN unnest(%s::text[], %s::text[]) AS m(site_id, donor)"
                        " ON t.site_id = m.donor WHERE t.acquisition_date = ANY(%s::date[])"
                        " ORDER BY t.acquisition_date, m.site_id", (ids, donors, days))
            added[table] = cur.rowcount
    conn.commit()
    return added


def _synthesise_history(conn, days: list[date], weeks: int) -> dict:
    """Copies of every row of ``days`` (a week) shifted back by 1..``weeks`` weeks: the per-site-day tables and
    emissions_daily. Dates move by whole weeks, timestamps with them; rows are inserted oldest day first.
    Returns rows added per table."""
    added = {}
    tables = (("scenes", "acquisition_date"), ("flare_detections", "acquisition_date"),
              ("flare_emissions", "acquisition_date"), ("site_day_processing", "acquisition_date"),
              ("emissions_daily", "day"))
    columns = {t: _copy_columns(conn, t) for t, _ in tables}
    with conn.cursor() as cur:
        for table, day_col in tables:
            cols = columns[table]
            exprs = []
            for name, typ in cols:
                if typ == "date":
                    exprs.append(f"t.{name} - 7 * w")
                elif typ.startswith("timestamp"):
                    exprs.append(f"t.{name} - make_interval(days => 7 * w)")
                else:
                    exprs.append(f"t.{name}")
            cur.execute(f"INSERT INTO {table} ({', '.join(n for n, _ in cols)}) SELECT {', '.join(exprs)}"
                        f" FROM {table} t CROSS JOIN generate_series(1, %s) AS w WHERE t.{day_col} = ANY(%s::date[])"
                        # oldest first, day by day, as the pipeline appends them (the heap's order by date
                        # decides what an index scan on a date costs)
                        f" ORDER BY w DESC, t.{day_col}, t.site_id",
                        (weeks, days))
            added[table] = cur.rowcount
    conn.commit()
    with conn.cursor() as cur:
        cur.execute("ANALYZE")
    conn.commit()
    return added


def _timed(fn, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(1000 * (time.perf_counter() - t))
    return {"ms": _spread(times, 1), "result": out}


def _plan_scans(node: dict, out: list) -> list:
    if "Relation Name" in node or "Index Name" in node:
        out.append({k: node[k] for k in ("Node Type", "Relation Name", "Index Name", "Actual Rows", "Actual Loops",
                                         "Actual Total Time") if k in node})
    for child in node.get("Plans", []):
        _plan_scans(child, out)
    return out


def _explain(conn, sql: str, args) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) of ``sql`` in a transaction that is rolled back (writes included)."""
    with conn.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, args)
        plan = cur.fetchone()[0][0]
    conn.rollback()
    return {"execution_ms": round(plan["Execution Time"], 2), "planning_ms": round(plan["Planning Time"], 2),
            "scans": _plan_scans(plan["Plan"], [])}


def explain_queries(conn, settings, days: list[date], one_day: date) -> dict:
    from flarewatch.analytics.refresh import HISTORY_DAYS, month_end
    from flarewatch.store.db import read_sql

    months = sorted({d.replace(day=1) for d in days})
    start, end = months[0] - timedelta(days=HISTORY_DAYS), month_end(months[-1]) + timedelta(days=settings.analytics.gapfill_max_days)
    return {
        "rollup_daily_1_day": _explain(conn, read_sql("queries/rollup_daily.sql"), {"days": [one_day]}),
        "rollup_daily_all_days": _explain(conn, read_sql("queries/rollup_daily.sql"), {"days": days}),
        "rollup_monthly": _explain(conn, read_sql("queries/rollup_monthly.sql"), {"months": months}),
        "analytics_daily": _explain(conn, read_sql("queries/analytics_daily.sql"), {"start": start, "end": end}),
        # analytics.refresh.read_inputs: each site's first day (was a GROUP BY over every scene)
        "analytics_sites_first_day": _explain(
            conn, "SELECT s.site_id, s.field, s.operator, s.country, (SELECT min(sc.acquisition_date)"
                  " FROM scenes sc WHERE sc.site_id = s.site_id) AS first_day"
                  " FROM sites s WHERE s.active ORDER BY s.site_id", ()),
    }


def _scale_index_names() -> list[str]:
    import re

    path = REPO / "sql" / SCALE_INDEXES
    if not path.exists():
        return []
    return re.findall(r"CREATE\s+INDEX\s+IF\s+NOT\s+EXISTS\s+(\w+)", path.read_text(), flags=re.I)


def rollup_analytics_timings(conn, settings, days: list[date], one_day: date, repeats: int) -> dict:
    from flarewatch.analytics.refresh import refresh_analytics
    from flarewatch.store.db import pending_site_days, refresh_rollups, stale_rollup_days

    months = sorted({d.replace(day=1) for d in days})
    return {
        "rollup_all_days": _timed(lambda: refresh_rollups(conn, days), repeats),
        "rollup_one_day": _timed(lambda: refresh_rollups(conn, [one_day]), repeats),
        "analytics": _timed(lambda: {k: v for k, v in refresh_analytics(conn, settings, months).items()
                                     if k != "months"}, repeats),
        # what flare_process / emissions_rollup plan from (read every scene: they grow with the history)
        "pending_site_days": _timed(lambda: len(pending_site_days(conn)), repeats),
        "stale_rollup_days": _timed(lambda: len(stale_rollup_days(conn)), repeats),
    }


def run_size(srv, settings, models, n_sites: int, n_days: int, args, *, largest: bool) -> dict:
    from flarewatch.analytics.refresh import refresh_analytics
    from flarewatch.ingest.site_day import ingest_site_day
    from flarewatch.ingest.sources import get_source
    from flarewatch.process.site_day import process_site_day
    from flarewatch.simulation.many_sites import synthetic_sites
    from flarewatch.store.db import refresh_rollups

    sites = synthetic_sites(n_sites)
    days = [START + timedelta(days=i) for i in range(n_days)]
    full = n_sites * n_days <= args.full_max
    # the first sites: as many of each region (a multiple of 6), the nearest its centre
    n_sample = max(6, args.sample_sites - args.sample_sites % 6)
    sample = sites if full else sites[:n_sample]
    src = get_source("demo")
    res = {"sites": n_sites, "days": n_days, "site_days": n_sites * n_days, "days_from": days[0].isoformat(),
           "site_days_run": len(sample) * n_days, "sampled": not full, "load_before": _load()}
    if not full:
        res["sample"] = (f"the first {len(sample)} of {n_sites} sites ingested and "
                         f"processed for all {n_days} days with the real code; the other {n_sites - len(sample)} "
                         "sites' scenes / flare_detections / flare_emissions / site_day_processing rows are SQL "
                         "copies of a sampled site's rows of the same region (site id rewritten), so rollups, analytics and DB sizes "
                         "are at full size; S3 bytes and per-site-day costs come from the sampled site-days")
    counter = srv.counter
    with _database(srv.server_dsn, sites) as conn:
        counter.reset()
        cpu0 = srv.cpu.snapshot()
        ingest_s, per_day_ingest = 0.0, []
        for day in days:
            t = time.perf_counter()
            for site in sample:
                ingest_site_day(site, day, src, srv.s3, conn, settings)
            dt = time.perf_counter() - t
            per_day_ingest.append(round(1000 * dt / len(sample), 1))
            ingest_s += dt
        ingest_bytes, ingest_objects = dict(counter.bytes), dict(counter.objects)
        cpu1 = srv.cpu.snapshot()
        counter.reset()
        process_s, per_day_process = 0.0, []
        for day in days:
            t = time.perf_counter()
            for site in sample:
                process_site_day(site, day, srv.s3, conn, settings, **models)
            dt = time.perf_counter() - t
            per_day_process.append(round(1000 * dt / len(sample), 1))
            process_s += dt
        process_bytes, process_objects = dict(counter.bytes), dict(counter.objects)
        cpu2 = srv.cpu.snapshot()
        n_run = len(sample) * n_days
        res["ingest"] = {"seconds": round(ingest_s, 2), "ms_per_site_day": round(1000 * ingest_s / n_run, 1),
                         "ms_per_site_day_by_day": per_day_ingest,
                         "cpu_ms_per_site_day": _Cpu.ms_per(cpu0, cpu1, n_run)}
        res["process"] = {"seconds": round(process_s, 2), "ms_per_site_day": round(1000 * process_s / n_run, 1),
                          "ms_per_site_day_by_day": per_day_process,
                          "cpu_ms_per_site_day": _Cpu.ms_per(cpu1, cpu2, n_run),
                          "note": "day k reads the VIIRS nights of up to k-1 earlier days (window 7)"}
        res["s3"] = {"raw_bytes_per_site_day": round(sum(ingest_bytes.values()) / n_run),
                     "processed_bytes_per_site_day": round(sum(process_bytes.values()) / n_run),
                     "objects_per_site_day": round((sum(ingest_objects.values()) + sum(process_objects.values())) / n_run, 2),
                     "bytes_by_bucket": {"ingest": ingest_bytes, "process": process_bytes}}
        if not full:
            rest = [s.site_id for s in sites if s not in sample]
            mapping = [(sid, sample[i % len(sample)].site_id) for i, sid in enumerate(rest)]
            t = time.perf_counter()
            res["synthesised_rows"] = _synthesise_sites(conn, mapping, days)
            res["synthesis_seconds"] = round(time.perf_counter() - t, 2)
        # first rollup and analytics after processing: what the DAGs run (inserts)
        months = sorted({d.replace(day=1) for d in days})
        t = time.perf_counter()
        res["rollup_first"] = {"result": refresh_rollups(conn, days), "ms": round(1000 * (time.perf_counter() - t), 1)}
        t = time.perf_counter()
        out = refresh_analytics(conn, settings, months)
        res["analytics_first"] = {"result": {k: v for k, v in out.items() if k != "months"},
                                  "ms": round(1000 * (time.perf_counter() - t), 1)}
        with conn.cursor() as cur:
            cur.execute("ANALYZE")
        conn.commit()
        res["db"] = _db_sizes(conn)
        sd = n_sites * n_days
        res["db"]["rows_per_site_day"] = {t: round(res["db"]["rows"][t] / sd, 3) for t in PER_SITE_DAY_TABLES}
        res["db"]["per_site_day_tables_bytes_per_site_day"] = round(res["db"]["per_site_day_tables_bytes"] / sd)
        # again, as a re-run or a late site-day would: all the days, then ONE day (upserts)
        res["repeat"] = rollup_analytics_timings(conn, settings, days, days[-1], args.repeats)
        if largest:
            res["explain"] = explain_queries(conn, settings, days, days[-1])
            if args.history_days >= 7 and n_days == 7:
                res["history"] = history_phase(conn, settings, days, args)
    res["load_after"] = _load()
    return res


def history_phase(conn, settings, days: list[date], args) -> dict:
    """Earlier weeks synthesised; rollups / analytics of the measured week timed without and with the 014 indexes."""
    from flarewatch.store.db import read_sql

    weeks = args.history_days // 7
    out = {"weeks_added": weeks, "history_from": (days[0] - timedelta(days=7 * weeks)).isoformat(),
           "note": ("the measured week's rows copied to each of the earlier weeks (dates and timestamps shifted): "
                    "synthetic history, so that the changed days are a small part of the tables")}
    t = time.perf_counter()
    out["rows_added"] = _synthesise_history(conn, days, weeks)
    out["synthesis_seconds"] = round(time.perf_counter() - t, 2)
    out["db"] = _db_sizes(conn)
    sd = out["db"]["rows"]["site_day_processing"]
    out["db"]["site_days"] = sd
    out["db"]["database_bytes_per_site_day"] = round(out["db"]["database_bytes"] / sd)
    out["db"]["per_site_day_tables_bytes_per_site_day"] = round(out["db"]["per_site_day_tables_bytes"] / sd)
    names = _scale_index_names()
    with conn.cursor() as cur:
        for name in names:
            cur.execute(f"DROP INDEX IF EXISTS {name}")
        cur.execute("ANALYZE")
    conn.commit()
    out["scale_indexes"] = names
    out["without_scale_indexes"] = {"timings": rollup_analytics_timings(conn, settings, days, days[-1], args.repeats),
                                    "explain": explain_queries(conn, settings, days, days[-1])}
    if names:
        with conn.cursor() as cur:
            cur.execute(read_sql(SCALE_INDEXES))
            cur.execute("ANALYZE")
        conn.commit()
        out["with_scale_indexes"] = {"timings": rollup_analytics_timings(conn, settings, days, days[-1], args.repeats),
                                     "explain": explain_queries(conn, settings, days, days[-1])}
    return out


def _load_models(srv, settings) -> tuple[dict, float]:
    from flarewatch.detect.deployed import production_detector
    from flarewatch.estimate.deployed import production_regressor
    from flarewatch.simulation.many_sites import synthetic_sites

    with _database(srv.server_dsn, synthetic_sites(1)) as conn:
        t = time.perf_counter()
        detector, version = production_detector(conn, srv.s3, settings)
        regressor, regressor_version = (None, None) if settings.volume_model == "calibration" \
            else production_regressor(conn, srv.s3, settings)
        seconds = time.perf_counter() - t
        models = {"detector": detector, "detector_version": version, "regressor": regressor,
                  "regressor_version": regressor_version}
        # warm-up, not timed: imports, the simulator's first scene, the runtime's first inference
        from flarewatch.ingest.site_day import ingest_site_day
        from flarewatch.ingest.sources import get_source
        from flarewatch.process.site_day import process_site_day

        site, day = synthetic_sites(1)[0], START - timedelta(days=30)
        ingest_site_day(site, day, get_source("demo"), srv.s3, conn, settings)
        process_site_day(site, day, srv.s3, conn, settings, **models)
    return models, seconds


def simulator_probe(n: int = 24) -> dict:
    """What the demo source's simulation costs per site-day, with the per-site static scene cached (up to
    16 sites: ``simulation.landscape.static_scene``'s cache) and rebuilt (more sites than that, day by day)."""
    from flarewatch.simulation.landscape import static_scene
    from flarewatch.simulation.many_sites import synthetic_sites
    from flarewatch.simulation.scene import simulate_scene
    from flarewatch.tiles import encode_tile

    sites = synthetic_sites(n)
    static_scene.cache_clear()
    t = time.perf_counter()
    for s in sites:
        encode_tile(simulate_scene(s, START).tile)
    rebuilt = 1000 * (time.perf_counter() - t) / n
    few = sites[:12]
    for s in few:
        simulate_scene(s, START)
    t = time.perf_counter()
    for s in few:
        encode_tile(simulate_scene(s, START + timedelta(days=1)).tile)
    cached = 1000 * (time.perf_counter() - t) / len(few)
    return {"simulate_and_encode_ms_static_scene_cached": round(cached, 1),
            "simulate_and_encode_ms_static_scene_rebuilt": round(rebuilt, 1),
            "static_scene_cache_sites": static_scene.cache_info().maxsize,
            "note": ("the demo source renders each site's static landscape once and caches it for 16 sites: with more "
                     "sites a day, every site-day rebuilds it, so ingest costs more per site-day from 60 sites on. "
                     "A simulator artefact: a real provider downloads a tile instead (network-bound).")}


def under_load(res: dict) -> dict:
    """Whether other work shared the cores while this ran: the highest 1-minute load average recorded
    (before, between the sizes, after) against the number of cores."""
    loads = [res["load_before"][0], res["load_after"][0]] + [x for e in res["sizes"] for r in e["runs"]
                                                             for x in (r["load_before"][0], r["load_after"][0])]
    cores = res["machine"]["cpu_count"] or 1
    busy = max(loads) > cores
    return {"max_load_1min": max(loads), "min_load_1min": min(loads), "cores": cores, "shared": busy,
            "note": (f"measured under load: 1-minute load averages {min(loads)}-{max(loads)} on {cores} cores (other "
                     "work ran beside it), so wall times are inflated and vary between sizes; the CPU ms per "
                     "site-day are the figures to compare and to size with") if busy else
                    f"1-minute load averages {min(loads)}-{max(loads)} on {cores} cores"}


def _summary(r: dict) -> dict:
    """One row of the table from the runs of one size (spread over the repeats where there are several)."""
    runs = r["runs"]

    def pick(f):
        vals = [f(x) for x in runs]
        return _spread(vals, 1) if len(vals) > 1 else round(vals[0], 1)

    last = runs[-1]
    return {
        "sites": last["sites"], "days": last["days"], "site_days": last["site_days"],
        "site_days_run": last["site_days_run"], "sampled": last["sampled"], "repeats": len(runs),
        "ingest_seconds": pick(lambda x: x["ingest"]["seconds"]),
        "ingest_ms_per_site_day": pick(lambda x: x["ingest"]["ms_per_site_day"]),
        "process_seconds": pick(lambda x: x["process"]["seconds"]),
        "process_ms_per_site_day": pick(lambda x: x["process"]["ms_per_site_day"]),
        "ingest_cpu_ms_per_site_day": pick(lambda x: x["ingest"]["cpu_ms_per_site_day"]["bench"]),
        "process_cpu_ms_per_site_day": pick(lambda x: x["process"]["cpu_ms_per_site_day"]["bench"]),
        "postgres_cpu_ms_per_site_day": pick(lambda x: (x["ingest"]["cpu_ms_per_site_day"]["postgres"] or 0)
                                             + (x["process"]["cpu_ms_per_site_day"]["postgres"] or 0)),
        "s3_server_cpu_ms_per_site_day": pick(lambda x: (x["ingest"]["cpu_ms_per_site_day"]["s3"] or 0)
                                              + (x["process"]["cpu_ms_per_site_day"]["s3"] or 0)),
        "rollup_first_ms": pick(lambda x: x["rollup_first"]["ms"]),
        "rollup_all_days_ms": pick(lambda x: x["repeat"]["rollup_all_days"]["ms"]["median"]),
        "rollup_one_day_ms": pick(lambda x: x["repeat"]["rollup_one_day"]["ms"]["median"]),
        "analytics_first_ms": pick(lambda x: x["analytics_first"]["ms"]),
        "analytics_ms": pick(lambda x: x["repeat"]["analytics"]["ms"]["median"]),
        "db_mb": round(last["db"]["database_bytes"] / 2**20, 1),
        "db_per_site_day_tables_bytes_per_site_day": last["db"]["per_site_day_tables_bytes_per_site_day"],
        "s3_raw_kb_per_site_day": round(last["s3"]["raw_bytes_per_site_day"] / 1024, 1),
        "s3_processed_kb_per_site_day": round(last["s3"]["processed_bytes_per_site_day"] / 1024, 1),
    }


def _med(v):
    return v["median"] if isinstance(v, dict) else v


def print_table(rows: list[dict]) -> None:
    print("ms/sd: wall ms per site-day (cpu: CPU ms of the benchmark process; pg: of PostgreSQL); rollup: all days, "
          "1-day: one day, analyt: the month's analytics (medians of the repeats)")
    head = (f"{'sites':>5} {'days':>4} {'site-days':>9} {'run':>5} {'ingest s':>9} {'ms/sd':>7} {'cpu':>6} {'process s':>9} "
            f"{'ms/sd':>7} {'cpu':>6} {'pg':>5} {'rollup ms':>9} {'1-day ms':>8} {'analyt ms':>9} {'DB MB':>7} {'S3 KB/sd':>8}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['sites']:>5} {r['days']:>4} {r['site_days']:>9} {r['site_days_run']:>5} "
              f"{_med(r['ingest_seconds']):>9.1f} {_med(r['ingest_ms_per_site_day']):>7.1f} "
              f"{_med(r['ingest_cpu_ms_per_site_day']):>6.1f} "
              f"{_med(r['process_seconds']):>9.1f} {_med(r['process_ms_per_site_day']):>7.1f} "
              f"{_med(r['process_cpu_ms_per_site_day']):>6.1f} {_med(r['postgres_cpu_ms_per_site_day']):>5.1f} "
              f"{_med(r['rollup_all_days_ms']):>9.1f} {_med(r['rollup_one_day_ms']):>8.1f} "
              f"{_med(r['analytics_ms']):>9.1f} {r['db_mb']:>7.1f} "
              f"{r['s3_raw_kb_per_site_day'] + r['s3_processed_kb_per_site_day']:>8.1f}"
              + ("  (sampled)" if r["sampled"] else "") + (f"  x{r['repeats']}" if r["repeats"] > 1 else ""))


def _parse_sizes(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        s, d = part.lower().split("x")
        out.append((int(s), int(d)))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=_parse_sizes, default=list(SIZES), help="SITESxDAYS,... (default 6x1,6x7,60x1,60x7,600x1,600x7)")
    p.add_argument("--repeats", type=int, default=3, help="runs of the small sizes, and of each rollup / analytics timing")
    p.add_argument("--small-max", type=int, default=60, help="sizes of at most this many site-days run --repeats times")
    p.add_argument("--full-max", type=int, default=1000, help="larger sizes are ingested / processed for a sample of sites")
    p.add_argument("--sample-sites", type=int, default=100)
    p.add_argument("--history-days", type=int, default=357, help="earlier days synthesised at the largest size (0: none)")
    p.add_argument("--state", type=Path, default=REPO / ".state")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_scale.json")
    args = p.parse_args(argv)

    os.environ.setdefault("FLAREWATCH_STATE_DIR", str(args.state))
    from flarewatch.config import Settings
    from flarewatch.detect.yolo import offline_environment

    offline_environment(args.state)
    settings = Settings.from_env()
    t0 = time.perf_counter()
    res = {"command": "python benchmarks/bench_scale.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
           "load_before": _load(), "start_day": START.isoformat(), "scene_source": "demo (simulator)",
           "settings": {"detector_kind": settings.detector_kind, "detector_runtime": settings.detector_runtime,
                        "volume_model": settings.volume_model, "physics_check": settings.physics_check},
           "sizes": []}
    largest = max(args.sizes, key=lambda sd: (sd[0] * sd[1], sd[1]))
    with _servers() as srv:
        srv.counter = _PutCounter()
        srv.stack.callback(srv.counter.restore)
        with _database(srv.server_dsn, []) as conn:
            res["postgres"] = _scalar(conn, "SHOW server_version")
        models, load_s = _load_models(srv, settings)
        res["model_load_seconds"] = round(load_s, 2)
        res["detector_version"], res["regressor_version"] = models["detector_version"], models["regressor_version"]
        res["simulator_probe"] = simulator_probe()
        for n_sites, n_days in args.sizes:
            reps = args.repeats if n_sites * n_days <= args.small_max else 1
            entry = {"runs": []}
            for _ in range(reps):
                run = run_size(srv, settings, models, n_sites, n_days, args, largest=(n_sites, n_days) == largest)
                entry["runs"].append(run)
                print(f"  {n_sites} sites x {n_days} days: ingest {run['ingest']['ms_per_site_day']} ms/site-day, "
                      f"process {run['process']['ms_per_site_day']} ms/site-day, load {run['load_after']}", flush=True)
            entry["summary"] = _summary(entry)
            res["sizes"].append(entry)
    res["load_after"] = _load()
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["under_load"] = under_load(res)
    res["table"] = [e["summary"] for e in res["sizes"]]
    print_table(res["table"])
    print(f"load averages (1, 5, 15 min) before {res['load_before']}, after {res['load_after']} "
          f"on {os.cpu_count()} cores; {res['seconds']} s in all")
    print(res["under_load"]["note"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
