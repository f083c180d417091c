"""
### emissions_report: monthly PDF, Excel and CSV reports per operator, field and country

Triggered by the `flarewatch_emission_analytics` asset (each `emissions_analytics` run) for the
months of its event, or manually with `month` (YYYY-MM), `level` (`operator`, `field`, `country`;
empty = all three) and `value` (one group's name; empty = all). One mapped task per month and
group (`flarewatch.reports`) writes to
`s3://processed/reports/month=YYYY-MM/<level>=<slug of the name>/`:

- `report.pdf`: title page (group, month, completeness in words, key figures), the daily volume
  with its 90 % band and unobserved days marked, month totals by site with intervals, a map of
  the sites and their flares, tables of site totals, alerts and reported vs observed, methods;
- `report.xlsx`: sheets daily, monthly, sites, alerts, reconciliation, methods;
- `daily.csv`, `sites.csv`, `alerts.csv`, `reconciliation.csv`.

Idempotent: the keys depend on month and group only, the same tables give the same bytes, and
an object already holding those bytes is not rewritten.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from flarewatch.orchestration.dags import DEFAULT_ARGS, EMISSION_ANALYTICS, START_DATE


@dag(
    dag_id="emissions_report",
    schedule=[EMISSION_ANALYTICS],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["flarewatch", "reports"],
    doc_md=__doc__,
    params={
        "month": Param(None, type=["null", "string"], pattern="^[0-9]{4}-[0-9]{2}$",
                       description="Manual runs: the month (YYYY-MM); empty = the latest month with estimates."),
        "level": Param("", type="string", enum=["", "operator", "field", "country"],
                       description="Manual runs: operator, field or country; empty = all three."),
        "value": Param("", type="string", description="Manual runs: the group's name; empty = every group."),
    },
)
def emissions_report():
    @task
    def plan() -> list[dict]:
        from flarewatch.orchestration import tasks

        return tasks.plan_reports(get_current_context(), EMISSION_ANALYTICS)

    @task(map_index_template="{{ report_label }}")
    def report(item: dict) -> dict:
        from flarewatch.orchestration import tasks

        get_current_context()["report_label"] = tasks.report_label(item)
        return tasks.make_report(item)

    @task
    def summary(results: list[dict]) -> dict:
        from flarewatch.orchestration import tasks

        return tasks.summarise_reports(results)

    summary(report.expand(item=plan()))


emissions_report()
