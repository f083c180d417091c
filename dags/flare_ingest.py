"""
### flare_ingest: fetch each site's Sentinel-2 tile and VIIRS night detections into `rawdata`

Runs daily at 06:00 UTC for **yesterday's** acquisition date (the day's Sentinel-2 pass and the
following night's VIIRS detections), one mapped task per active site (the grid shows site ids).

- Source: `FLAREWATCH_SCENE_SOURCE` (default `demo`: the built-in simulator).
- Writes `s3://rawdata/{sentinel2,viirs,truth}/source=<src>/date=<day>/site=<site>/...` and upserts
  the `scenes` table (status `ingested` or `no_data` with the reason).
- Emits the `flarewatch_raw_scenes` asset with the processed days, which triggers `flare_process`.

Manual run: trigger with `acquisition_date` (YYYY-MM-DD) and optionally a list of `site_ids`.
Reruns overwrite the same keys and rows; nothing is duplicated.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from flarewatch.orchestration import DEFAULT_ARGS, RAW_SCENES, START_DATE


@dag(
    dag_id="flare_ingest",
    schedule="0 6 * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    default_args=DEFAULT_ARGS,
    tags=["flarewatch", "ingest"],
    doc_md=__doc__,
    params={
        "acquisition_date": Param(None, type=["null", "string"], format="date",
                                  description="Acquisition date (YYYY-MM-DD); empty = the day before the run."),
        "site_ids": Param([], type="array", items={"type": "string"},
                          description="Sites to ingest; empty = all active sites."),
    },
)
def flare_ingest():
    @task
    def plan_sites() -> list[dict]:
        from flarewatch import db
        from flarewatch.orchestration import db_connection, run_acquisition_date, settings

        ctx = get_current_context()
        day = run_acquisition_date(ctx)
        conn = db_connection(settings())
        try:
            sites = db.fetch_sites(conn, ctx["params"].get("site_ids") or None)
        finally:
            conn.close()
        return [{"site_id": s.site_id, "acquisition_date": day.isoformat()} for s in sites]

    @task(map_index_template="{{ site_label }}")
    def ingest(item: dict) -> dict:
        from flarewatch import db
        from flarewatch.orchestration import db_connection, parse_day, s3_client, settings
        from flarewatch.pipeline import ingest_site_day
        from flarewatch.sources import get_source

        get_current_context()["site_label"] = f"{item['site_id']} {item['acquisition_date']}"
        cfg = settings()
        conn = db_connection(cfg)
        try:
            site = db.fetch_sites(conn, [item["site_id"]])[0]
            return ingest_site_day(site, parse_day(item["acquisition_date"]), get_source(cfg.scene_source),
                                   s3_client(cfg), conn, cfg)
        finally:
            conn.close()

    @task(outlets=[RAW_SCENES])
    def publish(results: list[dict], *, outlet_events=None) -> dict:
        results = list(results)
        days = sorted({r["acquisition_date"] for r in results})
        extra = {"days": days, "site_ids": sorted({r["site_id"] for r in results})}
        outlet_events[RAW_SCENES].extra = extra
        return extra

    publish(ingest.expand(item=plan_sites()))


flare_ingest()
