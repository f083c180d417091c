"""
### flare_process: detect flares, extract features, estimate gas volume and CO2 per tile

Triggered by the `flarewatch_raw_scenes` asset (each `flare_ingest` run) and every 30 minutes
as a sweep, or manually with `acquisition_date` and optional `site_ids`. Besides the event days,
every run also takes any site-day that was ingested and not processed since (an empty sweep is a
no-op). One mapped task per batch of up to `FLAREWATCH_PROCESS_BATCH` (default 6) sites of one
acquisition day (the grid shows `day site,site,...`): the models load once per batch, which costs
more than processing a tile. Each site-day:

1. reads the Sentinel-2 tile and VIIRS Nightfire CSV from `rawdata`;
2. detects flares (the YOLO champion from the model registry, else the shipped
   `models/detector/flare-yolo11n.pt`; `FLAREWATCH_DETECTOR=threshold` selects the physics
   TAI / NHI threshold detector), records the detector version on every row, extracts features
   (hot pixels, B12/B11 excess, temperature, SWIR radiative power, matched VIIRS radiant heat);
3. estimates each flare's volume with its 90 % prediction interval (the regressor champion from
   the model registry, else the shipped `models/regressor/flare-volume.skops`;
   `FLAREWATCH_VOLUME_MODEL=calibration` selects the published radiant-heat calibration) and
   CO2 / CO2e, recording the model version on every row;
4. upserts `flare_detections` and `flare_emissions` and writes `annotated.png`,
   `detections.geojson`, `result.json` under `s3://processed/tiles/date=<day>/site=<site>/`.

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
        from flarewatch.orchestration.connections import db_connection, settings
        from flarewatch.orchestration.dates import days_from_events, parse_day
        from flarewatch.process.batch import batch_site_days
        from flarewatch.store import db

        ctx = get_current_context()
        params = ctx["params"]
        conn = db_connection(settings())
        try:
            if params.get("acquisition_date"):  # manual (re)processing of one day
                day = parse_day(params["acquisition_date"])
                site_days = set(db.scene_site_days(conn, [day]))
                if not site_days:
                    raise ValueError(f"no scenes ingested for {day}; run flare_ingest for that date first")
            else:
                # the days of the triggering events, plus anything ingested and not yet processed
                site_days = set(db.scene_site_days(conn, days_from_events(ctx, RAW_SCENES)))
                site_days |= set(db.pending_site_days(conn))
        finally:
            conn.close()
        wanted = set(params.get("site_ids") or [])
        return batch_site_days([(s, d) for s, d in site_days if not wanted or s in wanted],
                               settings().process_batch)

    @task(map_index_template="{{ tile_label }}")
    def process(batch: dict) -> dict:
        import logging

        from flarewatch.detect.deployed import production_detector
        from flarewatch.estimate.deployed import production_regressor
        from flarewatch.orchestration.connections import (
            db_connection,
            s3_client,
            settings,
        )
        from flarewatch.orchestration.dates import parse_day
        from flarewatch.process.site_day import process_site_day
        from flarewatch.store import db

        day = parse_day(batch["acquisition_date"])
        get_current_context()["tile_label"] = f"{day} {','.join(batch['site_ids'])}"
        cfg = settings()
        conn = db_connection(cfg)
        s3 = s3_client(cfg)
        results, errors = [], []
        try:
            # the models are loaded once per batch: loading them costs more than processing a tile
            detector, version = production_detector(conn, s3, cfg)
            regressor, regressor_version = (None, None) if cfg.volume_model == "calibration" \
                else production_regressor(conn, s3, cfg)
            sites = {s.site_id: s for s in db.fetch_sites(conn, batch["site_ids"])}
            for site_id in batch["site_ids"]:
                try:
                    results.append(process_site_day(sites[site_id], day, s3, conn, cfg, detector=detector,
                                                    detector_version=version, regressor=regressor,
                                                    regressor_version=regressor_version))
                except Exception as exc:  # noqa: BLE001 - the other site-days still run; the task fails below
                    conn.rollback()
                    logging.getLogger(__name__).exception("%s %s failed", site_id, day)
                    errors.append((site_id, exc))
        finally:
            conn.close()
        if errors:
            # a retry re-runs the whole batch: every write is an idempotent upsert
            raise RuntimeError(f"{len(errors)} of {len(batch['site_ids'])} site-days failed on {day}: "
                               + "; ".join(f"{s}: {type(e).__name__}: {e}" for s, e in errors)) from errors[0][1]
        return {"acquisition_date": day.isoformat(), "site_ids": batch["site_ids"],
                "n_detections": sum(r["n_detections"] for r in results),
                "volume_kscm_d": round(sum(r["volume_kscm_d"] for r in results), 4),
                "co2_t": round(sum(r["co2_t"] for r in results), 4)}

    @task(outlets=[FLARE_EMISSIONS])
    def publish(results: list[dict], *, outlet_events=None) -> dict:
        results = list(results or [])
        extra = {"days": sorted({r["acquisition_date"] for r in results}),
                 "n_detections": sum(r["n_detections"] for r in results)}
        outlet_events[FLARE_EMISSIONS].extra = extra
        return extra

    publish(process.expand(batch=plan_tiles()))


flare_process()
