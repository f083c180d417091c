"""Score the physics baseline against the simulator's ground truth (pure: no database, no S3).

``evaluate_site_day`` simulates one site-day (``simulation.scene.simulate_scene``), runs the same pure
estimation step the ``flare_process`` DAG runs (``estimate.site_day.estimate_site_day``: threshold
detection, features, VIIRS matching and radiant-heat sharing, VIIRS-only detections, volume) and
compares the result with the truth; ``evaluate`` aggregates many site-days.

Detection scoring (Sentinel-2 detections only; VIIRS-only detections are not S2 detections):

* Positives are the flares that are lit (``active``) and imaged (``in_scene``: inside the tile and
  not in a nodata strip). "Clear-sky" positives are those of them not under the tile's cloud mask
  (``cloud_covered`` False).
* ``match_detections`` pairs detections with positives one-to-one, greedily by increasing centre
  distance in pixels; a pair counts when the distance is <= ``MATCH_MAX_DIST_PX`` (2 px = 40 m).
  Both centres use the tile's fractional pixel convention (pixel (i, j) spans [i, i+1) x [j, j+1)).
* Clear-sky scores use the same matching: TP = matches to clear-sky positives, FN = unmatched
  clear-sky positives, FP = all unmatched detections. Detections matched to a cloud-covered
  positive are neither TP nor FP there.
* Each false positive gets one cause, first that applies: ``fire`` (within
  ``extent_px / 2 + FIRE_MARGIN_PX`` of a wildfire front's centre in ``truth["fires"]``),
  ``near_flare`` (within ``NEAR_FLARE_PX`` of a lit in-scene flare: a fragment, a duplicate or a
  misplaced centroid), ``glint`` (a sun-glint day), ``other`` (roofs, tanks, noise ...).

Volume scoring is per site-day: the estimated total (every detection's volume, VIIRS-only
detections included) against the true total (``flow_kscm_d`` summed over the lit flares, in scene
or not: the site's flaring that day), in thousand m3/day, for both calibrations (``linear`` and
``power``). Only the calibration method differs; the detections and features are the same.

``estimate.site_day.estimate_site_day`` is used as is, so the scores describe exactly what the pipeline
writes to the database.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import asdict, replace
from datetime import date

from flarewatch.config import Settings, ThresholdDetectorConfig, VolumeCalibration
from flarewatch.estimate.calibrations import estimate_volume
from flarewatch.estimate.site_day import estimate_site_day
from flarewatch.evaluation.metrics import (
    MATCH_MAX_DIST_PX,
    match_detections,
    prf,
    volume_metrics,
)
from flarewatch.sites import Site

FIRE_MARGIN_PX = 5.0  # false positive within extent/2 + this of a fire centre: caused by the fire
NEAR_FLARE_PX = 6.0  # false positive within this of a lit flare: fragment / duplicate
CALIBRATION_METHODS = ("linear", "power")
FP_CAUSES = ("fire", "near_flare", "glint", "other")
# flow bins (thousand m3/day) for recall by flare size: [lo, hi)
FLOW_BINS_KSCM_D = (0.0, 10.0, 25.0, 50.0, 100.0, math.inf)


# ------------------------------------------------------------------------------------------
# One site-day
# ------------------------------------------------------------------------------------------
def _fp_cause(r: float, c: float, truth: dict, active_rc: list[tuple[float, float]]) -> str:
    for fire in truth.get("fires", []):
        if math.hypot(r - fire["row"], c - fire["col"]) <= fire.get("extent_px", 0.0) / 2.0 + FIRE_MARGIN_PX:
            return "fire"
    if any(math.hypot(r - fr, c - fc) <= NEAR_FLARE_PX for fr, fc in active_rc):
        return "near_flare"
    if truth.get("glint"):
        return "glint"
    return "other"


def evaluate_site_day(
    site: Site,
    day: date,
    cal: VolumeCalibration = VolumeCalibration(),
    detector_cfg: ThresholdDetectorConfig = ThresholdDetectorConfig(),
    max_dist_px: float = MATCH_MAX_DIST_PX,
) -> dict:
    """Simulate ``site`` on ``day``, estimate it as the pipeline does, and score it (module doc).

    ``cal``: calibration constants; its ``method`` is ignored, both methods are scored.
    Returns a JSON-serialisable dict: ``detection`` (counts, clear-sky counts, FP causes, per
    detection lists) and ``volume`` (true total and per method the estimated total, split into
    Sentinel-2 and VIIRS-only detections and by radiant-heat source), thousand m3/day.
    """
    from flarewatch.ingest.viirs import flare_like, parse_vnf_csv
    from flarewatch.simulation.scene import simulate_scene

    scene = simulate_scene(site, day)
    truth = scene.truth
    viirs_flares = flare_like(parse_vnf_csv(scene.viirs_csv), cal.min_temperature_k)
    settings = Settings(detector=detector_cfg, calibration=cal)
    est = estimate_site_day(site, day, scene.tile, viirs_flares, settings)

    # --- detection vs truth -----------------------------------------------------------------
    positives = [f for f in truth["flares"] if f["active"] and f["in_scene"]]
    dets = est.detections
    pairs, fp_idx, fn_idx = match_detections(
        [(d.row, d.col) for d in dets], [(f["row"], f["col"]) for f in positives], max_dist_px)
    active_rc = [(f["row"], f["col"]) for f in positives]
    clear = [not f["cloud_covered"] for f in positives]
    causes = {k: 0 for k in FP_CAUSES}
    false_positives = []
    for i in fp_idx:
        d = dets[i]
        cause = _fp_cause(d.row, d.col, truth, active_rc)
        causes[cause] += 1
        false_positives.append({"row": round(d.row, 3), "col": round(d.col, 3), "cause": cause,
                                "confidence": round(d.confidence, 4), "n_pixels": d.n_pixels})
    matches = [{"flare_id": positives[j]["flare_id"], "dist_px": round(math.dist((dets[i].row, dets[i].col),
                                                                                 active_rc[j]), 3),
                "cloud_covered": positives[j]["cloud_covered"], "flow_kscm_d": positives[j]["flow_kscm_d"]}
               for i, j in pairs]
    missed = [{"flare_id": positives[j]["flare_id"], "cloud_covered": positives[j]["cloud_covered"],
               "flow_kscm_d": positives[j]["flow_kscm_d"]} for j in fn_idx]
    detection = {
        "n_pred": len(dets), "n_pos": len(positives), "n_clear_pos": int(sum(clear)),
        "tp": len(pairs), "fp": len(fp_idx), "fn": len(fn_idx),
        "clear_tp": sum(clear[j] for _, j in pairs), "clear_fn": sum(clear[j] for j in fn_idx),
        "fp_causes": causes, "matches": matches, "false_positives": false_positives, "missed": missed,
    }

    # --- volume ------------------------------------------------------------------------------
    # estimate_site_day computed the volumes with ``cal.method``; the other method is the same
    # features through volume.estimate_volume (what add() in estimate_site_day does).
    volume: dict = {
        "true_kscm_d": float(sum(f["flow_kscm_d"] for f in truth["flares"] if f["active"])),
        "true_in_scene_kscm_d": float(sum(f["flow_kscm_d"] for f in positives)),
        "n_s2": sum(r["sensor"] == "sentinel2" for r in est.detection_rows),
        "n_viirs_only": sum(r["sensor"] == "viirs" for r in est.detection_rows),
    }
    for method in CALIBRATION_METHODS:
        mcal = replace(cal, method=method)
        by_sensor = {"sentinel2": 0.0, "viirs": 0.0}
        by_source: dict[str, float] = {}
        for row in est.detection_rows:
            v = estimate_volume(row["features"], mcal)
            by_sensor[row["sensor"]] += v.volume_kscm_d
            by_source[v.rh_source] = by_source.get(v.rh_source, 0.0) + v.volume_kscm_d
        volume[method] = {"pred_kscm_d": by_sensor["sentinel2"] + by_sensor["viirs"],
                          "s2_kscm_d": by_sensor["sentinel2"], "viirs_only_kscm_d": by_sensor["viirs"],
                          "by_rh_source_kscm_d": dict(sorted(by_source.items()))}
    return {
        "site_id": site.site_id, "acquisition_date": day.isoformat(), "land_cover": truth["land_cover"],
        "glint": bool(truth["glint"]), "cloud_fraction": truth["cloud_fraction"], "n_fires": len(truth["fires"]),
        "detection": detection, "volume": volume,
    }


# ------------------------------------------------------------------------------------------
# Many site-days
# ------------------------------------------------------------------------------------------
def _detection_summary(rows: list[dict]) -> dict:
    tp, fp, fn = (sum(r["detection"][k] for r in rows) for k in ("tp", "fp", "fn"))
    ctp, cfn = (sum(r["detection"][k] for r in rows) for k in ("clear_tp", "clear_fn"))
    causes = {k: sum(r["detection"]["fp_causes"][k] for r in rows) for k in FP_CAUSES}
    missed_cloudy = sum(m["cloud_covered"] for r in rows for m in r["detection"]["missed"])
    by_flow = {}
    for lo, hi in itertools.pairwise(FLOW_BINS_KSCM_D):
        n_tp = sum(lo <= m["flow_kscm_d"] < hi for r in rows for m in r["detection"]["matches"])
        n_fn = sum(lo <= m["flow_kscm_d"] < hi for r in rows for m in r["detection"]["missed"])
        recall = n_tp / (n_tp + n_fn) if n_tp + n_fn else float("nan")  # NaN: no flare of that size
        by_flow[f"{lo:g}-{hi:g}"] = {"tp": n_tp, "fn": n_fn, "recall": recall}
    return {
        "all": {"tp": tp, "fp": fp, "fn": fn, **prf(tp, fp, fn)},
        "clear_sky": {"tp": ctp, "fp": fp, "fn": cfn, **prf(ctp, fp, cfn)},
        "fp_causes": causes,
        "fn_cloud_covered": missed_cloudy,
        "recall_by_flow_kscm_d": by_flow,
        "n_site_days": len(rows),
    }


def _volume_summary(rows: list[dict], method: str) -> dict:
    pred = [r["volume"][method]["pred_kscm_d"] for r in rows]
    true = [r["volume"]["true_kscm_d"] for r in rows]
    out = volume_metrics(pred, true)
    total = sum(pred)
    sources: dict[str, float] = {}
    for r in rows:
        for k, v in r["volume"][method]["by_rh_source_kscm_d"].items():
            sources[k] = sources.get(k, 0.0) + v
    out["pred_share_by_rh_source"] = {k: (v / total if total > 0 else float("nan")) for k, v in sorted(sources.items())}
    out["pred_share_viirs_only"] = (sum(r["volume"][method]["viirs_only_kscm_d"] for r in rows) / total
                                    if total > 0 else float("nan"))
    return out


def evaluate(
    sites: Iterable[Site],
    days: Iterable[date],
    cal: VolumeCalibration = VolumeCalibration(),
    detector_cfg: ThresholdDetectorConfig = ThresholdDetectorConfig(),
    max_dist_px: float = MATCH_MAX_DIST_PX,
    include_site_days: bool = False,
) -> dict:
    """Evaluate every (site, day): detection and volume scores overall and per site.

    Returns ``{"config", "n_site_days", "detection": {"all", "clear_sky", "fp_causes",
    "fn_cloud_covered", "recall_by_flow_kscm_d", "per_site": {site_id: ...}}, "volume": {method:
    {n, mae, rmse, r2, bias, median_ratio, total_ratio, ..., "per_site": {site_id: ...}}}}``
    (volumes in thousand m3/day; flow bins [lo, hi) of the true flare flow), plus
    ``"site_days"`` (the ``evaluate_site_day`` dicts) when ``include_site_days``. Deterministic:
    site-days are evaluated in the given order and the simulator is seeded by (site, day).
    Metrics that are undefined (e.g. R2 with one site-day) are NaN.
    """
    sites, days = list(sites), list(days)
    rows = [evaluate_site_day(s, d, cal, detector_cfg, max_dist_px) for s in sites for d in days]
    by_site = {s.site_id: [r for r in rows if r["site_id"] == s.site_id] for s in sites}
    det = _detection_summary(rows)
    det["per_site"] = {sid: _detection_summary(rs) for sid, rs in by_site.items()}
    volume = {}
    for method in CALIBRATION_METHODS:
        volume[method] = _volume_summary(rows, method)
        volume[method]["per_site"] = {sid: _volume_summary(rs, method) for sid, rs in by_site.items()}
    out = {
        "config": {
            "sites": [s.site_id for s in sites], "days": [d.isoformat() for d in days],
            "max_dist_px": max_dist_px, "calibration": asdict(cal), "detector": asdict(detector_cfg),
        },
        "n_site_days": len(rows),
        "detection": det,
        "volume": volume,
    }
    if include_site_days:
        out["site_days"] = rows
    return out
