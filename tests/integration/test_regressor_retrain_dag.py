"""Volume regressor on the real Postgres + S3 servers: calibration periods aligned with detections,
the promotion gate, the backfill, and the regressor_retrain DAG with dag.test().

Seeds 6 demo sites x 6 days (September 2023, dates no other test uses) through the same pure step
flare_process runs (simulator -> estimate_site_day, threshold detector), daily meter readings of
the simulator's true flow in calibration_measurements, plus two multi-day periods; removes all of
it (and every 'regressor' model version) afterwards.
"""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from flarewatch.store import db
from flarewatch.store import objects as storage

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
DAYS = [date(2023, 9, 1) + timedelta(days=i) for i in range(6)]
SOURCE = "regressor-test"
PARTIAL = ("rumaila-n", date(2023, 8, 30), date(2023, 9, 2))  # 4 days, 2 processed
UNSEEN = ("parshall", date(2023, 9, 10), date(2023, 9, 23))  # 14 days, none processed


def _cleanup(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM flare_detections WHERE acquisition_date BETWEEN '2023-08-01' AND '2023-09-30'")
        cur.execute("DELETE FROM scenes WHERE acquisition_date BETWEEN '2023-08-01' AND '2023-09-30'")
        cur.execute("DELETE FROM emissions_daily WHERE day BETWEEN '2023-08-01' AND '2023-09-30'")
        cur.execute("DELETE FROM emissions_monthly WHERE month BETWEEN '2023-08-01' AND '2023-09-30'")
        cur.execute("DELETE FROM calibration_measurements WHERE source = %s", (SOURCE,))
        cur.execute("DELETE FROM model_versions WHERE model_name LIKE 'regressor%%'")
    conn.commit()


def _measurement(site_id, start, end, volume_kscm) -> tuple:
    return (site_id, start, end, volume_kscm, volume_kscm, "kscm", SOURCE, "meter-1", "test", "test-batch")


@pytest.fixture(scope="module")
def seeded(pg_dsn):
    """36 processed site-days with detections + daily meter readings (and two multi-day periods)."""
    from flarewatch.config import Settings
    from flarewatch.estimate.site_day import estimate_site_day
    from flarewatch.ingest.viirs import flare_like, parse_vnf_csv
    from flarewatch.simulation.flares import site_day_flows
    from flarewatch.simulation.scene import simulate_scene
    from flarewatch.sites import load_sites

    conn = db.connect(pg_dsn)
    _cleanup(conn)
    settings = Settings()
    sites = load_sites()
    rows, flows = [], {}
    for site in sites:
        for day in DAYS:
            scene = simulate_scene(site, day)
            est = estimate_site_day(site, day, scene.tile, flare_like(parse_vnf_csv(scene.viirs_csv), 1200.0), settings)
            for sensor in ("sentinel2", "viirs"):
                db.upsert_scene(conn, {"site_id": site.site_id, "acquisition_date": day, "sensor": sensor,
                                       "source": SOURCE, "status": "ingested"})
            db.replace_site_day_results(conn, site.site_id, day, est.detection_rows, est.emission_rows,
                                        ["sentinel2", "viirs"])
            flow = float(sum(site_day_flows(site, day).values()))
            flows[(site.site_id, day)] = flow
            rows.append(_measurement(site.site_id, day, day, flow))
    rows.append(_measurement(*PARTIAL, 4 * 300.0))
    rows.append(_measurement(*UNSEEN, 14 * 100.0))
    with db.transaction(conn) as cur:
        cur.executemany(
            "INSERT INTO calibration_measurements (site_id, period_start, period_end, volume_kscm, volume_reported,"
            " unit_reported, source, source_key, imported_from, import_batch) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            rows)
    yield {"conn": conn, "sites": sites, "flows": flows}
    _cleanup(conn)
    conn.close()


def test_units_from_db_aligns_calibration_periods_with_detections(seeded):
    from flarewatch.estimate.regressor import flare_inputs_matrix
    from flarewatch.training.regressor_data import units_from_db

    conn = seeded["conn"]
    units = units_from_db(conn, start=date(2023, 8, 1), end=date(2023, 9, 30), min_coverage=0.5)
    assert len(units) == 6 * 6 + 1 and units.attrs["n_periods"] == 38
    dropped = units.attrs["dropped"]
    assert [(d["site_id"], d["period_start"]) for d in dropped] == [UNSEEN[:2]]
    assert "no processed day" in dropped[0]["reason"]

    partial = units[(units.site_id == PARTIAL[0]) & (units.period_start == PARTIAL[1])].iloc[0]
    assert (partial.n_days, partial.n_days_processed, partial.target_kscm_d) == (4, 2, pytest.approx(300.0))

    site, day = "ahvaz-w", DAYS[2]
    unit = units[(units.site_id == site) & (units.period_start == day)].iloc[0]
    assert unit.target_kscm_d == pytest.approx(seeded["flows"][(site, day)])
    with conn.cursor() as cur:
        cur.execute("SELECT features FROM flare_detections WHERE site_id = %s AND acquisition_date = %s"
                    " ORDER BY detection_key", (site, day))
        feats = [r[0] for r in cur.fetchall()]
    conn.commit()
    assert unit.n_flares == len(feats) > 0
    np.testing.assert_allclose(unit.flare_inputs, flare_inputs_matrix(feats))
    # the partial period's 2 processed days hold the detections of 2023-09-01 and -02
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM flare_detections WHERE site_id = %s AND acquisition_date BETWEEN %s AND %s",
                    PARTIAL)
        assert partial.n_flares == cur.fetchone()[0]
    conn.commit()

    strict = units_from_db(conn, start=date(2023, 8, 1), end=date(2023, 9, 30), min_coverage=0.6)
    assert len(strict) == 36
    assert any(d["site_id"] == PARTIAL[0] and "coverage 0.50" in d["reason"] for d in strict.attrs["dropped"])
    assert len(units_from_db(conn, start=date(2023, 9, 3), end=date(2023, 9, 4))) == 12


def test_production_regressor_uses_the_shipped_model_and_a_missing_one_is_an_error(seeded, s3, monkeypatch, tmp_path):
    from dataclasses import replace

    from flarewatch.config import Settings
    from flarewatch.estimate import deployed as D

    conn = seeded["conn"]
    with conn.cursor() as cur:
        cur.execute("DELETE FROM model_versions WHERE model_name = 'regressor'")
    conn.commit()
    model, version = D.production_regressor(conn, s3, Settings())
    assert version == model.version == D.shipped_version() and version.startswith("regressor-shipped-")
    assert model.predict_flares([{"viirs_n": 1, "viirs_rh_mw": 2.0}])[0][0] > 0
    assert D.production_regressor(conn, s3, replace(Settings(), volume_model="calibration")) == (
        None, "calibration-linear-v1")
    # a configured model that is missing is an error, never a silent fall-back to the calibration
    monkeypatch.setenv("FLAREWATCH_MODELS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="FLAREWATCH_MODELS_DIR"):
        D.production_regressor(conn, s3, Settings())


def test_synthetic_bootstrap_sites_join_the_calibration_units(seeded, monkeypatch, tmp_path):
    from flarewatch.training.regressor import DEFAULT_PARAMS, build_units

    monkeypatch.setenv("FLAREWATCH_STATE_DIR", str(tmp_path))
    params = {**DEFAULT_PARAMS, "calibration_start": "2023-09-01", "calibration_end": "2023-09-01",
              "synthetic_sites": 3, "synthetic_days": 2, "synthetic_detector": "threshold"}
    units, info = build_units(seeded["conn"], params)
    assert (info["db_units"], info["synthetic_units"]) == (6, 6) and len(units) == 12
    synthetic = sorted(s for s in units.site_id.unique() if s.startswith("reg-"))
    assert synthetic == ["reg-s1-000", "reg-s1-001", "reg-s1-002"]  # not the shipped model's seed-0 sites
    assert list(tmp_path.glob("regressor/site-days-*.json"))


def test_too_little_calibration_data_is_a_clear_error(seeded, s3):
    from flarewatch.config import Settings
    from flarewatch.training.regressor import train_challenger

    with pytest.raises(ValueError, match=r"too little calibration data.*6 usable period\(s\) at 6 site") as err:
        train_challenger(seeded["conn"], s3, Settings(), params={"calibration_start": "2023-09-01",
                                                                 "calibration_end": "2023-09-01"})
    assert "need >= 12 periods at >= 4 sites" in str(err.value)
    with pytest.raises(ValueError, match=r"0 usable period\(s\) at 0 site.*0 calibration period\(s\) read"):
        train_challenger(seeded["conn"], s3, Settings(), params={"calibration_start": "2022-01-01",
                                                                 "calibration_end": "2022-01-31"})
    with pytest.raises(ValueError, match=r"0 usable period\(s\) at 0 site.*1 dropped: parshall 2023-09-10"):
        train_challenger(seeded["conn"], s3, Settings(), params={"calibration_start": "2023-09-10",
                                                                 "calibration_end": "2023-09-30"})


def _register(conn, s3, tmp_path, name, mae, linear=80.0, power=120.0) -> int:
    from flarewatch.store import registry

    f = tmp_path / "model.skops"
    f.write_bytes(b"model")
    return registry.register(conn, s3, "processed", name, {"model.skops": f},
                             {"mae": mae, "baselines": {"calibration_linear": {"mae": linear},
                                                        "calibration_power": {"mae": power}}})


def test_promotion_gate_refuses_a_worse_regressor(seeded, s3, tmp_path):
    from flarewatch.store import registry
    from flarewatch.training.regressor import promote

    conn, name = seeded["conn"], "regressor-gate-test"
    v1 = _register(conn, s3, tmp_path, name, 50.0)
    assert promote(conn, v1, model_name=name).promote
    v2 = _register(conn, s3, tmp_path, name, 60.0)
    refused = promote(conn, v2, model_name=name)
    assert not refused.promote and "worse than champion" in refused.reason
    v3 = _register(conn, s3, tmp_path, name, 45.0, linear=40.0)  # better than the champion, not than the calibration
    refused = promote(conn, v3, model_name=name)
    assert not refused.promote and "calibration_linear" in refused.reason
    assert registry.champion(conn, name)["version"] == v1
    v4 = _register(conn, s3, tmp_path, name, 30.0)
    assert promote(conn, v4, model_name=name).promote
    assert registry.champion(conn, name)["version"] == v4
    with conn.cursor() as cur:
        cur.execute("SELECT version, decision FROM model_versions WHERE model_name = %s ORDER BY version", (name,))
        decisions = dict(cur.fetchall())
    conn.commit()
    assert all(decisions.values()) and "does not beat calibration_linear" in decisions[v3]


def _emissions(conn, days):
    with conn.cursor() as cur:
        cur.execute("SELECT site_id, acquisition_date, detection_key, volume_kscm_d, volume_lo_kscm_d, volume_hi_kscm_d,"
                    " co2_t, co2e_t, model_version, volume_method FROM flare_emissions"
                    " WHERE acquisition_date = ANY(%s) ORDER BY 1, 2, 3", (list(days),))
        rows = cur.fetchall()
    conn.commit()
    return rows


def test_backfill_is_idempotent_and_records_the_version(seeded):
    from flarewatch.config import Settings
    from flarewatch.estimate.regressor import fit_regressor
    from flarewatch.training.regressor import backfill_volumes
    from flarewatch.training.regressor_data import units_from_db

    conn = seeded["conn"]
    units = units_from_db(conn, start=date(2023, 8, 1), end=date(2023, 9, 30))
    grid = {"basis__p_viirs": [0.9], "basis__p_s2": [0.6], "basis__p_lb": [0.9], "basis__s2_proxy": ["frp"],
            "ridge__alpha": [1.0]}
    model, _ = fit_regressor(units, param_grid=grid, n_splits=3)
    model.version = "regressor-v999"
    before_outside = _emissions(conn, DAYS[3:])
    first = backfill_volumes(conn, model, Settings(), DAYS[0], DAYS[2])
    assert first["days"] == [d.isoformat() for d in DAYS[:3]] and first["site_days"] == 18 and first["rows"] > 0
    rows = _emissions(conn, DAYS[:3])
    assert len(rows) == first["rows"]
    assert {r[8] for r in rows} == {"regressor-v999"} and {r[9] for r in rows} == {"regressor"}
    assert all(0 <= r[4] <= r[3] <= r[5] for r in rows)  # lo <= volume <= hi
    assert all(math.isclose(r[6], r[3] * 1.935 * 0.98) for r in rows)
    assert _emissions(conn, DAYS[3:]) == before_outside  # rows outside the range keep their version
    second = backfill_volumes(conn, model, Settings(), DAYS[0], DAYS[2])
    assert second == first and _emissions(conn, DAYS[:3]) == rows  # idempotent
    assert set(DAYS[:3]) <= set(db.stale_rollup_days(conn))  # the rollup will refresh those days
    seeded_days = {(s.site_id, d) for s in seeded["sites"] for d in DAYS}
    assert not set(db.pending_site_days(conn)) & seeded_days  # nothing looks unprocessed


def test_regressor_retrain_dag_registers_gates_and_backfills(seeded, airflow_env, s3, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from flarewatch.store import registry

    conn = seeded["conn"]
    with conn.cursor() as cur:
        cur.execute("DELETE FROM model_versions WHERE model_name = 'regressor'")
    conn.commit()
    monkeypatch.setenv("FLAREWATCH_STATE_DIR", str(tmp_path))
    before = {r[8] for r in _emissions(conn, DAYS)}  # earlier tests of this module may have backfilled some rows
    dag = DagBag(dag_folder=str(REPO / "dags")).dags["regressor_retrain"]
    run = dag.test(logical_date=None, run_conf={
        "calibration_start": "2023-08-01", "calibration_end": "2023-09-30",
        "backfill_start": DAYS[0].isoformat(), "backfill_end": DAYS[-1].isoformat()})
    assert run.state == "success"

    with conn.cursor() as cur:
        cur.execute("SELECT version, alias, decision, metrics, params, data_snapshot, library_versions"
                    " FROM model_versions WHERE model_name = 'regressor' ORDER BY version")
        rows = cur.fetchall()
    conn.commit()
    assert rows, "no regressor version registered"
    assert all(r[2] for r in rows)  # every version has a recorded gate decision
    assert sum(r[1] == "champion" for r in rows) == 1
    challenger = rows[-1]
    metrics, params = challenger[3], challenger[4]
    assert {"mae", "rmse", "r2", "bias", "coverage", "baselines"} <= set(metrics)
    assert set(params["train_sites"]).isdisjoint(params["test_sites"]) and len(params["test_sites"]) == 2
    assert len(challenger[5]) == 64 and challenger[6]["skops"] and challenger[6]["scikit-learn"]
    prefix = registry.s3_prefix("regressor", challenger[0])
    keys = storage.list_keys(s3, "processed", prefix)
    assert prefix + "model.skops" in keys and prefix + "metadata.json" in keys
    meta = json.loads(storage.get_bytes(s3, "processed", prefix + "metadata.json"))
    assert meta["data_snapshot"] == challenger[5] and meta["metrics"]["baselines"]["calibration_linear"]["mae"] > 0

    champion = registry.champion(conn, "regressor")
    promoted = champion["version"] == challenger[0]
    from flarewatch.config import Settings
    from flarewatch.estimate.deployed import production_regressor

    model, version = production_regressor(conn, s3, Settings())  # what flare_process would use now
    assert version == model.version == f"regressor-v{champion['version']}"
    versions = {r[8] for r in _emissions(conn, DAYS)}
    if promoted:  # the backfill re-estimated the range with the new champion
        assert versions == {f"regressor-v{challenger[0]}"}
    else:  # not promoted: the backfill left the rows as they were
        assert versions == before and f"regressor-v{challenger[0]}" not in versions
        assert "worse" in challenger[2] or "does not beat" in challenger[2]
    print(f"challenger {params.get('model_kind')} v{challenger[0]}: mae {metrics['mae']}, "
          f"decision {challenger[2]!r}")
