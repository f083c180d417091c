"""Test fixtures: a real PostgreSQL and a real S3 API server, started once per session.

- Postgres: ``FLAREWATCH_TEST_DB_URL`` when set (any server you own; each session creates and drops
  its own database), else a private pgserver in a temp dir.
- S3: ``rclone serve s3`` on a free localhost port over a temp dir.
Both come from ``flarewatch.dev.servers`` (as for the benchmark and the local stack).
- Airflow: a throwaway AIRFLOW_HOME with a SQLite metadata DB, set *before* airflow is imported.
No test touches the internet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
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


@pytest.fixture(scope="session")
def pg_server_dsn():
    """DSN of a Postgres server's maintenance DB (postgres)."""
    from flarewatch.dev import servers

    with servers.scratch_postgres(os.environ.get("FLAREWATCH_TEST_DB_URL")) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def pg_dsn(pg_server_dsn):
    """A fresh, migrated results database for this test session (dropped at the end)."""
    from flarewatch.dev import servers
    from flarewatch.store import db
    from flarewatch.store.seed import migrate_and_seed

    with servers.temporary_database(pg_server_dsn, "fw_test") as dsn:
        conn = db.connect(dsn)
        migrate_and_seed(conn, site_map=False)  # sites only: the calibration tests seed their own site map
        conn.close()
        yield dsn


@pytest.fixture
def conn(pg_dsn):
    from flarewatch.store import db

    c = db.connect(pg_dsn)
    yield c
    c.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 API server (rclone serve s3) on localhost: a ``dev.servers.S3Server`` (endpoint, key,
    secret, folder)."""
    from flarewatch.dev import servers

    with servers.scratch_s3(tmp_path_factory.mktemp("s3"), key="test-key", secret="test-secret") as srv:
        yield srv


@pytest.fixture(scope="session")
def s3(s3_server):
    from flarewatch.store.objects import ensure_buckets

    client = s3_server.client()
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
        "conn_type": "aws", "login": s3_server.key, "password": s3_server.secret,
        "extra": {"endpoint_url": s3_server.endpoint, "region_name": "us-east-1"}})
    res = subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                         capture_output=True, text=True, env=os.environ.copy())
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    yield os.environ
