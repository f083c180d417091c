"""Per-site anomalies in the daily series, observation-aware: only observed days are scored and only
observed days form the baseline (a cloudy day is missing, not a drop to zero). Pure functions.

- ``robust_anomalies``: robust z of a day's volume against the median and MAD (x 1.4826) of the
  site's previous ``window`` observed days (at least ``min_baseline``); |z| >= ``z`` flags a spike
  (z > 0) or a drop (z < 0). A MAD of 0 (a flat baseline) uses 10 % of the median, or 1 thousand
  m3/day for an all-zero baseline, so the first flare at a quiet site is a spike, not a division by 0.
- ``isolation_anomalies``: scikit-learn IsolationForest per site over (log volume, flares, mean
  temperature, log SWIR FRP) of its observed days, standardised; the days it isolates at
  ``contamination`` are flagged. Fitted on the site's whole history in the window given, with a
  fixed random_state, so a rerun on the same rows flags the same days.

``evaluate`` (``benchmarks/evaluate_anomalies.py``) injects events into simulated series and reports
precision and recall per event kind for both methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

MAD_TO_SD = 1.4826  # MAD of a normal distribution x 1.4826 = its standard deviation


@dataclass(frozen=True)
class Anomaly:
    day: date
    method: str  # "robust" or "isolation_forest"
    direction: str  # "spike", "drop" or "unusual"
    value: float
    baseline: float | None
    score: float


def robust_anomalies(days: list[date], volumes: list[float], *, window: int = 30, min_baseline: int = 7,
                     z: float = 4.0, score_days: set[date] | None = None) -> list[Anomaly]:
    """``days`` / ``volumes``: the site's observed days in order. Scores each day (or those in
    ``score_days``) against the previous ``window`` observed days."""
    out = []
    for i, (day, v) in enumerate(zip(days, volumes)):
        if score_days is not None and day not in score_days:
            continue
        base = volumes[max(0, i - window):i]
        if len(base) < min_baseline:
            continue
        med = _median(base)
        mad = _median([abs(x - med) for x in base]) * MAD_TO_SD
        scale = mad if mad > 0 else max(0.1 * med, 1.0)
        score = (v - med) / scale
        if abs(score) >= z:
            out.append(Anomaly(day, "robust", "spike" if score > 0 else "drop", v, med, round(score, 3)))
    return out


def isolation_anomalies(days: list[date], features: list[tuple[float, float, float, float]], *,
                        contamination: float = 0.03, min_days: int = 14, score_days: set[date] | None = None,
                        baselines: list[float] | None = None) -> list[Anomaly]:
    """``features`` per observed day: (volume, flares, mean temperature K or NaN, SWIR FRP MW or NaN)."""
    if len(days) < min_days:
        return []
    import numpy as np
    from sklearn.ensemble import IsolationForest

    x = np.array([[math.log1p(max(v, 0.0)), n, t, math.log1p(max(f, 0.0)) if f == f else float("nan")]
                  for v, n, t, f in features], dtype=float)
    for j in range(x.shape[1]):  # missing temperature / FRP (no flare): the column's median
        col = x[:, j]
        col[~np.isfinite(col)] = np.nanmedian(col) if np.isfinite(col).any() else 0.0
    sd = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    model = IsolationForest(n_estimators=200, contamination=contamination, random_state=0).fit(x)
    scores = model.decision_function(x)
    flagged = model.predict(x) == -1
    med = _median([f[0] for f in features])
    return [Anomaly(d, "isolation_forest", "spike" if features[i][0] > med else "drop", features[i][0],
                    baselines[i] if baselines else med, round(float(scores[i]), 4))
            for i, d in enumerate(days) if flagged[i] and (score_days is None or d in score_days)]


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
