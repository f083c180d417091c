"""Anomaly detectors scored on simulated daily series with injected events (``make evaluate``).

Each series is one site over ``n_days``: a base volume (log-normal across sites), day-to-day noise
(log-normal, 25 %), a flare count and temperature and FRP that follow the volume, and cloud: each
day is observed with probability ``p_observed`` (unobserved days are missing, as in
``emissions_daily``). One event per series at a random day after the first 45, or none:

| kind | what changes from the event day |
|---|---|
| ``spike`` | one observed day x 5 |
| ``step`` | every day x 2.5 |
| ``new_flare`` | a site with no flare (volume 0) starts flaring at its base volume |
| ``flare_out`` | a flaring site's volume drops to 0 |

An alert on an observed day within ``match_days`` after the event (the spike: that day) detects
it; any other alert is a false positive. Precision = alerts that detect an event / all alerts;
recall per kind = events detected / events. The generator is ours, like the detectors: the figures
say how the methods behave on these event shapes, not on real operators' series. The settings
(``config.AnalyticsConfig``: log scale, z 3.5, contamination 0.01, local outlier factor instead of
IsolationForest) were chosen on seed 12; ``make evaluate`` reports seed 13.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

from flarewatch.analytics.anomalies import multivariate_anomalies, robust_anomalies
from flarewatch.config import AnalyticsConfig

KINDS = ("spike", "step", "new_flare", "flare_out", "none")


@dataclass(frozen=True)
class Series:
    kind: str
    event_day: date | None
    days: list[date]  # observed days only
    volumes: list[float]
    features: list[tuple[float, float, float, float]]


def simulate(n_series: int = 300, n_days: int = 120, p_observed: float = 0.6, seed: int = 13) -> list[Series]:
    rng = random.Random(seed)
    start = date(2025, 1, 1)
    out = []
    for i in range(n_series):
        kind = KINDS[i % len(KINDS)]
        base = math.exp(rng.gauss(math.log(150.0), 1.0))
        t = rng.randrange(45, n_days - 10)
        event = start + timedelta(days=t) if kind != "none" else None
        days, vols, feats = [], [], []
        for k in range(n_days):
            day = start + timedelta(days=k)
            level = base * math.exp(rng.gauss(0.0, 0.25))
            if kind == "step" and k >= t:
                level *= 2.5
            if (kind == "new_flare" and k < t) or (kind == "flare_out" and k >= t):
                level = 0.0
            observed = rng.random() < p_observed or (kind == "spike" and k == t)
            if kind == "spike" and k == t:
                level *= 5.0
            if not observed:
                continue
            n = 0 if level == 0 else max(1, round(level / 120.0 + rng.gauss(0, 0.3)))
            temp = float("nan") if n == 0 else rng.gauss(1800.0, 120.0)
            frp = float("nan") if n == 0 else level / 12.0 * math.exp(rng.gauss(0, 0.2))
            days.append(day)
            vols.append(level)
            feats.append((level, float(n), temp, frp))
        out.append(Series(kind, event, days, vols, feats))
    return out


def score(series: list[Series], cfg: AnalyticsConfig | None = None, match_days: int = 7) -> dict:
    """Precision and recall per event kind of both methods (``cfg``: default ``AnalyticsConfig()``)."""
    cfg = cfg or AnalyticsConfig()
    report = {}
    for method in ("robust", "local_outlier_factor"):
        tp_alerts = fp_alerts = 0
        found = {k: 0 for k in KINDS if k != "none"}
        total = {k: 0 for k in KINDS if k != "none"}
        for s in series:
            if method == "robust":
                alerts = robust_anomalies(s.days, s.volumes, window=cfg.anomaly_window_days,
                                          min_baseline=cfg.anomaly_min_baseline, z=cfg.anomaly_robust_z)
            else:
                alerts = multivariate_anomalies(s.days, s.features, contamination=cfg.anomaly_contamination)
            hit = False
            for a in alerts:
                ok = s.event_day is not None and (
                    a.day == s.event_day if s.kind == "spike"
                    else s.event_day <= a.day <= s.event_day + timedelta(days=match_days))
                tp_alerts += ok
                fp_alerts += not ok
                hit = hit or ok
            if s.kind != "none":
                total[s.kind] += 1
                found[s.kind] += hit
        n = tp_alerts + fp_alerts
        report[method] = {
            "precision": round(tp_alerts / n, 3) if n else None,
            "alerts": n,
            "false_alerts_per_series_year": round(fp_alerts / len(series) * 365 / max(1, _span(series)), 2),
            "recall": {k: round(found[k] / total[k], 3) for k in found},
        }
    return report


def _span(series: list[Series]) -> int:
    return max((s.days[-1] - s.days[0]).days + 1 for s in series if s.days)
