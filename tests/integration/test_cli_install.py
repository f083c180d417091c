"""``flarewatch`` in an install without the developer tools (the Docker image leaves ``dev/`` out):
``migrate`` works, developer commands say what is missing instead of a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def no_dev_install(tmp_path_factory):
    """PYTHONPATH folder with a copy of the package minus ``dev/`` (SQL through FLAREWATCH_SQL_DIR)."""
    root = tmp_path_factory.mktemp("no-dev")
    shutil.copytree(REPO / "include" / "flarewatch", root / "flarewatch",
                    ignore=shutil.ignore_patterns("dev", "_shipped", "__pycache__"))
    return root


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("AIRFLOW_CONN_FLAREWATCH_DB", "FLAREWATCH_DB_URL", "PYTHONPATH")}
    env.update(PYTHONPATH=str(root), FLAREWATCH_SQL_DIR=str(REPO / "sql"))
    return subprocess.run([sys.executable, "-m", "flarewatch.cli", *args], capture_output=True, text=True,
                          env=env, cwd=root, timeout=120)


def test_the_copy_has_no_dev_package(no_dev_install):
    res = _cli(no_dev_install, "--help")
    assert res.returncode == 0, res.stderr
    assert not (no_dev_install / "flarewatch" / "dev").exists()


def test_migrate_works_without_dev(no_dev_install, pg_dsn):
    res = _cli(no_dev_install, "migrate", "--dsn", pg_dsn)
    assert res.returncode == 0, res.stderr
    assert "migrations applied: none (up to date)" in res.stdout


@pytest.mark.parametrize("cmd", ["up", "status", "demo", "psql"])
def test_developer_commands_say_the_tools_are_missing(no_dev_install, cmd):
    res = _cli(no_dev_install, cmd)
    assert res.returncode == 1
    assert f"flarewatch {cmd}: error: this is a developer command" in res.stderr
    assert "Traceback" not in res.stderr


def test_migrate_without_a_database_names_the_settings(no_dev_install):
    res = _cli(no_dev_install, "migrate")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "AIRFLOW_CONN_FLAREWATCH_DB" in res.stderr
