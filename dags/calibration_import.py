"""
### calibration_import: load metered / reported flared volumes into `calibration_measurements`

Daily at 07:00 UTC: imports every object under `s3://rawdata/calibration/` that has not been
imported yet (same URI and ETag, or the same content under another key, are skipped). Manual run:
trigger with `s3_key` (a key in the raw bucket or an `s3://bucket/key` URI) **or** `path` (a file
on the worker), and `format` (`auto`, `native`, `reported`); a manual run always imports, and
re-importing a file changes nothing.

- Formats: native `site_id,period_start,period_end,volume,unit,source[,source_key][,operator]`,
  or state-reported monthly Mcf per well/lease (`run,state,key_type,key,month,operator,flared`),
  mapped to sites through `calibration_site_map`.
- Rows that fail validation (units, negative or impossible values, unknown sites, duplicates,
  overlapping periods, unmapped wells) go to `calibration_quarantine` with the reason; that is
  not a task failure. A file that cannot be read (not CSV text, missing required columns) fails
  its task with the file name and the missing columns, without retries.
- Each file is imported in one transaction; the log shows one summary line per file.
"""

from __future__ import annotations

import logging

from airflow.sdk import Param, dag, get_current_context, task
from flarewatch.orchestration.dags import DEFAULT_ARGS, START_DATE

log = logging.getLogger("flarewatch.calibration_import")


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
    },
)
def calibration_import():
    @task
    def plan_files() -> list[dict]:
        from flarewatch.meters import importer as calibration
        from flarewatch.orchestration.connections import (
            db_connection,
            s3_client,
            settings,
        )

        params = get_current_context()["params"]
        fmt = params.get("format") or "auto"
        s3_key, path = (params.get("s3_key") or "").strip(), (params.get("path") or "").strip()
        if s3_key and path:
            raise ValueError("give either s3_key or path, not both")
        cfg = settings()
        if s3_key:
            bucket, key = calibration.parse_s3_uri(s3_key, cfg.raw_bucket)
            return [{"bucket": bucket, "key": key, "format": fmt, "force": True, "label": key}]
        if path:
            return [{"path": path, "format": fmt, "label": path}]
        objects = calibration.list_calibration_objects(s3_client(cfg), cfg.raw_bucket)
        conn = db_connection(cfg)
        try:
            todo = calibration.new_objects(conn, cfg.raw_bucket, objects)
        finally:
            conn.close()
        log.info("%d objects under s3://%s/%s, %d not imported yet", len(objects), cfg.raw_bucket,
                 calibration.CALIBRATION_PREFIX, len(todo))
        return [{"bucket": cfg.raw_bucket, "key": o["key"], "format": fmt, "force": False, "label": o["key"]}
                for o in todo]

    @task(map_index_template="{{ file_label }}")
    def import_file(item: dict) -> dict:
        from airflow.sdk.exceptions import AirflowFailException
        from flarewatch.meters import importer as calibration
        from flarewatch.meters.formats import CalibrationFileError
        from flarewatch.orchestration.connections import (
            db_connection,
            s3_client,
            settings,
        )

        get_current_context()["file_label"] = item["label"]
        cfg = settings()
        conn = db_connection(cfg)
        try:
            if "path" in item:
                summary = calibration.import_path(conn, item["path"], fmt=item["format"])
            else:
                summary = calibration.import_s3_object(conn, s3_client(cfg), item["bucket"], item["key"],
                                                       fmt=item["format"], force=item["force"])
        except (CalibrationFileError, FileNotFoundError) as exc:
            raise AirflowFailException(str(exc)) from exc  # retrying cannot fix the file
        finally:
            conn.close()
        log.info("%s", calibration.format_summary(summary))
        return summary

    @task
    def report(summaries: list[dict]) -> dict:
        summaries = list(summaries)
        done = [s for s in summaries if not s.get("skipped")]
        totals = {
            "files": len(summaries),
            "skipped": len(summaries) - len(done),
            **{k: sum(s[k] for s in done) for k in ("rows", "inserted", "updated", "unchanged", "quarantined")},
        }
        by_reason: dict[str, int] = {}
        for s in done:
            for kind, n in s["by_reason"].items():
                by_reason[kind] = by_reason.get(kind, 0) + n
        totals["by_reason"] = dict(sorted(by_reason.items()))
        log.info("calibration import: %s", totals)
        return totals

    report(import_file.expand(item=plan_files()))


calibration_import()
