"""The local stack's CeleryExecutor option (``dev.celerystack``), without starting Airflow.

Settings from ``FLAREWATCH_EXECUTOR`` / ``FLAREWATCH_CELERY_*``, the Airflow environment and the
worker command line, worker readiness from the log, status and ``up``'s refusals (no Redis; a
running stack asked to switch executor). The stack itself under Celery: test_celery_executor.py.
"""

from __future__ import annotations

import contextlib
import io
import sys

import pytest

from flarewatch import cli
from flarewatch.dev import celerystack, localstack, servers, supervise
from flarewatch.dev.celerystack import ExecutorConfig
from flarewatch.dev.localstack import StackPaths

DEAD_REDIS = f"redis://127.0.0.1:{servers.free_port()}/0"


@pytest.fixture
def paths(tmp_path, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setenv("FLAREWATCH_STATE_DIR", str(state))
    monkeypatch.setenv("FLAREWATCH_API_PORT", "18123")
    for var in ("FLAREWATCH_DB_URL", "FLAREWATCH_AIRFLOW_DB_URL", "FLAREWATCH_EXECUTOR", "FLAREWATCH_CELERY_WORKERS",
                "FLAREWATCH_CELERY_CONCURRENCY", "FLAREWATCH_CELERY_BROKER_URL", "FLAREWATCH_CELERY_REDIS_DB"):
        monkeypatch.delenv(var, raising=False)
    p = StackPaths(state)
    p.mkdirs()
    return p


def test_local_is_the_default_and_celery_has_two_workers_on_redis():
    assert ExecutorConfig.from_env(8080, {}) == ExecutorConfig()
    assert ExecutorConfig.from_env(8080, {}).airflow_env("postgresql://x") == {"AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}
    cfg = ExecutorConfig.from_env(8080, {"FLAREWATCH_EXECUTOR": "celery"})
    assert (cfg.workers, cfg.concurrency, cfg.broker_url, cfg.key_prefix) == \
        (2, 1, "redis://127.0.0.1:6379/0", "flarewatch-8080:")
    assert cfg.worker_names() == ["celery-worker1", "celery-worker2"]
    env = cfg.airflow_env("postgresql+psycopg2://postgres@/airflow?host=/s/pg")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql+psycopg2://postgres@/airflow?host=/s/pg"
    assert env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"] == "flarewatch-8080:"
    other = ExecutorConfig.from_env(8090, {"FLAREWATCH_EXECUTOR": "Celery", "FLAREWATCH_CELERY_WORKERS": "1",
                                           "FLAREWATCH_CELERY_CONCURRENCY": "3", "FLAREWATCH_CELERY_REDIS_DB": "5"})
    assert (other.workers, other.concurrency, other.broker_url, other.key_prefix) == \
        (1, 3, "redis://127.0.0.1:6379/5", "flarewatch-8090:")


@pytest.mark.parametrize("env, message", [
    ({"FLAREWATCH_EXECUTOR": "kubernetes"}, "use one of local, celery"),
    ({"FLAREWATCH_EXECUTOR": "celery", "FLAREWATCH_CELERY_WORKERS": "0"}, "must be at least 1"),
    ({"FLAREWATCH_EXECUTOR": "celery", "FLAREWATCH_CELERY_WORKERS": "two"}, "not a whole number"),
    ({"FLAREWATCH_EXECUTOR": "celery", "FLAREWATCH_CELERY_BROKER_URL": "amqp://u:secret@h//"}, "redis:// URL"),
])
def test_bad_settings_say_which_variable(env, message):
    with pytest.raises(ValueError, match=message) as exc:
        ExecutorConfig.from_env(8080, env)
    assert "secret" not in str(exc.value)


def test_worker_command_line():
    cfg = ExecutorConfig.from_env(8080, {"FLAREWATCH_EXECUTOR": "celery", "FLAREWATCH_CELERY_CONCURRENCY": "2"})
    assert cfg.worker_argv("/v/bin/airflow", "celery-worker2") == [
        "/v/bin/airflow", "celery", "worker", "--concurrency", "2", "--queues", "default", "--skip-serve-logs",
        "--celery-hostname", "worker2@%h"]


def test_a_worker_is_ready_once_its_log_says_so_since_its_start(tmp_path):
    log = tmp_path / "celery-worker1.log"
    log.write_text("old start\n[info] worker1@vm ready. [celery.apps.worker]\n")
    celerystack.mark_log_start(tmp_path, "celery-worker1", log)
    assert not celerystack.worker_ready(tmp_path, "celery-worker1", log)  # the earlier start's line
    with log.open("a") as fh:
        fh.write("2026-12-06T01:53:38Z [info     ] worker1@vm ready.              [celery.apps.worker]\n")
    assert celerystack.worker_ready(tmp_path, "celery-worker1", log)


def test_broker_problem_names_the_url_and_hides_the_password():
    assert "does not answer PING" in celerystack.broker_problem(DEAD_REDIS)
    problem = celerystack.broker_problem(DEAD_REDIS.replace("//", "//:pw-123@"))
    assert "pw-123" not in problem and ":****@" in problem


def test_up_refuses_celery_without_redis_before_starting_anything(paths, monkeypatch):
    monkeypatch.setenv("FLAREWATCH_EXECUTOR", "celery")
    monkeypatch.setenv("FLAREWATCH_CELERY_BROKER_URL", DEAD_REDIS)
    with pytest.raises(RuntimeError, match="needs a Redis broker.*does not answer PING"):
        localstack.up(paths, log=lambda _m: None)
    assert not list(paths.run.glob("*.pid"))


def test_status_and_env_follow_the_recorded_executor(paths, monkeypatch):
    celerystack.save(paths.run, ExecutorConfig.from_env(18123, {"FLAREWATCH_EXECUTOR": "celery",
                                                                "FLAREWATCH_CELERY_BROKER_URL": DEAD_REDIS}))
    assert localstack.component_names(paths)[-2:] == ["celery-worker1", "celery-worker2"]
    assert localstack.stack_env(paths)["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["status"]) == 3
    assert "celery-worker1 DOWN (not started)" in out.getvalue()
    localstack.down(paths, log=lambda _m: None)
    assert localstack.stack_env(paths)["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"  # down forgets it


def test_up_refuses_to_switch_the_executor_of_a_running_stack(paths, monkeypatch):
    celerystack.save(paths.run, ExecutorConfig())  # a LocalExecutor stack whose scheduler runs
    supervise.spawn(paths.run, paths.log_of("scheduler"), "scheduler", [sys.executable, "-c", "import time; "
                    "time.sleep(60)"], {}, paths.state)
    try:
        monkeypatch.setenv("FLAREWATCH_EXECUTOR", "celery")
        with pytest.raises(RuntimeError, match="runs with LocalExecutor.*scheduler.*`make down` first"):
            localstack.up(paths, log=lambda _m: None)
    finally:
        supervise.stop(paths.run, "scheduler")


def test_purge_and_down_delete_only_the_stack_s_keys(paths):
    url = "redis://127.0.0.1:6379/0"
    if problem := celerystack.broker_problem(url):
        pytest.skip(f"needs the Redis server on 127.0.0.1:6379: {problem}")
    import redis

    client = redis.Redis.from_url(url)
    mine, other = f"flarewatch-unit-{servers.free_port()}:", f"flarewatch-unit-other-{servers.free_port()}:"
    try:
        client.mset({mine + "default": "stale", mine + "unacked": "x", other + "default": "y"})
        assert celerystack.purge(url, mine) == 2
        assert client.get(other + "default") == b"y"
        client.set(mine + "default", "stale")
        celerystack.save(paths.run, ExecutorConfig("celery", 1, 1, url, mine))
        localstack.down(paths, log=lambda _m: None)
        assert not client.exists(mine + "default") and client.exists(other + "default")
    finally:
        client.delete(mine + "default", mine + "unacked", other + "default")
        client.close()
