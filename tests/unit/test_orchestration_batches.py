"""Batches of flare_ingest and flare_process: sized from costs, contiguous whole days, readable labels."""

from datetime import date, timedelta

import pytest

from flarewatch.orchestration.batching import (
    INGEST_COSTS,
    PROCESS_COSTS,
    TaskCosts,
    batch_count,
    batch_days,
    batch_label,
    batch_size,
    env_int,
    plan_batches,
    split_site_days,
)

D0 = date(2025, 6, 1)
SITES = ["a", "b", "c", "d", "e", "f"]


def _range(n_days: int, sites=SITES) -> set:
    return {(s, D0 + timedelta(days=i)) for i in range(n_days) for s in sites}


def test_a_daily_run_is_one_task_and_a_long_range_about_one_per_slot():
    for costs in (PROCESS_COSTS, INGEST_COSTS):
        assert batch_count(6, costs, slots=4) == 1  # a day of the demo's 6 sites
        assert batch_count(360, costs, slots=4) == 4  # 60 days x 6 sites: one batch per slot
        assert batch_count(2190, costs, slots=4) == 4
        assert batch_count(0, costs, slots=4) == 0
    assert batch_count(360, PROCESS_COSTS, slots=32) == 10  # work / overhead bounds it before the slots do
    assert batch_count(60, PROCESS_COSTS, slots=4) == 2 and batch_count(30, PROCESS_COSTS, slots=4) == 1
    assert batch_count(360, TaskCosts(1.0, 5.0), slots=2) == 2  # a network-bound provider: its pool's slots
    assert batch_count(3, TaskCosts(1.0, 5.0), slots=8) == 3  # never more batches than site-days


def test_a_size_cap_adds_batches_but_never_more_than_airflow_maps():
    assert batch_count(360, PROCESS_COSTS, slots=4, max_size=30) == 12
    assert batch_count(360, PROCESS_COSTS, slots=4, max_size=1, max_batches=100) == 100
    assert batch_count(6, PROCESS_COSTS, slots=4, max_size=6) == 1


def test_batches_are_contiguous_whole_days_balanced_by_site_days():
    batches = plan_batches(_range(60), PROCESS_COSTS, slots=4)
    assert [len(b["days"]) for b in batches] == [15, 15, 15, 15]
    assert [batch_size(b) for b in batches] == [90] * 4
    days = [d for b in batches for d in b["days"]]
    assert days == sorted(days) and len(days) == 60
    assert all(ids == SITES for b in batches for ids in b["days"].values())
    assert batch_label(batches[0]) == "2025-06-01..2025-06-15 6 sites"
    # uneven days (a sweep's pending site-days) still give whole days, every site-day once
    pairs = _range(5, SITES[:1]) | _range(2)
    batches = split_site_days(pairs, 3)
    assert sorted((s, d) for b in batches for d, ids in batch_days(b).items() for s in ids) == sorted(pairs)
    assert [list(b["days"]) for b in batches] == [["2025-06-01"], ["2025-06-02"], ["2025-06-03", "2025-06-04",
                                                                                  "2025-06-05"]]


def test_fewer_days_than_batches_cuts_days_into_equal_runs():
    many = [f"s{i:03d}" for i in range(600)]
    batches = split_site_days({(s, D0) for s in many}, 4)
    assert [batch_size(b) for b in batches] == [150] * 4
    assert batch_label(batches[1]) == "2025-06-01 150 sites"
    batches = split_site_days(_range(2), 3)  # 12 site-days, 2 days, 3 batches: the middle one spans the night
    assert [batch_size(b) for b in batches] == [4, 4, 4]
    assert batch_label(batches[1]) == "2025-06-01..2025-06-02 4 sites (4 site-days)"
    assert split_site_days([], 4) == []


def test_labels_and_the_one_day_form():
    assert batch_label({"days": {"2025-06-01": ["a", "b"]}}) == "2025-06-01 a,b"
    assert batch_label({"acquisition_date": "2025-06-01", "site_ids": ["rumaila-n"]}) == "2025-06-01 rumaila-n"
    assert batch_days({"acquisition_date": "2025-06-01", "site_ids": ["a"]}) == {D0: ["a"]}
    assert batch_label({"days": {"2025-06-01": ["a"], "2025-06-02": ["a"]}}) == "2025-06-01..2025-06-02 a"
    assert batch_label({"days": {"2025-06-01": SITES}}) == "2025-06-01 a,b,c,d,e,f"


def test_settings_are_whole_numbers():
    assert env_int("X", env={}) == 0 and env_int("X", env={"X": " 12 "}) == 12
    with pytest.raises(ValueError, match="X must be a whole number"):
        env_int("X", env={"X": "many"})
    with pytest.raises(ValueError, match="X must be >= 0"):
        env_int("X", env={"X": "-1"})
