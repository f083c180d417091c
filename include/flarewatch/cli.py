"""``flarewatch`` command line: local stack, migrations, the demo, summaries.

    flarewatch up | down | status          start / stop / show the local stack
    flarewatch migrate [--seed-sites]      apply sql/ migrations to the results DB
    flarewatch demo [--start D --days N]   run the daily pipeline over a date range under Airflow
    flarewatch summary [--start D --end D] per-site table from the results DB
    flarewatch psql                        psql on the results DB (reads SQL from stdin when piped)
    flarewatch env                         export lines for running `airflow ...` against the stack
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import urllib.error
import urllib.request
from datetime import date, timedelta
from urllib.parse import quote

DEMO_START = date(2025, 6, 1)
DEMO_DAYS = 7
PIPELINE_DAGS = ("flare_ingest", "flare_process", "emissions_rollup")
CALIBRATION_DAG = "calibration_import"


def _print(msg: str = "") -> None:
    print(msg, flush=True)


def _localstack():
    """``flarewatch.dev.localstack``, imported when a command needs the local stack.

    ``flarewatch.dev`` is developer-only: the Docker image leaves it out, and the commands it runs
    (``migrate``, ``summary`` with ``AIRFLOW_CONN_FLAREWATCH_DB`` set) must not need it.
    """
    try:
        from flarewatch.dev import localstack
    except ImportError as exc:
        raise RuntimeError("this command needs the local stack (flarewatch.dev), which this install "
                           "leaves out (the Docker image does); run it from a development checkout") from exc
    return localstack


# ------------------------------------------------------------------------------------------
# Airflow REST API (v2) client, just what the demo needs
# ------------------------------------------------------------------------------------------
class AirflowApi:
    def __init__(self, base: str, username: str, password: str):
        self.base = base.rstrip("/")
        self.username, self.password = username, password
        self.token: str | None = None

    def _request(self, method: str, path: str, body: dict | None = None, auth: bool = True):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            if self.token is None:
                self.login()
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                payload = r.read()
                return json.loads(payload) if payload else {}
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            if exc.code == 401 and auth:
                self.token = None
            raise RuntimeError(f"Airflow API {method} {path} -> HTTP {exc.code}: {detail}") from exc

    def login(self) -> None:
        res = self._request("POST", "/auth/token", {"username": self.username, "password": self.password}, auth=False)
        self.token = res["access_token"]

    def get(self, path: str):
        return self._request("GET", path)

    def post(self, path: str, body: dict):
        return self._request("POST", path, body)

    def patch(self, path: str, body: dict):
        return self._request("PATCH", path, body)


def _api(paths) -> AirflowApi:
    password = _localstack().airflow_password(paths)
    if not password:
        raise RuntimeError(f"no Airflow password yet in {paths.passwords_file}; is the api-server up?")
    env = _localstack().stack_env(paths)
    return AirflowApi(env["AIRFLOW__API__BASE_URL"], "admin", password)


# ------------------------------------------------------------------------------------------
# commands
# ------------------------------------------------------------------------------------------
def cmd_up(args) -> int:
    _print("Starting the FlareWatch local stack:")
    _localstack().up(log=_print)
    return 0


def cmd_down(args) -> int:
    _print("Stopping the FlareWatch local stack:")
    _localstack().down(log=_print)
    return 0


def cmd_status(args) -> int:
    for name, pid in _localstack().status().items():
        _print(f"  {name:14s} {'running (pid %d)' % pid if pid else 'stopped'}")
    return 0


def cmd_env(args) -> int:
    for k, v in _localstack().stack_env().items():
        _print(f"export {k}={shlex.quote(v)}")
    return 0


def cmd_migrate(args) -> int:
    from flarewatch.store import db
    from flarewatch.store.seed import migrate_and_seed

    dsn = args.dsn or os.environ.get("FLAREWATCH_DB_URL") or _dsn_from_airflow_conn()
    conn = db.connect(dsn)
    try:
        done = migrate_and_seed(conn, seed=args.seed_sites,
                                sites_file=args.sites_file or os.environ.get("FLAREWATCH_SITES_FILE"))
    finally:
        conn.close()
    _print(f"migrations applied: {done.migrations or 'none (up to date)'}")
    if done.sites is not None:
        _print(f"sites upserted: {done.sites}")
        _print(f"calibration site map rows upserted: {done.site_map}")
    return 0


def _dsn_from_airflow_conn() -> str:
    """libpq DSN from AIRFLOW_CONN_FLAREWATCH_DB (URI or JSON form), else the local stack's."""
    raw = os.environ.get("AIRFLOW_CONN_FLAREWATCH_DB")
    if not raw:
        localstack = _localstack()
        return localstack.results_db_dsn(localstack.StackPaths.default())
    if raw.lstrip().startswith("{"):
        c = json.loads(raw)
        parts = {"host": c.get("host"), "port": c.get("port"), "user": c.get("login"),
                 "password": c.get("password"), "dbname": c.get("schema")}
        return " ".join(f"{k}={shlex.quote(str(v))}" for k, v in parts.items() if v not in (None, ""))
    return raw.replace("postgres://", "postgresql://", 1)


def _summary_rows(conn, start: date, end: date) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT s.site_id, s.country, count(d.day) AS days,
                   coalesce(sum(d.n_flares), 0), coalesce(sum(d.n_flares_s2), 0),
                   coalesce(sum(d.n_flares_viirs_only), 0),
                   coalesce(sum(d.volume_kscm), 0), coalesce(sum(d.co2_t), 0), coalesce(sum(d.co2e_t), 0)
            FROM sites s
            LEFT JOIN emissions_daily d ON d.site_id = s.site_id AND d.day BETWEEN %s AND %s
            WHERE s.active
            GROUP BY s.site_id, s.country ORDER BY s.site_id
            """,
            (start, end),
        )
        rows = cur.fetchall()
    conn.commit()
    return rows


def print_summary(conn, start: date, end: date) -> None:
    rows = _summary_rows(conn, start, end)
    _print(f"\nPer-site results, acquisition dates {start} .. {end}:")
    hdr = f"{'site':16s} {'country':14s} {'days':>4s} {'flares':>6s} {'(S2':>4s} {'VIIRS)':>6s} " \
          f"{'gas 1000 m3':>12s} {'CO2 t':>10s} {'CO2e t':>10s}"
    _print(hdr)
    _print("-" * len(hdr))
    tot = [0, 0.0, 0.0, 0.0]
    for site, country, days, n, n_s2, n_v, vol, co2, co2e in rows:
        _print(f"{site:16s} {country:14s} {days:4d} {n:6d} {n_s2:4d} {n_v:6d} {vol:12.1f} {co2:10.1f} {co2e:10.1f}")
        for i, x in enumerate((n, vol, co2, co2e)):
            tot[i] += x
    _print("-" * len(hdr))
    _print(f"{'total':16s} {'':14s} {'':4s} {tot[0]:6d} {'':4s} {'':6s} {tot[1]:12.1f} {tot[2]:10.1f} {tot[3]:10.1f}")
    _print("flares = site-days x flares seen (S2 = found in Sentinel-2; VIIRS = night-only, e.g. S2 clouded)")


def cmd_summary(args) -> int:
    from flarewatch.store import db

    conn = db.connect(_dsn_from_airflow_conn())
    try:
        end = args.end or (args.start + timedelta(days=DEMO_DAYS - 1))
        print_summary(conn, args.start, end)
    finally:
        conn.close()
    return 0


def _counts(conn, start: date, end: date, since) -> dict:
    """Progress of the site-days in start..end written since ``since`` (a DB timestamp)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            WITH sd AS (
              SELECT site_id, acquisition_date,
                     bool_and(ingested_at >= %(t)s) AS ingested,
                     bool_and(ingested_at >= %(t)s AND processed_at >= ingested_at) AS processed,
                     max(processed_at) AS processed_at
              FROM scenes WHERE acquisition_date BETWEEN %(s)s AND %(e)s
              GROUP BY site_id, acquisition_date)
            SELECT
              (SELECT count(*) FROM sites WHERE active),
              (SELECT count(*) FROM sd WHERE ingested),
              (SELECT count(*) FROM sd WHERE processed),
              (SELECT count(*) FROM sd JOIN emissions_daily d
                 ON d.site_id = sd.site_id AND d.day = sd.acquisition_date
                 WHERE sd.processed AND d.refreshed_at >= sd.processed_at),
              (SELECT count(*) FROM flare_detections WHERE acquisition_date BETWEEN %(s)s AND %(e)s),
              (SELECT count(*) FROM flare_emissions WHERE acquisition_date BETWEEN %(s)s AND %(e)s)
            """,
            {"s": start, "e": end, "t": since},
        )
        n_sites, ingested, processed, rolled, n_det, n_em = cur.fetchone()
    conn.commit()
    return {"sites": n_sites, "ingested": ingested, "processed": processed, "rolled_up": rolled,
            "detections": n_det, "emissions": n_em}


def _failed_runs(api: AirflowApi, since_iso: str) -> list[str]:
    failed = []
    for dag_id in PIPELINE_DAGS:
        res = api.get(f"/api/v2/dags/{dag_id}/dagRuns?state=failed&limit=50&start_date_gte={quote(since_iso)}")
        failed += [f"{dag_id}/{r['dag_run_id']}" for r in res.get("dag_runs", [])]
    return failed


def _active_runs(api: AirflowApi) -> int:
    n = 0
    for dag_id in PIPELINE_DAGS:
        for state in ("queued", "running"):
            n += api.get(f"/api/v2/dags/{dag_id}/dagRuns?state={state}&limit=1").get("total_entries", 0)
    return n


def _create_backfill(api: AirflowApi, start: date, end: date) -> dict:
    """Backfill flare_ingest so acquisition days start..end run (run of day D+1 processes day D);
    runs that exist already are re-run (reprocess "completed"), which writes no duplicates."""
    return api.post("/api/v2/backfills", {
        "dag_id": "flare_ingest",
        "from_date": f"{start + timedelta(days=1)}T00:00:00Z",
        "to_date": f"{end + timedelta(days=1)}T23:59:59Z",
        "reprocess_behavior": "completed",
        "max_active_runs": 4,
        "run_backwards": False,
        "dag_run_conf": {},
    })


def _load_demo_calibration(api: AirflowApi, paths, start: date, end: date) -> str | None:
    """Upload the simulator's meter readings (with their gaps and bad rows) and trigger calibration_import."""
    import boto3

    from flarewatch.config import Settings
    from flarewatch.simulation.meters import upload_demo_calibration
    from flarewatch.sites import load_sites

    env = _localstack().stack_env(paths)
    conn_json = json.loads(env["AIRFLOW_CONN_FLAREWATCH_S3"])
    s3 = boto3.client("s3", endpoint_url=conn_json["extra"]["endpoint_url"], aws_access_key_id=conn_json["login"],
                      aws_secret_access_key=conn_json["password"], region_name="us-east-1")
    uri = upload_demo_calibration(s3, Settings.from_env(env), load_sites(), start, end)
    run = api.post(f"/api/v2/dags/{CALIBRATION_DAG}/dagRuns", {"logical_date": None, "conf": {}})
    _print(f"  calibration  simulated meter readings {uri}; calibration_import run {run['dag_run_id']}")
    return run["dag_run_id"]


def _print_calibration(api: AirflowApi, conn, run_id: str | None) -> None:
    if run_id is None:
        return
    deadline = time.time() + 120
    state = None
    while time.time() < deadline:
        state = api.get(f"/api/v2/dags/{CALIBRATION_DAG}/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            break
        time.sleep(2)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT site_id) FROM calibration_measurements")
        n, n_sites = cur.fetchone()
        cur.execute("SELECT kind, count(*) FROM calibration_quarantine GROUP BY 1 ORDER BY 1")
        quarantined = cur.fetchall()
    conn.commit()
    q = ", ".join(f"{k} {v}" for k, v in quarantined) or "none"
    _print(f"\nCalibration import ({state}): {n} metered periods for {n_sites} sites in calibration_measurements;"
           f" quarantined rows: {q}  (SELECT * FROM calibration_quarantine)")


def cmd_demo(args) -> int:
    from datetime import datetime, timezone

    from flarewatch.store import db

    t0 = time.time()
    paths = _localstack().StackPaths.default()
    _print("FlareWatch demo: the daily flare pipeline on the embedded local stack\n")
    _print("[1/4] Starting the local stack (S3 server, PostgreSQL, Airflow 3):")
    endpoints = _localstack().up(paths, log=_print)
    api = _api(paths)

    start, n_days = args.start, args.days
    end = start + timedelta(days=n_days - 1)
    _print("\n[2/4] Waiting for the DAGs to be parsed...")
    deadline = time.time() + 180
    while True:
        try:
            dags = {d["dag_id"]: d for d in api.get("/api/v2/dags?limit=100")["dags"]}
        except RuntimeError:
            dags = {}
        if set(PIPELINE_DAGS) | {CALIBRATION_DAG} <= set(dags):
            break
        if time.time() > deadline:
            _print(f"DAGs not parsed after 180 s; see {paths.logs}/dag-processor.log")
            return 1
        time.sleep(2)
    for dag_id in (*PIPELINE_DAGS, CALIBRATION_DAG):
        if dags[dag_id].get("is_paused"):
            api.patch(f"/api/v2/dags/{dag_id}", {"is_paused": False})
    _print("  flare_ingest, flare_process, emissions_rollup, calibration_import are parsed and unpaused")
    calibration_run = _load_demo_calibration(api, paths, start, start + timedelta(days=n_days - 1))

    # flare_ingest runs at 06:00 UTC for the previous day: acquisition day D is the run of D+1.
    since = datetime.now(timezone.utc).isoformat()
    conn = db.connect(_localstack().results_db_dsn(paths))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT now()")
            db_since = cur.fetchone()[0]  # progress counts rows written after this, on the DB's clock
        conn.commit()
        _print(f"\n[3/4] Backfilling flare_ingest for acquisition dates {start} .. {end} ({n_days} days) "
               f"under the Airflow scheduler;\n      each ingest run triggers flare_process, which triggers "
               f"emissions_rollup.")
        running = [b for b in api.get("/api/v2/backfills?dag_id=flare_ingest&limit=100").get("backfills", [])
                   if b.get("completed_at") is None]
        if running:  # e.g. a previous `make demo` was interrupted: wait for that one instead
            backfill = running[0]
            _print(f"  backfill {backfill['id']} is still running from an earlier start; waiting for it")
        else:
            backfill = _create_backfill(api, start, end)
        _print(f"  backfill {backfill['id']}; UI: {api.base}/dags/flare_ingest")

        last = ""
        idle = 0
        deadline = time.time() + args.timeout
        while True:
            c = _counts(conn, start, end, db_since)
            expected = c["sites"] * n_days
            bf = api.get(f"/api/v2/backfills/{backfill['id']}")
            active = _active_runs(api)
            progress = (f"ingested {c['ingested']}/{expected} site-days | processed {c['processed']}/{expected}"
                        f" | rolled up {c['rolled_up']}/{expected} | active runs {active}")
            if progress != last:
                _print(f"  [{time.time() - t0:5.0f}s] {progress}")
                last = progress
            failed = _failed_runs(api, since)
            if failed:
                _print(f"\nFAILED runs: {failed}\nOpen {api.base} (grid view, task logs) to see why.")
                return 1
            done = (bf.get("completed_at") is not None and c["processed"] == expected
                    and c["rolled_up"] == expected and active == 0)
            if done:
                break
            idle = idle + 1 if bf.get("completed_at") is not None and active == 0 else 0
            if idle >= 2:  # nothing running but work pending: run the sweep now, not at :00/:30
                dag_id = "flare_process" if c["processed"] < expected else "emissions_rollup"
                api.post(f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": {}})
                _print(f"  pending work and no active run: triggered a {dag_id} sweep run")
                idle = 0
            if time.time() > deadline:
                _print(f"\nTimed out after {args.timeout} s; open {api.base} to see where it is.")
                return 1
            time.sleep(3)
        _print(f"\n[4/4] Done in {time.time() - t0:.0f} s: {c['detections']} flare detections, "
               f"{c['emissions']} emission estimates.")
        print_summary(conn, start, end)
        _print_calibration(api, conn, calibration_run)
    finally:
        conn.close()
    pw = _localstack().airflow_password(paths)
    _print(f"""
Where to look next:
  Airflow UI   {api.base}   login: admin / {pw}
  SQL          make psql    (e.g. echo 'SELECT * FROM v_site_summary' | make psql)
  Objects      s3://processed/tiles/date=<day>/site=<site>/annotated.png  (S3 API at
               {endpoints['s3']}, files under {paths.s3})
  Stop         make down""")
    return 0


def cmd_psql(args) -> int:
    from pathlib import Path

    paths = _localstack().StackPaths.default()
    dsn = _localstack().results_db_dsn(paths)
    psql = None
    try:
        import warnings

        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # platformdirs, via pgserver
        import pgserver.postgres_server as ps

        cand = Path(ps.POSTGRES_BIN_PATH) / "psql"
        psql = str(cand) if cand.exists() else None
    except ImportError:
        pass
    psql = psql or "psql"
    argv = [psql, dsn, "-v", "ON_ERROR_STOP=1"]
    if not sys.stdin.isatty():
        argv += ["-f", "-"]
    os.execvp(argv[0], argv + list(args.psql_args or []))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="flarewatch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up").set_defaults(fn=cmd_up)
    sub.add_parser("down").set_defaults(fn=cmd_down)
    sub.add_parser("status").set_defaults(fn=cmd_status)
    sub.add_parser("env").set_defaults(fn=cmd_env)
    m = sub.add_parser("migrate")
    m.add_argument("--dsn", help="libpq DSN/URI of the results DB (default: AIRFLOW_CONN_FLAREWATCH_DB / local stack)")
    m.add_argument("--seed-sites", action="store_true", help="upsert the sites seed file into `sites`")
    m.add_argument("--sites-file", help="sites CSV (default: the packaged demo sites)")
    m.set_defaults(fn=cmd_migrate)
    d = sub.add_parser("demo")
    d.add_argument("--start", type=date.fromisoformat, default=DEMO_START, help="first acquisition date")
    d.add_argument("--days", type=int, default=DEMO_DAYS, help="number of acquisition days")
    d.add_argument("--timeout", type=int, default=1200, help="seconds to wait for the pipeline")
    d.set_defaults(fn=cmd_demo)
    s = sub.add_parser("summary")
    s.add_argument("--start", type=date.fromisoformat, default=DEMO_START)
    s.add_argument("--end", type=date.fromisoformat, default=None)
    s.set_defaults(fn=cmd_summary)
    q = sub.add_parser("psql")
    q.add_argument("psql_args", nargs=argparse.REMAINDER)
    q.set_defaults(fn=cmd_psql)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"flarewatch {args.cmd}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
