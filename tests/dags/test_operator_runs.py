"""What an operator does from the Airflow UI, run with dag.test() on real Postgres + S3: trigger with a
typo'd site (fails at once, naming the known sites), an acquisition-date range (one batch per task
kind, labelled with its days and sites), rerun one site-day (forced, labelled with its site), a retry
that does not redo the site-days an earlier try wrote."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SITES = ["ahvaz-w", "rumaila-n"]
D1, D2 = date(2025, 7, 14), date(2025, 7, 15)


@pytest.fixture(scope="module")
def dags(airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.dags


PARAMS = {"acquisition_date": None, "acquisition_start": None, "acquisition_end": None, "site_ids": None}


def _run(dag, conf: dict, *, retries: int | None = None, logical_date=None):
    """dag.test() with every param given (dag.test keeps an earlier run's conf in the DAG object's
    params); ``retries`` (immediate) replaces the tasks' own (minutes apart)."""
    conf = {**PARAMS, **conf}
    saved = [(t, t.retries, t.retry_delay, t.retry_exponential_backoff) for t in dag.tasks]
    if retries is not None:
        for t in dag.tasks:
            t.retries, t.retry_delay, t.retry_exponential_backoff = retries, timedelta(0), False
    try:
        return dag.test(logical_date=logical_date, run_conf=conf)
    finally:
        for t, r, d, b in saved:
            t.retries, t.retry_delay, t.retry_exponential_backoff = r, d, b


def _tis(run) -> list:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id).all()
        return [(ti.task_id, ti.map_index, ti.rendered_map_index, ti.state, ti.try_number) for ti in tis]


def _processing(conn, day: date) -> dict:
    with conn.cursor() as cur:
        cur.execute("SELECT site_id, state, attempts, processed_at, n_detections, volume_kscm_d"
                    " FROM site_day_processing WHERE acquisition_date = %s", (day,))
        rows = {r[0]: r[1:] for r in cur.fetchall()}
    conn.commit()
    return rows


@pytest.mark.parametrize("dag_id", ["flare_ingest", "flare_process"])
def test_an_unknown_site_fails_the_run_at_once_naming_the_known_ones(dags, dag_id):
    run = _run(dags[dag_id], {"acquisition_date": D1.isoformat(), "site_ids": ["rumaila"]})
    assert run.state == "failed"
    plan = [t for t in _tis(run) if t[0].startswith("plan")]
    assert [(state, tries) for *_, state, tries in plan] == [("failed", 1)]  # no retry

    from airflow.sdk.exceptions import AirflowFailException

    from flarewatch.orchestration import tasks
    from flarewatch.orchestration.dags import RAW_SCENES

    ctx = {"params": {"acquisition_date": D1.isoformat(), "site_ids": ["rumaila", "rumaila-n"]},
           "triggering_asset_events": {}}
    plan_fn = tasks.plan_ingest if dag_id == "flare_ingest" else (lambda c: tasks.plan_process(c, RAW_SCENES))
    with pytest.raises(AirflowFailException, match=r"unknown or inactive site id\(s\): rumaila; known sites: .*rumaila-n"):
        plan_fn(ctx)


def test_a_bad_range_and_a_day_with_nothing_ingested_fail_at_once(dags):
    run = _run(dags["flare_ingest"], {"acquisition_start": "2025-07-10", "acquisition_end": "2025-07-01"})
    assert run.state == "failed" and [t[-2:] for t in _tis(run) if t[0] == "plan_sites"] == [("failed", 1)]
    run = _run(dags["flare_process"], {"acquisition_date": "2019-01-01"})  # nothing ingested then
    assert run.state == "failed" and [t[-2:] for t in _tis(run) if t[0] == "plan_tiles"] == [("failed", 1)]


def test_a_range_run_ingests_and_processes_every_day_then_one_site_day_reruns(dags, conn, s3, caplog):
    run = _run(dags["flare_ingest"], {"acquisition_start": D1.isoformat(), "acquisition_end": D2.isoformat(),
                                      "site_ids": SITES}, logical_date=datetime(2025, 8, 1, 6, tzinfo=UTC))
    assert run.state == "success"
    # 4 site-days: one ingest task (batches are sized from costs: orchestration.batching)
    assert [t[2] for t in _tis(run) if t[0] == "ingest"] == [f"{D1}..{D2} {','.join(SITES)}"]

    with caplog.at_level(logging.INFO, logger="flarewatch"):
        run = _run(dags["flare_process"], {"acquisition_start": D1.isoformat(), "acquisition_end": D2.isoformat(),
                                           "site_ids": SITES})
    assert run.state == "success"
    # one task for both days: the models load once
    assert [t[2] for t in _tis(run) if t[0] == "process"] == [f"{D1}..{D2} {','.join(SITES)}"]
    first = {d: _processing(conn, d) for d in (D1, D2)}
    assert all(first[d][s][0] == "processed" for d in (D1, D2) for s in SITES)
    # one readable line per site-day in the task log, with the interval and the versions
    lines = [r.getMessage() for r in caplog.records if r.name == "flarewatch.process.site_day"]
    for site in SITES:
        for day in (D1, D2):
            [line] = [m for m in lines if m.startswith(f"{site} {day}: ")]
            assert " flare(s) (" in line and "kscm/d [90 % " in line and ", CO2e " in line
            assert "; detector " in line and ", volume model " in line
    assert not [r for r in caplog.records if "DeprecatedImportWarning" in r.getMessage()
                or "is deprecated. Please use" in r.getMessage()]

    # rerun one site-day from the UI: exactly that one, labelled with its site, even when given up on
    with conn.cursor() as cur:
        cur.execute("UPDATE site_day_processing SET state = 'failed', attempts = 3, last_attempt_at = now()"
                    " WHERE site_id = %s AND acquisition_date = %s", (SITES[1], D1))
    conn.commit()
    run = _run(dags["flare_process"], {"acquisition_date": D1.isoformat(), "site_ids": [SITES[1]]})
    assert run.state == "success"
    assert [(t[2], t[3]) for t in _tis(run) if t[0] == "process"] == [(f"{D1} {SITES[1]}", "success")]
    after = {d: _processing(conn, d) for d in (D1, D2)}
    assert after[D1][SITES[1]][0] == "processed" and after[D1][SITES[1]][2] > first[D1][SITES[1]][2]
    assert after[D1][SITES[1]][3:] == first[D1][SITES[1]][3:]  # same numbers
    assert after[D1][SITES[0]] == first[D1][SITES[0]] and after[D2] == first[D2]  # the others untouched


def test_a_retry_does_not_redo_the_site_days_an_earlier_try_wrote(dags, conn, s3, monkeypatch):
    from flarewatch.process import batch

    day = D1
    before = _processing(conn, day)
    assert set(SITES) <= set(before), "needs the range test's ingest"
    real, calls = batch.process_site_day, []

    def flaky(site, d, *args, **kwargs):
        calls.append(site.site_id)
        if site.site_id == SITES[1] and calls.count(SITES[1]) == 1:
            raise OSError("S3 went away for a moment")  # transient: the task retries
        return real(site, d, *args, **kwargs)

    monkeypatch.setattr(batch, "process_site_day", flaky)
    real_batch, returned = batch.process_batch, []
    monkeypatch.setattr(batch, "process_batch", lambda *a, **kw: returned.append(real_batch(*a, **kw)) or returned[-1])
    run = _run(dags["flare_process"], {"acquisition_date": day.isoformat(), "site_ids": SITES}, retries=1)
    assert run.state == "success"
    [(label, state, tries)] = [(t[2], t[3], t[4]) for t in _tis(run) if t[0] == "process"]
    assert (label, state, tries) == (f"{day} {','.join(SITES)}", "success", 2)
    assert calls == [SITES[0], SITES[1], SITES[1]]  # the retry did not redo the first site
    after = _processing(conn, day)
    assert {s: after[s][3:] for s in SITES} == {s: before[s][3:] for s in SITES}  # same numbers
    [value] = returned  # the XCom of the successful try: the whole batch, the first site reused
    assert value["reused"] == [SITES[0]] and value["site_ids"] == SITES
    assert value["n_detections"] == sum(before[s][3] for s in SITES)
    assert value["volume_kscm_d"] == pytest.approx(sum(before[s][4] for s in SITES), abs=1e-3)
