"""
### flare_ingest: fetch each site's Sentinel-2 tile and VIIRS night detections into `rawdata`

Runs daily at 06:00 UTC for **yesterday's** acquisition date (the day's Sentinel-2 pass and the
following night's VIIRS detections), mapped over batches of site-days: a day of a few sites is one
task (the grid shows `2025-06-01 site,site,...`), a long range about one task per slot that can
run at once (`[core] parallelism`, `max_active_tasks_per_dag`, the provider's pool; labelled
`2025-06-01..2025-06-15 6 sites`), so a backfill does not pay a task's start-up per site-day
(`orchestration/batching.py`; `FLAREWATCH_INGEST_BATCH` caps the site-days per task).

- Providers: `FLAREWATCH_S2_SOURCE` (`demo`, `earth-search`, `sentinel-hub`) and
  `FLAREWATCH_VIIRS_SOURCE` (`demo`, `firms`, `nightfire`), default `demo` (the built-in
  simulator); a site's `s2_source` / `viirs_source` (sites table) overrides them.
- Tasks: `ingest` fetches both sensors of the sites where both come from the demo; every other
  site-day is fetched by one task per sensor and provider (`ingest_s2_earth_search`,
  `ingest_viirs_firms`, ...), each in its provider's Airflow pool (`flarewatch_earth_search`,
  `flarewatch_sentinel_hub`, `flarewatch_firms`, `flarewatch_nightfire`), so rate limits hold
  however many sites run. Lanes with no site are skipped.
- Writes the provider responses unchanged to `s3://rawdata/raw/source=<provider>/collection=<c>/
  baseline=<b>/date=<day>/...`, the normalized tile and VNF CSV to
  `s3://rawdata/{sentinel2,viirs}/source=<provider>/date=<day>/site=<site>/...`, and upserts the
  `scenes` table: `status` (`ingested`, `no_data`, `failed`), `outcome` (`ok`, `partial`,
  `no_scene`, `full_cloud`, `nodata`, `no_detections`, `error`) and `detail`. No scene, clouds or
  an unpublished night are outcomes, not failures; bad credentials fail at once with the
  connection to check, 429/5xx/timeouts are retried with backoff and then by the task's retries.
- Emits the `flarewatch_raw_scenes` asset; its extra holds the days (which `flare_process`
  plans from), the sites, the number of site-days and the scenes per status.

Manual run (Trigger, with config):
- `acquisition_date` (YYYY-MM-DD, one day) or `acquisition_start` / `acquisition_end` (a range,
  inclusive, at most 366 days; end empty = start). Neither: the day before the run.
- `site_ids`: pick sites from the list (the configured sites file); empty = all active sites.
- Ingests every site-day of the days and sites, in batches (above). Reruns overwrite the same
  keys and rows; nothing is duplicated.
- A site-day that fails does not stop its batch: the others are ingested, then the task fails
  naming each failure, and its retry fetches only those (site-days whose scenes an earlier try of
  the run wrote are skipped).
- Errors a retry cannot fix fail the run at once, without retries: an unknown site id (the
  message lists the known ones), a malformed date or range, a provider's 4xx such as bad
  credentials (the batch's other site-days are still ingested). Timeouts, 429 and 5xx are retried.

Backfill dialog: Airflow's backfill speaks in logical dates, and the scheduled run with logical
date D (06:00 UTC) ingests acquisition date **D - 1** (`orchestration/dates.py`). To backfill
acquisition dates A..B, pick the range from A + 1 00:00 to B + 1 06:00 UTC (the last run's time
must be inside it): e.g. acquisition days 2025-06-01..2025-06-30 are the backfill
2025-06-02 00:00 .. 2025-07-01 06:00. Each backfilled run's `flarewatch_raw_scenes` event
triggers `flare_process` for its day. A manual run with `acquisition_start` / `acquisition_end`
does the same in one run.
"""

from __future__ import annotations

from airflow.sdk import dag, get_current_context, task

from flarewatch.ingest.sources import INGEST_LANES
from flarewatch.orchestration.dags import (
    DEFAULT_ARGS,
    RAW_SCENES,
    START_DATE,
    acquisition_params,
    ingest_schedule,
    site_ids_param,
)


@dag(
    dag_id="flare_ingest",
    schedule=ingest_schedule(),  # daily 06:00 UTC; FLAREWATCH_INGEST_SCHEDULE=off: manual / backfill only
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    tags=["flarewatch", "ingest"],
    doc_md=__doc__,
    params={
        **acquisition_params("Manual runs: one acquisition date (YYYY-MM-DD); empty = the day before the run."),
        "site_ids": site_ids_param("Sites to ingest; empty = all active sites."),
    },
)
def flare_ingest():
    @task
    def plan_sites() -> list[dict]:
        """Batches of the demo lane (returned); every lane's batches and the run summary as XComs."""
        from flarewatch.orchestration import tasks

        ctx = get_current_context()
        lanes, summary = tasks.plan_ingest(ctx)
        ctx["ti"].xcom_push(key="lanes", value=lanes)
        ctx["ti"].xcom_push(key="summary", value=summary)
        return lanes["demo"]

    @task
    def select_lane(lanes: dict, lane: str) -> list[dict]:
        """The batches of one provider lane; skips the lane (and its ingest task) when it has none."""
        from flarewatch.orchestration import tasks

        return tasks.lane_items(lanes, lane)

    @task(map_index_template="{{ batch_label }}")
    def ingest(batch: dict, lane: str = "demo") -> dict:
        from flarewatch.orchestration import tasks
        from flarewatch.orchestration.batching import batch_label

        ctx = get_current_context()
        ctx["batch_label"] = batch_label(batch)
        return tasks.ingest_batch(batch, lane, ctx)

    @task(outlets=[RAW_SCENES], trigger_rule="none_failed")
    def publish(summary: dict, *, outlet_events=None) -> dict:
        from flarewatch.orchestration import tasks

        extra = tasks.ingest_event(summary)
        outlet_events[RAW_SCENES].extra = extra
        return extra

    plan = plan_sites()
    ingested = []
    for lane in INGEST_LANES:
        if lane.lane == "demo":  # fed straight from the plan: no extra task in the demo
            ingested.append(ingest.override(pool=lane.pool).partial(lane=lane.lane).expand(batch=plan))
            continue
        items = select_lane.override(task_id=f"select_{lane.lane}")(plan["lanes"], lane.lane)
        ingested.append(ingest.override(task_id=lane.task_id, pool=lane.pool).partial(lane=lane.lane).expand(batch=items))
    done = publish(plan["summary"])
    ingested >> done


flare_ingest()
