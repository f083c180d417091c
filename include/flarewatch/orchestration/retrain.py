"""The retraining tasks, one set for both models: train a challenger, gate it, and (regressor) backfill.

``retrain_tasks("detector")`` / ``retrain_tasks("regressor")`` build the TaskFlow tasks inside a
``@dag`` function; their bodies are ``orchestration.tasks.train_challenger`` / ``promote`` /
``backfill_volumes``. Imported at DAG parse time: the Airflow SDK only.
"""

from __future__ import annotations

from airflow.sdk import get_current_context, task

from flarewatch.orchestration.dags import FLARE_EMISSIONS


def retrain_tasks(model: str):
    """(train_challenger, promote) tasks for ``model`` ("detector" or "regressor")."""

    @task(task_id="train_challenger", execution_timeout=None)
    def train_challenger() -> dict:
        from flarewatch.orchestration import tasks

        return tasks.train_challenger(model, get_current_context())

    @task(task_id="promote")
    def promote(result: dict) -> dict:
        from flarewatch.orchestration import tasks

        return tasks.promote(model, result)

    return train_challenger, promote


@task(outlets=[FLARE_EMISSIONS])
def backfill(decision: dict, *, outlet_events=None) -> dict:
    """Re-estimate a date range with the promoted regressor and tell ``emissions_rollup`` which days changed."""
    from flarewatch.orchestration import tasks

    result = tasks.backfill_volumes(decision, get_current_context()["params"])
    outlet_events[FLARE_EMISSIONS].extra = {"days": result["days"], "source": "regressor_retrain"}
    return result
