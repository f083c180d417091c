"""analytics: gap filling with its interval, anomalies, alert rules, reconciliation (pure functions)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from flarewatch.analytics.alerts import rule_alerts
from flarewatch.analytics.anomalies import multivariate_anomalies, robust_anomalies
from flarewatch.analytics.gapfill import DayVolume, estimate_month, month_days
from flarewatch.analytics.kpis import site_kpis
from flarewatch.analytics.reconciliation import flag, prorate
from flarewatch.analytics.series import SiteDay
from flarewatch.config import AnalyticsConfig
from flarewatch.evaluation.anomalies import score, simulate

JUNE = date(2025, 6, 1)


def test_month_days_follow_the_calendar_and_the_site_start():
    assert len(month_days(JUNE)) == 30 and len(month_days(date(2024, 2, 1))) == 29
    assert month_days(JUNE, date(2025, 6, 21))[0] == date(2025, 6, 21)


def test_a_fully_observed_month_is_its_sum_and_a_gap_is_filled_with_a_wider_interval():
    days = month_days(JUNE)
    full = {d: DayVolume(100.0, 80.0, 120.0) for d in days}
    est = estimate_month(days, full)
    assert (est.estimate, est.lo, est.hi, est.observed_days, est.filled_days) == (3000.0, 2400.0, 3600.0, 30, 0)
    gappy = {d: v for d, v in full.items() if d.day % 3}  # every third day unobserved
    est2 = estimate_month(days, gappy)
    assert est2.observed_days == 20 and est2.filled_days == 10
    assert est2.estimate == pytest.approx(3000.0)  # a flat series is filled exactly
    assert est2.volume_observed == pytest.approx(2000.0)
    assert est2.lo <= 2400.0 + 1e-9 and est2.hi >= 3600.0 - 1e-9


def test_gap_filling_interpolates_between_neighbours_and_says_unknown_without_data():
    days = month_days(JUNE)
    obs = {date(2025, 6, 10): DayVolume(100, 100, 100), date(2025, 6, 12): DayVolume(300, 300, 300)}
    est = estimate_month([date(2025, 6, 11)], obs)
    assert est.estimate == pytest.approx(200.0)  # mean of the day before and after
    none = estimate_month(days, {})
    assert none.estimate is None and none.lo is None and none.observed_days == 0
    edge = estimate_month([date(2025, 6, 1)], {date(2025, 5, 30): DayVolume(50, 40, 60)})
    assert edge.estimate == pytest.approx(50.0)  # a neighbour in the previous month fills the edge


def test_noisy_gaps_widen_the_interval_by_the_leave_one_out_error():
    days = month_days(JUNE)
    obs = {d: DayVolume(v, v, v) for d, v in zip(days, [100, 300] * 15) if d.day % 2 == 0 or d.day < 10}
    est = estimate_month(days, obs)
    assert est.fill_error_sd and est.fill_error_sd > 50
    assert est.hi - est.lo > 2 * 1.64 * est.fill_error_sd


def _series(volumes, start=JUNE, site="s1"):
    return [SiteDay(site, start + timedelta(days=i), "processed", v is not None, None if v is None else int(v > 0),
                    v, v, v) for i, v in enumerate(volumes)]


def test_robust_anomalies_flag_a_spike_once_and_ignore_unobserved_days():
    days = [JUNE + timedelta(days=i) for i in range(40)]
    vols = [100.0 + (i % 3) * 5 for i in range(40)]
    vols[30] = 600.0
    found = robust_anomalies(days, vols)
    assert [(a.day, a.direction) for a in found] == [(days[30], "spike")]
    # a flare that goes out: one "drop", not one per day
    vols = [100.0 + (i % 3) * 5 for i in range(20)] + [0.0] * 20
    drops = robust_anomalies(days, vols)
    assert [(a.day, a.direction) for a in drops] == [(days[20], "drop")]


def test_multivariate_anomalies_need_a_history_and_are_deterministic():
    days = [JUNE + timedelta(days=i) for i in range(10)]
    assert multivariate_anomalies(days, [(100.0, 1.0, 1800.0, 10.0)] * 10) == []
    s = simulate(10, 120, seed=3)
    a = [multivariate_anomalies(x.days, x.features) for x in s]
    assert a == [multivariate_anomalies(x.days, x.features) for x in s]


def test_the_evaluation_scores_both_methods_per_event_kind():
    report = score(simulate(20, 100, seed=5))
    assert set(report) == {"robust", "local_outlier_factor"}
    assert set(report["robust"]["recall"]) == {"spike", "step", "new_flare", "flare_out"}


def test_rule_alerts_threshold_runs_and_new_flare_sites():
    cfg = AnalyticsConfig(alert_volume_kscm_d=500, consecutive_flaring_days=3, new_site_quiet_days=4)
    vols = [0, 0, 0, 0, None, 0, 200, 250, None, 300, 1200, 0]
    series = _series(vols)
    alerts = rule_alerts(series, cfg, {d.day for d in series})
    kinds = sorted((a["kind"], a["period_start"].day) for a in alerts)
    assert ("threshold", 11) in kinds and ("new_flare_site", 7) in kinds
    run = next(a for a in alerts if a["kind"] == "consecutive_flaring")
    assert (run["period_start"].day, run["period_end"].day, run["value"]) == (7, 11, 4.0)  # 4 observed days in a row
    assert next(a for a in alerts if a["kind"] == "threshold")["severity"] == "critical"  # > 2 x 500


def test_kpis_count_flaring_persistent_and_dark_sites():
    may = _series([100.0] * 31, start=date(2025, 5, 1))
    june = _series([0.0] * 30)
    k = site_kpis(may + june, JUNE, date(2025, 6, 30), new_site=False)
    assert (k["observed_days"], k["flaring_days"], k["dark_sites"], k["persistent_sites"]) == (30, 0, 1, 0)
    k2 = site_kpis(may, date(2025, 5, 1), date(2025, 5, 31), new_site=False)
    assert (k2["flaring_days"], k2["flaring_days_last_30"], k2["persistent_sites"]) == (31, 30, 1)


def test_reported_periods_are_prorated_by_days_and_flagged_against_the_interval():
    vol, days = prorate(date(2025, 5, 17), date(2025, 6, 15), 300.0, JUNE, date(2025, 6, 30))
    assert vol == pytest.approx(150.0) and len(days) == 15
    assert prorate(date(2025, 7, 1), date(2025, 7, 31), 10.0, JUNE, date(2025, 6, 30)) == (0.0, set())
    assert flag(50, 100, 80, 120) == "under_reported"
    assert flag(130, 100, 80, 120) == "over_reported"
    assert flag(100, 100, 80, 120) == "consistent"
    assert flag(100, None, None, None) == "no_estimate"


def test_a_long_gap_without_observations_breaks_a_flaring_run():
    cfg = AnalyticsConfig(consecutive_flaring_days=3, gapfill_max_days=15)
    july = _series([100.0] * 3, start=date(2025, 7, 1))
    sept = _series([100.0] * 3, start=date(2025, 9, 1))
    alerts = rule_alerts(july + sept, cfg, {d.day for d in july + sept})
    assert [a for a in alerts if a["kind"] == "consecutive_flaring"] == []  # 3 + 3 days, two months apart
