"""DAG integrity: the DAG folder imports cleanly, fast, without heavy imports, with retries and tags."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {"flare_ingest", "flare_process", "emissions_rollup", "emissions_analytics", "emissions_report",
            "detector_retrain", "calibration_import", "regressor_retrain"}
HEAVY = ("torch", "ultralytics", "rasterio", "sklearn", "pandas", "cv2", "boto3", "psycopg2", "scipy", "matplotlib")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_expected_dags(dagbag):
    assert EXPECTED <= set(dagbag.dag_ids)


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_retries_tags_owner_docs(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert "flarewatch" in dag.tags
    assert dag.doc_md and dag_id in dag.doc_md
    for t in dag.tasks:
        assert t.retries >= 1, f"{dag_id}.{t.task_id} has no retries"
        assert t.owner == "flarewatch"


def test_assets_chain_the_dags(dagbag):
    from flarewatch.orchestration.dags import FLARE_EMISSIONS, RAW_SCENES

    ingest, process, rollup = (dagbag.dags[d] for d in ("flare_ingest", "flare_process", "emissions_rollup"))
    assert any(RAW_SCENES in t.outlets for t in ingest.tasks)
    assert any(FLARE_EMISSIONS in t.outlets for t in process.tasks)
    assert repr(RAW_SCENES) in repr(process.timetable.asset_condition)
    assert repr(FLARE_EMISSIONS) in repr(rollup.timetable.asset_condition)


def test_parse_does_not_import_heavy_modules():
    code = (
        "import sys, runpy, glob\n"
        f"sys.path.insert(0, {str(REPO / 'include')!r})\n"
        f"for f in sorted(glob.glob({str(REPO / 'dags' / '*.py')!r})): runpy.run_path(f)\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("HEAVY="))
    assert line == "HEAVY=", f"heavy modules imported at parse time: {line}"


@pytest.mark.parametrize("dag_id", ["detector_retrain", "regressor_retrain"])
def test_retraining_is_opt_in(dagbag, dag_id):
    """A fresh deployment must not start a CPU-heavy retraining for the latest weekly interval."""
    assert dagbag.dags[dag_id].is_paused_upon_creation is True
