"""``flarewatch demo``: the daily pipeline over a range of acquisition dates on the local stack.

Starts the stack (``localstack.up``), waits for the DAGs to be parsed and unpauses them, uploads
the simulated meter readings and triggers ``calibration_import``, then triggers one ``flare_ingest``
run over the demo's acquisition dates (``acquisition_start`` / ``acquisition_end``) through the
Airflow REST API (``airflow_api``) and follows the site-days in the results database
until every one is ingested, processed and rolled up. Prints the per-site table at the end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from flarewatch.config import Settings
from flarewatch.dev import localstack
from flarewatch.dev.airflow_api import AirflowApi, for_stack
from flarewatch.simulation.meters import upload_demo_calibration
from flarewatch.sites import load_sites
from flarewatch.store import db
from flarewatch.store.summary import summary_lines

PIPELINE_DAGS = ("flare_ingest", "flare_process", "emissions_rollup")
CALIBRATION_DAG = "calibration_import"
ANALYTICS_DAG = "emissions_analytics"
REPORT_DAG = "emissions_report"


def _print(msg: str = "") -> None:
    print(msg, flush=True)


def progress_counts(conn, start: date, end: date, since) -> dict:
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


def failed_runs(api: AirflowApi, since: datetime) -> list[str]:
    """``dag_id/run_id`` of the pipeline runs that failed and started at or after ``since``."""
    return [f"{dag_id}/{run_id}" for dag_id in PIPELINE_DAGS for run_id in api.run_ids(dag_id, "failed", since)]


def active_runs(api: AirflowApi) -> int:
    return sum(api.count_runs(dag_id, ["queued", "running"]) for dag_id in PIPELINE_DAGS)


def create_backfill(api: AirflowApi, start: date, end: date):  # kept for scripts; the demo triggers one range run
    """Backfill flare_ingest so acquisition days start..end run (run of day D+1 processes day D);
    runs that exist already are re-run (reprocess "completed"), which writes no duplicates."""
    return api.create_backfill("flare_ingest", start + timedelta(days=1), end + timedelta(days=1),
                               reprocess="completed", max_active_runs=4)


def _stack_s3(paths):
    """boto3 client for the local stack's S3 server."""
    import boto3

    conn_json = json.loads(localstack.stack_env(paths)["AIRFLOW_CONN_FLAREWATCH_S3"])
    return boto3.client("s3", endpoint_url=conn_json["extra"]["endpoint_url"], aws_access_key_id=conn_json["login"],
                        aws_secret_access_key=conn_json["password"], region_name="us-east-1")


def load_demo_calibration(api: AirflowApi, paths, start: date, end: date, log=_print) -> str | None:
    """Upload the simulator's meter readings (with their gaps and bad rows) and trigger calibration_import."""
    s3 = _stack_s3(paths)
    uri = upload_demo_calibration(s3, Settings.from_env(localstack.stack_env(paths)), load_sites(), start, end)
    run_id = api.trigger(CALIBRATION_DAG)
    log(f"  calibration  simulated meter readings {uri}; calibration_import run {run_id}")
    return run_id


def print_calibration(api: AirflowApi, conn, run_id: str | None, log=_print) -> None:
    if run_id is None:
        return
    state = await_run(api, CALIBRATION_DAG, run_id, 120)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT site_id) FROM calibration_measurements")
        n, n_sites = cur.fetchone()
        cur.execute("SELECT kind, count(*) FROM calibration_quarantine GROUP BY 1 ORDER BY 1")
        quarantined = cur.fetchall()
    conn.commit()
    q = ", ".join(f"{k} {v}" for k, v in quarantined) or "none"
    log(f"\nCalibration import ({state}): {n} metered periods for {n_sites} sites in calibration_measurements;"
           f" quarantined rows: {q}  (SELECT * FROM calibration_quarantine)")


def await_run(api: AirflowApi, dag_id: str, run_id: str, timeout: float) -> str | None:
    """The run's state once it is success or failed, or its last state after ``timeout`` s."""
    deadline, state = time.time() + timeout, None
    while time.time() < deadline:
        state = api.run_state(dag_id, run_id)
        if state in ("success", "failed"):
            break
        time.sleep(2)
    return state


def run_analytics(api: AirflowApi, conn, start: date, end: date, log=_print) -> bool:
    """A manual emissions_analytics run over the demo months (after the calibration import, so the
    reconciliation sees the meters); prints the monthly estimates, alerts and reconciliation."""
    months = sorted({start.replace(day=1), end.replace(day=1)})
    run_id = api.trigger(ANALYTICS_DAG, conf={"start_month": f"{months[0]:%Y-%m}", "end_month": f"{months[-1]:%Y-%m}"})
    state = await_run(api, ANALYTICS_DAG, run_id, 300)
    if state != "success":
        log(f"\nemissions_analytics run {run_id} ended {state}; open {api.base}/dags/{ANALYTICS_DAG} to see why.")
        return False
    with conn.cursor() as cur:
        cur.execute("SELECT group_value, to_char(month, 'YYYY-MM'), observed_site_days, calendar_site_days,"
                    " volume_observed_kscm, volume_estimate_kscm, volume_lo_kscm, volume_hi_kscm, co2e_t,"
                    " co2e_measured_ce_t FROM emissions_monthly_estimate WHERE group_level = 'operator'"
                    " AND month = ANY(%s) ORDER BY 2, 1", (months,))
        est = cur.fetchall()
        cur.execute("SELECT kind, count(*) FROM alerts WHERE period_start BETWEEN %s AND %s GROUP BY 1 ORDER BY 1",
                    (months[0], end))
        alerts = cur.fetchall()
        cur.execute("SELECT flag, count(*) FROM reconciliation_monthly WHERE group_level = 'site' AND month = ANY(%s)"
                    " GROUP BY 1 ORDER BY 1", (months,))
        recon = cur.fetchall()
    conn.commit()
    log("\nMonthly estimates per operator (whole calendar month; unobserved days filled; 90 % interval; CO2e at "
        "0.98 / measured 0.91 combustion efficiency):")
    log(f"{'operator':28s} {'month':7s} {'observed':>9s} {'observed 1000 m3':>16s} {'month estimate [90 %]':>30s} "
        f"{'CO2e t':>10s} {'CO2e@0.91':>10s}")
    for op, month, obs, cal, vobs, v, lo, hi, co2e, co2e_m in est:
        band = f"{v:,.0f} [{lo:,.0f}-{hi:,.0f}]" if v is not None else "no observed day"
        log(f"{op[:28]:28s} {month:7s} {obs:>4d}/{cal:<4d} {vobs:16,.0f} {band:>30s} {co2e or 0:10,.0f} "
            f"{co2e_m or 0:10,.0f}")
    log("Alerts: " + (", ".join(f"{k} {n}" for k, n in alerts) or "none")
        + "  (flarewatch alerts; flarewatch ack ID)")
    log("Reported vs observed (site-months): " + (", ".join(f"{f} {n}" for f, n in recon) or "no reports")
        + "  (SELECT * FROM reconciliation_monthly)")
    return True


def run_reports(api: AirflowApi, paths, start: date, end: date, log=_print) -> bool:
    """A manual emissions_report run per demo month (the analytics run's asset event starts one
    too: same bytes, so whichever comes second writes nothing); prints where the reports are."""
    months = sorted({start.replace(day=1), end.replace(day=1)})
    s3, bucket = _stack_s3(paths), Settings.from_env(localstack.stack_env(paths)).processed_bucket
    for month in months:
        run_id = api.trigger(REPORT_DAG, conf={"month": f"{month:%Y-%m}", "level": "", "value": ""})
        state = await_run(api, REPORT_DAG, run_id, 600)
        if state != "success":
            log(f"\nemissions_report run {run_id} ended {state}; open {api.base}/dags/{REPORT_DAG} to see why.")
            return False
        prefix = f"reports/month={month:%Y-%m}/"
        keys = sorted(o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                      for o in page.get("Contents", []))
        folders = sorted({k.rsplit("/", 1)[0] for k in keys})
        log(f"\nMonthly reports for {month:%Y-%m} ({len(folders)} groups; report.pdf, report.xlsx, daily.csv, "
            f"sites.csv, alerts.csv, reconciliation.csv in each; files under {paths.s3}/{bucket}/):")
        for folder in folders:
            log(f"  s3://{bucket}/{folder}/")
    log("  one report locally: make report MONTH=YYYY-MM LEVEL=operator VALUE=\"<operator>\" (into .state/reports/)")
    return True


def _wait_for_dags(api: AirflowApi, timeout: float) -> dict[str, bool] | None:
    """dag_id -> is_paused once the pipeline and calibration DAGs are parsed; None after ``timeout`` s."""
    deadline = time.time() + timeout
    while True:
        try:
            dags = api.dags(limit=100)
        except RuntimeError:
            dags = {}
        if set(PIPELINE_DAGS) | {CALIBRATION_DAG, ANALYTICS_DAG, REPORT_DAG} <= set(dags):
            return dags
        if time.time() > deadline:
            return None
        time.sleep(2)


def run_demo(start: date, n_days: int, timeout: float, log: Callable[[str], None] = _print) -> int:
    """The whole demo; returns the exit status (0: every site-day processed and rolled up)."""

    t0 = time.time()
    paths = localstack.StackPaths.default()
    log("FlareWatch demo: the daily flare pipeline on the embedded local stack\n")
    log("[1/4] Starting the local stack (S3 server, PostgreSQL, Airflow 3):")
    endpoints = localstack.up(paths, log=log)
    with for_stack(paths) as api:
        end = start + timedelta(days=n_days - 1)
        log("\n[2/4] Waiting for the DAGs to be parsed...")
        dags = _wait_for_dags(api, 180)
        if dags is None:
            log(f"DAGs not parsed after 180 s; see {paths.logs}/dag-processor.log")
            return 1
        for dag_id in (*PIPELINE_DAGS, CALIBRATION_DAG, ANALYTICS_DAG, REPORT_DAG):
            if dags[dag_id]:
                api.unpause(dag_id)
        log("  flare_ingest, flare_process, emissions_rollup, emissions_analytics, emissions_report, calibration_import "
            "are parsed and unpaused")
        calibration_run = load_demo_calibration(api, paths, start, end, log)

        # flare_ingest runs at 06:00 UTC for the previous day: acquisition day D is the run of D+1.
        since = datetime.now(UTC)
        conn = db.connect(localstack.results_db_dsn(paths))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT now()")
                db_since = cur.fetchone()[0]  # progress counts rows written after this, on the DB's clock
            conn.commit()
            log(f"\n[3/4] Ingesting acquisition dates {start} .. {end} ({n_days} days) with one flare_ingest run "
                f"(acquisition_start / acquisition_end)\n      under the Airflow scheduler; its asset event triggers "
                f"flare_process, which triggers emissions_rollup.")
            ingest_run = api.trigger("flare_ingest", conf={"acquisition_start": f"{start}", "acquisition_end": f"{end}"})
            log(f"  run {ingest_run}; UI: {api.base}/dags/flare_ingest")

            last = ""
            idle = 0
            deadline = time.time() + timeout
            while True:
                c = progress_counts(conn, start, end, db_since)
                expected = c["sites"] * n_days
                bf_done = api.run_state("flare_ingest", ingest_run) in ("success", "failed")
                active = active_runs(api)
                progress = (f"ingested {c['ingested']}/{expected} site-days | processed {c['processed']}/{expected}"
                            f" | rolled up {c['rolled_up']}/{expected} | active runs {active}")
                if progress != last:
                    log(f"  [{time.time() - t0:5.0f}s] {progress}")
                    last = progress
                failed = failed_runs(api, since)
                if failed:
                    log(f"\nFAILED runs: {failed}\nOpen {api.base} (grid view, task logs) to see why.")
                    return 1
                if bf_done and c["processed"] == expected and c["rolled_up"] == expected and active == 0:
                    break
                idle = idle + 1 if bf_done and active == 0 else 0
                if idle >= 2:  # nothing running but work pending: run the sweep now, not at :00/:30
                    dag_id = "flare_process" if c["processed"] < expected else "emissions_rollup"
                    api.trigger(dag_id)
                    log(f"  pending work and no active run: triggered a {dag_id} sweep run")
                    idle = 0
                if time.time() > deadline:
                    log(f"\nTimed out after {timeout} s; open {api.base} to see where it is.")
                    return 1
                time.sleep(3)
            log(f"\n[4/4] Done in {time.time() - t0:.0f} s: {c['detections']} flare detections, "
                f"{c['emissions']} emission estimates.")
            for line in summary_lines(conn, start, end):
                log(line)
            print_calibration(api, conn, calibration_run, log)
            if not run_analytics(api, conn, start, end, log):
                return 1
            if not run_reports(api, paths, start, end, log):
                return 1
        finally:
            conn.close()
        log(f"""
Where to look next:
  Airflow UI   {api.base}   login: admin; password: `make env SHOW_SECRETS=1 | tail -1`
               (kept in {paths.passwords_file}, readable by you only)
  SQL          make psql    (e.g. echo 'SELECT * FROM v_site_summary' | make psql)
  Objects      s3://processed/tiles/date=<day>/site=<site>/annotated.png  (S3 API at
               {endpoints['s3']}, files under {paths.s3})
  Stop         make down""")
    return 0
