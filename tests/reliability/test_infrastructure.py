"""Faults of the infrastructure under a running ``flare_process``: the S3 server killed, Postgres
restarted, the task's process killed, two runs of the same site-days at once.

Each case first ingests the day again (every site-day pending, as after a new ingest), injects the
fault after the first site-day's rows are committed, checks what was recorded, reruns and compares
every site-day with the reference run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from reliability_days import DAYS, SITES

pytestmark = [pytest.mark.reliability, pytest.mark.integration, pytest.mark.slow]

A, B = DAYS


def _after_first_write(monkeypatch, fault):
    """Run ``fault()`` once, right after the first site-day's rows are committed."""
    from flarewatch.store import db

    real, done = db.replace_site_day_results, []

    def wrapped(*args, **kwargs):
        real(*args, **kwargs)
        if not done:
            done.append(args[1])
            fault()

    monkeypatch.setattr(db, "replace_site_day_results", wrapped)
    return done


def _pending(pipe, day) -> set[str]:
    from flarewatch.store import db

    return {s for s, d in db.pending_site_days(pipe.conn) if d == day}


def _assert_unprocessed_are_missing(pipe, day, sites, *, s3_up: bool = True) -> None:
    """Site-days not processed since their ingest show in the rollup as pending with NULL numbers.
    With S3 down the rows are still refreshed (the audit is skipped and says so); only the rollup's
    ``layers`` task, which writes the GIS layers to S3, fails the run."""
    assert pipe.rollup([day]) == ("success" if s3_up else "failed")
    daily = pipe.snapshot([day])["daily"]
    for site in sites:
        assert daily[(site, day)] == ("pending", None, None, None, None, None, None, False, False), site


def test_s3_server_killed_mid_run(pipe, monkeypatch):
    assert pipe.ingest(A) == "success"
    assert _pending(pipe, A) == set(SITES)
    first = _after_first_write(monkeypatch, pipe.s3srv.kill)
    try:
        assert pipe.process(A) == "failed"
        monkeypatch.undo()
        # recorded: the first site-day processed, every other one a failed attempt (state retrying)
        assert _pending(pipe, A) == set(SITES) - set(first)
        assert pipe.state(first[0], A)["state"] == "processed"
        for site in set(SITES) - set(first):
            state = pipe.state(site, A)
            assert (state["state"], state["attempts"]) == ("retrying", 1), (site, state)
            assert "Could not connect" in state["last_error"] or "Connect" in state["last_error"], state
        _assert_unprocessed_are_missing(pipe, A, set(SITES) - set(first), s3_up=False)
    finally:
        pipe.s3srv.start()  # restarted over the same folder and port
    assert pipe.process(A) == "success"
    assert pipe.rollup([A]) == "success"
    assert _pending(pipe, A) == set()
    pipe.assert_matches_reference(pipe.good())
    pipe.assert_audit_clean()


def test_postgres_restarted_mid_run(pipe, pg_dsn, monkeypatch):
    from psycopg2.extensions import parse_dsn

    from flarewatch.dev import servers

    if os.environ.get("FLAREWATCH_TEST_DB_URL"):
        pytest.skip("the test Postgres is not this session's own pgserver: not restarting it")
    pgdata = Path(parse_dsn(pg_dsn)["host"])
    assert (pgdata / "postmaster.pid").exists()

    def restart():
        pgserver = servers._pgserver()
        pgserver.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=pgdata, user=servers._pg_system_user())
        # pgserver's handle stops the postmaster it started at the end of the session (and then deletes
        # its folder): tell it the new postmaster's pid, else that one would outlive the session
        from pgserver.postgres_server import PostgresServer, PostmasterInfo

        handle = PostgresServer._instances.get(pgdata.resolve())
        assert handle is not None, "pgserver's handle of the test server not found"
        handle._postmaster_info = PostmasterInfo.read_from_pgdata(pgdata.resolve())
        assert handle._postmaster_info.is_running()

    assert pipe.ingest(B) == "success"
    first = _after_first_write(monkeypatch, restart)
    # the task loses its connection, fails, and its retry (immediate here, 30 s in the DAG) finishes the batch
    assert pipe.process(B, retries=1) == "success"
    monkeypatch.undo()
    assert first
    pipe.reconnect()
    assert _pending(pipe, B) == set()
    assert pipe.rollup([B]) == "success"
    pipe.assert_matches_reference(pipe.good())
    pipe.assert_audit_clean()


def test_task_killed_mid_batch(pipe):
    assert pipe.ingest(A) == "success"
    worker = pipe.spawn_batch(A, announce_writes=True)
    try:
        for line in worker.stdout:  # its log lines, until the first site-day's rows are committed
            if line.startswith("WROTE "):
                worker.kill()  # SIGKILL: no cleanup, no rollback from the client's side
                break
    finally:
        worker.kill()
        worker.wait(30)
    assert line.startswith("WROTE "), pipe.worker_logs[-1].read_text()[-3000:]
    written = line.split()[1]
    pending = _pending(pipe, A)
    assert written not in pending and len(pending) >= 1  # killed before the batch finished
    assert pipe.duplicates() == 0
    pipe.assert_matches_reference([(written, A)] + [(s, d) for s, d in pipe.good() if d != A])
    _assert_unprocessed_are_missing(pipe, A, pending)

    assert pipe.process(A) == "success"  # the rerun
    assert pipe.rollup([A]) == "success"
    pipe.assert_matches_reference(pipe.good())
    pipe.assert_audit_clean()


def test_two_runs_at_once(pipe):
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from flarewatch.orchestration import tasks

    assert pipe.ingest(B) == "success"
    batch, start = {"acquisition_date": B.isoformat(), "site_ids": list(SITES)}, Barrier(2)

    def worker(_):  # each with its own connections and models, as two Airflow workers
        start.wait(60)
        return tasks.process_batch(batch)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(worker, range(2)))  # re-raises a failure of either
    assert results[0]["n_detections"] == results[1]["n_detections"]
    assert _pending(pipe, B) == set()
    assert pipe.duplicates() == 0
    assert pipe.rollup([B]) == "success"
    pipe.assert_matches_reference(pipe.good())
    pipe.assert_audit_clean()
