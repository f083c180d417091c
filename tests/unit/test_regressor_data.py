"""Regressor training units from the simulator: same processing as flare_process, periods, cache,
snapshot hash. (units_from_db is tested against Postgres in tests/integration/test_regressor_retrain_dag.py.)"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from flarewatch.estimate.regressor import INPUT_COLUMNS, flare_inputs_matrix
from flarewatch.training import regressor_data as D


def test_regressor_sites_are_disjoint_from_the_detector_sites_and_deterministic():
    a = D.regressor_sites(3, seed=0)
    assert [s.site_id for s in a] == ["reg-s0-000", "reg-s0-001", "reg-s0-002"]
    assert a == D.regressor_sites(3, seed=0)
    assert {s.site_id for s in D.regressor_sites(3, seed=1)}.isdisjoint(s.site_id for s in a)
    days = D.site_days("reg-s0-000", 5, 0)
    assert len(days) == 5 and all((b - a).days == 1 for a, b in zip(days, days[1:]))
    assert date(2023, 1, 1) <= days[0] <= date(2024, 12, 31)


def test_site_day_record_is_what_the_pipeline_estimates():
    from flarewatch.config import Settings
    from flarewatch.estimate.site_day import estimate_site_day
    from flarewatch.ingest.viirs import flare_like, parse_vnf_csv
    from flarewatch.simulation.flares import site_day_flows
    from flarewatch.simulation.scene import simulate_scene

    site = D.regressor_sites(1, seed=0)[0]
    day = D.site_days(site.site_id, 1, 0)[0]
    rec = D.simulate_site_day_record(site, day, Settings())
    scene = simulate_scene(site, day)
    est = estimate_site_day(site, day, scene.tile, flare_like(parse_vnf_csv(scene.viirs_csv), 1200.0), Settings())
    expect = flare_inputs_matrix([r["features"] for r in est.detection_rows])
    np.testing.assert_allclose(np.asarray(rec["flare_inputs"]).reshape(-1, len(INPUT_COLUMNS)), expect, atol=1e-7)
    assert rec["flow_kscm_d"] == pytest.approx(sum(site_day_flows(site, day).values()))
    assert rec["flow_kscm_d"] == pytest.approx(sum(f["flow_kscm_d"] for f in scene.truth["flares"]), abs=1e-3)


def _records():
    rows = []
    for s in ("a", "b"):
        for d in range(5):
            rows.append({"site_id": s, "day": f"2024-03-{d + 1:02d}", "flow_kscm_d": 10.0 * (d + 1),
                         "flare_inputs": [[1.0] + [float(d)] * (len(INPUT_COLUMNS) - 1)] * (d % 3)})
    return rows


def test_units_from_site_days_groups_periods():
    daily = D.units_from_site_days(_records(), period_days=1, meter_noise_sd=0.0)
    assert len(daily) == 10 and (daily.n_days == 1).all()
    assert daily.target_kscm_d.tolist()[:5] == [10.0, 20.0, 30.0, 40.0, 50.0]
    three = D.units_from_site_days(_records(), period_days=3, meter_noise_sd=0.0)
    assert three.n_days.tolist() == [3, 2, 3, 2]  # trailing partial period kept with its own length
    assert three.target_kscm_d.iloc[0] == pytest.approx(20.0) and three.target_kscm_d.iloc[1] == pytest.approx(45.0)
    assert three.period_start.iloc[1] == date(2024, 3, 4) and three.period_end.iloc[1] == date(2024, 3, 5)
    assert three.n_flares.iloc[0] == 0 + 1 + 2 and three.flare_inputs.iloc[0].shape == (3, len(INPUT_COLUMNS))
    noisy = D.units_from_site_days(_records(), period_days=1, meter_noise_sd=0.05, seed=1)
    ratio = noisy.target_kscm_d / daily.target_kscm_d
    assert 0.8 < ratio.min() and ratio.max() < 1.25 and ratio.std() > 0
    again = D.units_from_site_days(_records(), period_days=1, meter_noise_sd=0.05, seed=1)
    assert again.target_kscm_d.tolist() == noisy.target_kscm_d.tolist()
    with pytest.raises(ValueError):
        D.units_from_site_days(_records(), period_days=0)


def test_synthetic_units_cached(tmp_path, monkeypatch):
    u = D.synthetic_units(2, 2, seed=5, cache_dir=tmp_path)
    assert len(u) == 4 and set(u.columns) >= set(D.UNIT_COLUMNS)
    assert (u.n_days_processed == 1).all() and (u.target_kscm_d >= 0).all()
    assert len(list(tmp_path.glob("site-days-*.json"))) == 1

    def boom(*a, **k):
        raise AssertionError("cache not used")

    monkeypatch.setattr(D, "simulate_site_day_record", boom)
    again = D.synthetic_units(2, 2, seed=5, cache_dir=tmp_path)
    assert D.data_snapshot(again) == D.data_snapshot(u)
    monthly = D.synthetic_units(2, 2, seed=5, cache_dir=tmp_path, period_days=2)  # same site-days, regrouped
    assert len(monthly) == 2


def test_data_snapshot_is_order_free_and_sees_changes():
    u = D.units_from_site_days(_records(), period_days=1, meter_noise_sd=0.0)
    h = D.data_snapshot(u)
    assert D.data_snapshot(u.iloc[::-1]) == h
    changed = u.copy()
    changed.loc[3, "target_kscm_d"] += 0.01
    assert D.data_snapshot(changed) != h
    other = u.copy()
    other.at[4, "flare_inputs"] = other.at[4, "flare_inputs"] * 2
    assert D.data_snapshot(other) != h
