"""
### calibration_import: load metered / reported flared volumes into `calibration_measurements`

Daily at 07:00 UTC: imports every object under `s3://rawdata/calibration/` that has not been
imported yet (same URI and ETag, or the same content under another key, are skipped). Manual run:
trigger with `s3_key` (a key in the raw bucket or an `s3://bucket/key` URI) **or** `path` (a file
on the worker), and `format` (`auto`, `native`, `reported`); a manual run always imports, and
re-importing a file changes nothing.

- Formats: native `site_id,period_start,period_end,volume,unit,source[,source_key][,operator]`,
  or state-reported monthly Mcf per well/lease (`run,state,key_type,key,month,operator,flared`),
  mapped to sites through `calibration_site_map`; plain CSV or gzip (`.csv.gz`, recognised by its
  magic bytes).
- Report versions: a reported line's `run` (else the `report_version` Param, else a date in the file
  name) is its version; an older version never replaces a newer stored value (it is recorded in
  `calibration_measurement_versions`), and a line resent with another `run` is a new version, not a
  part to add.
- A file cut short (last line without its line end, gzip stream cut) has its last line quarantined
  as `truncated line`; the summary gives the quarantined volume per operator and reason (also the
  view `v_calibration_quarantine_summary`).
- Rows that fail validation (units, negative or impossible values, unknown sites, duplicates,
  overlapping periods, unmapped wells) go to `calibration_quarantine` with the reason; that is
  not a task failure. A file that cannot be read (not CSV text, missing required columns) fails
  its task with the file name and the missing columns, without retries.
- Each file is imported in one transaction; the log shows one summary line per file.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from flarewatch.orchestration.dags import DEFAULT_ARGS, START_DATE


@dag(
    dag_id="calibration_import",
    schedule="0 7 * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["flarewatch", "calibration"],
    doc_md=__doc__,
    params={
        "s3_key": Param(None, type=["null", "string"],
                        description="Key in the raw bucket (e.g. calibration/meters-2025-06.csv) or s3://bucket/key;"
                                    " empty = every new object under calibration/."),
        "path": Param(None, type=["null", "string"],
                      description="A calibration CSV on the worker's file system (instead of s3_key)."),
        "format": Param("auto", type="string", enum=["auto", "native", "reported"],
                        description="File format; auto = recognised from the header."),
        "report_version": Param(None, type=["null", "string"],
                                description="Report version of the file (e.g. 2021-05-03 or 20210503221516) for"
                                            " lines without a run; empty = the run column, else a date in the"
                                            " file name, else none."),
    },
)
def calibration_import():
    @task
    def plan_files() -> list[dict]:
        from flarewatch.orchestration import tasks

        return tasks.plan_calibration_files(get_current_context()["params"])

    @task(map_index_template="{{ file_label }}")
    def import_file(item: dict) -> dict:
        from flarewatch.orchestration import tasks

        get_current_context()["file_label"] = item["label"]
        return tasks.import_calibration_file(item)

    @task
    def report(summaries: list[dict]) -> dict:
        from flarewatch.orchestration import tasks

        return tasks.calibration_report(summaries)

    report(import_file.expand(item=plan_files()))


calibration_import()
