"""The bodies of the DAGs' tasks: each opens its clients, calls the pipeline step, closes them.

DAG files in ``dags/`` only wire these together; everything a task does (reading params and
asset events, opening S3 and the results database, loops over site-days, error collection) is
here, where it can be read and tested without a scheduler. Functions take the Airflow task
context (``get_current_context()``) when they need params, events or the run id.

Imported inside the tasks, never at DAG parse time: the modules it imports are imported inside
the functions so that even a parse-time import of this file stays light.
"""

from __future__ import annotations

import logging

from airflow.sdk import Asset

from flarewatch.orchestration.connections import results_db, s3_client, settings
from flarewatch.orchestration.dates import (
    date_range,
    days_from_events,
    parse_day,
    run_acquisition_date,
)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------
# flare_ingest
# ------------------------------------------------------------------------------------------
def plan_ingest(context) -> tuple[dict[str, list[dict]], dict]:
    """(items per provider lane, run summary) for the run's acquisition date and sites."""
    from flarewatch.ingest.sources import plan_lanes
    from flarewatch.store import db

    day = run_acquisition_date(context).isoformat()
    cfg = settings()
    with results_db(cfg) as conn:
        sites = db.fetch_sites(conn, context["params"].get("site_ids") or None)
    lanes = {lane: [{"site_id": sid, "acquisition_date": day} for sid in ids]
             for lane, ids in plan_lanes(sites, cfg).items()}
    return lanes, {"days": [day] if sites else [], "site_ids": sorted(s.site_id for s in sites)}


def lane_items(lanes: dict, lane: str) -> list[dict]:
    """The items of one provider lane; skips the lane (and its ingest task) when it has none."""
    from airflow.sdk.exceptions import AirflowSkipException

    items = lanes.get(lane) or []
    if not items:
        raise AirflowSkipException(f"no site uses lane {lane}")
    return items


def ingest_event(summary: dict) -> dict:
    """The ``extra`` of the ``flarewatch_raw_scenes`` event; skipped when no site was active."""
    from airflow.sdk.exceptions import AirflowSkipException

    if not summary.get("site_ids"):
        raise AirflowSkipException("no active site to ingest")
    return {"days": sorted(summary["days"]), "site_ids": sorted(summary["site_ids"])}


def ingest_item(item: dict, lane: str) -> dict:
    """Fetch one site-day through one provider lane into ``rawdata`` (``ingest.site_day``)."""
    from flarewatch.ingest.site_day import ingest_site_day
    from flarewatch.ingest.sources import INGEST_LANES, build_source
    from flarewatch.store import db
    from flarewatch.store import objects as storage

    sensors = next(x.sensors for x in INGEST_LANES if x.lane == lane)
    cfg = settings()
    with results_db(cfg) as conn:
        found = db.fetch_sites(conn, [item["site_id"]])
        if not found:
            raise LookupError(f"site {item['site_id']} is not in the sites table")
        s3 = s3_client(cfg)
        source = build_source(cfg, raw_store=storage.RawStore(s3, cfg.raw_bucket))
        return ingest_site_day(found[0], parse_day(item["acquisition_date"]), source, s3, conn, cfg, sensors=sensors)


# ------------------------------------------------------------------------------------------
# flare_process
# ------------------------------------------------------------------------------------------
def plan_process(context, raw_scenes: Asset) -> list[dict]:
    """Batches of site-days to process: a manual day, or the triggering events' days plus any
    site-day ingested and not processed since (an empty sweep plans nothing)."""
    from flarewatch.process.batch import batch_site_days
    from flarewatch.store import db, processing

    params = context["params"]
    cfg = settings()
    with results_db(cfg) as conn:
        if params.get("acquisition_date"):  # manual (re)processing of one day
            day = parse_day(params["acquisition_date"])
            site_days = set(db.scene_site_days(conn, [day]))
            if not site_days:
                raise ValueError(f"no scenes ingested for {day}; run flare_ingest for that date first")
        else:
            site_days = set(db.scene_site_days(conn, days_from_events(context, raw_scenes)))
            site_days |= set(db.pending_site_days(conn))
        # site-days that processing gave up on wait for `flarewatch requeue` (or a new ingest)
        given_up = {(r["site_id"], r["acquisition_date"]) for r in
                    processing.failed_site_days(conn, days=sorted({d for _, d in site_days}))}
    for site_id, day in sorted(given_up & site_days, key=lambda x: (x[1], x[0])):
        log.warning("%s %s left out: processing gave up on it after its attempts; re-queue it with "
                    "`flarewatch requeue --date %s --site %s`", site_id, day, day, site_id)
    site_days -= given_up
    wanted = set(params.get("site_ids") or [])
    return batch_site_days([(s, d) for s, d in site_days if not wanted or s in wanted], cfg.process_batch)


def process_batch(batch: dict) -> dict:
    """Process one batch of site-days (``process.batch.process_batch``) with the task's clients."""
    from airflow.sdk.exceptions import AirflowFailException

    from flarewatch.process.batch import BatchFailed
    from flarewatch.process.batch import process_batch as run

    cfg = settings()
    with results_db(cfg) as conn:
        try:
            return run(conn, s3_client(cfg), cfg, parse_day(batch["acquisition_date"]), list(batch["site_ids"]))
        except BatchFailed as exc:
            if exc.permanent:  # every failed site-day used up its attempts: a retry cannot help
                raise AirflowFailException(str(exc)) from exc
            raise


def batch_label(batch: dict) -> str:
    """How the grid labels a mapped process task: ``<day> <site>,<site>,...``."""
    return f"{batch['acquisition_date']} {','.join(batch['site_ids'])}"


def summarise_days(results: list[dict]) -> dict:
    """The ``extra`` of the ``flarewatch_flare_emissions`` event: the days written and the detections."""
    results = list(results or [])
    return {"days": sorted({r["acquisition_date"] for r in results}),
            "n_detections": sum(r["n_detections"] for r in results)}


# ------------------------------------------------------------------------------------------
# emissions_rollup
# ------------------------------------------------------------------------------------------
def refresh_rollups(context, flare_emissions: Asset) -> dict:
    """Recompute the daily and monthly rollups of a manual range, or of the events' days plus any
    day processed after its last rollup. First the days' processed site-days are audited
    (``process.audit``: rows, result.json and GeoJSON agree); a disagreement fails the task before
    anything is published (retried: a site-day being rewritten at that moment heals)."""
    from botocore.exceptions import BotoCoreError

    from flarewatch.process.audit import audit_site_days
    from flarewatch.store import db

    params = context["params"]
    if params.get("start_date"):
        start = parse_day(params["start_date"])
        days = date_range(start, parse_day(params.get("end_date") or start))
    else:
        days = days_from_events(context, flare_emissions)
    cfg = settings()
    with results_db(cfg) as conn:
        if not params.get("start_date"):
            days = sorted(set(days) | set(db.stale_rollup_days(conn)))
        audit = {"checked": 0, "problems": [], "unrecorded": 0}
        if days:
            try:
                audit = audit_site_days(conn, s3_client(cfg), cfg, min(days), max(days), days)
            except BotoCoreError as exc:  # S3 unreachable: the rows are still the truth; say so
                log.warning("audit skipped, S3 unreachable (%s): publishing the database's rows unaudited", exc)
                audit["skipped"] = str(exc)[:500]
        if audit["problems"]:
            raise RuntimeError(f"{len(audit['problems'])} site-day(s) disagree between the database, result.json and "
                               "detections.geojson; nothing published: " + "; ".join(audit["problems"][:20]))
        counts = db.refresh_rollups(conn, days)
    log.info("audited %d processed site-days: no disagreement", audit["checked"])
    return {"days": [d.isoformat() for d in days], **counts, "audited_site_days": audit["checked"],
            **({"audit_skipped": audit["skipped"]} if "skipped" in audit else {})}


def publish_day_layers(rollup: dict) -> dict:
    """The merged GIS layers of the rolled-up days and their months (``process.layers``); a task of
    its own so that an S3 outage fails it (visibly, retried) without holding back the rollup."""
    from flarewatch.process.layers import publish_layers

    cfg = settings()
    with results_db(cfg) as conn:
        out = publish_layers(conn, s3_client(cfg), cfg, [parse_day(d) for d in rollup["days"]])
    log.info("%d GIS layers written", len(out["layers"]))
    return {"layers": len(out["layers"])}


# ------------------------------------------------------------------------------------------
# emissions_analytics
# ------------------------------------------------------------------------------------------
def analytics_months(context, emission_rollups: Asset) -> list:
    """Months to refresh: a manual ``month`` (YYYY-MM) or ``start_month`` .. ``end_month``, else
    the months of the rollup events' days, else (the daily run, e.g. after a calibration import)
    the month of the latest acquisition date and the one before it (from the data, not the clock)."""
    from datetime import timedelta


    params = context["params"]
    if params.get("month") or params.get("start_month"):
        first = parse_day(f"{params.get('month') or params['start_month']}-01")
        last = parse_day(f"{params.get('end_month') or params.get('month') or params['start_month']}-01")
        if last < first:
            raise ValueError(f"end_month {last:%Y-%m} is before start_month {first:%Y-%m}")
        months, m = [], first
        while m <= last:
            months.append(m)
            m = (m + timedelta(days=32)).replace(day=1)
        if len(months) > 24:
            raise ValueError(f"{len(months)} months asked for; refresh at most 24 at a time")
        return months
    days = days_from_events(context, emission_rollups)
    if days:
        return sorted({d.replace(day=1) for d in days})
    with results_db() as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT max(day) FROM emissions_daily")
            latest = cur.fetchone()[0]
        conn.commit()
    if latest is None:
        return []
    return sorted({latest.replace(day=1), (latest.replace(day=1) - timedelta(days=1)).replace(day=1)})


def refresh_analytics(context, emission_rollups: Asset) -> dict:
    """Gap-aware estimates, KPIs, alerts and the reconciliation of the months (``analytics.refresh``)."""
    from flarewatch.analytics.refresh import refresh_analytics as run

    months = analytics_months(context, emission_rollups)
    cfg = settings()
    with results_db(cfg) as conn:
        counts = run(conn, cfg, months)
    log.info("analytics refreshed: %s", counts)
    return counts


# ------------------------------------------------------------------------------------------
# calibration_import
# ------------------------------------------------------------------------------------------
def plan_calibration_files(params: dict) -> list[dict]:
    """The files to import: a manual ``s3_key`` or ``path``, else the objects under
    ``calibration/`` that were not imported yet."""
    from flarewatch.meters import importer
    from flarewatch.meters.formats import normalize_version

    fmt = params.get("format") or "auto"
    s3_key, path = (params.get("s3_key") or "").strip(), (params.get("path") or "").strip()
    version = (params.get("report_version") or "").strip() or None
    if s3_key and path:
        raise ValueError("give either s3_key or path, not both")
    if version and not (s3_key or path):
        raise ValueError("report_version applies to one file: give s3_key or path with it")
    if version and normalize_version(version) is None:
        raise ValueError(f"report_version {version!r} is not a timestamp or date (e.g. 2021-05-03)")
    cfg = settings()
    if s3_key:
        bucket, key = importer.parse_s3_uri(s3_key, cfg.raw_bucket)
        return [{"bucket": bucket, "key": key, "format": fmt, "force": True, "label": key, "report_version": version}]
    if path:
        return [{"path": path, "format": fmt, "label": path, "report_version": version}]
    objects = importer.list_calibration_objects(s3_client(cfg), cfg.raw_bucket)
    with results_db(cfg) as conn:
        todo = importer.new_objects(conn, cfg.raw_bucket, objects)
    log.info("%d objects under s3://%s/%s, %d not imported yet", len(objects), cfg.raw_bucket,
             importer.CALIBRATION_PREFIX, len(todo))
    return [{"bucket": cfg.raw_bucket, "key": o["key"], "format": fmt, "force": False, "label": o["key"]}
            for o in todo]


def import_calibration_file(item: dict) -> dict:
    """Import one file; a file that cannot be read fails the task without retries (retrying
    cannot fix it)."""
    from airflow.sdk.exceptions import AirflowFailException

    from flarewatch.meters import importer
    from flarewatch.meters.formats import CalibrationFileError

    cfg = settings()
    with results_db(cfg) as conn:
        try:
            if "path" in item:
                summary = importer.import_path(conn, item["path"], fmt=item["format"],
                                               report_version=item.get("report_version"))
            else:
                summary = importer.import_s3_object(conn, s3_client(cfg), item["bucket"], item["key"],
                                                    fmt=item["format"], force=item["force"],
                                                    report_version=item.get("report_version"))
        except (CalibrationFileError, FileNotFoundError) as exc:
            raise AirflowFailException(str(exc)) from exc
    log.info("%s", importer.format_summary(summary))
    return summary


def calibration_report(summaries: list[dict]) -> dict:
    """Totals of a calibration import run: rows, versions not applied, the quarantined rows by
    reason and the quarantined volume (thousand m3) by reason and per source / operator / reason."""
    summaries = list(summaries)
    done = [s for s in summaries if not s.get("skipped")]
    totals = {
        "files": len(summaries),
        "skipped": len(summaries) - len(done),
        **{k: sum(s.get(k, 0) for s in done) for k in ("rows", "inserted", "updated", "unchanged",
                                                        "older_not_applied", "superseded_in_file", "quarantined")},
    }
    by_reason: dict[str, int] = {}
    volume_by_reason: dict[str, float] = {}
    groups: dict[tuple, list] = {}
    file_volume = quarantined = 0.0
    for s in done:
        for kind, n in s["by_reason"].items():
            by_reason[kind] = by_reason.get(kind, 0) + n
        qv = s.get("quarantined_volume") or {}
        file_volume += qv.get("file_volume_kscm", 0.0)
        quarantined += qv.get("volume_kscm", 0.0)
        for kind, v in qv.get("by_reason_kscm", {}).items():
            volume_by_reason[kind] = volume_by_reason.get(kind, 0.0) + v
        for g in qv.get("by_operator_and_reason", []):
            acc = groups.setdefault((g["source"], g["operator"], g["kind"]), [0, 0.0])
            acc[0] += g["rows"]
            acc[1] += g["volume_kscm"]
    totals["by_reason"] = dict(sorted(by_reason.items()))
    totals["quarantined_volume"] = {
        "volume_kscm": round(quarantined, 6),
        "percent_of_file_volume": round(100 * quarantined / file_volume, 3) if file_volume else None,
        "by_reason_kscm": {k: round(v, 6) for k, v in sorted(volume_by_reason.items())},
        "by_operator_and_reason": [
            {"source": src, "operator": op, "kind": kind, "rows": n, "volume_kscm": round(v, 6)}
            for (src, op, kind), (n, v) in sorted(groups.items(), key=lambda kv: -kv[1][1])[:50]],
    }
    log.info("calibration import: %s", totals)
    return totals


# ------------------------------------------------------------------------------------------
# detector_retrain and regressor_retrain: one task set for both models
# ------------------------------------------------------------------------------------------
RETRAINABLE = ("detector", "regressor")


def _check_model(model: str) -> None:
    if model not in RETRAINABLE:
        raise ValueError(f"unknown model {model!r}; expected one of {RETRAINABLE}")


def train_challenger(model: str, context) -> dict:
    """Train, score and register a challenger for ``model`` (``training.detector`` or ``training.regressor``)."""
    _check_model(model)
    params, run_id = dict(context["params"]), context["dag_run"].run_id
    cfg = settings()
    with results_db(cfg) as conn:
        if model == "detector":
            from flarewatch.training.detector import train_challenger as run

            return run(conn, s3_client(cfg), cfg, params, run_id=run_id)
        from flarewatch.training.regressor import train_challenger as run

        return run(conn, s3_client(cfg), cfg, params=params, run_id=run_id)


def promote(model: str, result: dict) -> dict:
    """The promotion gate of ``model`` on the challenger ``result["version"]``; the decision is
    stored on the version's row either way."""
    _check_model(model)
    with results_db() as conn:
        if model == "detector":
            from flarewatch.store import registry

            decision = registry.decide_and_promote(conn, "detector", result["version"], "f1")
        else:
            from flarewatch.training.regressor import promote as gate

            decision = gate(conn, result["version"])
    return {"version": result["version"], "promoted": decision.promote, "reason": decision.reason}


def backfill_volumes(decision: dict, params: dict) -> dict:
    """Re-estimate ``backfill_start``..``backfill_end`` with the newly promoted regressor; skipped
    (with the reason) when no range is given or the challenger was not promoted."""
    from airflow.sdk.exceptions import AirflowSkipException

    from flarewatch.estimate.deployed import production_regressor
    from flarewatch.training.regressor import backfill_volumes as run

    if not params.get("backfill_start"):
        raise AirflowSkipException("no backfill_start given")
    if not decision["promoted"]:
        raise AirflowSkipException(f"v{decision['version']} was not promoted: {decision['reason']}")
    start = parse_day(params["backfill_start"])
    end = parse_day(params.get("backfill_end") or start)
    cfg = settings()
    with results_db(cfg) as conn:
        model, version = production_regressor(conn, s3_client(cfg), cfg)
        if model is None or version != f"regressor-v{decision['version']}":
            raise RuntimeError(f"the champion is {version}, not the promoted v{decision['version']}")
        return run(conn, model, cfg, start, end)


# ------------------------------------------------------------------------------------------
# emissions_report
# ------------------------------------------------------------------------------------------
def plan_reports(context, emission_analytics: Asset) -> list[dict]:
    """The reports to make, one item per month and group: a manual ``month`` (YYYY-MM), else the
    months of the analytics events, else the latest month with estimates; ``level`` and ``value``
    (empty: all) pick the groups."""
    from flarewatch.reports.data import latest_month, list_groups

    params = context["params"]
    level, value = (params.get("level") or "").strip() or None, (params.get("value") or "").strip() or None
    with results_db() as conn:
        if params.get("month"):
            months = [parse_day(f"{params['month']}-01")]
        else:
            months = sorted({d.replace(day=1) for d in days_from_events(context, emission_analytics, key="months")})
            if not months:
                latest = latest_month(conn)
                months = [latest] if latest else []
        items = [{"month": m.isoformat(), "level": lv, "value": v}
                 for m in months for lv, v in list_groups(conn, m, level, value if len(months) == 1 else None)
                 if not value or v == value]
    if not items:
        log.warning("no report to make: no estimates for %s (run emissions_analytics first)", months)
    return items


def report_label(item: dict) -> str:
    """How the grid labels a mapped report task: ``<YYYY-MM> <level>=<value>``."""
    return f"{item['month'][:7]} {item['level']}={item['value']}"


def make_report(item: dict) -> dict:
    """Render one group's report and write what changed to ``s3://processed/reports/...``."""
    from flarewatch.reports.publish import publish_month

    cfg = settings()
    with results_db(cfg) as conn:
        [done] = publish_month(conn, s3_client(cfg), cfg, parse_day(item["month"]), item["level"], item["value"])
    return done


def summarise_reports(results: list[dict]) -> dict:
    """Reports made, objects written (0 on a rerun over the same data) and where they are."""
    results = list(results or [])
    summary = {"reports": len(results), "objects_written": sum(len(r["written"]) for r in results),
               "prefixes": sorted(r["prefix"] for r in results)}
    log.info("reports: %d, objects written: %d", summary["reports"], summary["objects_written"])
    return summary
