"""
### emissions_rollup: daily (site x day) and monthly (field / operator / country x month) emissions

Triggered by the `flarewatch_flare_emissions` asset with the days `flare_process` wrote, every
30 minutes as a sweep, or manually with a `start_date` / `end_date` range. Recomputes
`emissions_daily` for those days (plus any day processed after its last rollup) and
`emissions_monthly` for their months from the detection-level rows (upserts: reruns are safe).
Before publishing, the days' processed site-days are audited: their rows, `result.json` and
`detections.geojson` must agree (`flarewatch audit`), else the run fails and publishes nothing.
A site-day not processed yet, or given up on, is `pending` / `failed` with no numbers: missing,
never zero. With S3 unreachable the audit is skipped (logged) and the rows still published. Then
`layers` writes the merged GIS layers of the days and their months to
`s3://processed/layers/date=.../` and `layers/month=.../`.

Emits `flarewatch_emission_rollups` (extra: the days, rows written, site-days audited, the days'
site-days per status `processed` / `pending` / `failed`, volume and CO2e totals). A malformed or
reversed `start_date` / `end_date` fails the run at once (no retries).
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
    EMISSION_ROLLUPS,
    FLARE_EMISSIONS,
    START_DATE,
)


@dag(
    dag_id="emissions_rollup",
    # Each flare_process asset event triggers a run; the 30-min sweep refreshes anything stale.
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("15,45 * * * *", timezone="UTC"),
                                 assets=[FLARE_EMISSIONS]),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["flarewatch", "rollup"],
    doc_md=__doc__,
    params={
        "start_date": Param(None, type=["null", "string"], format="date", description="Manual runs: first day."),
        "end_date": Param(None, type=["null", "string"], format="date", description="Manual runs: last day."),
    },
)
def emissions_rollup():
    @task(outlets=[EMISSION_ROLLUPS])
    def refresh(*, outlet_events=None) -> dict:
        from flarewatch.orchestration import tasks

        extra = tasks.refresh_rollups(get_current_context(), FLARE_EMISSIONS)
        outlet_events[EMISSION_ROLLUPS].extra = extra
        return extra

    @task
    def layers(rollup: dict) -> dict:
        from flarewatch.orchestration import tasks

        return tasks.publish_day_layers(rollup)

    layers(refresh())


emissions_rollup()
