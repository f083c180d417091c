"""End to end with dag.test(): flare_ingest -> flare_process -> emissions_rollup on real Postgres + S3.

The DAG runs are started directly (dag.test runs one DAG run in-process, without a scheduler);
asset triggering between them is covered by the demo. Then everything is run again and the row
and object counts must not change (idempotency).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from flarewatch.store import objects as storage

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SITES = ["rumaila-n", "cantarell"]
DAY = date(2025, 6, 3)


@pytest.fixture(scope="module")
def dags(airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def _counts(conn, s3) -> dict:
    out = {}
    with conn.cursor() as cur:
        for table, col in (("scenes", "acquisition_date"), ("flare_detections", "acquisition_date"),
                           ("flare_emissions", "acquisition_date"), ("emissions_daily", "day")):
            cur.execute(f"SELECT count(*) FROM {table} WHERE {col} = %s AND site_id = ANY(%s)", (DAY, SITES))
            out[table] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM emissions_monthly WHERE month = %s", (DAY.replace(day=1),))
        out["emissions_monthly"] = cur.fetchone()[0]
    conn.commit()
    out["raw_objects"] = len(storage.list_keys(s3, "rawdata", ""))
    out["processed_objects"] = len(storage.list_keys(s3, "processed", f"tiles/date={DAY}/"))
    return out


def _run_all(dags):
    ingest = dags["flare_ingest"].test(
        logical_date=datetime(2025, 6, 4, 6, tzinfo=UTC),  # the 06:00 run of the next day
        run_conf={"site_ids": SITES})
    assert ingest.state == "success"
    process = dags["flare_process"].test(
        logical_date=None, run_conf={"acquisition_date": DAY.isoformat(), "site_ids": SITES})
    assert process.state == "success"
    rollup = dags["emissions_rollup"].test(
        logical_date=None, run_conf={"start_date": DAY.isoformat(), "end_date": DAY.isoformat()})
    assert rollup.state == "success"


def test_ingest_process_rollup_end_to_end_and_idempotent(dags, conn, s3):
    _run_all(dags)
    first = _counts(conn, s3)
    assert first["scenes"] == 2 * len(SITES)  # sentinel2 + viirs per site
    assert first["flare_detections"] > 0
    assert first["flare_emissions"] == first["flare_detections"]
    assert first["emissions_daily"] == len(SITES)
    assert first["emissions_monthly"] >= 3 * len(SITES) - 2  # field/operator/country groups

    with conn.cursor() as cur:
        cur.execute("SELECT site_id, n_flares, volume_kscm, co2_t, co2e_t FROM emissions_daily"
                    " WHERE day = %s ORDER BY site_id", (DAY,))
        daily = cur.fetchall()
        cur.execute("SELECT count(*) FROM flare_detections d JOIN flare_emissions e"
                    " USING (site_id, acquisition_date, detection_key)"
                    " WHERE d.acquisition_date = %s AND e.co2e_t >= e.co2_t AND e.model_version <> ''", (DAY,))
        consistent = cur.fetchone()[0]
    conn.commit()
    assert consistent == first["flare_emissions"]
    with conn.cursor() as cur:  # the shipped YOLO detector ran and is recorded on every S2 row
        cur.execute("SELECT DISTINCT detector, detector_version FROM flare_detections"
                    " WHERE acquisition_date = %s AND sensor = 'sentinel2'", (DAY,))
        versions = cur.fetchall()
    conn.commit()
    assert versions and all(d == "yolo-physics" and v.startswith("yolo-shipped-") and v.endswith("+physics-v3")
                            for d, v in versions), versions
    assert any(n > 0 and vol > 0 and co2 > 0 for _, n, vol, co2, _ in daily)

    for site in SITES:
        keys = storage.processed_keys(DAY, site)
        png = storage.get_bytes(s3, "processed", keys["png"])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        gj = json.loads(storage.get_bytes(s3, "processed", keys["geojson"]))
        assert gj["type"] == "FeatureCollection"
        result = json.loads(storage.get_bytes(s3, "processed", keys["result"]))
        assert result["site_id"] == site and result["acquisition_date"] == DAY.isoformat()
        raw = storage.get_bytes(s3, "rawdata", storage.raw_tile_key("demo", DAY, site))
        assert raw[:2] in (b"II", b"MM")  # a TIFF

    # Rerun everything: no duplicate rows, no extra objects.
    _run_all(dags)
    assert _counts(conn, s3) == first
