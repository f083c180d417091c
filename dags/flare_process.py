"""
### flare_process: detect flares, extract features, estimate gas volume and CO2 per tile

Triggered by the `flarewatch_raw_scenes` asset (each `flare_ingest` run) and every 30 minutes
as a sweep, or manually (below). Besides the event days, every run also takes any site-day that
was ingested and not processed since (an empty sweep is a no-op). One mapped task per batch of
site-days, sized from costs (`orchestration/batching.py`): each task loads the models once (~5 s
of CPU, against ~0.2 s per site-day), so a daily run of a few sites is one task (the grid shows
`day site,site,...`) and a long range about one task per slot that can run at once (`[core]
parallelism`, `max_active_tasks_per_dag`; `FLAREWATCH_TASK_SLOTS` overrides), each over a run of
whole days (`2025-06-01..2025-06-15 6 sites`); `FLAREWATCH_PROCESS_BATCH` caps the site-days per
task. Each site-day:

1. reads the Sentinel-2 tile and VIIRS Nightfire CSV from `rawdata` and validates them: a
   malformed or foreign tile (unreadable, too large, wrong bands, CRS or grid, no nodata, outside
   the site) or an unparsable VIIRS file is quarantined (`scenes.status = 'quarantined'`, the
   reason in `outcome` / `detail`, a copy under `s3://rawdata/quarantine/`) and that sensor does
   not observe the day;
2. detects flares (the YOLO champion from the model registry, else the shipped
   `models/detector/flare-yolo11n.pt`, each box checked by physics: heat, a flame's B12/B11
   colour; `FLAREWATCH_DETECTOR=threshold` selects the physics TAI / NHI threshold detector),
   records the detector version on every row, extracts features
   (hot pixels, B12/B11 excess, temperature, SWIR radiative power, matched VIIRS radiant heat);
3. estimates each flare's volume with its 90 % prediction interval (the regressor champion from
   the model registry, else the shipped `models/regressor/flare-volume.skops`;
   `FLAREWATCH_VOLUME_MODEL=calibration` selects the published radiant-heat calibration) and
   CO2 / CO2e, recording the model version on every row;
4. upserts `flare_detections` and `flare_emissions` and writes `annotated.png`,
   `detections.geojson`, `result.json` under `s3://processed/tiles/date=<day>/site=<site>/`.

The task log has one line per site-day: `rumaila-n 2025-06-03: 4 flare(s) (3 Sentinel-2, 1
VIIRS-only), volume 812.4 kscm/d [90 % 610.2-1010.9], CO2e 1,587.2 t; detector ..., volume model
...`, plus `; Sentinel-2 not used, quarantined (wrong_crs: ...)` for a sensor that did not observe
the day (no_data, failed at ingest, quarantined) and why. The task's return value is the batch's
totals.

Retries: a site-day that fails does not stop the batch (nor its other days); the task then fails
naming each failure and is retried, but a retry redoes only what is not done:
site-days of the batch that an earlier try of this run processed (and that were not ingested
again since) are kept, not redone, and counted in the totals as before. Clearing the task of a
finished run resets the run's start and redoes them all. After 3 failed attempts (`FLAREWATCH_MAX_PROCESS_ATTEMPTS`)
a site-day is marked failed in `site_day_processing` and left out of later runs until
`flarewatch requeue --date D --site S` (list them: `flarewatch failed`) or a manual run naming it.
Errors a retry cannot fix fail the task at once, without retries: unknown site ids (the message
lists the known ones), malformed dates or ranges, no scenes ingested for the days asked for.

Manual run (Trigger, with config):
- `acquisition_date` (one day) or `acquisition_start` / `acquisition_end` (a range, inclusive, at
  most 366 days): every site-day of those days with scenes is processed again, processed before
  or not; days with nothing ingested are logged, none at all fails the run.
- `site_ids` (pick from the list; empty = all sites): only those sites. Sites named with a date
  are forced: a site-day processing gave up on is processed too. **Rerun one site-day**: trigger
  with its `acquisition_date` and `site_ids` = [that site]; the grid shows one task `day site`.

Backfill: don't backfill this DAG (its schedule is a 30-minute sweep, its logical dates mean
nothing to it). Backfill `flare_ingest` (each run's event triggers processing of its day) or
trigger this DAG with `acquisition_start` / `acquisition_end`.

Emits `flarewatch_flare_emissions` (extra: the days written, site-days, flares, volume, CO2e and
how many site-days a retry reused), which triggers `emissions_rollup`.
"""

from __future__ import annotations

from airflow.sdk import (
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    dag,
    get_current_context,
    task,
)

from flarewatch.orchestration.dags import (
    DEFAULT_ARGS,
    FLARE_EMISSIONS,
    RAW_SCENES,
    START_DATE,
    acquisition_params,
    site_ids_param,
)


@dag(
    dag_id="flare_process",
    # Each ingest asset event triggers a run; the 30-min sweep picks up anything an event missed.
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("*/30 * * * *", timezone="UTC"), assets=[RAW_SCENES]),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,  # one run at a time takes all pending site-days; no double work
    default_args=DEFAULT_ARGS,
    tags=["flarewatch", "process"],
    doc_md=__doc__,
    params={
        **acquisition_params("Manual runs: the acquisition date to (re)process (YYYY-MM-DD)."),
        "site_ids": site_ids_param("Manual runs: sites to process; empty = all with scenes on the days. "
                                   "One site with an acquisition_date reruns that site-day."),
    },
)
def flare_process():
    @task
    def plan_tiles() -> list[dict]:
        from flarewatch.orchestration import tasks

        return tasks.plan_process(get_current_context(), RAW_SCENES)

    @task(map_index_template="{{ tile_label }}")
    def process(batch: dict) -> dict:
        from flarewatch.orchestration import tasks
        from flarewatch.orchestration.batching import batch_label

        ctx = get_current_context()
        ctx["tile_label"] = batch_label(batch)
        return tasks.process_batch(batch, ctx)

    @task(outlets=[FLARE_EMISSIONS])
    def publish(results: list[dict], *, outlet_events=None) -> dict:
        from flarewatch.orchestration import tasks

        extra = tasks.summarise_days(results)
        outlet_events[FLARE_EMISSIONS].extra = extra
        return extra

    publish(process.expand(batch=plan_tiles()))


flare_process()
