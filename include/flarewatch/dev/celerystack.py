"""The local stack under the CeleryExecutor (``FLAREWATCH_EXECUTOR=celery``): Redis broker, workers.

The default executor is LocalExecutor. With ``FLAREWATCH_EXECUTOR=celery``, ``flarewatch up``
(``dev.localstack``) runs Airflow with ``AIRFLOW__CORE__EXECUTOR=CeleryExecutor`` and adds
``FLAREWATCH_CELERY_WORKERS`` (default 2) supervised ``airflow celery worker`` components,
``celery-worker1`` .. ``celery-workerN``, each ``--concurrency FLAREWATCH_CELERY_CONCURRENCY``
(default 1) on the queue ``default``, with the Celery hostname ``worker<i>@<host>`` and no log
server (``--skip-serve-logs``: the api-server reads task logs from the shared log folder).

- Broker: ``FLAREWATCH_CELERY_BROKER_URL``, default ``redis://127.0.0.1:6379/<db>`` with
  ``<db>`` = ``FLAREWATCH_CELERY_REDIS_DB`` (default 0). Every key the stack's Celery writes
  carries the prefix ``flarewatch-<api port>:`` (kombu's ``global_keyprefix``; Airflow passes
  ``[celery_broker_transport_options]`` through), so stacks on other ports, parallel tests among
  them, share neither queues nor worker names even on one Redis database. ``up`` checks that
  Redis answers PING first, and when no scheduler or worker of the stack runs it deletes the
  stack's keys (stale messages of an earlier stack never run).
- Result backend: the stack's Airflow metadata database, ``db+`` + its SQLAlchemy URL (over
  pgserver's unix socket by default; Celery creates its ``celery_taskmeta`` tables there).
- The executor a stack was started with is recorded in ``run/executor.json`` until ``down``:
  ``status``, ``down`` and ``env`` follow the running stack whatever the shell's variables say,
  and ``up`` refuses to switch the executor of a running stack.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
QUEUE = "default"  # Airflow's [operators] default_queue
WORKER_PREFIX = "celery-worker"
RECORD = "executor.json"
_READY = re.compile(rb"@\S+ ready\.")
READY_SCAN_BYTES = 1 << 20


@dataclass(frozen=True)
class ExecutorConfig:
    """The stack's executor: ``local``, or ``celery`` with its workers, broker and key prefix."""

    kind: str = "local"
    workers: int = 0
    concurrency: int = 1
    broker_url: str | None = None
    key_prefix: str | None = None

    @property
    def celery(self) -> bool:
        return self.kind == "celery"

    @property
    def airflow_executor(self) -> str:
        return EXECUTORS[self.kind]

    @classmethod
    def from_env(cls, api_port: int, environ: dict[str, str] | None = None) -> ExecutorConfig:
        """What ``FLAREWATCH_EXECUTOR`` (local | celery) and the ``FLAREWATCH_CELERY_*`` variables ask for."""
        env = os.environ if environ is None else environ
        kind = env.get("FLAREWATCH_EXECUTOR", "local").strip().lower() or "local"
        if kind not in EXECUTORS:
            raise ValueError(f"FLAREWATCH_EXECUTOR={kind!r}: use one of {', '.join(EXECUTORS)}")
        if kind == "local":
            return cls()
        workers = _positive_int(env, "FLAREWATCH_CELERY_WORKERS", 2)
        concurrency = _positive_int(env, "FLAREWATCH_CELERY_CONCURRENCY", 1)
        db = _positive_int(env, "FLAREWATCH_CELERY_REDIS_DB", 0, minimum=0)
        url = env.get("FLAREWATCH_CELERY_BROKER_URL") or f"redis://127.0.0.1:6379/{db}"
        if urlsplit(url).scheme not in ("redis", "rediss"):
            raise ValueError(f"FLAREWATCH_CELERY_BROKER_URL must be a redis:// URL, not {redact_url(url)}")
        return cls("celery", workers, concurrency, url, f"flarewatch-{api_port}:")

    def worker_names(self) -> list[str]:
        return [f"{WORKER_PREFIX}{i}" for i in range(1, self.workers + 1)] if self.celery else []

    def airflow_env(self, sql_alchemy_conn: str) -> dict[str, str]:
        """The Airflow settings for this executor (every component and worker gets the same)."""
        env = {"AIRFLOW__CORE__EXECUTOR": self.airflow_executor}
        if self.celery:
            env.update({
                "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{sql_alchemy_conn}",
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.concurrency),
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": self.key_prefix,
                # Airflow's default, set to silence its warning about it: a task a worker took and never
                # acknowledged (the worker was killed) is delivered again after this many seconds.
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",
            })
        return env

    def worker_argv(self, airflow: str, name: str) -> list[str]:
        """``airflow celery worker`` for component ``name`` (``celery-worker<i>``)."""
        i = name.removeprefix(WORKER_PREFIX)
        return [airflow, "celery", "worker", "--concurrency", str(self.concurrency), "--queues", QUEUE,
                "--skip-serve-logs", "--celery-hostname", f"worker{i}@%h"]

    def describe(self) -> str:
        if not self.celery:
            return "LocalExecutor"
        return (f"CeleryExecutor, {self.workers} worker(s) x concurrency {self.concurrency}, broker "
                f"{redact_url(self.broker_url)} (keys {self.key_prefix}*)")


def _positive_int(env, var: str, default: int, minimum: int = 1) -> int:
    raw = env.get(var, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ValueError(f"{var}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ValueError(f"{var}={value} must be at least {minimum}")
    return value


def redact_url(url: str | None) -> str:
    """``url`` with its password masked."""
    if not url:
        return ""
    parts = urlsplit(url)
    return url.replace(f":{parts.password}@", ":****@") if parts.password else url


def url_password(url: str | None) -> str | None:
    try:
        return urlsplit(url or "").password
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------
# the record of the running stack's executor (run/executor.json)
# ------------------------------------------------------------------------------------------
def save(run_dir: Path, cfg: ExecutorConfig) -> None:
    (Path(run_dir) / RECORD).write_text(json.dumps(asdict(cfg)))


def load(run_dir: Path) -> ExecutorConfig | None:
    try:
        return ExecutorConfig(**json.loads((Path(run_dir) / RECORD).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def forget(run_dir: Path) -> None:
    """After ``down``: no executor record, no worker log marks."""
    (Path(run_dir) / RECORD).unlink(missing_ok=True)
    for mark in Path(run_dir).glob(f"{WORKER_PREFIX}*.logstart"):
        mark.unlink(missing_ok=True)


def recorded_worker_names(run_dir: Path) -> list[str]:
    """Every worker with a pid file (also those of an earlier start with more workers)."""
    names = [p.stem for p in Path(run_dir).glob(f"{WORKER_PREFIX}*.pid")]
    return sorted(names, key=lambda n: int(n.removeprefix(WORKER_PREFIX) or 0))


# ------------------------------------------------------------------------------------------
# Redis: is it there, and the stack's own keys
# ------------------------------------------------------------------------------------------
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def broker_problem(url: str) -> str | None:
    """None when the Redis at ``url`` answers PING, else why not (one line)."""
    try:
        import redis
    except ImportError:
        return "the redis client is not installed (pip install -r requirements.txt)"
    try:
        client = _redis(url)
        try:
            ok = client.ping()
        finally:
            client.close()
    except redis.RedisError as exc:
        return f"Redis at {redact_url(url)} does not answer PING ({str(exc).strip().splitlines()[0]})"
    return None if ok else f"Redis at {redact_url(url)} answered PING with something else"


def purge(url: str, key_prefix: str) -> int:
    """Delete the keys under ``key_prefix`` (queues, unacked messages, bindings); returns how many."""
    client = _redis(url)
    try:
        keys = list(client.scan_iter(match=f"{key_prefix}*", count=1000))
        return client.delete(*keys) if keys else 0
    finally:
        client.close()


# ------------------------------------------------------------------------------------------
# worker readiness: its log since it was started says "<name>@<host> ready."
# ------------------------------------------------------------------------------------------
def _offset_file(run_dir: Path, name: str) -> Path:
    return Path(run_dir) / f"{name}.logstart"


def mark_log_start(run_dir: Path, name: str, log: Path) -> None:
    """Remember where the worker's log ends now (before it starts): readiness is read from there."""
    size = log.stat().st_size if log.exists() else 0
    _offset_file(run_dir, name).write_text(str(size))


def worker_ready(run_dir: Path, name: str, log: Path) -> bool:
    """Whether the worker started last has logged Celery's ``<name>@<host> ready.``."""
    try:
        start = int(_offset_file(run_dir, name).read_text())
        with open(log, "rb") as fh:
            fh.seek(start)
            return bool(_READY.search(fh.read(READY_SCAN_BYTES)))
    except (OSError, ValueError):
        return False
