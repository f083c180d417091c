"""dev.airflow_api (the official apache-airflow-client behind the demo) against a tiny fake Airflow API.

The fake server answers like the Airflow 3.3 api-server for the calls the demo makes and records
every request, so the tests check what the client sends (paths, query, JSON bodies, bearer
token) and what the wrapper makes of the answers. No Airflow runs.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

pytest.importorskip("airflow_client.client")

from flarewatch.dev import demo  # noqa: E402
from flarewatch.dev.airflow_api import AirflowApi  # noqa: E402

T = "2025-06-02T06:00:00Z"


def dag_json(dag_id: str, paused: bool) -> dict:
    return {"dag_id": dag_id, "dag_display_name": dag_id, "is_paused": paused, "is_stale": False,
            "file_token": "t", "fileloc": f"/dags/{dag_id}.py", "has_import_errors": False,
            "has_task_concurrency_limits": False, "is_backfillable": True, "max_active_tasks": 4,
            "max_consecutive_failed_dag_runs": 0, "owners": ["flarewatch"], "tags": [],
            "timetable_partitioned": False, "timetable_periodic": True}


def run_json(dag_id: str, run_id: str, state: str = "queued") -> dict:
    return {"dag_id": dag_id, "dag_display_name": dag_id, "dag_run_id": run_id, "dag_versions": [],
            "run_after": T, "run_type": "manual", "state": state, "logical_date": None, "conf": {}}


def backfill_json(backfill_id: int, completed_at: str | None = None) -> dict:
    return {"id": backfill_id, "dag_id": "flare_ingest", "dag_display_name": "flare_ingest",
            "completed_at": completed_at, "created_at": T, "updated_at": T, "from_date": T, "to_date": T,
            "is_paused": False, "max_active_runs": 4, "reprocess_behavior": "completed", "dag_run_conf": {}}


class FakeAirflow:
    """Routes ``(method, path)`` -> handler(request) -> (status, json); records requests as dicts."""

    def __init__(self):
        self.requests: list[dict] = []
        self.routes: dict[tuple[str, str], object] = {}
        self.valid_tokens: set[str] = set()
        self.refuse_all = False
        self.tokens = iter(["tok-1", "tok-2", "tok-3"])
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _handle(self):
                parts = urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                req = {"method": self.command, "path": parts.path, "query": parse_qs(parts.query),
                       "headers": dict(self.headers), "json": json.loads(raw) if raw else None}
                fake.requests.append(req)
                status, body = fake.answer(req)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def answer(self, req: dict) -> tuple[int, object]:
        if (req["method"], req["path"]) == ("POST", "/auth/token"):
            if req["json"] != {"username": "admin", "password": "pw"}:
                return 401, {"detail": "Invalid credentials"}
            token = next(self.tokens)
            self.valid_tokens.add(token)
            return 201, {"access_token": token}
        auth = req["headers"].get("Authorization", "")
        if self.refuse_all or not auth.startswith("Bearer ") or auth.split(" ", 1)[1] not in self.valid_tokens:
            return 401, {"detail": "Not authenticated"}
        handler = self.routes.get((req["method"], req["path"]))
        if handler is None:
            return 404, {"detail": f"no route {req['method']} {req['path']}"}
        return handler(req) if callable(handler) else (200, handler)

    def api_calls(self) -> list[dict]:
        return [r for r in self.requests if r["path"] != "/auth/token"]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    f = FakeAirflow()
    yield f
    f.close()


@pytest.fixture
def api(fake):
    with AirflowApi(fake.url, "admin", "pw", timeout=5) as a:
        yield a


def test_signs_in_with_auth_token_and_sends_the_bearer_token(fake, api):
    fake.routes[("GET", "/api/v2/dags")] = {"dags": [dag_json("flare_ingest", True), dag_json("flare_process", False)],
                                           "total_entries": 2}
    assert api.dags() == {"flare_ingest": True, "flare_process": False}
    token_req, dags_req = fake.requests
    assert (token_req["method"], token_req["path"]) == ("POST", "/auth/token")
    assert token_req["json"] == {"username": "admin", "password": "pw"}
    assert token_req["headers"]["Content-Type"] == "application/json"
    assert "Authorization" not in token_req["headers"]
    assert dags_req["headers"]["Authorization"] == "Bearer tok-1"
    assert dags_req["query"] == {"limit": ["100"]}
    api.dags()
    assert [r["path"] for r in fake.requests].count("/auth/token") == 1  # the token is reused


def test_unpause_and_trigger_send_the_bodies_airflow_expects(fake, api):
    fake.routes[("PATCH", "/api/v2/dags/flare_ingest")] = dag_json("flare_ingest", False)
    fake.routes[("POST", "/api/v2/dags/calibration_import/dagRuns")] = lambda req: (
        200, run_json("calibration_import", "manual__2025-06-02T06:00:00+00:00"))
    api.unpause("flare_ingest")
    assert api.trigger("calibration_import") == "manual__2025-06-02T06:00:00+00:00"
    patch, trigger = fake.api_calls()
    assert patch["json"] == {"is_paused": False} and patch["query"] == {"update_mask": ["is_paused"]}
    assert trigger["json"] == {"logical_date": None, "conf": {}}


def test_run_queries(fake, api):
    fake.routes[("GET", "/api/v2/dags/flare_process/dagRuns")] = lambda req: (200, {
        "dag_runs": [run_json("flare_process", "r1", "failed")] if req["query"].get("state") == ["failed"] else [],
        "total_entries": 3})
    fake.routes[("GET", "/api/v2/dags/flare_process/dagRuns/r1")] = run_json("flare_process", "r1", "success")
    assert api.count_runs("flare_process", ["queued", "running"]) == 3
    since = datetime(2025, 6, 2, 6, 30, 15, 123456, tzinfo=UTC)
    assert api.run_ids("flare_process", "failed", since) == ["r1"]
    assert api.run_state("flare_process", "r1") == "success"
    count, failed, _ = fake.api_calls()
    assert count["query"] == {"state": ["queued", "running"], "limit": ["1"]}
    assert failed["query"]["state"] == ["failed"] and failed["query"]["limit"] == ["50"]
    assert datetime.fromisoformat(failed["query"]["start_date_gte"][0]) == since


def test_backfill_calls(fake, api):
    fake.routes[("POST", "/api/v2/backfills")] = lambda req: (200, backfill_json(7))
    fake.routes[("GET", "/api/v2/backfills")] = {"backfills": [backfill_json(5, T), backfill_json(7)],
                                                "total_entries": 2}
    fake.routes[("GET", "/api/v2/backfills/7")] = backfill_json(7, "2025-06-02T07:00:00Z")
    assert demo.create_backfill(api, date(2025, 6, 1), date(2025, 6, 7)).id == 7
    running = [b.id for b in api.backfills("flare_ingest") if b.completed_at is None]
    assert running == [7]
    assert api.backfill(7).completed_at == datetime(2025, 6, 2, 7, tzinfo=UTC)
    create, listing, _ = fake.api_calls()
    body = create["json"]
    # acquisition days 06-01 .. 06-07 are the runs of 06-02 .. 06-08 (flare_ingest processes the previous day)
    assert datetime.fromisoformat(body.pop("from_date")) == datetime(2025, 6, 2, tzinfo=UTC)
    assert datetime.fromisoformat(body.pop("to_date")) == datetime(2025, 6, 8, 23, 59, 59, tzinfo=UTC)
    assert body == {"dag_id": "flare_ingest", "reprocess_behavior": "completed", "max_active_runs": 4,
                    "run_backwards": False, "dag_run_conf": {}}
    assert listing["query"] == {"dag_id": ["flare_ingest"], "limit": ["100"]}


def test_an_expired_token_signs_in_again_once(fake, api):
    fake.routes[("GET", "/api/v2/dags")] = {"dags": [], "total_entries": 0}
    api.dags()
    fake.valid_tokens.discard("tok-1")  # the JWT expired
    assert api.dags() == {}
    assert [r["headers"].get("Authorization") for r in fake.api_calls()] == [
        "Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    fake.refuse_all = True  # every token refused: one new sign-in, then the error
    with pytest.raises(RuntimeError, match=r"GET /api/v2/dags -> HTTP 401"):
        api.dags()
    assert [r["path"] for r in fake.requests][-3:] == ["/api/v2/dags", "/auth/token", "/api/v2/dags"]


def test_errors_name_the_call_and_the_status(fake, api):
    with pytest.raises(RuntimeError, match=r"GET /api/v2/backfills/9 -> HTTP 404: .*no route"):
        api.backfill(9)
    bad = AirflowApi(fake.url, "admin", "wrong", timeout=5)
    with pytest.raises(RuntimeError, match=r"POST /auth/token -> HTTP 401: .*Invalid credentials"):
        bad.dags()


def test_no_server_is_a_runtime_error():
    from flarewatch.dev.servers import free_port

    api = AirflowApi(f"http://127.0.0.1:{free_port()}", "admin", "pw", timeout=2)
    with pytest.raises(RuntimeError, match="auth/token"):
        api.dags()
