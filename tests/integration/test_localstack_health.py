"""The local stack heals and keeps its secrets, on real processes: the S3 server (rclone) and small
stand-in processes for the components that take long to start (Airflow: see test_localstack_stack.py).

- the S3 secret reaches rclone through its environment, never its command line (``ps``);
- ``supervise.watch`` (what ``make up`` waits on) restarts a killed component and only that one,
  notices a component that dies right after starting, and gives up on one that always dies with
  its last log lines;
- ``flarewatch status`` says which component is down and why;
- ``supervise.stop`` also ends what a dead component left in its process group.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import time

import pytest

from flarewatch import cli
from flarewatch.dev import localstack, servers, supervise
from flarewatch.dev.localstack import StackPaths

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

SECRET = "s3-secret-0123456789abcdef"


def _listen_addresses(pid: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp* writes them) of the TCP sockets ``pid`` listens on."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for row in fh.read().splitlines()[1:]:
                f = row.split()
                if f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
                    out.append(f[1].split(":")[0])
    return out


def test_s3_secret_is_not_on_the_command_line(tmp_path):
    port = servers.free_port()
    proc = servers.start_s3(tmp_path / "s3", port, "fw-test-key", SECRET, log=tmp_path / "s3.log")
    try:
        cmdline = open(f"/proc/{proc.pid}/cmdline", "rb").read().decode()
        assert SECRET not in cmdline and "--auth-key" not in cmdline
        assert _listen_addresses(proc.pid) == ["0100007F"]  # 127.0.0.1 only
        (tmp_path / "s3" / "bucket").mkdir()
        srv = servers.S3Server(f"http://127.0.0.1:{port}", "fw-test-key", SECRET, tmp_path / "s3")
        assert [b["Name"] for b in srv.client().list_buckets()["Buckets"]] == ["bucket"]
        wrong = servers.S3Server(srv.endpoint, "fw-test-key", "not-the-secret", srv.folder)
        with pytest.raises(Exception, match="SignatureDoesNotMatch"):
            wrong.client().list_buckets()
        assert oct(os.stat(tmp_path / "s3.log").st_mode & 0o777) == oct(0o600)
        assert SECRET not in (tmp_path / "s3.log").read_text()
    finally:
        servers.stop_process(proc)


@pytest.fixture
def stack(tmp_path, monkeypatch):
    """A state folder with the real S3 server started the way `make up` does; stops what the test started."""
    paths = StackPaths(tmp_path / "state")
    paths.mkdirs()
    port = servers.free_port()
    monkeypatch.setenv("FLAREWATCH_STATE_DIR", str(paths.state))
    monkeypatch.setenv("FLAREWATCH_S3_PORT", str(port))
    monkeypatch.setenv("FLAREWATCH_API_PORT", str(servers.free_port()))
    localstack.start_s3(paths, port, "fw-test-key", SECRET)
    names = ["s3"]
    yield paths, port, names
    for name in names:
        supervise.stop(paths.run, name, timeout=5)


def _dummy(paths: StackPaths, name: str, code: str) -> int:
    """A stand-in component: python running ``code``, its output in logs/<name>.log."""
    return supervise.spawn(paths.run, paths.log_of(name), name, [sys.executable, "-c", code], os.environ, paths.state)


SLEEPER = "print('dummy: serving', flush=True); import time; time.sleep(600)"


def _watch(paths, port, names, starters, **kw):
    def probe():
        out = {"s3": localstack.probe_s3(paths, port)}
        for n in names[1:]:
            out[n] = supervise.Probe(supervise.running_pid(paths.run, n))
        return out

    def restart(name):
        if name == "s3":
            localstack.start_s3(paths, port, "fw-test-key", SECRET)
        else:
            supervise.stop(paths.run, name, timeout=5)
            starters[name]()

    messages = []
    restarts = supervise.watch(names, probe, restart, log=messages.append, poll=0.2,
                               log_tail=lambda n: supervise.tail(paths.log_of(n)), **kw)
    return restarts, messages


def test_a_killed_component_is_reported_and_only_it_is_restarted(stack):
    paths, port, names = stack
    names.append("worker")
    starters = {"worker": lambda: _dummy(paths, "worker", SLEEPER)}
    starters["worker"]()
    assert _watch(paths, port, names, starters, settle=0.5)[0] == {"s3": 0, "worker": 0}
    s3_pid = supervise.running_pid(paths.run, "s3")
    old = supervise.running_pid(paths.run, "worker")

    os.kill(old, signal.SIGKILL)
    time.sleep(0.2)
    probe = supervise.Probe(supervise.running_pid(paths.run, "worker"))
    assert not probe.healthy
    restarts, messages = _watch(paths, port, names, starters, settle=0.5)
    assert restarts == {"s3": 0, "worker": 1}
    assert any("worker" in m and "restarting" in m for m in messages)
    assert supervise.running_pid(paths.run, "s3") == s3_pid  # the healthy one was left alone
    assert supervise.running_pid(paths.run, "worker") not in (None, old)


def test_a_component_dying_right_after_starting_is_noticed_and_restarted(stack, tmp_path):
    paths, port, names = stack
    names.append("flaky")
    marker = tmp_path / "crashed-once"
    # dies 0.5 s after its first start (as the scheduler after a PostgreSQL restart), runs on the second
    code = (f"import pathlib, sys, time; m = pathlib.Path({str(marker)!r})\n"
            "if not m.exists():\n    m.touch(); time.sleep(0.5); print('flaky: lost the database', flush=True); sys.exit(1)\n"
            + SLEEPER)
    starters = {"flaky": lambda: _dummy(paths, "flaky", code)}
    starters["flaky"]()
    assert supervise.Probe(supervise.running_pid(paths.run, "flaky")).healthy  # looks fine at first
    restarts, _ = _watch(paths, port, names, starters, settle=1.5)
    assert restarts == {"s3": 0, "flaky": 1}
    assert supervise.running_pid(paths.run, "flaky")


def test_a_component_that_always_dies_fails_the_wait_with_its_log(stack):
    paths, port, names = stack
    names.append("broken")
    starters = {"broken": lambda: _dummy(paths, "broken", "print('boom: cannot open the config', flush=True)")}
    starters["broken"]()
    with pytest.raises(supervise.StackUnhealthy, match=r"(?s)broken is not healthy.*2 restart.*boom: cannot open"):
        _watch(paths, port, names, starters, settle=0.5, max_restarts=2)


def _status() -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli.main(["status"])
    return rc, buf.getvalue()


def test_status_says_which_component_is_down_and_why(stack):
    paths, port, names = stack
    rc, out = _status()
    assert rc == 3
    assert f"s3             up (pid {supervise.running_pid(paths.run, 's3')})" in out
    assert "scheduler      DOWN (not started)" in out
    pid = supervise.running_pid(paths.run, "s3")
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    rc, out = _status()
    assert rc == 3
    assert f"s3             DOWN (process {pid} exited)" in out
    assert "Starting s3 server" in out  # its last log lines
    assert SECRET not in out


def test_stop_ends_what_a_dead_leader_left_in_its_group(tmp_path):
    paths = StackPaths(tmp_path / "state")
    paths.mkdirs()
    pid = supervise.spawn(paths.run, paths.log_of("parent"), "parent",
                          ["sh", "-c", "sleep 600 & echo child $!; exit 0"], os.environ, paths.state)
    deadline = time.time() + 5
    while supervise.running_pid(paths.run, "parent") and time.time() < deadline:
        time.sleep(0.05)
    assert supervise.running_pid(paths.run, "parent") is None
    assert supervise.group_members(pid)  # the child still runs (it could be holding a port)
    assert supervise.stop(paths.run, "parent", timeout=5)
    assert supervise.group_members(pid) == []
