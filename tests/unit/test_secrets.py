"""Local-stack secrets: owner-only files and folders, masked `env` output, no generated password in a log.

Airflow's own simple auth manager is exercised (not mocked): it prints a password only when it has
to generate one, and our passwords file means it never has to.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat

import pytest

from flarewatch import cli
from flarewatch.dev import localstack
from flarewatch.dev.localstack import StackPaths


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def paths(tmp_path, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setenv("FLAREWATCH_STATE_DIR", str(state))
    for var in ("FLAREWATCH_DB_URL", "FLAREWATCH_AIRFLOW_DB_URL"):
        monkeypatch.delenv(var, raising=False)
    return StackPaths(state)


def test_generated_secrets_are_owner_only_and_stable(paths):
    sec = localstack.ensure_secrets(paths)
    assert set(localstack.SECRET_KEYS) <= set(sec)
    assert _mode(paths.secrets_file) == 0o600
    assert _mode(paths.state) == 0o700
    assert localstack.ensure_secrets(paths) == sec  # generated once
    assert not list(paths.state.glob(".*.tmp"))


def test_secrets_of_an_older_stack_are_completed_and_tightened(paths):
    paths.state.mkdir(parents=True)
    paths.secrets_file.write_text(json.dumps({"s3_key": "flarewatch", "s3_secret": "old-s3", "jwt_secret": "old-jwt"}))
    paths.secrets_file.chmod(0o644)
    sec = localstack.ensure_secrets(paths)
    assert (sec["s3_secret"], sec["jwt_secret"]) == ("old-s3", "old-jwt")  # kept: the S3 data uses them
    assert sec["airflow_admin_password"]
    assert _mode(paths.secrets_file) == 0o600


def test_harden_narrows_folders_logs_and_config(paths):
    paths.mkdirs()
    for d in (paths.state, paths.logs, paths.airflow_home):
        d.chmod(0o755)
    log = paths.logs / "api-server.log"
    cfg = paths.airflow_home / "airflow.cfg"
    for f in (log, cfg, paths.passwords_file):
        f.write_text("x")
        f.chmod(0o644)
    localstack.harden(paths)
    assert [_mode(f) for f in (log, cfg, paths.passwords_file)] == [0o600] * 3
    assert _mode(paths.logs) == _mode(paths.airflow_home) == 0o700
    assert _mode(paths.state) == 0o700  # no private PostgreSQL here: no pgserver group needed


def test_airflow_never_generates_or_prints_the_admin_password(paths, monkeypatch):
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    sec = localstack.ensure_secrets(paths)
    localstack.write_airflow_passwords(paths, sec)
    assert _mode(paths.passwords_file) == 0o600
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(paths.passwords_file))

    def init_output() -> str:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            SimpleAuthManager().init()
        return buf.getvalue()

    assert "Password for user" not in init_output()
    assert json.loads(paths.passwords_file.read_text()) == {"admin": sec["airflow_admin_password"]}
    # the control: without our file Airflow generates a password and prints it (what the api-server log showed)
    paths.passwords_file.unlink()
    assert "Password for user 'admin'" in init_output()
    localstack.write_airflow_passwords(paths, sec)  # `make up` puts ours back (read at each login)
    assert json.loads(paths.passwords_file.read_text()) == {"admin": sec["airflow_admin_password"]}


def test_a_password_printed_by_an_earlier_start_is_masked(paths):
    paths.mkdirs()
    log = paths.log_of("api-server")
    log.write_text("start\nSimple auth manager | Password for user 'admin': fFMYNTw5T39YcRrs\nready\n")
    localstack.scrub_logs(paths)
    assert log.read_text() == "start\nSimple auth manager | Password for user 'admin': ****\nready\n"
    assert _mode(log) == 0o600


def _env_output(*args: str) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli.main(["env", *args]) == 0
    return buf.getvalue()


def test_env_masks_secrets_unless_asked(paths, monkeypatch):
    monkeypatch.setenv("FLAREWATCH_DB_URL", "postgresql://fw:db-pass-123@db.example:5432/flarewatch")
    masked = _env_output()
    sec = json.loads(paths.secrets_file.read_text())
    hidden = [sec[k] for k in localstack.SECRET_KEYS] + ["db-pass-123"]
    assert not [s for s in hidden if s in masked]
    assert "****" in masked and "SHOW_SECRETS=1" in masked
    assert "export AIRFLOW__API__HOST=127.0.0.1" in masked
    shown = _env_output("--show-secrets")
    assert all(s in shown for s in hidden)
    assert f"admin / {sec['airflow_admin_password']}" in shown


def test_stack_processes_bind_loopback_only(paths):
    """The settings behind `ss -ltnp` showing 127.0.0.1 only (checked on the running stack by
    tests/integration/test_localstack_stack.py): api-server host, and no Airflow log servers, whose
    host Airflow 3.3 hard-codes to every interface (airflow/utils/serve_logs/core.py: host="")."""
    env = localstack.stack_env(paths)
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert localstack.AIRFLOW_ARGS["scheduler"] == localstack.AIRFLOW_ARGS["triggerer"] == ["--skip-serve-logs"]
