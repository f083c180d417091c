"""
### flare_process: detect flares, extract features, estimate gas volume and CO2 per tile

Triggered by the `flarewatch_raw_scenes` asset (each `flare_ingest` run) and every 30 minutes
as a sweep, or manually with `acquisition_date` and optional `site_ids`. Besides the event days,
every run also takes any site-day that was ingested and not processed since (an empty sweep is a
no-op). One mapped task per batch of up to `FLAREWATCH_PROCESS_BATCH` (default 6) sites of one
acquisition day (the grid shows `day site,site,...`): the models load once per batch, which costs
more than processing a tile. Each site-day:

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

A site-day that fails is retried with the task; after 3 failed attempts
(`FLAREWATCH_MAX_PROCESS_ATTEMPTS`) it is marked failed in `site_day_processing` and left out of
later runs until `flarewatch requeue --date D --site S` (list them: `flarewatch failed`).

Emits `flarewatch_flare_emissions` with the days written, which triggers `emissions_rollup`.
"""

from __future__ import annotations

from airflow.sdk import (
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    Param,
    dag,
    get_current_context,
    task,
)

from flarewatch.orchestration.dags import (
    DEFAULT_ARGS,
    FLARE_EMISSIONS,
    RAW_SCENES,
    START_DATE,
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
        "acquisition_date": Param(None, type=["null", "string"], format="date",
                                  description="Manual runs: the acquisition date to (re)process."),
        "site_ids": Param([], type="array", items={"type": "string"},
                          description="Manual runs: sites to process; empty = all with scenes that day."),
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

        get_current_context()["tile_label"] = tasks.batch_label(batch)
        return tasks.process_batch(batch)

    @task(outlets=[FLARE_EMISSIONS])
    def publish(results: list[dict], *, outlet_events=None) -> dict:
        from flarewatch.orchestration import tasks

        extra = tasks.summarise_days(results)
        outlet_events[FLARE_EMISSIONS].extra = extra
        return extra

    publish(process.expand(batch=plan_tiles()))


flare_process()
