"""Scores shared by every evaluation: detection matching, precision / recall / F1, volume errors.

Pure numpy with no package imports, so that models, training and the harnesses can all use them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MATCH_MAX_DIST_PX = 2.0  # detection <-> truth centre distance for a match (pixels, 40 m)


MATCH_TOLERANCE_PX = 1e-9  # float slack so that a distance of exactly max_dist_px matches


# ------------------------------------------------------------------------------------------
# Matching and scores
# ------------------------------------------------------------------------------------------
def match_detections(
    pred_rc: Sequence[tuple[float, float]],
    true_rc: Sequence[tuple[float, float]],
    max_dist_px: float = MATCH_MAX_DIST_PX,
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """One-to-one matching of predicted and true centres (``(row, col)``, pixels).

    Rule: every (prediction, truth) pair with euclidean centre distance <= ``max_dist_px`` (plus a
    1e-9 px float tolerance) is a candidate; candidates are taken greedily in increasing distance
    (ties: lower prediction index, then lower truth index), skipping pairs whose prediction or
    truth is already used. Greedy, not globally optimal (Hungarian): with well separated flares the
    two agree.

    Returns ``(tp_pairs, fp_idx, fn_idx)``: ``tp_pairs`` a list of ``(pred_index, true_index)``
    sorted by prediction index; ``fp_idx`` the unmatched prediction indices; ``fn_idx`` the
    unmatched truth indices (both ascending).
    """
    pred = np.asarray(pred_rc, dtype=np.float64).reshape(-1, 2)
    true = np.asarray(true_rc, dtype=np.float64).reshape(-1, 2)
    pairs: list[tuple[int, int]] = []
    if len(pred) and len(true):
        dist = np.hypot(pred[:, None, 0] - true[None, :, 0], pred[:, None, 1] - true[None, :, 1])
        pi, ti = np.nonzero(dist <= max_dist_px + MATCH_TOLERANCE_PX)
        order = np.lexsort((ti, pi, dist[pi, ti]))  # by distance, then pred, then truth index
        used_p: set[int] = set()
        used_t: set[int] = set()
        for k in order:
            p, t = int(pi[k]), int(ti[k])
            if p not in used_p and t not in used_t:
                used_p.add(p)
                used_t.add(t)
                pairs.append((p, t))
    pairs.sort()
    matched_p = {p for p, _ in pairs}
    matched_t = {t for _, t in pairs}
    fp_idx = [i for i in range(len(pred)) if i not in matched_p]
    fn_idx = [j for j in range(len(true)) if j not in matched_t]
    return pairs, fp_idx, fn_idx


def prf(tp: int, fp: int, fn: int) -> dict:
    """Precision, recall and F1 from counts, defined for empty cases.

    precision = tp / (tp + fp), or 1.0 when there are no predictions (nothing claimed, nothing
    wrong); recall = tp / (tp + fn), or 1.0 when there is no truth (nothing to find);
    f1 = 2 p r / (p + r), or 0.0 when p + r = 0. So no predictions on an empty scene scores
    1 / 1 / 1, and any prediction on an empty scene scores precision 0, recall 1, F1 0.
    """
    if min(tp, fp, fn) < 0:
        raise ValueError(f"counts must be >= 0, got tp={tp}, fp={fp}, fn={fn}")
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def volume_metrics(pred: Sequence[float], true: Sequence[float]) -> dict:
    """Site-day volume errors (thousand m3/day): n, MAE, RMSE, R2, bias, median and total ratio.

    ``bias`` = mean(pred - true); ``r2`` = 1 - SS_res / SS_tot (NaN when the truth has no
    variance or n < 2); ``median_ratio`` = median of pred / true over site-days with true > 0
    (NaN if none); ``total_ratio`` = sum(pred) / sum(true) (NaN if sum(true) = 0). NaN for all
    but ``n`` when there are no site-days.
    """
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"pred and true differ in length: {p.shape} vs {t.shape}")
    nan = float("nan")
    out = {"n": int(p.size), "mae": nan, "rmse": nan, "r2": nan, "bias": nan, "median_ratio": nan,
           "total_ratio": nan, "true_mean": nan, "pred_mean": nan}
    if p.size == 0:
        return out
    err = p - t
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    pos = t > 0
    out.update(
        mae=float(np.mean(np.abs(err))),
        rmse=float(np.sqrt(np.mean(err**2))),
        r2=1.0 - float(np.sum(err**2)) / ss_tot if p.size >= 2 and ss_tot > 0 else nan,
        bias=float(np.mean(err)),
        median_ratio=float(np.median(p[pos] / t[pos])) if pos.any() else nan,
        total_ratio=float(p.sum() / t.sum()) if t.sum() > 0 else nan,
        true_mean=float(t.mean()),
        pred_mean=float(p.mean()),
    )
    return out
