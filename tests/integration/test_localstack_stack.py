"""The whole local stack (S3, PostgreSQL, Airflow scheduler, dag-processor, triggerer, api-server) on free
ports in a temporary state folder: it heals and keeps its secrets.

About a minute on 2 cores (56 s measured), so it runs only with FLAREWATCH_STACK_TESTS=1 (``make test-reliability``);
``make test`` skips it. Checks: every listening socket of every stack process is on 127.0.0.1; no
secret on a command line, in a log, or in a file others can read; a killed scheduler shows as down
(with its last log lines) and the next ``up`` restarts it and nothing else; ``down`` leaves no process.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import tempfile
import time
from pathlib import Path

import pytest

from flarewatch.dev import localstack, servers, supervise
from flarewatch.dev.localstack import StackPaths

pytestmark = [
    pytest.mark.integration,
    pytest.mark.reliability,
    pytest.mark.skipif(os.environ.get("FLAREWATCH_STACK_TESTS") != "1",
                       reason="starts the whole local stack (~1 min): FLAREWATCH_STACK_TESTS=1 / make test-reliability"),
]


def _stack_pids(paths: StackPaths) -> dict[str, list[int]]:
    out = {}
    for name in localstack.component_names():
        pid = localstack.probe_all(paths)[name].pid
        out[name] = supervise.group_members(pid) if pid else []
    return out


def _listening(pid: int) -> list[str]:
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return []
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"):
        with open(table) as fh:
            for row in fh.read().splitlines()[1:]:
                f = row.split()
                if f[9] in inodes and (f[3] == "0A" or "udp" in table):
                    out.append(f[1])
    return out


@pytest.fixture(scope="module")
def stack():
    # not under pytest's basetemp: a concurrent pytest session narrows /tmp/pytest-of-<user> to 0700,
    # and the private PostgreSQL, run as user pgserver under root, must traverse every parent folder
    base = Path(tempfile.mkdtemp(prefix="fw-stack-"))
    paths = StackPaths(base / "state")
    mp = pytest.MonkeyPatch()
    mp.setenv("FLAREWATCH_STATE_DIR", str(paths.state))
    mp.setenv("FLAREWATCH_S3_PORT", str(servers.free_port()))
    mp.setenv("FLAREWATCH_API_PORT", str(servers.free_port()))
    mp.delenv("AIRFLOW__CORE__UNIT_TEST_MODE", raising=False)
    for var in ("FLAREWATCH_DB_URL", "FLAREWATCH_AIRFLOW_DB_URL"):
        mp.delenv(var, raising=False)
    try:
        localstack.up(paths, log=lambda _m: None, settle=5)
        yield paths
    finally:
        localstack.down(paths, log=lambda _m: None)
        mp.undo()
        shutil.rmtree(base, ignore_errors=True)


def test_all_components_healthy_on_loopback_without_leaking_secrets(stack):
    paths = stack
    assert {n: s.up for n, s in localstack.status(paths).items()} == dict.fromkeys(localstack.component_names(), True)
    secrets = localstack.secret_values(paths)
    for name, pids in _stack_pids(paths).items():
        assert pids, name
        for pid in pids:
            try:
                cmdline = open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace")
            except (FileNotFoundError, ProcessLookupError):
                continue  # a short-lived child ended between listing and reading: nothing left to leak
            assert not [s for s in secrets if s in cmdline], f"{name}: secret on the command line of {pid}"
            for addr in _listening(pid):
                ip = addr.split(":")[0]
                assert ip in ("0100007F", "00000000000000000000000001000000"), f"{name} pid {pid} listens on {addr}"
    for f in [*paths.logs.glob("*.log"), *paths.airflow_home.rglob("*.log")]:
        text = f.read_text(errors="replace")
        assert not [s for s in secrets if s in text], f"secret in {f}"
    assert stat.S_IMODE(paths.state.stat().st_mode) & 0o077 in (0, 0o010)  # 0700, or 0710 + group pgserver as root
    for f in paths.state.rglob("*"):
        if f.is_file() and not f.is_relative_to(paths.pg) and any(s in f.read_text(errors="replace") for s in secrets):
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_a_killed_scheduler_is_shown_down_and_up_restarts_only_it(stack):
    paths = stack
    before = {n: s.pid for n, s in localstack.status(paths).items()}
    os.killpg(before["scheduler"], signal.SIGKILL)
    deadline = time.time() + 10
    while localstack.status(paths)["scheduler"].up and time.time() < deadline:
        time.sleep(0.2)
    st = localstack.status(paths)["scheduler"]
    assert not st.up and st.problem == f"process {before['scheduler']} exited"
    assert st.log_tail, "the last log lines of the scheduler"
    localstack.up(paths, log=lambda _m: None, settle=5)
    after = {n: s.pid for n, s in localstack.status(paths).items()}
    assert after["scheduler"] not in (None, before["scheduler"])
    assert {n: p for n, p in after.items() if n != "scheduler"} == {n: p for n, p in before.items() if n != "scheduler"}
    assert localstack.status(paths)["scheduler"].up


def test_down_leaves_no_process(stack):
    paths = stack
    groups = [p for pids in _stack_pids(paths).values() for p in pids]
    localstack.down(paths, log=lambda _m: None)
    time.sleep(0.5)
    assert not [p for p in groups if supervise.alive(p)]
    assert not any(s.pid for s in localstack.status(paths).values())
