"""The Airflow 3 REST API (v2) for the developer tools, through the official client.

``AirflowApi`` wraps ``apache-airflow-client`` (pinned in requirements.txt to Airflow's version)
with what ``flarewatch demo`` needs: list and unpause DAGs, trigger runs, count and list runs,
create and follow a backfill. It signs in with ``POST /auth/token`` (the simple auth manager's
user and password; not part of the generated client), sends the JWT as a bearer token, signs in
again once when a call answers 401 (the token expired), and turns every API or connection error
into a RuntimeError that names the call and the HTTP status.

``for_stack(paths)`` is the client for the local stack: its api-server URL and the generated
admin password (``simple_auth_manager_passwords.json.generated``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any

import urllib3
from airflow_client.client import (
    ApiClient,
    ApiException,
    BackfillApi,
    BackfillPostBody,
    Configuration,
    DAGApi,
    DAGPatchBody,
    DagRunApi,
    ReprocessBehavior,
    TriggerDAGRunPostBody,
)

from flarewatch.dev import localstack

REQUEST_TIMEOUT_S = 30.0


class AirflowApi:
    """Airflow REST API client for ``base`` (e.g. ``http://127.0.0.1:8080``) as ``username``."""

    def __init__(self, base: str, username: str, password: str, timeout: float = REQUEST_TIMEOUT_S):
        self.base = base.rstrip("/")
        self.username, self.password = username, password
        self.timeout = timeout
        self.config = Configuration(host=self.base)
        self.client = ApiClient(self.config)
        self.dags_api = DAGApi(self.client)
        self.runs_api = DagRunApi(self.client)
        self.backfills_api = BackfillApi(self.client)

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self.client.rest_client.pool_manager.clear()

    def __enter__(self) -> AirflowApi:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- authentication and errors -----------------------------------------------------------
    def login(self) -> None:
        """Get a JWT from ``POST /auth/token`` and use it for the following calls."""
        request = self.client.param_serialize(
            "POST", "/auth/token", header_params={"Content-Type": "application/json", "Accept": "application/json"},
            body={"username": self.username, "password": self.password}, auth_settings=[])
        try:
            resp = self.client.call_api(*request, _request_timeout=self.timeout)
            resp.read()
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            raise RuntimeError(f"Airflow API POST /auth/token failed: {exc}") from exc
        if resp.status not in (200, 201):
            detail = (resp.data or b"").decode(errors="replace")[:500]
            raise RuntimeError(f"Airflow API POST /auth/token -> HTTP {resp.status}: {detail}")
        self.config.access_token = json.loads(resp.data)["access_token"]

    def _call(self, what: str, fn: Callable, *args, **kwargs) -> Any:
        """``fn(*args, **kwargs)`` signed in, with the request timeout; one new sign-in on HTTP 401."""
        kwargs.setdefault("_request_timeout", self.timeout)
        for attempt in (1, 2):
            if self.config.access_token is None:
                self.login()
            try:
                return fn(*args, **kwargs)
            except ApiException as exc:
                if exc.status == 401 and attempt == 1:
                    self.config.access_token = None
                    continue
                detail = (exc.body or exc.reason or "")
                raise RuntimeError(f"Airflow API {what} -> HTTP {exc.status}: {str(detail)[:500]}") from exc
            except urllib3.exceptions.HTTPError as exc:
                raise RuntimeError(f"Airflow API {what} failed: {exc}") from exc

    # -- DAGs and runs -------------------------------------------------------------------------
    def dags(self, limit: int = 100) -> dict[str, bool]:
        """dag_id -> is_paused of the parsed DAGs."""
        res = self._call("GET /api/v2/dags", self.dags_api.get_dags, limit=limit)
        return {d.dag_id: d.is_paused for d in res.dags}

    def unpause(self, dag_id: str) -> None:
        self._call(f"PATCH /api/v2/dags/{dag_id}", self.dags_api.patch_dag, dag_id, DAGPatchBody(is_paused=False),
                   update_mask=["is_paused"])

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        """Trigger a manual run now (no logical date); returns its run id."""
        run = self._call(f"POST /api/v2/dags/{dag_id}/dagRuns", self.runs_api.trigger_dag_run, dag_id,
                         TriggerDAGRunPostBody(logical_date=None, conf=conf or {}))
        return run.dag_run_id

    def run_state(self, dag_id: str, run_id: str) -> str:
        run = self._call(f"GET /api/v2/dags/{dag_id}/dagRuns/{run_id}", self.runs_api.get_dag_run, dag_id, run_id)
        return run.state.value

    def count_runs(self, dag_id: str, states: list[str]) -> int:
        """How many runs of ``dag_id`` are in one of ``states``."""
        res = self._call(f"GET /api/v2/dags/{dag_id}/dagRuns", self.runs_api.get_dag_runs, dag_id,
                         state=list(states), limit=1)
        return res.total_entries or 0

    def run_ids(self, dag_id: str, state: str, started_since: datetime, limit: int = 50) -> list[str]:
        """Run ids of ``dag_id`` in ``state`` that started at or after ``started_since``."""
        res = self._call(f"GET /api/v2/dags/{dag_id}/dagRuns", self.runs_api.get_dag_runs, dag_id,
                         state=[state], limit=limit, start_date_gte=started_since)
        return [r.dag_run_id for r in res.dag_runs]

    # -- backfills -----------------------------------------------------------------------------
    def backfills(self, dag_id: str, limit: int = 100) -> list:
        """The backfills of ``dag_id`` (``BackfillResponse``: id, completed_at, ...)."""
        res = self._call("GET /api/v2/backfills", self.backfills_api.list_backfills, dag_id, limit=limit)
        return list(res.backfills)

    def backfill(self, backfill_id: int):
        return self._call(f"GET /api/v2/backfills/{backfill_id}", self.backfills_api.get_backfill, backfill_id)

    def create_backfill(self, dag_id: str, first: date, last: date, *, reprocess: str = "completed",
                        max_active_runs: int = 4):
        """Backfill the runs of ``dag_id`` whose dates fall on ``first`` .. ``last`` (whole UTC days)."""
        body = BackfillPostBody(
            dag_id=dag_id,
            from_date=datetime.combine(first, time(0, 0, 0), UTC),
            to_date=datetime.combine(last, time(23, 59, 59), UTC),
            reprocess_behavior=ReprocessBehavior(reprocess), max_active_runs=max_active_runs,
            run_backwards=False, dag_run_conf={})
        return self._call("POST /api/v2/backfills", self.backfills_api.create_backfill, body)


def for_stack(paths) -> AirflowApi:
    """The client for the local stack's api-server, signed in as its generated ``admin`` user."""
    password = localstack.airflow_password(paths)
    if not password:
        raise RuntimeError(f"no Airflow password yet in {paths.passwords_file}; is the api-server up?")
    return AirflowApi(localstack.stack_env(paths)["AIRFLOW__API__BASE_URL"], "admin", password)
