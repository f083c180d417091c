"""The embedded local stack: S3 server (rclone), PostgreSQL (pgserver), Airflow 3 (LocalExecutor, or
CeleryExecutor with Redis and supervised workers under ``FLAREWATCH_EXECUTOR=celery``: ``dev.celerystack``).

Everything lives under one state folder (``FLAREWATCH_STATE_DIR``, default ``<repo>/.state``)::

    .state/s3/          buckets as directories (rclone serve s3)
    .state/pg/          PostgreSQL data dir + unix socket (databases: flarewatch, airflow); its log: pg/log
    .state/airflow/     AIRFLOW_HOME: config, task logs, the simple auth manager's passwords file
    .state/run/         pid files;  .state/logs/  process logs;  .state/secrets.json

Processes are started in their own sessions (process groups) and stopped by group, so
``down`` leaves nothing behind; ``up`` waits until every component is healthy and stays so for a
few seconds, restarting what died (``dev.supervise``). Endpoints reach the DAGs only through
``AIRFLOW_CONN_*`` variables: set ``FLAREWATCH_DB_URL`` to use an existing Postgres for results
instead of pgserver.

Secrets (S3 key, JWT secret, the Airflow admin password) are generated once into
``secrets.json``; they and every log live in owner-only files (0600) in owner-only folders
(0700; as root the state folder is 0710: pgserver runs PostgreSQL as user ``pgserver`` with
root's group, and it must reach its data dir). They reach the processes through their environment, never a
command line, and no log: the admin password is written to the simple auth manager's passwords
file before the api-server starts, so Airflow never generates (and prints) one. Every socket
listens on 127.0.0.1 (PostgreSQL on a unix socket only); Airflow's log servers, which bind
every interface, are not started (``--skip-serve-logs``): the api-server reads task logs from
the shared log folder.

Why this module is long: it is the one place that knows the whole stack (state paths, the
environment every component shares, secrets, start / probe / heal / stop per component, the
executor a stack was started with); the supervision loop and the Celery workers live in
``supervise`` and ``celerystack``, and splitting the rest would scatter one lifecycle.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flarewatch.dev import celerystack, servers, supervise
from flarewatch.orchestration.pools import pools_spec
from flarewatch.store import db, seed

REPO_ROOT = Path(__file__).resolve().parents[3]
AIRFLOW_COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
# Airflow's log servers (8793/8794) bind every interface and are not needed on one machine.
AIRFLOW_ARGS = {"scheduler": ["--skip-serve-logs"], "triggerer": ["--skip-serve-logs"]}
# the /api/v2/monitor/health key of each component that heartbeats
HEARTBEAT_KEY = {"scheduler": "scheduler", "dag-processor": "dag_processor", "triggerer": "triggerer"}
SECRET_KEYS = ("s3_secret", "jwt_secret", "airflow_admin_password")


@dataclass(frozen=True)
class StackPaths:
    state: Path

    @classmethod
    def default(cls) -> StackPaths:
        return cls(Path(os.environ.get("FLAREWATCH_STATE_DIR", REPO_ROOT / ".state")).resolve())

    @property
    def s3(self) -> Path: return self.state / "s3"
    @property
    def pg(self) -> Path: return self.state / "pg"
    @property
    def airflow_home(self) -> Path: return self.state / "airflow"
    @property
    def run(self) -> Path: return self.state / "run"
    @property
    def logs(self) -> Path: return self.state / "logs"
    @property
    def secrets_file(self) -> Path: return self.state / "secrets.json"
    @property
    def passwords_file(self) -> Path: return self.airflow_home / "simple_auth_manager_passwords.json.generated"

    def log_of(self, name: str) -> Path:
        """Where component ``name`` writes its output (PostgreSQL: pgserver's log in the data dir)."""
        return self.pg / "log" if name == "postgres" else self.logs / f"{name}.log"

    def mkdirs(self) -> None:
        for p in (self.state, self.s3, self.airflow_home, self.run, self.logs, self.state / "cache"):
            p.mkdir(mode=0o700, parents=True, exist_ok=True)


def _port() -> dict[str, int]:
    return {"s3": int(os.environ.get("FLAREWATCH_S3_PORT", "9000")),
            "api": int(os.environ.get("FLAREWATCH_API_PORT", "8080"))}


def executor_config(paths: StackPaths | None = None) -> celerystack.ExecutorConfig:
    """The running stack's executor (recorded at ``up``), else what ``FLAREWATCH_EXECUTOR`` asks for."""
    paths = paths or StackPaths.default()
    return celerystack.load(paths.run) or celerystack.ExecutorConfig.from_env(_port()["api"])


# ------------------------------------------------------------------------------------------
# secrets and file modes
# ------------------------------------------------------------------------------------------
def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, owner-only (0600) from the first byte."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def ensure_secrets(paths: StackPaths) -> dict:
    """The stack's generated secrets (``secrets.json``, 0600); missing ones are generated now."""
    data = json.loads(paths.secrets_file.read_text()) if paths.secrets_file.exists() else {}
    fresh = {"s3_key": "flarewatch", "s3_secret": secrets.token_hex(16), "jwt_secret": secrets.token_hex(32),
             "airflow_admin_password": secrets.token_urlsafe(12)}
    missing = {k: v for k, v in fresh.items() if k not in data}
    if missing:
        paths.state.mkdir(mode=0o700, parents=True, exist_ok=True)
        data.update(missing)
        write_private(paths.secrets_file, json.dumps(data, indent=2))
    elif paths.secrets_file.stat().st_mode & 0o077:
        paths.secrets_file.chmod(0o600)
    return data


def secret_values(paths: StackPaths | None = None) -> list[str]:
    """Every secret the stack's environment can hold: the generated ones and database URL passwords."""
    paths = paths or StackPaths.default()
    sec = ensure_secrets(paths)
    out = [sec[k] for k in SECRET_KEYS if sec.get(k)]
    for var in ("FLAREWATCH_DB_URL", "FLAREWATCH_AIRFLOW_DB_URL"):
        try:
            pw = urlsplit(os.environ.get(var, "")).password
        except ValueError:
            pw = None
        if pw:
            out.append(pw)
    broker_pw = celerystack.url_password(executor_config(paths).broker_url)
    return out + ([broker_pw] if broker_pw else [])


def _pg_needs_group_traverse(paths: StackPaths) -> bool:
    """As root, pgserver runs PostgreSQL as user ``pgserver`` with root's group (it switches the user
    only): that process must traverse the state folder to its data dir, so the folder is 0710."""
    return os.geteuid() == 0 and paths.pg.is_dir()


def harden(paths: StackPaths) -> None:
    """Owner-only state: folders 0700 (the state folder 0710 as root, once the private PostgreSQL
    exists), secrets, config and logs 0600. pgserver widens the data dir's parents on every start:
    this narrows them again."""
    for d in (paths.s3, paths.airflow_home, paths.run, paths.logs, paths.state / "cache"):
        if d.is_dir():
            d.chmod(0o700)
    if paths.state.is_dir():
        paths.state.chmod(0o710 if _pg_needs_group_traverse(paths) else 0o700)
    files = [paths.secrets_file, paths.passwords_file, paths.airflow_home / "airflow.cfg"]
    for f in [*files, *paths.logs.glob("*.log")]:
        if f.exists():
            f.chmod(0o600)


def write_airflow_passwords(paths: StackPaths, sec: dict) -> bool:
    """The simple auth manager's passwords file, ours (0600) before the api-server starts: Airflow only
    generates, and prints to its log, a password for a user missing from this file. The file is read
    at each login, so a changed password takes effect at once. True when the file changed."""
    want = {"admin": sec["airflow_admin_password"]}
    try:
        have = json.loads(paths.passwords_file.read_text())
    except (OSError, ValueError):
        have = None
    if have != want:
        paths.airflow_home.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(paths.passwords_file, json.dumps(want) + "\n")
    return have != want


_PRINTED_PASSWORD = re.compile(r"(Password for user '[^']*': )\S+")


def scrub_logs(paths: StackPaths) -> None:
    """Mask a password that an earlier Airflow start printed into the api-server log (stacks from
    before the passwords file was ours; that password is replaced by ours, too)."""
    f = paths.log_of("api-server")
    if f.exists() and "Password for user '" in (text := f.read_text(errors="replace")):
        write_private(f, _PRINTED_PASSWORD.sub(r"\1****", text))


def results_db_conn_json(paths: StackPaths) -> str:
    """AIRFLOW_CONN_FLAREWATCH_DB value: FLAREWATCH_DB_URL when set, else the private pgserver."""
    url = os.environ.get("FLAREWATCH_DB_URL")
    if url:
        return url
    return json.dumps({"conn_type": "postgres", "host": str(paths.pg), "port": 5432,
                       "login": "postgres", "schema": "flarewatch"})


def results_db_dsn(paths: StackPaths) -> str:
    return os.environ.get("FLAREWATCH_DB_URL") or f"postgresql://postgres@/flarewatch?host={paths.pg}"


def _own_postgres() -> bool:
    """Whether the stack runs its private PostgreSQL (not both databases given by URL)."""
    return not (os.environ.get("FLAREWATCH_DB_URL") and os.environ.get("FLAREWATCH_AIRFLOW_DB_URL"))


def stack_env(paths: StackPaths | None = None) -> dict[str, str]:
    """Environment for every process of the local stack (Airflow components, CLI, tests)."""
    paths = paths or StackPaths.default()
    sec = ensure_secrets(paths)
    ports = _port()
    cache = paths.state / "cache"
    sql_alchemy_conn = os.environ.get("FLAREWATCH_AIRFLOW_DB_URL",
                                      f"postgresql+psycopg2://postgres@/airflow?host={paths.pg}")
    env = {
        "AIRFLOW_HOME": str(paths.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        **executor_config(paths).airflow_env(sql_alchemy_conn),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # No daily ingest on the local stack: its data is the demo's (June 2025); a daily run would
        # ingest yesterday's simulated scenes as soon as the DAGs are unpaused (orchestration.dags).
        "FLAREWATCH_INGEST_SCHEDULE": os.environ.get("FLAREWATCH_INGEST_SCHEDULE", "off"),
        # a test or benchmark that unpauses only the DAGs it drives sets FLAREWATCH_DAGS_PAUSED_AT_CREATION=True
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": os.environ.get("FLAREWATCH_DAGS_PAUSED_AT_CREATION", "False"),
        "AIRFLOW__CORE__PARALLELISM": os.environ.get("FLAREWATCH_PARALLELISM", "4"),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(ports["api"]),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{ports['api']}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{ports['api']}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": sec["jwt_secret"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(paths.passwords_file),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(paths.airflow_home / "logs"),
        "AIRFLOW_CONN_FLAREWATCH_S3": json.dumps({
            "conn_type": "aws", "login": sec["s3_key"], "password": sec["s3_secret"],
            "extra": {"endpoint_url": f"http://127.0.0.1:{ports['s3']}", "region_name": "us-east-1"}}),
        "AIRFLOW_CONN_FLAREWATCH_DB": results_db_conn_json(paths),
        "FLAREWATCH_STATE_DIR": str(paths.state),
        "FLAREWATCH_SCENE_SOURCE": os.environ.get("FLAREWATCH_SCENE_SOURCE", "demo"),
        # the demo covers one week: a consecutive-flaring rule of 5 days (the default is 10) shows
        # the alert at work there; set FLAREWATCH_ALERT_CONSECUTIVE_DAYS to override
        "FLAREWATCH_ALERT_CONSECUTIVE_DAYS": os.environ.get("FLAREWATCH_ALERT_CONSECUTIVE_DAYS", "5"),
        # Offline hygiene: nothing under $HOME, no telemetry.
        "XDG_CACHE_HOME": str(cache), "XDG_CONFIG_HOME": str(cache / "config"),
        "MPLCONFIGDIR": str(cache / "matplotlib"), "YOLO_CONFIG_DIR": str(paths.state / "ultralytics"),
        "YOLO_OFFLINE": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "include"), os.environ.get("PYTHONPATH")])),
    }
    return env


# ------------------------------------------------------------------------------------------
# components: start, probe, restart (the servers themselves: dev.servers; supervision: dev.supervise)
# ------------------------------------------------------------------------------------------
def running_pid(paths: StackPaths, name: str) -> int | None:
    return supervise.running_pid(paths.run, name)


def start_s3(paths: StackPaths, port: int, key: str, secret: str, name: str = "s3") -> None:
    """Start the S3 server unless it runs (the secret reaches rclone through its environment)."""
    if running_pid(paths, name):
        return
    supervise.stop(paths.run, name)  # what a dead server left behind
    if servers.port_in_use(port):
        raise RuntimeError(f"port {port} is taken by another process; set FLAREWATCH_S3_PORT to a free port")
    proc = servers.start_s3(paths.s3, port, key, secret, log=paths.log_of(name), detach=True)
    supervise.write_pid(paths.run, name, proc.pid)


def start_postgres(paths: StackPaths) -> None:
    """Start the private PostgreSQL (pgserver) and create the flarewatch and airflow databases."""
    server = servers.start_postgres(paths.pg, databases=("flarewatch", "airflow"))
    supervise.write_pid(paths.run, "postgres", server.get_pid())
    harden(paths)


def stop_postgres(paths: StackPaths) -> bool:
    stopped = servers.stop_postgres(paths.pg)
    supervise.pid_file(paths.run, "postgres").unlink(missing_ok=True)
    return stopped


def airflow_password(paths: StackPaths) -> str | None:
    if paths.passwords_file.exists():
        return json.loads(paths.passwords_file.read_text()).get("admin")
    return None


def start_airflow_component(paths: StackPaths, name: str, env: dict[str, str]) -> int:
    """Start Airflow component ``name`` (after cleaning up what a dead one left in its process group);
    a Celery worker (``celery-worker<i>``) is ``airflow celery worker`` for the stack's executor."""
    supervise.stop(paths.run, name)
    if name.startswith(celerystack.WORKER_PREFIX):
        argv = executor_config(paths).worker_argv(servers.venv_bin("airflow"), name)
        celerystack.mark_log_start(paths.run, name, paths.log_of(name))
    else:
        argv = [servers.venv_bin("airflow"), name, *AIRFLOW_ARGS.get(name, [])]
    return supervise.spawn(paths.run, paths.log_of(name), name, argv, {**os.environ, **env}, paths.state)


def component_names(paths: StackPaths | None = None) -> list[str]:
    """The local stack's components, in start order (Celery workers last)."""
    return ["s3", *(["postgres"] if _own_postgres() else []), *AIRFLOW_COMPONENTS,
            *executor_config(paths).worker_names()]


def _postgres_pid(paths: StackPaths) -> int | None:
    try:
        pid = int((paths.pg / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if supervise.alive(pid) else None


def _gone(paths: StackPaths, name: str) -> supervise.Probe:
    old = supervise.recorded_pid(paths.run, name)
    return supervise.Probe(None, f"process {old} exited" if old else "not started")


def _api_health(port: int) -> tuple[dict | None, str | None]:
    """(the api-server's /api/v2/monitor/health JSON, None) or (None, why it did not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=3) as r:
            return json.loads(r.read()), None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, f"not answering on 127.0.0.1:{port}/api/v2/monitor/health ({getattr(exc, 'reason', exc)})"


def probe_s3(paths: StackPaths, port: int, name: str = "s3") -> supervise.Probe:
    """The S3 server: its process alive and accepting connections on 127.0.0.1:``port``."""
    pid = running_pid(paths, name)
    if pid is None:
        return _gone(paths, name)
    return supervise.Probe(pid, None if servers.port_in_use(port) else f"not accepting connections on 127.0.0.1:{port}")


def probe_all(paths: StackPaths | None = None) -> dict[str, supervise.Probe]:
    """One look at every component: process alive, and answering (S3 port, a PostgreSQL connection,
    the api-server's health endpoint) or heartbeating (scheduler, dag-processor, triggerer, as that
    endpoint reports them)."""
    import psycopg2

    paths = paths or StackPaths.default()
    ports = _port()
    out = {"s3": probe_s3(paths, ports["s3"])}
    if _own_postgres():
        pid = _postgres_pid(paths)
        problem = None
        if pid is None:
            out["postgres"] = supervise.Probe(None, "not running" if paths.pg.is_dir() else "not started")
        else:
            try:
                psycopg2.connect(servers.postgres_dsn(paths.pg), connect_timeout=3).close()
            except psycopg2.Error as exc:
                problem = f"not accepting connections ({str(exc).strip().splitlines()[0]})"
            out["postgres"] = supervise.Probe(pid, problem)
    api_pid = running_pid(paths, "api-server")
    health, api_problem = _api_health(ports["api"]) if api_pid else (None, None)
    for name in AIRFLOW_COMPONENTS:
        pid = running_pid(paths, name)
        if pid is None:
            out[name] = _gone(paths, name)
        elif name == "api-server":
            out[name] = supervise.Probe(pid, api_problem)
        elif health is None:
            out[name] = supervise.Probe(pid, None)  # alive; no heartbeat to read while the api-server is down
        else:
            beat = health.get(HEARTBEAT_KEY[name]) or {}
            ok = beat.get("status") == "healthy"
            last = next((v for k, v in beat.items() if k.startswith("latest")), None)
            out[name] = supervise.Probe(pid, None if ok else f"heartbeat {beat.get('status')} (last {last})")
    out.update(probe_workers(paths))
    return out


def probe_workers(paths: StackPaths) -> dict[str, supervise.Probe]:
    """The Celery workers: process alive, Redis answering, and Celery's "ready." in the log since start."""
    cfg = executor_config(paths)
    names = cfg.worker_names()
    broker = celerystack.broker_problem(cfg.broker_url) if names else None
    out = {}
    for name in names:
        pid = running_pid(paths, name)
        if pid is None:
            out[name] = _gone(paths, name)
        elif broker:
            out[name] = supervise.Probe(pid, broker)
        else:
            ready = celerystack.worker_ready(paths.run, name, paths.log_of(name))
            out[name] = supervise.Probe(pid, None if ready else "not ready yet (no Celery 'ready.' in its log)")
    return out


@dataclass(frozen=True)
class ComponentState:
    """What ``make status`` shows of one component: pid, what is wrong, its log and the log's last lines."""

    name: str
    pid: int | None
    problem: str | None
    log: Path
    log_tail: list[str]

    @property
    def up(self) -> bool:
        return self.pid is not None and self.problem is None


def status(paths: StackPaths | None = None) -> dict[str, ComponentState]:
    """Every component's state; a component that is down comes with its last log lines."""
    paths = paths or StackPaths.default()
    probes = probe_all(paths)
    hide = secret_values(paths) if paths.secrets_file.exists() else []
    return {name: ComponentState(name, pr.pid, pr.problem, paths.log_of(name),
                                 [] if pr.healthy else supervise.tail(paths.log_of(name), redact=hide))
            for name, pr in probes.items()}


# ------------------------------------------------------------------------------------------
# up / down
# ------------------------------------------------------------------------------------------
def _migrate_airflow(paths: StackPaths, env: dict[str, str], log) -> None:
    """``airflow db migrate`` (idempotent; needed on a first start and after an Airflow upgrade)."""
    stamp = paths.airflow_home / ".migrated"
    if not stamp.exists():
        log("  airflow     migrating the metadata database (first start only, ~1 min)...")
    res = subprocess.run([servers.venv_bin("airflow"), "db", "migrate"], env={**os.environ, **env},
                         capture_output=True, text=True, umask=0o077)
    if res.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    stamp.touch()


def up(paths: StackPaths | None = None, log=print, settle: float | None = None,
       timeout: float | None = None) -> dict:
    """Start every component that is not running, apply migrations, then wait until all are healthy
    and stay so for ``settle`` s (``FLAREWATCH_UP_SETTLE_S``, default 10), restarting any that dies.
    Idempotent: what runs is left alone. Returns the endpoints."""
    paths = paths or StackPaths.default()
    settle = float(os.environ.get("FLAREWATCH_UP_SETTLE_S", "10")) if settle is None else settle
    timeout = float(os.environ.get("FLAREWATCH_UP_TIMEOUT_S", "180")) if timeout is None else timeout
    paths.mkdirs()
    sec = ensure_secrets(paths)
    harden(paths)
    if write_airflow_passwords(paths, sec):  # first start, or a stack whose password Airflow generated
        scrub_logs(paths)
    ports = _port()
    cfg = _choose_executor(paths, log)
    env = stack_env(paths)
    t0 = time.time()

    start_s3(paths, ports["s3"], sec["s3_key"], sec["s3_secret"])
    log(f"  s3          http://127.0.0.1:{ports['s3']}  (data in {paths.s3})")
    servers.make_buckets(paths.s3, ("rawdata", "processed"))

    if _own_postgres():
        start_postgres(paths)
        log(f"  postgres    socket in {paths.pg}  (databases flarewatch, airflow)")

    conn = db.connect(results_db_dsn(paths))
    try:
        applied = seed.migrate_and_seed(conn, seed="if_empty",
                                        sites_file=os.environ.get("FLAREWATCH_SITES_FILE")).migrations
    finally:
        conn.close()
    log(f"  results db  migrations applied now: {applied or 'none (up to date)'}")

    down_now = [c for c in (*AIRFLOW_COMPONENTS, *cfg.worker_names()) if not running_pid(paths, c)]
    if down_now:
        if set(AIRFLOW_COMPONENTS) <= set(down_now) or not (paths.airflow_home / ".migrated").exists():
            _migrate_airflow(paths, env, log)
        if cfg.celery and {"scheduler", *cfg.worker_names()} <= set(down_now):
            n = celerystack.purge(cfg.broker_url, cfg.key_prefix)  # nothing sends or takes tasks now
            log(f"  celery      {cfg.describe()}; stale broker keys deleted: {n}")
        if "api-server" in down_now and servers.port_in_use(ports["api"]):
            raise RuntimeError(f"port {ports['api']} is taken; set FLAREWATCH_API_PORT to a free port")
        for comp in down_now:
            start_airflow_component(paths, comp, env)
        log(f"  airflow     started {', '.join(down_now)}")
    ensure_pools(paths, servers.venv_bin("airflow"), env, log)

    def restart(name: str) -> None:
        if name == "s3":
            start_s3(paths, ports["s3"], sec["s3_key"], sec["s3_secret"])
        elif name == "postgres":
            start_postgres(paths)
        else:
            start_airflow_component(paths, name, env)

    log(f"  waiting until every component is healthy and stays so for {settle:.0f} s...")
    hide = secret_values(paths)
    try:
        supervise.watch(component_names(paths), lambda: probe_all(paths), restart, timeout=timeout, settle=settle,
                        log_tail=lambda n: supervise.tail(paths.log_of(n), redact=hide), log=log)
    except supervise.StackUnhealthy as exc:
        raise RuntimeError(f"{exc}\n(full log: {paths.logs}/; `make status` shows every component)") from exc
    harden(paths)  # files the components created meanwhile
    log(f"  airflow     http://127.0.0.1:{ports['api']}  (scheduler, dag-processor, triggerer, api-server"
        + (f"; {cfg.describe()})" if cfg.celery else ")"))
    log(f"  stack up and healthy in {time.time() - t0:.1f} s")
    return {"api": f"http://127.0.0.1:{ports['api']}", "s3": f"http://127.0.0.1:{ports['s3']}"}


def _choose_executor(paths: StackPaths, log) -> celerystack.ExecutorConfig:
    """The executor ``FLAREWATCH_EXECUTOR`` asks for (unset: the recorded one of a stack not brought
    down, else local), recorded for status/down; a running stack keeps its own (RuntimeError when
    asked to switch). Under Celery, Redis must answer first."""
    record = celerystack.load(paths.run)
    want = (record if record and not os.environ.get("FLAREWATCH_EXECUTOR")
            else celerystack.ExecutorConfig.from_env(_port()["api"]))
    have = record or celerystack.ExecutorConfig()  # no record: started as local
    running = [c for c in (*AIRFLOW_COMPONENTS, *celerystack.recorded_worker_names(paths.run))
               if running_pid(paths, c)]
    if have != want and running:
        raise RuntimeError(f"the stack runs with {have.describe()} ({', '.join(running)} up), not "
                           f"{want.describe()}: `make down` first, then start it again")
    if want.celery and (problem := celerystack.broker_problem(want.broker_url)):
        raise RuntimeError(f"FLAREWATCH_EXECUTOR=celery needs a Redis broker: {problem}. Start one "
                           "(e.g. `redis-server --daemonize yes`) or set FLAREWATCH_CELERY_BROKER_URL.")
    for stale in celerystack.recorded_worker_names(paths.run):
        if stale not in want.worker_names():  # fewer workers than the last start: stop the others
            supervise.stop(paths.run, stale)
    celerystack.save(paths.run, want)
    return want


def ensure_pools(paths: StackPaths, airflow: str, env: dict[str, str], log=print) -> None:
    """Create/update the provider pools (flarewatch_firms, ...) once per spec change (one CLI call)."""
    spec = json.dumps(pools_spec(), indent=1, sort_keys=True)
    stamp = paths.airflow_home / ".pools.json"
    if stamp.exists() and stamp.read_text() == spec:
        return
    tmp = paths.airflow_home / "pools.import.json"
    tmp.write_text(spec)
    res = subprocess.run([airflow, "pools", "import", str(tmp)], env={**os.environ, **env},
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"airflow pools import failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    stamp.write_text(spec)
    log(f"  airflow     pools {', '.join(sorted(pools_spec()))}")


def down(paths: StackPaths | None = None, log=print) -> None:
    """Stop every component of the local stack (Airflow first, then S3 and Postgres)."""
    paths = paths or StackPaths.default()
    if not paths.state.exists():
        log("  nothing to stop")
        return
    if supervise.stop(paths.run, "scheduler"):
        log("  stopped scheduler")
    workers = celerystack.recorded_worker_names(paths.run)
    if workers:  # together (each finishes its task first: up to 20 s), while the api-server still answers them
        with ThreadPoolExecutor(len(workers)) as pool:
            for comp, stopped in zip(workers, pool.map(lambda w: supervise.stop(paths.run, w), workers), strict=True):
                if stopped:
                    log(f"  stopped {comp}")
    for comp in ("triggerer", "dag-processor", "api-server", "s3"):
        if supervise.stop(paths.run, comp):
            log(f"  stopped {comp}")
    if stop_postgres(paths):
        log("  stopped postgres")
    cfg = celerystack.load(paths.run)
    if cfg and cfg.celery and not celerystack.broker_problem(cfg.broker_url):
        celerystack.purge(cfg.broker_url, cfg.key_prefix)  # leave nothing of the stack in Redis
    celerystack.forget(paths.run)


def analyst_dsn(dsn: str) -> str:
    """``dsn`` (URI or key=value) with the read-only analyst role (sql/011_analyst_role.sql) as the
    user and no password: libpq takes the analyst's from PGPASSWORD or ~/.pgpass where one is needed."""
    from psycopg2.extensions import make_dsn, parse_dsn

    from flarewatch.store.db import ANALYST_ROLE

    params = {k: v for k, v in parse_dsn(dsn).items() if k != "password"}
    return make_dsn(**{**params, "user": ANALYST_ROLE})


def psql_argv(paths: StackPaths | None = None, extra: list[str] | None = None, stdin_is_tty: bool = True,
              analyst: bool = False) -> list[str]:
    """psql on the results DB: pgserver's own psql when there is one, else ``psql`` on PATH; reads
    SQL from stdin (``-f -``) when stdin is not a terminal. ``analyst``: log in as the read-only
    role ``flarewatch_analyst`` instead of the owner (``analyst_dsn``)."""
    paths = paths or StackPaths.default()
    psql = None
    try:
        import warnings

        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # platformdirs, via pgserver
        import pgserver.postgres_server as ps

        cand = Path(ps.POSTGRES_BIN_PATH) / "psql"
        psql = str(cand) if cand.exists() else None
    except ImportError:
        pass
    dsn = results_db_dsn(paths)
    argv = [psql or "psql", analyst_dsn(dsn) if analyst else dsn, "-v", "ON_ERROR_STOP=1"]
    if not stdin_is_tty:
        argv += ["-f", "-"]
    return argv + list(extra or [])
