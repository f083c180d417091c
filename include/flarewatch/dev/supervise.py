"""Process supervision for the local stack: pid files, detached starts, stops by process group,
health probes and a watch that restarts what died.

- ``spawn`` starts a command in its own session (process group) with its output appended to an
  owner-only log file and umask 077, and records ``<pid> <start time>`` in ``run/<name>.pid``;
  ``running_pid`` trusts a pid file only while that very process (same start time) lives.
- ``stop`` ends a component's whole process group, also when its leader already died and left
  children behind (e.g. a log-server subprocess still holding a port).
- ``watch`` is what ``make up`` waits on: every component healthy, then still healthy for
  ``settle`` seconds (a component that dies right after starting is noticed); a dead component
  is restarted (at most ``max_restarts`` times per call), one alive but unhealthy past
  ``timeout`` is restarted too. Components are only ever started when their process is gone,
  so a second ``make up`` on a half-dead stack restarts only the dead part.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

LOG_TAIL_LINES = 12


@dataclass(frozen=True)
class Probe:
    """One look at a component: its pid (None: no live process) and what is wrong (None: healthy)."""

    pid: int | None
    problem: str | None = None

    @property
    def healthy(self) -> bool:
        return self.pid is not None and self.problem is None


# ------------------------------------------------------------------------------------------
# pid files
# ------------------------------------------------------------------------------------------
def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot): tells a process from a later one
    that got the same pid; None when there is no such process or it is a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    st = _start_time(pid)
    return st is not None or not Path(f"/proc/{pid}").exists()


def pid_file(run_dir: Path, name: str) -> Path:
    return Path(run_dir) / f"{name}.pid"


def write_pid(run_dir: Path, name: str, pid: int) -> None:
    st = _start_time(pid)
    pid_file(run_dir, name).write_text(f"{pid} {st}" if st else str(pid))


def recorded_pid(run_dir: Path, name: str) -> int | None:
    """The pid in ``run/<name>.pid`` whether or not it still runs (the group to clean up after it)."""
    try:
        return int(pid_file(run_dir, name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def running_pid(run_dir: Path, name: str) -> int | None:
    """The pid of component ``name`` while that process (same start time as recorded) runs, else None."""
    try:
        parts = pid_file(run_dir, name).read_text().split()
        pid = int(parts[0])
    except (OSError, ValueError, IndexError):
        return None
    if not alive(pid):
        return None
    if len(parts) > 1 and _start_time(pid) not in (None, parts[1]):
        return None  # the pid was reused by another process
    return pid


# ------------------------------------------------------------------------------------------
# start / stop
# ------------------------------------------------------------------------------------------
def open_log(path: Path):
    """``path`` opened for appending, created owner-only (0600) and kept so."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


def spawn(run_dir: Path, log: Path, name: str, argv: list[str], env: Mapping[str, str], cwd: Path) -> int:
    """Start ``argv`` detached (own session, umask 077, stdin closed, output appended to ``log``)."""
    with open_log(log) as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(env), cwd=str(cwd), start_new_session=True, umask=0o077)
    write_pid(run_dir, name, proc.pid)
    return proc.pid


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if len(fields) > 3 and fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry.name))
    return out


def kill_group(pgid: int, timeout: float = 20.0) -> bool:
    """SIGTERM process group ``pgid``, SIGKILL what is left after ``timeout`` s; True if anything ran."""
    if not group_members(pgid):
        return False
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.time() + timeout
    while time.time() < deadline and group_members(pgid):
        time.sleep(0.2)
    if group_members(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return True


def stop(run_dir: Path, name: str, timeout: float = 20.0) -> bool:
    """Stop component ``name``'s process group (its leader alive or not); True if something ran."""
    pgid = recorded_pid(run_dir, name)
    stopped = kill_group(pgid, timeout) if pgid else False
    pid_file(run_dir, name).unlink(missing_ok=True)
    return stopped


def tail(path: Path, n: int = LOG_TAIL_LINES, redact: Iterable[str] = ()) -> list[str]:
    """The last ``n`` non-empty lines of ``path`` (read from its end), each known secret masked."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()][-n:]
    for secret in (s for s in redact if s):
        lines = [ln.replace(secret, "****") for ln in lines]
    return lines


# ------------------------------------------------------------------------------------------
# the watch
# ------------------------------------------------------------------------------------------
class StackUnhealthy(RuntimeError):
    """A component did not become, or stay, healthy; the message names it and quotes its log."""


def watch(names: list[str], probe_all: Callable[[], dict[str, Probe]], restart: Callable[[str], None],
          *, timeout: float = 180.0, settle: float = 10.0, max_restarts: int = 2, poll: float = 1.0,
          log_tail: Callable[[str], list[str]] = lambda name: [], log: Callable[[str], None] = print) -> dict[str, int]:
    """Wait until every component in ``names`` is healthy and stays so for ``settle`` s.

    ``probe_all()`` looks at all components at once; ``restart(name)`` cleans up after a dead
    component and starts it again. A component whose process is gone is restarted at once; one
    alive but unhealthy for ``timeout`` s is restarted as well. StackUnhealthy (with the
    component's last log lines) after ``max_restarts`` restarts of one component or when the
    whole wait exceeds ``timeout`` s after the last restart. Returns restarts per component.
    """
    restarts = dict.fromkeys(names, 0)
    unhealthy_since: dict[str, float] = {}
    healthy_since: float | None = None
    deadline = time.time() + timeout
    while True:
        now = time.time()
        probes = probe_all()
        bad = {n: probes[n] for n in names if not probes[n].healthy}
        if not bad:
            healthy_since = healthy_since or now
            unhealthy_since.clear()
            if now - healthy_since >= settle:
                return restarts
        else:
            healthy_since = None
            for name, pr in bad.items():
                first = unhealthy_since.setdefault(name, now)
                dead = pr.pid is None
                if not dead and now - first < timeout:
                    continue  # starting up: give it time
                if restarts[name] >= max_restarts:
                    raise StackUnhealthy(_failure(name, pr, restarts[name], log_tail(name)))
                why = pr.problem or "not running"
                log(f"  {name:<13} {why}: restarting it")
                restart(name)
                restarts[name] += 1
                unhealthy_since[name] = time.time()
                deadline = time.time() + timeout
        if time.time() > deadline:
            name, pr = next(iter(bad.items()))
            raise StackUnhealthy(_failure(name, pr, restarts[name], log_tail(name)))
        time.sleep(poll)


def _failure(name: str, probe: Probe, restarts: int, lines: list[str]) -> str:
    what = probe.problem or "not running"
    text = f"{name} is not healthy ({what}) after {restarts} restart(s)"
    if lines:
        text += "; its last log lines:\n" + "\n".join(f"    {ln}" for ln in lines)
    return text
