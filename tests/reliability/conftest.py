"""Shared state of the fault-injection suite (``make test-reliability``).

One DAG bag, one S3 server of the suite's own (so a case can kill and restart it without touching
the session's), and one clean reference run (``flare_ingest`` -> ``flare_process`` ->
``emissions_rollup`` with ``dag.test()``) of every demo site over ``DAYS`` on the session's
Postgres. Each case injects its fault into some site-days, runs the real DAG paths again and
compares the untouched site-days with the reference snapshot (``Pipeline.snapshot``).

Every case leaves the reference state behind (objects restored, site-days reprocessed), so the
cases are independent of their order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from reliability_days import DAYS, SITES

REPO = Path(__file__).resolve().parents[2]


_WORKER = """
import json, sys
from flarewatch.store import db

if sys.argv[2]:
    real = db.replace_site_day_results

    def announced(conn, site_id, *args, **kwargs):
        real(conn, site_id, *args, **kwargs)
        print("WROTE", site_id, flush=True)

    db.replace_site_day_results = announced
from flarewatch.orchestration import tasks

print(json.dumps(tasks.process_batch(json.loads(sys.argv[1]))), flush=True)
"""


class SuiteS3:
    """An rclone S3 server that a case may kill and restart over the same folder and port."""

    def __init__(self, folder: Path):
        from flarewatch.dev import servers

        self.folder, self.port, self.key, self.secret = folder, servers.free_port(), "rel-key", "rel-secret"
        self.endpoint = f"http://127.0.0.1:{self.port}"
        servers.make_buckets(folder, ["rawdata", "processed"])
        self.proc = None
        self.start()

    def start(self) -> None:
        from flarewatch.dev import servers

        self.proc = servers.start_s3(self.folder, self.port, self.key, self.secret, timeout=30)

    def kill(self) -> None:
        """SIGKILL: the server dies without closing anything (as a crashed or OOM-killed one)."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        from flarewatch.dev import servers

        if self.proc is not None and self.proc.poll() is None:
            servers.stop_process(self.proc)

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.key,
                            aws_secret_access_key=self.secret, region_name="us-east-1",
                            config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30))


@pytest.fixture(scope="package")
def suite_s3(airflow_env):
    """The suite's S3 server (the connection points at it only inside the suite's tests:
    ``suite_s3_connection``; the tests folders have no __init__.py, so "package" scope lasts the
    session and a connection switched here would leak into later test modules)."""
    folder = Path(tempfile.mkdtemp(prefix="flarewatch-rel-s3-"))
    srv = SuiteS3(folder)
    try:
        yield srv
    finally:
        srv.stop()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def s3_connection(srv):
    """The FlareWatch S3 connection pointing at ``srv`` for the duration of the block."""
    old = os.environ.get("AIRFLOW_CONN_FLAREWATCH_S3")
    os.environ["AIRFLOW_CONN_FLAREWATCH_S3"] = json.dumps({
        "conn_type": "aws", "login": srv.key, "password": srv.secret,
        "extra": {"endpoint_url": srv.endpoint, "region_name": "us-east-1"}})
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("AIRFLOW_CONN_FLAREWATCH_S3", None)
        else:
            os.environ["AIRFLOW_CONN_FLAREWATCH_S3"] = old


@pytest.fixture(autouse=True)
def suite_s3_connection(request):
    """Every test of the suite talks to the suite's S3 server (restored after each test)."""
    if "suite_s3" not in request.fixturenames:
        yield
        return
    with s3_connection(request.getfixturevalue("suite_s3")):
        yield


@pytest.fixture(scope="package")
def dags(airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.dags


class Pipeline:
    """The DAG paths and the checks the cases share."""

    def __init__(self, dags, s3srv: SuiteS3, pg_dsn: str):
        from flarewatch.config import Settings
        from flarewatch.store import db

        self.dags, self.s3srv, self.dsn = dags, s3srv, pg_dsn
        self.cfg = Settings()
        self.conn = db.connect(pg_dsn)
        self.reference: dict | None = None
        self._s3 = None
        self.worker_logs: list[Path] = []

    # ---- clients -----------------------------------------------------------------------
    @property
    def s3(self):
        if self._s3 is None:
            self._s3 = self.s3srv.client()
        return self._s3

    def reconnect(self) -> None:
        from flarewatch.store import db

        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - a connection the restarted server dropped
            pass
        self.conn = db.connect(self.dsn)

    def query(self, sql: str, args=()) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            rows = cur.fetchall()
        self.conn.commit()
        return rows

    # ---- DAG runs ----------------------------------------------------------------------
    def run(self, dag_id: str, *, retries: int = 0, logical_date=None, conf: dict | None = None):
        """``dag.test()`` with ``retries`` immediate retries per task (the DAGs' own delays are
        minutes; a case that needs a retry gets it at once)."""
        dag = self.dags[dag_id]
        saved = [(t, t.retries, t.retry_delay, t.retry_exponential_backoff) for t in dag.tasks]
        for t in dag.tasks:
            t.retries, t.retry_delay, t.retry_exponential_backoff = retries, timedelta(0), False
        try:
            return dag.test(logical_date=logical_date, run_conf=conf or {})
        finally:
            for t, r, d, b in saved:
                t.retries, t.retry_delay, t.retry_exponential_backoff = r, d, b

    def ingest(self, day: date, sites=SITES) -> str:
        run = self.run("flare_ingest", logical_date=datetime.combine(day + timedelta(days=1), datetime.min.time(),
                                                                     tzinfo=UTC).replace(hour=6),
                       conf={"site_ids": list(sites)})
        return run.state

    def process(self, day: date, sites=(), *, retries: int = 0) -> str:
        return self.run("flare_process", retries=retries,
                        conf={"acquisition_date": day.isoformat(), "site_ids": list(sites)}).state

    def rollup(self, days=DAYS) -> str:
        return self.run("emissions_rollup", conf={"start_date": min(days).isoformat(),
                                                  "end_date": max(days).isoformat()}).state

    # ---- state -------------------------------------------------------------------------
    def snapshot(self, days=DAYS, sites=SITES) -> dict:
        """Everything a reader of the results sees for those site-days, timestamps left out:
        ``daily[(site, day)]`` (emissions_daily) and ``detections[(site, day)]`` (sorted
        detection rows joined with their emissions)."""
        daily = {(r[0], r[1]): tuple(round(v, 6) if isinstance(v, float) else v for v in r[2:]) for r in self.query(
            "SELECT site_id, day, status, n_flares, n_flares_s2, n_flares_viirs_only, volume_kscm, co2_t, co2e_t,"
            " s2_observed, viirs_observed FROM emissions_daily WHERE day = ANY(%s) AND site_id = ANY(%s)",
            (list(days), list(sites)))}
        detections: dict = {}
        for r in self.query(
                "SELECT d.site_id, d.acquisition_date, d.detection_key, d.sensor, d.detector_version, d.pixel_row,"
                " d.pixel_col, d.hot_pixels, e.volume_kscm_d, e.co2_t, e.model_version FROM flare_detections d"
                " LEFT JOIN flare_emissions e USING (site_id, acquisition_date, detection_key)"
                " WHERE d.acquisition_date = ANY(%s) AND d.site_id = ANY(%s) ORDER BY 1, 2, 3",
                (list(days), list(sites))):
            detections.setdefault((r[0], r[1]), []).append(
                tuple(round(v, 6) if isinstance(v, float) else v for v in r[2:]))
        return {"daily": daily, "detections": detections}

    def assert_matches_reference(self, site_days) -> None:
        """The site-days' rows equal the clean reference run's, row for row."""
        now = self.snapshot()
        for key in site_days:
            assert now["daily"].get(key) == self.reference["daily"].get(key), key
            assert now["detections"].get(key, []) == self.reference["detections"].get(key, []), key

    def good(self, *bad) -> list[tuple[str, date]]:
        """Every site-day of the suite except ``bad``."""
        return [(s, d) for d in DAYS for s in SITES if (s, d) not in bad]

    def scene(self, site: str, day: date, sensor: str) -> dict:
        from flarewatch.store import db

        return db.fetch_scenes(self.conn, site, day)[sensor]

    def state(self, site: str, day: date) -> dict | None:
        rows = self.query("SELECT state, attempts, last_error, processed_at FROM site_day_processing"
                          " WHERE site_id = %s AND acquisition_date = %s", (site, day))
        return dict(zip(("state", "attempts", "last_error", "processed_at"), rows[0])) if rows else None

    def duplicates(self) -> int:
        return self.query("SELECT count(*) - count(DISTINCT (site_id, acquisition_date, detection_key))"
                          " FROM flare_detections WHERE acquisition_date = ANY(%s)", (DAYS,))[0][0]

    def assert_audit_clean(self, days=DAYS) -> None:
        from flarewatch.process.audit import audit_site_days

        report = audit_site_days(self.conn, self.s3, self.cfg, min(days), max(days))
        assert report["problems"] == [], report["problems"]
        assert report["checked"] >= len(SITES) * len(days) - 1
        assert self.duplicates() == 0

    # ---- a task in its own process (a worker that can be killed) -----------------------
    def spawn_batch(self, day: date, sites=SITES, *, announce_writes: bool = False) -> subprocess.Popen:
        """``orchestration.tasks.process_batch`` of one batch in a new Python process, with the
        FlareWatch connections of this suite; ``announce_writes``: it prints ``WROTE <site>`` on
        stdout after each site-day's rows are committed."""
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "include"),
                                                                          os.environ.get("PYTHONPATH")]))}
        batch = {"acquisition_date": day.isoformat(), "site_ids": list(sites)}
        log = tempfile.NamedTemporaryFile(prefix="flarewatch-rel-worker-", suffix=".log", delete=False)
        try:  # stdout: its log lines and WROTE lines (read them); stderr to a file, so the worker never blocks on it
            return subprocess.Popen([sys.executable, "-c", _WORKER, json.dumps(batch), "1" if announce_writes else ""],
                                    env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        finally:
            log.close()
            self.worker_logs.append(Path(log.name))

    # ---- objects -----------------------------------------------------------------------
    def tile_key(self, site: str, day: date) -> str:
        from flarewatch.store import objects as storage

        return storage.raw_tile_key("demo", day, site)

    def viirs_key(self, site: str, day: date) -> str:
        from flarewatch.store import objects as storage

        return storage.raw_viirs_key("demo", day, site)

    def get(self, key: str) -> bytes:
        from flarewatch.store import objects as storage

        return storage.get_bytes(self.s3, self.cfg.raw_bucket, key)

    def put(self, key: str, body: bytes) -> None:
        from flarewatch.store import objects as storage

        storage.put_bytes(self.s3, self.cfg.raw_bucket, key, body)

    def restore(self, day: date, originals: dict[str, bytes], *, reingest=()) -> None:
        """Put the original objects back (``reingest``: ingest those sites again instead) and
        reprocess the day: the reference state again."""
        for key, body in originals.items():
            self.put(key, body)
        if reingest:
            assert self.ingest(day, reingest) == "success"
        assert self.process(day) == "success"
        assert self.rollup([day]) == "success"


@pytest.fixture(scope="package")
def pipe(dags, suite_s3, pg_dsn):
    """A clean reference run of every site over ``DAYS``; ``pipe.reference`` is its snapshot."""
    p = Pipeline(dags, suite_s3, pg_dsn)
    with s3_connection(suite_s3):
        for day in DAYS:
            assert p.ingest(day) == "success"
            assert p.process(day) == "success"
        assert p.rollup() == "success"
        p.reference = p.snapshot()
    assert len(p.reference["daily"]) == len(SITES) * len(DAYS)
    assert all(v[0] == "processed" for v in p.reference["daily"].values())
    assert sum(len(v) for v in p.reference["detections"].values()) > 0
    p.assert_audit_clean()
    yield p
    p.conn.close()
    for log in p.worker_logs:
        log.unlink(missing_ok=True)
