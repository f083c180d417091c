"""detector_retrain with dag.test(): tiny dataset, 1 epoch, registry + promotion gate on real Postgres/S3."""

from __future__ import annotations

from pathlib import Path

import pytest

from flarewatch.store import objects as storage

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_registry(conn):
    """Leave no detector versions behind: other tests' flare_process would load the champion."""
    yield
    with conn.cursor() as cur:
        cur.execute("DELETE FROM model_versions WHERE model_name = 'detector'")
    conn.commit()


def test_detector_retrain_registers_and_gates(airflow_env, conn, s3, tmp_path, monkeypatch, clean_registry):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("FLAREWATCH_STATE_DIR", str(tmp_path))
    dag = DagBag(dag_folder=str(REPO / "dags")).dags["detector_retrain"]
    run = dag.test(logical_date=None, run_conf={"epochs": 1, "train_sites": 1, "eval_sites": 1, "days_per_site": 1})
    assert run.state == "success"
    with conn.cursor() as cur:
        cur.execute("SELECT version, alias, decision, metrics ? 'f1' FROM model_versions"
                    " WHERE model_name = 'detector' ORDER BY version")
        rows = cur.fetchall()
    conn.commit()
    assert rows, "no detector version registered"
    assert all(r[3] for r in rows)  # every version carries its test F1
    assert all(r[2] for r in rows)  # every version has a recorded gate decision
    assert sum(r[1] == "champion" for r in rows) == 1
    keys = storage.list_keys(s3, "processed", "models/detector/")
    assert any(k.endswith("/best.pt") for k in keys) and any(k.endswith("/metadata.json") for k in keys)
