"""
### emissions_analytics: gap-aware monthly estimates, KPIs, alerts, reported-vs-observed

Triggered by the `flarewatch_emission_rollups` asset (each `emissions_rollup` run) for the months of
its days, daily at 07:30 UTC for the latest two months with data (so a calibration import reaches
the reconciliation), or manually with `month` (YYYY-MM) or `start_month` / `end_month`. One task
(`flarewatch.analytics.refresh`):

- `emissions_monthly_estimate`: per site, field, operator and country and month, the observed-only
  sum beside a whole-month estimate (unobserved days filled from the site's neighbouring observed
  days) with its 90 % interval and completeness, CO2e under the default (0.98) and the measured
  (0.91, Plant et al. 2022) combustion efficiency;
- `kpi_monthly`: flaring / observed days, persistent, new and dark sites, volume, CO2, CO2e;
- `alerts`: threshold, consecutive flaring, new flare site, robust and local-outlier-factor anomalies,
  reported-vs-observed gaps (upserted on their natural key; acknowledge with `flarewatch ack`);
- `reconciliation_monthly`: reported / metered volumes vs the estimate over the same days, with a
  flag when the report lies outside the interval.

Idempotent: the months' rows are replaced, alerts keep their status. Emits
`flarewatch_emission_analytics` (extra: the months, rows written per table, alerts raised and
resolved), which triggers `emissions_report`. A malformed or reversed month range fails at once.
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
    EMISSION_ANALYTICS,
    EMISSION_ROLLUPS,
    START_DATE,
)


@dag(
    dag_id="emissions_analytics",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("30 7 * * *", timezone="UTC"),
                                 assets=[EMISSION_ROLLUPS]),
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["flarewatch", "analytics"],
    doc_md=__doc__,
    params={
        "month": Param(None, type=["null", "string"], pattern="^[0-9]{4}-[0-9]{2}$",
                       description="Manual runs: one month (YYYY-MM)."),
        "start_month": Param(None, type=["null", "string"], pattern="^[0-9]{4}-[0-9]{2}$",
                             description="Manual runs: first month of a range (YYYY-MM)."),
        "end_month": Param(None, type=["null", "string"], pattern="^[0-9]{4}-[0-9]{2}$",
                           description="Manual runs: last month of a range (YYYY-MM)."),
    },
)
def emissions_analytics():
    @task(outlets=[EMISSION_ANALYTICS])
    def refresh(*, outlet_events=None) -> dict:
        from flarewatch.orchestration import tasks

        counts = tasks.refresh_analytics(get_current_context(), EMISSION_ROLLUPS)
        outlet_events[EMISSION_ANALYTICS].extra = counts  # months and the rows / alerts written: small
        return counts

    refresh()


emissions_analytics()
