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

from flarewatch.errors import BadParams, NothingIngested
from flarewatch.orchestration.checks import active_sites, check_map_length, fails_at_once
from flarewatch.orchestration.connections import results_db, s3_client, settings
from flarewatch.orchestration.dates import (
    date_range,
    days_from_events,
    parse_day,
    requested_acquisition_dates,
    run_acquisition_dates,
)

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------
# flare_ingest
# ------------------------------------------------------------------------------------------
@fails_at_once
def plan_ingest(context) -> tuple[dict[str, list[dict]], dict]:
    """(batches per provider lane, run summary) for the run's acquisition dates and sites.

    Each lane's site-days (by day, then site) are cut into batches sized from costs
    (``orchestration.batching``: one task for a day of a few sites, about as many tasks as can run
    at once, within the lane's pool, for a long range; at most ``FLAREWATCH_INGEST_BATCH`` site-days
    each when set)."""
    from flarewatch.ingest.sources import INGEST_LANES, plan_lanes
    from flarewatch.orchestration import batching

    days = [d.isoformat() for d in run_acquisition_dates(context)]
    cfg = settings()
    with results_db(cfg) as conn:
        sites = active_sites(conn, context["params"].get("site_ids"))
    pools = {lane.lane: lane.provider for lane in INGEST_LANES}
    lanes = {}
    for lane, ids in plan_lanes(sites, cfg).items():
        provider = pools.get(lane, "demo")
        costs = batching.INGEST_COSTS if provider == "demo" else batching.PROVIDER_INGEST_COSTS
        slots = batching.airflow_slots(batching.pool_slots(provider))
        lanes[lane] = batching.plan_batches(((sid, parse_day(d)) for d in days for sid in ids), costs, slots,
                                            max_size=cfg.ingest_batch, max_batches=batching.max_map_length())
        check_map_length(len(lanes[lane]), f"batches in ingest lane {lane}")
    log.info("ingest plan: %d day(s) %s..%s x %d site(s): %s", len(days), days[0], days[-1], len(sites),
             ", ".join(f"{lane} {sum(map(batching.batch_size, b))} site-days in {len(b)} task(s)"
                       for lane, b in lanes.items() if b) or "nothing")
    return lanes, {"days": days if sites else [], "site_ids": sorted(s.site_id for s in sites)}


def lane_items(lanes: dict, lane: str) -> list[dict]:
    """The items of one provider lane; skips the lane (and its ingest task) when it has none."""
    from airflow.sdk.exceptions import AirflowSkipException

    items = lanes.get(lane) or []
    if not items:
        raise AirflowSkipException(f"no site uses lane {lane}")
    return items


def ingest_event(summary: dict) -> dict:
    """The ``extra`` of the ``flarewatch_raw_scenes`` event (skipped when no site was active): the
    days (``flare_process`` plans from them), the sites and the scenes of those site-days per
    status (ingested, no_data, failed)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from flarewatch.store import db

    if not summary.get("site_ids"):
        raise AirflowSkipException("no active site to ingest")
    days, sites = sorted(summary["days"]), sorted(summary["site_ids"])
    with results_db() as conn:
        rows = db.fetch_dicts(conn, "SELECT status, count(*) AS n FROM scenes WHERE acquisition_date = ANY(%s)"
                                    " AND site_id = ANY(%s) GROUP BY status ORDER BY status",
                              ([parse_day(d) for d in days], sites))
    extra = {"days": days, "site_ids": sites, "site_days": len(days) * len(sites),
             "scenes": {r["status"]: r["n"] for r in rows}}
    log.info("ingested %d site-day(s) (%s..%s, %d site(s)); scenes: %s", extra["site_days"], days[0], days[-1],
             len(sites), ", ".join(f"{n} {k}" for k, n in extra["scenes"].items()) or "none")
    return extra


@fails_at_once
def ingest_batch(batch: dict, lane: str, context=None) -> dict:
    """Fetch a batch of site-days through one provider lane into ``rawdata``
    (``ingest.site_day.ingest_site_days``): one source and one set of clients for all of them.

    A site-day that fails does not stop the others; the task then fails naming each failure (at
    once, without retries, when none of them can heal). Its retry (``ti.try_number`` > 1) skips the
    site-days an earlier try of this run ingested (their scenes written since ``dag_run.start_date``,
    none failed), so only what failed is fetched again.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from flarewatch.ingest.site_day import IngestBatchFailed, ingest_site_days, ingested_since
    from flarewatch.ingest.sources import INGEST_LANES, build_source
    from flarewatch.orchestration.batching import batch_days
    from flarewatch.orchestration.checks import cannot_heal
    from flarewatch.store import objects as storage

    sensors = next(x.sensors for x in INGEST_LANES if x.lane == lane)
    site_days = batch_days(batch)
    cfg = settings()
    with results_db(cfg) as conn:
        sites = {s.site_id: s for s in active_sites(conn, sorted({s for ids in site_days.values() for s in ids}))}
        done: set = set()
        if context is not None and (context["ti"].try_number or 1) > 1:
            done = ingested_since(conn, site_days, sensors, context["dag_run"].start_date)
        s3 = s3_client(cfg)
        source = build_source(cfg, raw_store=storage.RawStore(s3, cfg.raw_bucket))
        try:
            return ingest_site_days(site_days, sites, source, s3, conn, cfg, sensors=sensors, done=done,
                                    cannot_heal=cannot_heal)
        except IngestBatchFailed as exc:
            if exc.permanent:
                raise AirflowFailException(f"{exc} [not retried: the same inputs give the same error]") from exc
            raise


# ------------------------------------------------------------------------------------------
# flare_process
# ------------------------------------------------------------------------------------------
@fails_at_once
def plan_process(context, raw_scenes: Asset) -> list[dict]:
    """Batches of site-days to process, sized from costs (``orchestration.batching``): a daily run
    of a few sites is one task; a long range about as many tasks as run at once, each loading the
    models once for many site-days (at most ``FLAREWATCH_PROCESS_BATCH`` site-days when set).

    Manual runs name the days (``acquisition_date`` or ``acquisition_start`` .. ``acquisition_end``)
    and optionally ``site_ids``: every site-day of those with a scene is processed, processed
    before or not. Sites named explicitly are forced: a site-day that processing gave up on is
    taken too (as after ``flarewatch requeue``). Other runs take the triggering events' days plus
    any site-day ingested and not processed since (an empty sweep plans nothing); given-up
    site-days are left out.
    """
    from flarewatch.orchestration import batching
    from flarewatch.store import db, processing

    params = context["params"]
    days = requested_acquisition_dates(params)
    wanted = set(params.get("site_ids") or [])
    force = days is not None and bool(wanted)
    cfg = settings()
    with results_db(cfg) as conn:
        if wanted:
            active_sites(conn, wanted)
        if days is not None:  # manual (re)processing of named days
            site_days = {(s, d) for s, d in db.scene_site_days(conn, days) if not wanted or s in wanted}
            _check_ingested(days, wanted, site_days)
        else:
            site_days = set(db.scene_site_days(conn, days_from_events(context, raw_scenes)))
            site_days |= set(db.pending_site_days(conn))
            site_days = {(s, d) for s, d in site_days if not wanted or s in wanted}
        # site-days that processing gave up on wait for `flarewatch requeue` (or a new ingest)
        given_up = {(r["site_id"], r["acquisition_date"]) for r in
                    processing.failed_site_days(conn, days=sorted({d for _, d in site_days}))} & site_days
    for site_id, day in sorted(given_up, key=lambda x: (x[1], x[0])):
        if force:
            log.warning("%s %s: processing gave up on it earlier; processed anyway because the run names it", site_id, day)
        else:
            log.warning("%s %s left out: processing gave up on it after its attempts; re-queue it with "
                        "`flarewatch requeue --date %s --site %s` or trigger flare_process with this date and "
                        "site_ids=[%s]", site_id, day, day, site_id, site_id)
    if not force:
        site_days -= given_up
    # few batches: each loads the models (~5 s); about as many as run at once for a long range
    batches = batching.plan_batches(site_days, batching.PROCESS_COSTS, batching.airflow_slots(),
                                    max_size=cfg.process_batch,
                                    max_batches=batching.max_map_length())
    check_map_length(len(batches), "batches of site-days")
    log.info("process plan: %d site-day(s) of %d day(s) in %d task(s): %s", len(site_days),
             len({d for _, d in site_days}), len(batches), "; ".join(map(batching.batch_label, batches[:8]))
             + (" ..." if len(batches) > 8 else ""))
    return [{**b, "force": True} for b in batches] if force else batches


def _check_ingested(days: list, wanted: set, site_days: set) -> None:
    """A manual run's days (and named sites) must have scenes: none at all is an error (``NothingIngested``);
    some missing is logged."""
    span = f"{days[0]}" if len(days) == 1 else f"{days[0]}..{days[-1]}"
    sites = f" for site(s) {', '.join(sorted(wanted))}" if wanted else ""
    if not site_days:
        raise NothingIngested(f"no scenes ingested on {span}{sites}; run flare_ingest for "
                              f"{'that date' if len(days) == 1 else 'those dates'} first")
    found_days = {d for _, d in site_days}
    missing_days = [d for d in days if d not in found_days]
    if missing_days:
        log.warning("no scenes ingested on %d of the %d day(s)%s: %s", len(missing_days), len(days), sites,
                    ", ".join(map(str, missing_days[:20])) + (" ..." if len(missing_days) > 20 else ""))
    for site_id in sorted(wanted - {s for s, _ in site_days}):
        log.warning("%s: no scene ingested on %s; nothing to process for it", site_id, span)


@fails_at_once
def process_batch(batch: dict, context=None) -> dict:
    """Process one batch of site-days, of one or several days (``process.batch.process_site_days``),
    with the task's clients; the models load once for the batch.

    On a retry (``ti.try_number`` > 1) the site-days of the batch that an earlier try of this run
    processed (since ``dag_run.start_date``, which a Clear resets) and that were not ingested
    again since are not redone: their stored outcome is reused. A batch of ``force``d site-days
    (a manual run naming them) also takes those that processing gave up on.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from flarewatch.orchestration.batching import batch_days
    from flarewatch.process.batch import BatchesFailed, BatchFailed, process_site_days

    done_since = None
    if context is not None and (context["ti"].try_number or 1) > 1:
        done_since = context["dag_run"].start_date
    cfg = settings()
    with results_db(cfg) as conn:
        try:
            return process_site_days(conn, s3_client(cfg), cfg, batch_days(batch), force=bool(batch.get("force")),
                                     done_since=done_since)
        except (BatchFailed, BatchesFailed) as exc:
            if exc.permanent:  # every failed site-day used up its attempts or cannot heal: a retry cannot help
                raise AirflowFailException(str(exc)) from exc
            raise


def summarise_days(results: list[dict]) -> dict:
    """The ``extra`` of the ``flarewatch_flare_emissions`` event: the days written (``emissions_rollup``
    plans from them), site-days, detections, volume and CO2e totals, and how many site-days a retry
    reused from an earlier try."""
    results = list(results or [])
    extra = {"days": sorted({d for r in results for d in r.get("days") or [r["acquisition_date"]]}),
             "site_days": sum(r.get("site_days", len(r["site_ids"])) for r in results),
             "sites": len({s for r in results for s in r["site_ids"]}),
             "n_detections": sum(r["n_detections"] for r in results),
             "volume_kscm_d": round(sum(r.get("volume_kscm_d") or 0.0 for r in results), 1),
             "co2e_t": round(sum(r.get("co2e_t") or 0.0 for r in results), 1),
             "reused": sum(len(r.get("reused") or []) for r in results)}
    log.info("processed %d site-day(s) of %d day(s): %d flares, %s kscm/d, CO2e %s t%s", extra["site_days"],
             len(extra["days"]), extra["n_detections"], f"{extra['volume_kscm_d']:,.1f}", f"{extra['co2e_t']:,.1f}",
             f" ({extra['reused']} reused from an earlier try)" if extra["reused"] else "")
    return extra


# ------------------------------------------------------------------------------------------
# emissions_rollup
# ------------------------------------------------------------------------------------------
@fails_at_once
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
        start = parse_day(params["start_date"], "start_date")
        days = date_range(start, parse_day(params.get("end_date") or start, "end_date"))
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
        states = db.fetch_dicts(conn, "SELECT status, count(*) AS n, sum(volume_kscm) AS volume, sum(co2e_t) AS co2e"
                                      " FROM emissions_daily WHERE day = ANY(%s) GROUP BY status ORDER BY status",
                                (days,)) if days else []
    log.info("audited %d processed site-days: no disagreement", audit["checked"])
    out = {"days": [d.isoformat() for d in days], **counts, "audited_site_days": audit["checked"],
           "site_days": {r["status"]: r["n"] for r in states},
           "volume_kscm": round(sum(float(r["volume"] or 0) for r in states), 1),
           "co2e_t": round(sum(float(r["co2e"] or 0) for r in states), 1),
           **({"audit_skipped": audit["skipped"]} if "skipped" in audit else {})}
    log.info("rolled up %d day(s): site-days %s; %s kscm, CO2e %s t", len(days),
             ", ".join(f"{n} {k}" for k, n in out["site_days"].items()) or "none", f"{out['volume_kscm']:,.1f}",
             f"{out['co2e_t']:,.1f}")
    return out


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
            raise BadParams(f"end_month {last:%Y-%m} is before start_month {first:%Y-%m}")
        months, m = [], first
        while m <= last:
            months.append(m)
            m = (m + timedelta(days=32)).replace(day=1)
        if len(months) > 24:
            raise BadParams(f"{len(months)} months asked for; refresh at most 24 at a time")
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


@fails_at_once
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
@fails_at_once
def plan_calibration_files(params: dict) -> list[dict]:
    """The files to import: a manual ``s3_key`` or ``path``, else the objects under
    ``calibration/`` that were not imported yet."""
    from flarewatch.meters import importer
    from flarewatch.meters.formats import normalize_version

    fmt = params.get("format") or "auto"
    s3_key, path = (params.get("s3_key") or "").strip(), (params.get("path") or "").strip()
    version = (params.get("report_version") or "").strip() or None
    if s3_key and path:
        raise BadParams("give either s3_key or path, not both")
    if version and not (s3_key or path):
        raise BadParams("report_version applies to one file: give s3_key or path with it")
    if version and normalize_version(version) is None:
        raise BadParams(f"report_version {version!r} is not a timestamp or date (e.g. 2021-05-03)")
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
        raise BadParams(f"unknown model {model!r}; expected one of {RETRAINABLE}")


@fails_at_once
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


@fails_at_once
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


@fails_at_once
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
@fails_at_once
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
