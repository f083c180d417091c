"""The latest Airflow run of each FlareWatch DAG, read from Airflow's metadata DB (the api-server's
own session), with a link to it in the Airflow UI. Without Airflow's DB (a bare app) the list is
empty and says why."""

from __future__ import annotations

import logging
from urllib.parse import quote

log = logging.getLogger(__name__)

PIPELINE_DAGS = ("flare_ingest", "flare_process", "emissions_rollup", "emissions_analytics", "emissions_report",
                 "calibration_import", "regressor_retrain", "detector_retrain")


def run_url(dag_id: str, run_id: str) -> str:
    return f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def latest_runs(dag_ids: tuple[str, ...] = PIPELINE_DAGS) -> tuple[list[dict], str | None]:
    """(one row per DAG: dag_id, run_id, state, run_after, start/end, url; None when never run), error)."""
    try:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        out = []
        with create_session() as session:
            for dag_id in dag_ids:
                run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id)
                                      .order_by(DagRun.run_after.desc(), DagRun.id.desc()).limit(1)).first()
                if run is None:
                    out.append({"dag_id": dag_id, "run_id": None, "state": None, "run_after": None,
                                "start_date": None, "end_date": None, "url": f"/dags/{dag_id}"})
                    continue
                out.append({"dag_id": dag_id, "run_id": run.run_id, "state": str(run.state) if run.state else None,
                            "run_after": run.run_after, "start_date": run.start_date, "end_date": run.end_date,
                            "url": run_url(dag_id, run.run_id)})
        return out, None
    except Exception as exc:  # noqa: BLE001 - the page still shows the emissions without run states
        log.warning("FlareWatch web: cannot read the DAG runs: %s", exc)
        return [], f"DAG runs unavailable: {exc}"
