"""``flarewatch`` command line: local stack, migrations, the demo, summaries.

    flarewatch up | down | status          start (and heal) / stop / show the local stack
    flarewatch migrate [--seed-sites]      apply sql/ migrations to the results DB
    flarewatch demo [--start D --days N]   run the daily pipeline over a date range under Airflow
    flarewatch summary [--start D --end D] per-site table from the results DB
    flarewatch psql [--analyst] [-- PSQL_ARGS]
                                           psql on the results DB (reads SQL from stdin when piped);
                                           --analyst: as the read-only role flarewatch_analyst
    flarewatch env [--show-secrets]        export lines for running `airflow ...` against the stack
    flarewatch detect FILE_OR_DIR... [--out results.jsonl]
                                           flares in local GeoTIFFs, one JSON line per detection
    flarewatch failed [--start D --end D]  site-days that processing gave up on, with their error
    flarewatch requeue --date D [--end D] [--site S ...]
                                           put failed site-days back into the pending set
    flarewatch audit --start D [--end D]   database, result.json and GeoJSON of processed site-days agree
    flarewatch alerts [--status S] [--site S]   alerts (open, acknowledged, resolved)
    flarewatch ack ALERT_ID --by NAME [--resolve]   acknowledge (or resolve) an alert
    flarewatch report --month YYYY-MM [--level L] [--value V] [--out DIR]
                                           monthly PDF / Excel / CSV reports into a local folder

``migrate``, ``summary``, ``detect``, ``failed``, ``requeue``, ``audit``, ``alerts``, ``ack`` and ``report`` are runtime
commands (the Docker image runs ``flarewatch migrate``).
The others are developer commands: they live in ``flarewatch.dev`` (local stack, Airflow REST
client, demo), imported only when such a command runs, since an install may leave ``dev/`` out.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import sys
from datetime import date, timedelta

from flarewatch.store import db
from flarewatch.store.seed import migrate_and_seed
from flarewatch.store.summary import summary_lines

DEMO_START = date(2025, 6, 1)
DEMO_DAYS = 7


def _print(msg: str = "") -> None:
    print(msg, flush=True)


class DevToolsMissing(RuntimeError):
    """A developer command in an install without ``flarewatch.dev`` (or without its dependencies)."""


def _dev(module: str):
    """``flarewatch.dev.<module>``, or DevToolsMissing with what is missing and where to run instead."""
    try:
        return importlib.import_module(f"flarewatch.dev.{module}")
    except ModuleNotFoundError as exc:
        name = exc.name or ""
        if name == "flarewatch.dev" or name.startswith("flarewatch.dev."):
            raise DevToolsMissing(
                "this is a developer command and this flarewatch install has no developer tools (flarewatch.dev: "
                "local stack, Airflow REST client, demo; the Docker image leaves them out). Run it from a source "
                "checkout (make up, make demo). `flarewatch migrate` and `flarewatch summary` work in any install "
                "(results DB from --dsn, FLAREWATCH_DB_URL or AIRFLOW_CONN_FLAREWATCH_DB).") from exc
        if name.split(".")[0] == "airflow_client":
            raise DevToolsMissing("the Airflow REST client is not installed: pip install apache-airflow-client "
                                  "(pinned in requirements.txt; `make venv` installs it)") from exc
        raise


# ------------------------------------------------------------------------------------------
# runtime commands
# ------------------------------------------------------------------------------------------
def cmd_migrate(args) -> int:
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
        try:
            localstack = _dev("localstack")
        except DevToolsMissing as exc:
            raise RuntimeError("no results DB given: set AIRFLOW_CONN_FLAREWATCH_DB or FLAREWATCH_DB_URL (the local "
                               "stack's DB is the default only where flarewatch.dev is installed)") from exc
        return localstack.results_db_dsn(localstack.StackPaths.default())
    if raw.lstrip().startswith("{"):
        c = json.loads(raw)
        parts = {"host": c.get("host"), "port": c.get("port"), "user": c.get("login"),
                 "password": c.get("password"), "dbname": c.get("schema")}
        return " ".join(f"{k}={shlex.quote(str(v))}" for k, v in parts.items() if v not in (None, ""))
    return raw.replace("postgres://", "postgresql://", 1)


def cmd_summary(args) -> int:
    conn = db.connect(_dsn_from_airflow_conn())
    try:
        end = args.end or (args.start + timedelta(days=DEMO_DAYS - 1))
        for line in summary_lines(conn, args.start, end):
            _print(line)
    finally:
        conn.close()
    return 0


def cmd_detect(args) -> int:
    """``flarewatch detect``: ``process.files.detect_files``; records to --out as they come, errors to stderr."""
    import contextlib

    from flarewatch.process.files import detect_files

    failures = []

    def on_error(path, exc) -> None:
        failures.append(path)
        print(f"flarewatch detect: error: {path}: {exc}", file=sys.stderr, flush=True)

    to_stdout = args.out in (None, "-")
    out = sys.stdout if to_stdout else open(args.out, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    n = 0
    try:
        # anything a library prints goes to stderr: stdout may be the JSON lines
        with contextlib.redirect_stdout(sys.stderr):
            for record in detect_files(args.paths, acquired=args.acquired, sun_zenith=args.sun_zenith,
                                       spacecraft=args.spacecraft, recursive=args.recursive, on_error=on_error):
                out.write(json.dumps(record) + "\n")
                out.flush()
                n += 1
    finally:
        if not to_stdout:
            out.close()
    print(f"flarewatch detect: {n} detection(s); {len(failures)} input(s) failed", file=sys.stderr)
    return 1 if failures else 0


def cmd_failed(args) -> int:
    from flarewatch.store import processing

    conn = db.connect(_dsn_from_airflow_conn())
    try:
        rows = [r for r in processing.failed_site_days(conn)
                if (args.start is None or r["acquisition_date"] >= args.start)
                and (args.end is None or r["acquisition_date"] <= args.end)]
    finally:
        conn.close()
    for r in rows:
        _print(f"{r['site_id']:16s} {r['acquisition_date']}  {r['attempts']} attempts, last "
               f"{r['last_attempt_at']:%Y-%m-%d %H:%M} UTC: {r['last_error']}")
    _print(f"{len(rows)} failed site-day(s)" + (": `flarewatch requeue --date D --site S` puts one back" if rows else ""))
    return 0


def cmd_requeue(args) -> int:
    from flarewatch.store import processing

    end = args.end or args.date
    if end < args.date:
        raise ValueError(f"--end {end} is before --date {args.date}")
    conn = db.connect(_dsn_from_airflow_conn())
    try:
        days = [args.date + timedelta(days=i) for i in range((end - args.date).days + 1)]
        failed = processing.failed_site_days(conn, args.site or None, days)
        done = processing.requeue(conn, [(r["site_id"], r["acquisition_date"]) for r in failed],
                                  by=args.by or os.environ.get("USER") or "cli")
    finally:
        conn.close()
    for site_id, day in done:
        _print(f"re-queued {site_id} {day}")
    _print(f"{len(done)} site-day(s) re-queued; the next flare_process run (event or 30-minute sweep) processes them"
           if done else "nothing to re-queue: no failed site-day matches (see `flarewatch failed`)")
    return 0


def cmd_audit(args) -> int:
    from flarewatch.config import Settings
    from flarewatch.process.audit import audit_site_days

    if not os.environ.get("AIRFLOW_CONN_FLAREWATCH_S3"):  # the local stack's S3 server
        try:
            os.environ["AIRFLOW_CONN_FLAREWATCH_S3"] = _dev("localstack").stack_env()["AIRFLOW_CONN_FLAREWATCH_S3"]
        except DevToolsMissing as exc:
            raise RuntimeError("no S3 connection: set AIRFLOW_CONN_FLAREWATCH_S3") from exc
    from flarewatch.orchestration.connections import s3_client

    cfg = Settings.from_env()
    conn = db.connect(_dsn_from_airflow_conn())
    try:
        report = audit_site_days(conn, s3_client(cfg), cfg, args.start, args.end or args.start)
    finally:
        conn.close()
    for problem in report["problems"]:
        _print(problem)
    _print(f"{report['checked']} processed site-day(s) checked, {len(report['problems'])} problem(s)"
           + (f"; {report['unrecorded']} site-day(s) with rows from before processing records (not checked)"
              if report["unrecorded"] else ""))
    return 1 if report["problems"] else 0


def cmd_alerts(args) -> int:
    from flarewatch.store import alerts

    conn = db.connect(_dsn_from_airflow_conn())
    try:
        rows = alerts.list_alerts(conn, None if args.status == "all" else args.status, args.site, args.limit)
    finally:
        conn.close()
    for a in rows:
        who = f" by {a['acknowledged_by']}" if a["acknowledged_by"] else ""
        _print(f"#{a['alert_id']:<6d} {a['status']:12s}{who:>14s} {a['severity']:8s} {a['kind']:20s} {a['site_id']:16s} "
               f"{a['period_start']}..{a['period_end']}  {a['message']}")
    _print(f"{len(rows)} alert(s)")
    return 0


def cmd_ack(args) -> int:
    from flarewatch.store import alerts

    conn = db.connect(_dsn_from_airflow_conn())
    try:
        try:
            done = alerts.acknowledge(conn, args.alert_id, args.by or os.environ.get("USER") or "cli",
                                      resolve=args.resolve)
        except LookupError as exc:
            print(f"flarewatch ack: error: {exc}", file=sys.stderr)
            return 1
    finally:
        conn.close()
    _print(f"alert #{done['alert_id']} {done['status']}" + ("" if done["changed"] else " already (unchanged)"))
    return 0


# ------------------------------------------------------------------------------------------
# flarewatch report: monthly reports into a local folder (flarewatch.reports)
# ------------------------------------------------------------------------------------------
def cmd_report(args) -> int:
    from pathlib import Path

    from flarewatch.config import Settings
    from flarewatch.reports.publish import write_local

    month = date.fromisoformat(f"{args.month}-01") if len(args.month) == 7 else None
    if month is None:
        raise ValueError(f"--month must be YYYY-MM, got {args.month!r}")
    conn = db.connect(_dsn_from_airflow_conn())
    try:
        done = write_local(conn, Settings.from_env(), month, Path(args.out), args.level or None,
                           args.value or None)
    finally:
        conn.close()
    for r in done:
        _print(f"{r['level']:9s} {r['value']:40s} {r['folder']}  ({', '.join(r['files'])}; {r['seconds']:.1f} s)")
    _print(f"{len(done)} report(s) for {args.month}" if done else
           f"no report: no estimates for {args.month} (run emissions_analytics first)")
    return 0 if done else 1


def add_report_parser(sub) -> None:
    rp = sub.add_parser("report", help="monthly PDF / Excel / CSV reports of a group into a local folder")
    rp.add_argument("--month", required=True, help="YYYY-MM")
    rp.add_argument("--level", choices=("operator", "field", "country", ""), default="",
                    help="operator, field or country (default: all three)")
    rp.add_argument("--value", default="", help="the group's name, e.g. an operator (default: every group)")
    rp.add_argument("--out", default=".state/reports", help="folder; a report goes to OUT/month=YYYY-MM/<level>=<name>/")
    rp.set_defaults(fn=cmd_report)


# ------------------------------------------------------------------------------------------
# developer commands (flarewatch.dev)
# ------------------------------------------------------------------------------------------
def cmd_up(args) -> int:
    localstack = _dev("localstack")
    _print("Starting the FlareWatch local stack:")
    localstack.up(log=_print)
    return 0


def cmd_down(args) -> int:
    localstack = _dev("localstack")
    _print("Stopping the FlareWatch local stack:")
    localstack.down(log=_print)
    return 0


def cmd_status(args) -> int:
    """Each component up or down; for one that is down, why and its last log lines. Exit 3 if any is down."""
    states = _dev("localstack").status()
    for st in states.values():
        if st.up:
            _print(f"  {st.name:14s} up (pid {st.pid})")
            continue
        pid = f"pid {st.pid}, " if st.pid else ""
        _print(f"  {st.name:14s} DOWN ({pid}{st.problem or 'not running'})")
        if st.log_tail:
            _print(f"      last lines of {st.log}:")
            for line in st.log_tail:
                _print(f"      | {line}")
    down = [st.name for st in states.values() if not st.up]
    _print(f"  {len(states) - len(down)}/{len(states)} up" + (f"; down: {', '.join(down)} (`make up` restarts them)"
                                                              if down else ""))
    return 3 if down else 0


MASK = "****"


def cmd_env(args) -> int:
    """``export`` lines for the stack's environment; secrets masked unless --show-secrets."""
    localstack = _dev("localstack")
    paths = localstack.StackPaths.default()
    env = localstack.stack_env(paths)
    hidden = [] if args.show_secrets else localstack.secret_values(paths)
    if hidden:
        _print(f"# secrets masked as {MASK}: `make env SHOW_SECRETS=1` (flarewatch env --show-secrets) prints them")
    for k, v in env.items():
        for secret in hidden:
            v = v.replace(secret, MASK)
        _print(f"export {k}={shlex.quote(v)}")
    password = localstack.airflow_password(paths) or localstack.ensure_secrets(paths)["airflow_admin_password"]
    _print(f"# Airflow UI login: admin / {MASK if hidden else password}")
    return 0


def cmd_demo(args) -> int:
    return _dev("demo").run_demo(args.start, args.days, args.timeout, log=_print)


def cmd_psql(args) -> int:
    extra = args.psql_args[1:] if args.psql_args[:1] == ["--"] else args.psql_args
    argv = _dev("localstack").psql_argv(extra=extra, stdin_is_tty=sys.stdin.isatty(), analyst=args.analyst)
    os.execvp(argv[0], argv)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="flarewatch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up").set_defaults(fn=cmd_up)
    sub.add_parser("down").set_defaults(fn=cmd_down)
    sub.add_parser("status").set_defaults(fn=cmd_status)
    e = sub.add_parser("env", help="export lines for the local stack (secrets masked unless --show-secrets)")
    e.add_argument("--show-secrets", action="store_true", help="print the secrets instead of masking them")
    e.set_defaults(fn=cmd_env)
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
    t = sub.add_parser("detect", help="detect flares in local Sentinel-2 GeoTIFFs (B8A, B11, B12)",
                       description="One JSON line per detection (README, 'Detecting flares in files'). Tags read: "
                       "ACQUIRED_AT / acquisition_datetime / datetime, SUN_ZENITH_DEG / sun_zenith / sun_elevation, "
                       "SPACECRAFT / platform; options given here win over the tags.")
    t.add_argument("paths", nargs="+", metavar="FILE_OR_DIR", help="GeoTIFF files or directories of *.tif / *.tiff")
    t.add_argument("--out", default=None, help="JSON-lines output file ('-' or none: stdout)")
    t.add_argument("--acquired", default=None, metavar="ISO", help="acquisition time for every file (ISO 8601)")
    t.add_argument("--sun-zenith", type=float, default=None, metavar="DEG", help="sun zenith angle for every file")
    t.add_argument("--spacecraft", default=None, metavar="NAME", help="Sentinel-2A, Sentinel-2B, S2B, ...")
    t.add_argument("--recursive", action="store_true", help="also look in sub-directories of a directory given")
    t.set_defaults(fn=cmd_detect)
    f = sub.add_parser("failed", help="site-days that processing gave up on")
    f.add_argument("--start", type=date.fromisoformat, default=None)
    f.add_argument("--end", type=date.fromisoformat, default=None)
    f.set_defaults(fn=cmd_failed)
    r = sub.add_parser("requeue", help="put failed site-days back into the pending set")
    r.add_argument("--date", type=date.fromisoformat, required=True, help="acquisition date (first of a range)")
    r.add_argument("--end", type=date.fromisoformat, default=None, help="last acquisition date of a range")
    r.add_argument("--site", action="append", default=[], help="site id (repeatable); default: every failed site")
    r.add_argument("--by", default=None, help="who re-queues (default: $USER)")
    r.set_defaults(fn=cmd_requeue)
    a = sub.add_parser("audit", help="check that rows, result.json and GeoJSON of processed site-days agree")
    a.add_argument("--start", type=date.fromisoformat, required=True)
    a.add_argument("--end", type=date.fromisoformat, default=None)
    a.set_defaults(fn=cmd_audit)
    al = sub.add_parser("alerts", help="list alerts")
    al.add_argument("--status", choices=("open", "acknowledged", "resolved", "all"), default="open")
    al.add_argument("--site", default=None)
    al.add_argument("--limit", type=int, default=200)
    al.set_defaults(fn=cmd_alerts)
    ak = sub.add_parser("ack", help="acknowledge (or --resolve) an alert")
    ak.add_argument("alert_id", type=int)
    ak.add_argument("--by", default=None, help="who (default: $USER)")
    ak.add_argument("--resolve", action="store_true", help="mark it resolved")
    ak.set_defaults(fn=cmd_ack)
    add_report_parser(sub)
    q = sub.add_parser("psql", help="psql on the results DB")
    q.add_argument("--analyst", action="store_true",
                   help="log in as the read-only role flarewatch_analyst (SELECT only)")
    q.add_argument("psql_args", nargs=argparse.REMAINDER, help="passed to psql (after --)")
    q.set_defaults(fn=cmd_psql)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except (RuntimeError, ValueError, FileNotFoundError) as exc:
        print(f"flarewatch {args.cmd}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
