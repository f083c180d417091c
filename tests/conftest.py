"""Test fixtures: a real PostgreSQL and a real S3 API server, started once per session.

- Postgres: ``FLAREWATCH_TEST_DB_URL`` when set (any server you own; each session creates and drops
  its own database), else a private pgserver in a temp dir.
- S3: ``rclone serve s3`` on a free localhost port over a temp dir.
- Airflow: a throwaway AIRFLOW_HOME with a SQLite metadata DB, set *before* airflow is imported.
No test touches the internet.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_AF_HOME = Path(tempfile.mkdtemp(prefix="flarewatch-airflow-"))
_CACHE = _AF_HOME / "cache"
os.environ.update({
    "AIRFLOW_HOME": str(_AF_HOME),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AF_HOME}/airflow.db",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
    "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
    "XDG_CACHE_HOME": str(_CACHE), "XDG_CONFIG_HOME": str(_CACHE / "config"),
    "MPLCONFIGDIR": str(_CACHE / "mpl"), "YOLO_CONFIG_DIR": str(_CACHE / "ultralytics"), "YOLO_OFFLINE": "1",
    "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
})
for _k in ("AIRFLOW_CONN_FLAREWATCH_S3", "AIRFLOW_CONN_FLAREWATCH_DB", "FLAREWATCH_DB_URL"):
    os.environ.pop(_k, None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def pg_server_dsn(tmp_path_factory):
    """DSN of a Postgres server's maintenance DB (postgres)."""
    url = os.environ.get("FLAREWATCH_TEST_DB_URL")
    if url:
        yield url
        return
    import warnings

    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver

    pgdata = Path(tempfile.mkdtemp(prefix="fwpg-"))
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    yield f"postgresql://postgres@/postgres?host={pgdata}"
    server.cleanup()


@pytest.fixture(scope="session")
def pg_dsn(pg_server_dsn):
    """A fresh, migrated results database for this test session (dropped at the end)."""
    import psycopg2
    from flarewatch.sites import load_sites
    from flarewatch.store import db
    from psycopg2.extensions import make_dsn, parse_dsn

    name = f"fw_test_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(pg_server_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    dsn = make_dsn(**{**parse_dsn(pg_server_dsn), "dbname": name})
    conn = db.connect(dsn)
    db.migrate(conn)
    db.upsert_sites(conn, load_sites())
    conn.close()
    yield dsn
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def conn(pg_dsn):
    from flarewatch.store import db

    c = db.connect(pg_dsn)
    yield c
    c.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 API server (rclone serve s3) on localhost; yields its endpoint and credentials."""
    from flarewatch.dev.localstack import rclone_binary

    data = tmp_path_factory.mktemp("s3")
    port = _free_port()
    key, secret = "test-key", "test-secret"
    proc = subprocess.Popen(
        [rclone_binary(), "serve", "s3", "--addr", f"127.0.0.1:{port}", "--auth-key", f"{key},{secret}",
         "--config", "/dev/null", str(data)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 15
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("rclone serve s3 did not start")
    yield {"endpoint": f"http://127.0.0.1:{port}", "key": key, "secret": secret, "dir": data}
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def s3(s3_server):
    import boto3
    from flarewatch.store.objects import ensure_buckets

    client = boto3.client("s3", endpoint_url=s3_server["endpoint"], aws_access_key_id=s3_server["key"],
                          aws_secret_access_key=s3_server["secret"], region_name="us-east-1")
    ensure_buckets(client, ["rawdata", "processed"])
    return client


@pytest.fixture(scope="session")
def airflow_env(pg_dsn, s3_server):
    """Airflow metadata DB migrated and the FlareWatch connections pointing at the test servers."""
    from psycopg2.extensions import parse_dsn

    p = parse_dsn(pg_dsn)
    os.environ["AIRFLOW_CONN_FLAREWATCH_DB"] = json.dumps({
        "conn_type": "postgres", "host": p.get("host"), "port": int(p.get("port") or 5432),
        "login": p.get("user"), "password": p.get("password"), "schema": p["dbname"]})
    os.environ["AIRFLOW_CONN_FLAREWATCH_S3"] = json.dumps({
        "conn_type": "aws", "login": s3_server["key"], "password": s3_server["secret"],
        "extra": {"endpoint_url": s3_server["endpoint"], "region_name": "us-east-1"}})
    res = subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                         capture_output=True, text=True, env=os.environ.copy())
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    yield os.environ
