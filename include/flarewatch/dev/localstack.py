"""The embedded local stack: S3 server (rclone), PostgreSQL (pgserver), Airflow 3 (LocalExecutor).

Everything lives under one state folder (``FLAREWATCH_STATE_DIR``, default ``<repo>/.state``)::

    .state/s3/          buckets as directories (rclone serve s3)
    .state/pg/          PostgreSQL data dir + unix socket (databases: flarewatch, airflow)
    .state/airflow/     AIRFLOW_HOME: config, logs, simple-auth passwords
    .state/run/         pid files;  .state/logs/  process logs;  .state/secrets.json

Processes are started in their own sessions (process groups) and stopped by group, so
``down`` leaves nothing behind. Endpoints reach the DAGs only through ``AIRFLOW_CONN_*``
variables: set ``FLAREWATCH_DB_URL`` to use an existing Postgres for results instead of pgserver.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from flarewatch.dev import servers
from flarewatch.orchestration.pools import pools_spec
from flarewatch.store import db, seed

REPO_ROOT = Path(__file__).resolve().parents[3]
AIRFLOW_COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")


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

    def mkdirs(self) -> None:
        for p in (self.s3, self.airflow_home, self.run, self.logs, self.state / "cache"):
            p.mkdir(parents=True, exist_ok=True)


def _port() -> dict[str, int]:
    return {"s3": int(os.environ.get("FLAREWATCH_S3_PORT", "9000")),
            "api": int(os.environ.get("FLAREWATCH_API_PORT", "8080"))}


def _secrets(paths: StackPaths) -> dict:
    if paths.secrets_file.exists():
        return json.loads(paths.secrets_file.read_text())
    data = {
        "s3_key": "flarewatch",
        "s3_secret": secrets.token_hex(16),
        "jwt_secret": secrets.token_hex(32),
    }
    paths.secrets_file.parent.mkdir(parents=True, exist_ok=True)
    paths.secrets_file.write_text(json.dumps(data, indent=2))
    paths.secrets_file.chmod(0o600)
    return data


def results_db_conn_json(paths: StackPaths) -> str:
    """AIRFLOW_CONN_FLAREWATCH_DB value: FLAREWATCH_DB_URL when set, else the private pgserver."""
    url = os.environ.get("FLAREWATCH_DB_URL")
    if url:
        return url
    return json.dumps({"conn_type": "postgres", "host": str(paths.pg), "port": 5432,
                       "login": "postgres", "schema": "flarewatch"})


def results_db_dsn(paths: StackPaths) -> str:
    return os.environ.get("FLAREWATCH_DB_URL") or f"postgresql://postgres@/flarewatch?host={paths.pg}"


def stack_env(paths: StackPaths | None = None) -> dict[str, str]:
    """Environment for every process of the local stack (Airflow components, CLI, tests)."""
    paths = paths or StackPaths.default()
    sec = _secrets(paths)
    ports = _port()
    cache = paths.state / "cache"
    env = {
        "AIRFLOW_HOME": str(paths.airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ.get(
            "FLAREWATCH_AIRFLOW_DB_URL", f"postgresql+psycopg2://postgres@/airflow?host={paths.pg}"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__PARALLELISM": os.environ.get("FLAREWATCH_PARALLELISM", "4"),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
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
        # Offline hygiene: nothing under $HOME, no telemetry.
        "XDG_CACHE_HOME": str(cache), "XDG_CONFIG_HOME": str(cache / "config"),
        "MPLCONFIGDIR": str(cache / "matplotlib"), "YOLO_CONFIG_DIR": str(paths.state / "ultralytics"),
        "YOLO_OFFLINE": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT / "include"), os.environ.get("PYTHONPATH")])),
    }
    return env


# ------------------------------------------------------------------------------------------
# process helpers
# ------------------------------------------------------------------------------------------
def _pid_file(paths: StackPaths, name: str) -> Path:
    return paths.run / f"{name}.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie counts as dead
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def running_pid(paths: StackPaths, name: str) -> int | None:
    f = _pid_file(paths, name)
    if not f.exists():
        return None
    try:
        pid = int(f.read_text().strip())
    except ValueError:
        return None
    return pid if _alive(pid) else None


def _spawn(paths: StackPaths, name: str, argv: list[str], env: dict[str, str]) -> int:
    log = open(paths.logs / f"{name}.log", "ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env={**os.environ, **env}, cwd=str(paths.state), start_new_session=True)
    _pid_file(paths, name).write_text(str(proc.pid))
    return proc.pid


def _stop_group(paths: StackPaths, name: str, timeout: float = 20.0) -> bool:
    pid = running_pid(paths, name)
    f = _pid_file(paths, name)
    if pid is None:
        f.unlink(missing_ok=True)
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.time() + timeout
    while time.time() < deadline and _group_alive(pid):
        time.sleep(0.3)
    if _group_alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    f.unlink(missing_ok=True)
    return True


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 3 and fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


# ------------------------------------------------------------------------------------------
# components (the servers themselves: dev.servers)
# ------------------------------------------------------------------------------------------
def start_s3(paths: StackPaths, port: int, key: str, secret: str, name: str = "s3") -> None:
    if running_pid(paths, name):
        return
    if servers.port_in_use(port):
        raise RuntimeError(f"port {port} is taken by another process; set FLAREWATCH_S3_PORT to a free port")
    proc = servers.start_s3(paths.s3, port, key, secret, log=paths.logs / f"{name}.log", detach=True)
    _pid_file(paths, name).write_text(str(proc.pid))


def start_postgres(paths: StackPaths) -> None:
    """Start the private PostgreSQL (pgserver) and create the flarewatch and airflow databases."""
    server = servers.start_postgres(paths.pg, databases=("flarewatch", "airflow"))
    _pid_file(paths, "postgres").write_text(str(server.get_pid()))


def stop_postgres(paths: StackPaths) -> bool:
    stopped = servers.stop_postgres(paths.pg)
    _pid_file(paths, "postgres").unlink(missing_ok=True)
    return stopped


def airflow_password(paths: StackPaths) -> str | None:
    if paths.passwords_file.exists():
        return json.loads(paths.passwords_file.read_text()).get("admin")
    return None


def up(paths: StackPaths | None = None, log=print) -> dict:
    """Start every component that is not running; apply migrations; returns endpoints."""
    paths = paths or StackPaths.default()
    paths.mkdirs()
    env = stack_env(paths)
    sec = _secrets(paths)
    ports = _port()
    t0 = time.time()

    start_s3(paths, ports["s3"], sec["s3_key"], sec["s3_secret"])
    log(f"  s3          http://127.0.0.1:{ports['s3']}  (data in {paths.s3})")
    servers.make_buckets(paths.s3, ("rawdata", "processed"))

    if not os.environ.get("FLAREWATCH_DB_URL") or not os.environ.get("FLAREWATCH_AIRFLOW_DB_URL"):
        start_postgres(paths)
        log(f"  postgres    socket in {paths.pg}  (databases flarewatch, airflow)")


    conn = db.connect(results_db_dsn(paths))
    try:
        applied = seed.migrate_and_seed(conn, seed="if_empty",
                                        sites_file=os.environ.get("FLAREWATCH_SITES_FILE")).migrations
    finally:
        conn.close()
    log(f"  results db  migrations applied now: {applied or 'none (up to date)'}")

    airflow = servers.venv_bin("airflow")
    if not all(running_pid(paths, c) for c in AIRFLOW_COMPONENTS):
        stamp = paths.state / "airflow" / ".migrated"
        if not stamp.exists():
            log("  airflow     migrating the metadata database (first start only, ~1 min)...")
        res = subprocess.run([airflow, "db", "migrate"], env={**os.environ, **env}, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
        stamp.touch()
        if servers.port_in_use(ports["api"]) and not running_pid(paths, "api-server"):
            raise RuntimeError(f"port {ports['api']} is taken; set FLAREWATCH_API_PORT to a free port")
        for comp in AIRFLOW_COMPONENTS:
            if not running_pid(paths, comp):
                _spawn(paths, comp, [airflow, comp], env)
    ensure_pools(paths, airflow, env, log)
    if not wait_api_healthy(ports["api"], 120):
        raise RuntimeError(f"Airflow api-server not healthy on :{ports['api']}; see {paths.logs}/api-server.log")
    log(f"  airflow     http://127.0.0.1:{ports['api']}  (scheduler, dag-processor, triggerer, api-server)")
    log(f"  stack up in {time.time() - t0:.1f} s")
    return {"api": f"http://127.0.0.1:{ports['api']}", "s3": f"http://127.0.0.1:{ports['s3']}"}


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


def wait_api_healthy(port: int, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=3) as r:
                if r.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    return False


def down(paths: StackPaths | None = None, log=print) -> None:
    """Stop every component of the local stack (Airflow first, then S3 and Postgres)."""
    paths = paths or StackPaths.default()
    if not paths.state.exists():
        log("  nothing to stop")
        return
    for comp in ("scheduler", "triggerer", "dag-processor", "api-server", "s3"):
        if _stop_group(paths, comp):
            log(f"  stopped {comp}")
    if stop_postgres(paths):
        log("  stopped postgres")


def status(paths: StackPaths | None = None) -> dict[str, int | None]:
    paths = paths or StackPaths.default()
    out = {c: running_pid(paths, c) for c in (*AIRFLOW_COMPONENTS, "s3")}
    pm = paths.pg / "postmaster.pid"
    pg_pid = int(pm.read_text().split()[0]) if pm.exists() else None
    out["postgres"] = pg_pid if pg_pid and _alive(pg_pid) else None
    return out


def psql_argv(paths: StackPaths | None = None, extra: list[str] | None = None, stdin_is_tty: bool = True) -> list[str]:
    """psql on the results DB: pgserver's own psql when there is one, else ``psql`` on PATH; reads
    SQL from stdin (``-f -``) when stdin is not a terminal."""
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
    argv = [psql or "psql", results_db_dsn(paths), "-v", "ON_ERROR_STOP=1"]
    if not stdin_is_tty:
        argv += ["-f", "-"]
    return argv + list(extra or [])
