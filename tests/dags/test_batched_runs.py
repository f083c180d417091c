"""Batched ingest and processing (orchestration.batching), run with dag.test() on real Postgres + S3:

- a range processed in batches that span days writes exactly the rows that processing one day at a
  time writes (emissions_daily, flare_detections, flare_emissions; timestamps aside);
- a site-day that fails inside an ingest batch does not lose the others: the task fails naming it,
  and its retry fetches only that one; an error that cannot heal fails the task at once.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SITES = ["cantarell", "hassi-messaoud"]
DAYS = [date(2025, 8, 4), date(2025, 8, 5), date(2025, 8, 6)]
FAIL_DAY = date(2025, 8, 11)
PARAMS = {"acquisition_date": None, "acquisition_start": None, "acquisition_end": None, "site_ids": None}


@pytest.fixture(scope="module")
def dags(airflow_env):
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def _run(dag, conf: dict, *, retries: int | None = None, all_params: dict = PARAMS):
    conf = {**all_params, **conf}
    saved = [(t, t.retries, t.retry_delay, t.retry_exponential_backoff) for t in dag.tasks]
    if retries is not None:
        for t in dag.tasks:
            t.retries, t.retry_delay, t.retry_exponential_backoff = retries, timedelta(0), False
    try:
        return dag.test(run_conf=conf)
    finally:
        for t, r, d, b in saved:
            t.retries, t.retry_delay, t.retry_exponential_backoff = r, d, b


def _tis(run, task_id: str) -> list:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id=task_id).all()
        return sorted((ti.rendered_map_index, ti.state, ti.try_number) for ti in tis)


def _rows(conn) -> dict:
    """The days' rows of the result tables, timestamps left out, in a stable order. The rows that
    processing writes must be equal to the bit; emissions_daily's sums to 1e-9: Postgres adds the
    flares of a site-day in the order it reads them, which a rewrite of the rows may change (the
    last bit of a double, whatever the batching)."""
    out = {}
    for table, day_col in (("emissions_daily", "day"), ("flare_detections", "acquisition_date"),
                           ("flare_emissions", "acquisition_date")):
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {table} WHERE {day_col} = ANY(%s) AND site_id = ANY(%s)", (DAYS, SITES))
            cols = [c.name for c in cur.description]
            rows = [{k: round(v, 9) if table == "emissions_daily" and isinstance(v, float) else v
                     for k, v in zip(cols, r) if not isinstance(v, datetime)} for r in cur.fetchall()]
        conn.commit()
        out[table] = sorted(rows, key=repr)
    return out


def test_a_range_in_batches_across_days_writes_the_rows_of_one_day_at_a_time(dags, conn, s3, monkeypatch):
    span = {"acquisition_start": DAYS[0].isoformat(), "acquisition_end": DAYS[-1].isoformat(), "site_ids": SITES}
    assert _run(dags["flare_ingest"], span).state == "success"
    rollup = {"start_date": DAYS[0].isoformat(), "end_date": DAYS[-1].isoformat()}

    # one day at a time (as a daily schedule would), then rolled up
    for day in DAYS:
        run = _run(dags["flare_process"], {"acquisition_date": day.isoformat(), "site_ids": SITES})
        assert run.state == "success"
        assert [label for label, *_ in _tis(run, "process")] == [f"{day} {','.join(SITES)}"]
    assert _run(dags["emissions_rollup"], rollup, all_params={}).state == "success"
    one_day_at_a_time = _rows(conn)
    assert one_day_at_a_time["flare_detections"] and len(one_day_at_a_time["emissions_daily"]) == 6

    # the whole range again: one batch of three days (models loaded once) ...
    run = _run(dags["flare_process"], span)
    assert run.state == "success"
    assert _tis(run, "process") == [(f"{DAYS[0]}..{DAYS[-1]} {','.join(SITES)}", "success", 1)]
    assert _run(dags["emissions_rollup"], rollup, all_params={}).state == "success"
    assert _rows(conn) == one_day_at_a_time

    # ... and in two batches, one of them across a night (at most 4 site-days per task)
    monkeypatch.setenv("FLAREWATCH_PROCESS_BATCH", "4")
    run = _run(dags["flare_process"], span)
    assert run.state == "success"
    assert [label for label, *_ in _tis(run, "process")] == [f"{DAYS[0]}..{DAYS[1]} {','.join(SITES)}",
                                                             f"{DAYS[2]} {','.join(SITES)}"]
    assert _run(dags["emissions_rollup"], rollup, all_params={}).state == "success"
    assert _rows(conn) == one_day_at_a_time


def test_a_failed_site_day_in_an_ingest_batch_is_named_and_only_it_is_retried(dags, conn, s3, monkeypatch):
    from flarewatch.ingest import site_day

    real, calls = site_day.ingest_site_day, []

    def flaky(site, day, *args, **kwargs):
        calls.append((site.site_id, day))
        if (site.site_id, day) == (SITES[1], FAIL_DAY) and calls.count((SITES[1], FAIL_DAY)) == 1:
            raise OSError("S3 went away for a moment")  # transient: the task retries
        return real(site, day, *args, **kwargs)

    monkeypatch.setattr(site_day, "ingest_site_day", flaky)
    days = [FAIL_DAY, FAIL_DAY + timedelta(days=1)]
    span = {"acquisition_start": days[0].isoformat(), "acquisition_end": days[1].isoformat(), "site_ids": SITES}
    run = _run(dags["flare_ingest"], span, retries=1)
    assert run.state == "success"
    assert _tis(run, "ingest") == [(f"{days[0]}..{days[1]} {','.join(SITES)}", "success", 2)]
    first_try = [(s, d) for d in days for s in SITES]
    assert calls == [*first_try, (SITES[1], FAIL_DAY)]  # the retry fetched only what failed
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM scenes WHERE acquisition_date = ANY(%s) AND site_id = ANY(%s)"
                    " AND status <> 'failed'", (days, SITES))
        assert cur.fetchone()[0] == 2 * len(first_try)  # both sensors of every site-day
    conn.commit()


def test_an_ingest_error_that_cannot_heal_fails_at_once_and_keeps_the_others(dags, conn, s3, monkeypatch, capfd):
    from flarewatch.ingest import site_day
    from flarewatch.ingest.sources.http import PermanentSourceError

    real = site_day.ingest_site_day

    def bad_credentials(site, day, *args, **kwargs):
        if site.site_id == SITES[0]:
            raise PermanentSourceError("401 Unauthorized: check the connection's credentials")
        return real(site, day, *args, **kwargs)

    monkeypatch.setattr(site_day, "ingest_site_day", bad_credentials)
    day = FAIL_DAY + timedelta(days=5)
    run = _run(dags["flare_ingest"], {"acquisition_date": day.isoformat(), "site_ids": SITES}, retries=2)
    assert run.state == "failed"
    assert _tis(run, "ingest") == [(f"{day} {','.join(SITES)}", "failed", 1)]  # not retried
    with conn.cursor() as cur:
        cur.execute("SELECT DISTINCT site_id FROM scenes WHERE acquisition_date = %s AND site_id = ANY(%s)",
                    (day, SITES))
        assert [r[0] for r in cur.fetchall()] == [SITES[1]]  # the other site-day was ingested
    conn.commit()
    out, err = capfd.readouterr()  # the task's log: why it failed, and that it was not retried
    assert (f"AirflowFailException: 1 of 2 site-days failed to ingest: {SITES[0]} {day}: PermanentSourceError: 401"
            in out + err) and "[not retried: the same inputs give the same error]" in out + err
