"""Per-site anomalies in the daily series, observation-aware: only observed days are scored and only
observed days form the baseline (a cloudy day is missing, not a drop to zero). Pure functions.

- ``robust_anomalies``: robust z of a day's log(1 + volume) against the median and MAD (x 1.4826)
  of the site's previous ``window`` observed days (at least ``min_baseline``); |z| >= ``z`` flags a
  spike (z > 0) or a drop (z < 0). The scale is floored at ``MIN_LOG_SCALE`` (a flat or all-zero
  baseline), so the first flare at a quiet site is a spike, not a division by 0.
  One alert per episode: a day flagged in the same direction as the observed day before it is not
  flagged again (a flare that goes out is one "drop", not one per day until the baseline adapts).
- ``multivariate_anomalies``: scikit-learn LocalOutlierFactor (novelty mode) per site over (log
  volume, flares, mean temperature, log SWIR FRP), fitted on the site's observed days before the
  month scored and standardised by them; days below its ``contamination`` threshold are flagged.
  Deterministic. An IsolationForest was tried first and dropped: it cannot score a point outside
  its training range as more abnormal than the range's edge, so a flare going out (volume 0 after
  months of flaring) scored like an ordinary low day (recall 0.13 on ``flare_out``).

``evaluation.anomalies`` (``benchmarks/evaluate_anomalies.py``, part of ``make evaluate``) injects
events into simulated series and reports precision and recall per event kind for both methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

MAD_TO_SD = 1.4826  # MAD of a normal distribution x 1.4826 = its standard deviation
MIN_LOG_SCALE = 0.1  # floor of the robust scale on log(1 + volume): a flat baseline still needs a ~40 % jump


@dataclass(frozen=True)
class Anomaly:
    day: date
    method: str  # "robust" or "local_outlier_factor"
    direction: str  # "spike", "drop" or "unusual"
    value: float
    baseline: float | None
    score: float


def robust_anomalies(days: list[date], volumes: list[float], *, window: int = 30, min_baseline: int = 7,
                     z: float = 3.5, score_days: set[date] | None = None) -> list[Anomaly]:
    """``days`` / ``volumes``: the site's observed days in order. Scores each day (or those in
    ``score_days``) against the previous ``window`` observed days, on log(1 + volume): flare
    volumes vary multiplicatively, so a doubling counts the same at a small and a large site."""
    out = []
    logs = [math.log1p(max(v, 0.0)) for v in volumes]
    previous = None  # direction of the previous observed day's anomaly, if any
    for i, (day, v) in enumerate(zip(days, volumes)):
        base = logs[max(0, i - window):i]
        if len(base) < min_baseline:
            previous = None
            continue
        med = _median(base)
        mad = _median([abs(x - med) for x in base]) * MAD_TO_SD
        score = (logs[i] - med) / max(mad, MIN_LOG_SCALE)
        direction = ("spike" if score > 0 else "drop") if abs(score) >= z else None
        if direction and direction != previous and (score_days is None or day in score_days):
            out.append(Anomaly(day, "robust", direction, v, round(math.expm1(med), 3), round(score, 3)))
        previous = direction
    return out


def multivariate_anomalies(days: list[date], features: list[tuple[float, float, float, float]], *,
                        contamination: float = 0.03, min_days: int = 14, window: int = 60,
                        score_days: set[date] | None = None) -> list[Anomaly]:
    """``features`` per observed day: (volume, flares, mean temperature K or NaN, SWIR FRP MW or NaN).

    Novelty detection: the days to score (``score_days``, default every day) are grouped by month;
    each month's days are scored by a model fitted on the site's previous ``window`` observed days
    before that month (at least ``min_days``), flagged below the model's ``contamination``
    threshold; one alert per episode, as ``robust_anomalies``. ``n_neighbors`` 10 (fewer with a short
    history)."""
    if len(days) < min_days:
        return []
    import numpy as np
    from sklearn.neighbors import LocalOutlierFactor

    x = np.array([[math.log1p(max(v, 0.0)), n, t, math.log1p(max(f, 0.0)) if f == f else float("nan")]
                  for v, n, t, f in features], dtype=float)
    for j in range(x.shape[1]):  # missing temperature / FRP (no flare): the column's median
        col = x[:, j]
        col[~np.isfinite(col)] = np.nanmedian(col) if np.isfinite(col).any() else 0.0
    wanted = [i for i, d in enumerate(days) if score_days is None or d in score_days]
    flagged: dict[int, float] = {}
    for month in sorted({(days[i].year, days[i].month) for i in wanted}):
        idx = [i for i in wanted if (days[i].year, days[i].month) == month]
        train = [i for i in range(len(days)) if days[i] < days[idx[0]].replace(day=1)][-window:]
        if len(train) < min_days:
            continue
        mu, sd = x[train].mean(axis=0), x[train].std(axis=0)
        sd = np.where(sd > 0, sd, np.maximum(np.abs(mu) * 0.1, 1e-3))
        model = LocalOutlierFactor(n_neighbors=min(10, len(train) - 1), novelty=True,
                                   contamination=contamination).fit((x[train] - mu) / sd)
        scores = model.decision_function((x[idx] - mu) / sd)
        flagged |= {i: float(sc) for i, sc in zip(idx, scores) if sc < 0}
    out, previous = [], False
    med = _median([f[0] for f in features]) if features else 0.0
    for i in range(len(days)):
        if i in flagged and not previous:
            out.append(Anomaly(days[i], "local_outlier_factor", "spike" if features[i][0] > med else "drop",
                               features[i][0], med, round(flagged[i], 4)))
        previous = i in flagged
    return out


def _median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
