"""Scores the deployed detectors and volume models on the independent scenes, as processing runs them.

Per scene: ``generator.make_scene`` -> ``tiles.Tile`` (DN, UTM affine, EPSG, UTC time, sun zenith,
scale/offset, spacecraft tag) -> ``encode_tile`` / ``decode_tile`` (the GeoTIFF round trip of the
rawdata bucket) -> each detector's ``detect`` -> ``features.extract.extract_features`` ->
volume: the shipped regressor's ``predict_flares`` and the linear calibration ``estimate_volume``.

Scoring. Truth = the scene's flares that are *visible* (cloud transmittance > 0.3, not in nodata).
Matching: ``evaluation.metrics.match_detections`` (one-to-one, centres within 2 px). A detection
within 2 px of a hidden flare is neither a hit nor a false positive. False positives are
attributed by the scene's cause raster (object bbox or glint mask + 3 px): wildfire, glint, roof;
else ``flare_duplicate`` (within 4 px of a true flare), else ``elsewhere``.

Features are compared with the generator's flame temperature and radiant heat sigma T^4 S. That
is the quantity a colour temperature and a SWIR FRP estimate, but the scene's TOA radiances also
carry the generator's atmosphere (per-band transmittance, cloud attenuation), which an L1C method
without atmospheric correction cannot see. ``feature_reference`` (``_flare_reference``) therefore
also reports, per visible flare, what a *perfect* TOA estimator would give: the colour temperature
and SWIR FRP of the flare's own noise-free, unclipped TOA radiance summed over all its pixels
(re-rendered with ``hotspots.render_flare`` and the scene's truth; the scene is not changed),
with and without the transmittances, and ``features.extract`` run on a detection placed at the
true position (no detector in the way). Feature errors are also split by saturation class
(``features_by_saturation``: none / B12 only / B12 and B11 clipped within 2 px).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from flarewatch.config import ThresholdDetectorConfig, VolumeCalibration
from flarewatch.detect.threshold import detect_flares
from flarewatch.evaluation.independent import generator as gen
from flarewatch.evaluation.metrics import match_detections, prf
from flarewatch.tiles import Tile, decode_tile, encode_tile

DEFAULT_SCENES = 200
DEFAULT_SEED = 20260
NEIGHBOUR_PX = 4.0  # a stack with another flare within this distance is "with neighbour"
DUPLICATE_PX = 4.0


def scene_tile(scene: gen.IndependentScene) -> Tile:
    """The scene as processing reads it: a Tile through the GeoTIFF encode/decode round trip.

    The spacecraft is passed as the Tile's ``spacecraft`` (written as the SPACECRAFT tag): given only
    as a free-form tag, the Tile kept its default (Sentinel-2A), ``encode_tile`` wrote SPACECRAFT=
    Sentinel-2A and every Sentinel-2B scene was read with 2A's band centres and solar irradiance.
    """
    m = scene.meta
    tile = Tile(dn=scene.dn, transform=m["transform"], crs_epsg=m["crs_epsg"], acquired_at=m["acquired_at"],
                sun_zenith_deg=m["sun_zenith_deg"], scale=m["scale"], offset=m["offset"], cloud_mask=None,
                tags=dict(m["tags"]), spacecraft=m["spacecraft"])
    return decode_tile(encode_tile(tile))


def yolo_detector(state_dir: Path | None = None, runtime: str = "auto", weights: Path | None = None):
    """YOLO weights (default the shipped ones) with processing's runtime exports, in a state folder
    under /tmp, cached by the weights' sha256 (new weights never reuse an old export).

    Uses ``detect.deployed.deployable_weights`` (what processing does with the shipped weights) and
    sets ``FLAREWATCH_STATE_DIR`` to the state folder when it is unset.
    """
    from flarewatch.detect.deployed import deployable_copy, shipped_weights, weights_sha8
    from flarewatch.detect.yolo import YoloFlareDetector, offline_environment

    state = Path(state_dir or Path(tempfile.gettempdir()) / f"flarewatch-independent-{os.getuid()}")
    os.environ.setdefault("FLAREWATCH_STATE_DIR", str(state))
    offline_environment(state)
    source = Path(weights) if weights else shipped_weights()
    deployable = deployable_copy(source, state / "models" / "detector" / f"eval-{weights_sha8(source)}", runtime)
    return YoloFlareDetector(deployable, runtime=runtime)


def _q(values, qs=(10, 50, 90)) -> dict:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"n": 0}
    return {"n": int(v.size), **{f"p{q}": float(np.percentile(v, q)) for q in qs}}


def _log_r2(pred, true) -> float | None:
    p, t = np.asarray(pred, float), np.asarray(true, float)
    ok = (p > 0) & (t > 0)
    if ok.sum() < 3:
        return None
    lp, lt = np.log(p[ok]), np.log(t[ok])
    ss = float(np.sum((lt - lt.mean()) ** 2))
    return 1.0 - float(np.sum((lp - lt) ** 2)) / ss if ss > 0 else None


def _counts(records, key=None) -> dict:
    groups: dict = defaultdict(lambda: [0, 0, 0])
    for r in records:
        g = groups[r[key] if key else "all"]
        g[0] += r["tp"]
        g[1] += r["fp"]
        g[2] += r["fn"]
    return {k: {"tp": v[0], "fp": v[1], "fn": v[2], **prf(*v)} for k, v in sorted(groups.items())}


def _recall(flags) -> dict:
    flags = list(flags)
    return {"n": len(flags), "recall": (sum(flags) / len(flags)) if flags else None}


def _sat_class(f: dict) -> str:
    return "b12+b11" if f["saturated_b11"] and f["saturated_b12"] else ("b12" if f["saturated_b12"] else
                                                                          ("b11" if f["saturated_b11"] else "none"))


def _flare_reference(scene, tile) -> list[dict]:
    """Per visible flare: truth, a perfect TOA estimator and ``extract_features`` at the true position.

    ``t_ideal_toa`` / ``frp_ideal_toa``: colour temperature (``physics.ratio_temperature`` with the
    tile's band centres) and SWIR FRP (``physics.swir_frp_mw``) of the flare's own TOA radiance
    excess, noise-free, unclipped, summed over all its pixels; ``*_ideal_surface``: the same with
    the band transmittances and the cloud attenuation divided out. ``t_truthpos`` / ``frp_truthpos``:
    our features for a 3 x 3 px detection centred on the true position.
    """
    from flarewatch import physics
    from flarewatch.detect.threshold import Detection
    from flarewatch.evaluation.independent import radiometry as rad
    from flarewatch.evaluation.independent.hotspots import render_flare
    from flarewatch.features.extract import extract_features

    tr = scene.truth
    sc, zen, doy = tr["spacecraft"], tr["sun_zenith_deg"], tr["day_of_year"]
    tau = tr["atmosphere"]["transmittance"]
    shifts = {k: tuple(v) for k, v in tr["band_shift_px"].items()}
    out = []
    for f in (f for f in tr["flares"] if f["visible"]):
        layer = np.zeros((3, *tile.shape), np.float64)
        render_flare(layer, f, sc, zen, doy, tau, shifts, tr["psf"], f["cloud_transmittance"])
        lsum = {b: float(layer[k].sum()) * rad.radiance_per_reflectance(sc, b, zen, doy) for k, b in enumerate(rad.BANDS)}
        t_toa = float(physics.ratio_temperature(lsum["B12"], lsum["B11"], tile.wavelength_um))
        t_srf = float(physics.ratio_temperature(lsum["B12"] / tau["B12"], lsum["B11"] / tau["B11"], tile.wavelength_um))
        frp_toa = float(physics.swir_frp_mw(lsum["B12"]))
        r, c = int(f["row"]), int(f["col"])
        det = Detection(row=f["row"], col=f["col"], peak_row=r, peak_col=c, bbox=(r - 1, c - 1, r + 2, c + 2),
                        n_pixels=9, confidence=1.0, saturated=bool(f["saturated_b12"]), cloud_flag=False)
        feat = extract_features(tile, det, None)
        out.append({"spacecraft": sc, "sat": _sat_class(f), "t": f["temperature_k"], "rh": f["radiant_heat_mw"],
                    "t_ideal_toa": t_toa, "t_ideal_surface": t_srf, "frp_ideal_toa": frp_toa,
                    "frp_ideal_surface": frp_toa / tau["B12"] / f["cloud_transmittance"],
                    "t_truthpos": feat["temperature_k"], "frp_truthpos": feat["swir_frp_mw"]})
    return out


def _feature_errors(rows, t_key: str, frp_key: str) -> dict:
    """Colour temperature bias / median absolute error (K) and FRP / true RH of ``rows``."""
    te = [r[t_key] - r["t"] for r in rows if r.get(t_key) is not None and math.isfinite(r[t_key])]
    fr = [(r[frp_key], r["rh"]) for r in rows if r.get(frp_key) is not None]
    return {"n": len(rows), "n_temperature": len(te),
            "temperature_bias_median_k": float(np.median(te)) if te else None,
            "temperature_abs_error_median_k": float(np.median(np.abs(te))) if te else None,
            "swir_frp_over_true_rh": _q([a / b for a, b in fr]),
            "swir_frp_log_r2": _log_r2([a for a, _ in fr], [b for _, b in fr])}


def _summarise_reference(rows) -> dict:
    """``feature_reference``: perfect TOA / surface estimators and truth-position features, overall
    and by saturation class."""
    out = {"n_visible_flares": len(rows)}
    for name, t_key, frp_key in (("ideal_toa", "t_ideal_toa", "frp_ideal_toa"),
                                 ("ideal_surface", "t_ideal_surface", "frp_ideal_surface"),
                                 ("features_at_true_position", "t_truthpos", "frp_truthpos")):
        out[name] = _feature_errors(rows, t_key, frp_key)
    out["features_at_true_position_by_saturation"] = {
        k: _feature_errors([r for r in rows if r["sat"] == k], "t_truthpos", "frp_truthpos")
        for k in sorted({r["sat"] for r in rows})}
    out["features_at_true_position_by_spacecraft"] = {
        k: _feature_errors([r for r in rows if r["spacecraft"] == k], "t_truthpos", "frp_truthpos")
        for k in sorted({r["spacecraft"] for r in rows})}
    return out


def _score_scene(scene, tile, dets, name, regressor, cal) -> tuple[dict, list, list, dict]:
    """(scene counts, per-flare records, false-positive causes, per-scene volumes) for one detector."""
    from flarewatch.estimate.calibrations import estimate_volume
    from flarewatch.features.extract import extract_features

    flares = scene.truth["flares"]
    vis = [f for f in flares if f["visible"]]
    hidden = [(f["row"], f["col"]) for f in flares if not f["visible"]]
    pred = [(d.row, d.col) for d in dets]
    pairs, fp_idx, fn_idx = match_detections(pred, [(f["row"], f["col"]) for f in vis])
    causes = []
    for i in fp_idx:
        r, c = dets[i].row, dets[i].col
        if any(math.hypot(r - a, c - b) <= 2.0 for a, b in hidden):
            continue
        code = int(scene.cause[min(int(r), tile.shape[0] - 1), min(int(c), tile.shape[1] - 1)])
        if code:
            causes.append(gen.CAUSE_NAMES[code])
        elif any(math.hypot(r - f["row"], c - f["col"]) <= DUPLICATE_PX for f in vis):
            causes.append("flare_duplicate")
        else:
            causes.append("elsewhere")
    feats = [extract_features(tile, d, None) for d in dets]
    vols = regressor.predict_flares(feats) if (regressor is not None and feats) else [(0.0, 0.0, 0.0)] * len(feats)
    lin = [estimate_volume(f, cal).volume_kscm_d for f in feats]
    matched = dict((t, p) for p, t in pairs)
    records = []
    for j, f in enumerate(vis):
        rec = {"scene": scene.truth["index"], "spacecraft": scene.truth["spacecraft"], "detector": name,
               "rh": f["radiant_heat_mw"], "t": f["temperature_k"], "vol": f["volume_kscm_d"],
               "neighbour": f["nearest_flare_px"] is not None and f["nearest_flare_px"] <= NEIGHBOUR_PX,
               "saturated": f["saturated_b12"], "sat": _sat_class(f), "hit": j in matched}
        if j in matched:
            p = matched[j]
            rec.update(t_est=feats[p]["temperature_k"], frp=feats[p]["swir_frp_mw"], v_reg=vols[p][0],
                       v_lo=vols[p][1], v_hi=vols[p][2], v_lin=lin[p])
        records.append(rec)
    counts = {"spacecraft": scene.truth["spacecraft"], "tp": len(pairs), "fp": len(causes), "fn": len(fn_idx)}
    scene_vol = {"true": float(sum(f["volume_kscm_d"] for f in vis)), "reg": float(sum(v[0] for v in vols)),
                 "lo": float(sum(v[1] for v in vols)), "hi": float(sum(v[2] for v in vols)), "lin": float(sum(lin))}
    return counts, records, causes, scene_vol


def _summarise(counts, records, causes, scene_vols, seconds, n_dets) -> dict:
    rh = np.asarray([r["rh"] for r in records])
    edges = np.percentile(rh, [25, 50, 75]).tolist() if rh.size else [0.0, 0.0, 0.0]
    quart = defaultdict(list)
    for r in records:
        quart[f"Q{int(np.searchsorted(edges, r['rh'])) + 1}"].append(r["hit"])
    hits = [r for r in records if r["hit"]]
    t_err = [r["t_est"] - r["t"] for r in hits if r.get("t_est") is not None]
    frp_ratio = [r["frp"] / r["rh"] for r in hits if r.get("frp") is not None]

    def vol_block(rows) -> dict:
        reg = [r["v_reg"] / r["vol"] for r in rows if r["vol"] > 0]
        lin = [r["v_lin"] / r["vol"] for r in rows if r["vol"] > 0]
        cov = [r["v_lo"] <= r["vol"] <= r["v_hi"] for r in rows]
        return {"n": len(rows), "regressor_ratio": _q(reg), "linear_ratio": _q(lin),
                "regressor_90_coverage": (sum(cov) / len(cov)) if cov else None,
                "regressor_log_r2": _log_r2([r["v_reg"] for r in rows], [r["vol"] for r in rows]),
                "linear_log_r2": _log_r2([r["v_lin"] for r in rows], [r["vol"] for r in rows])}

    sv = [s for s in scene_vols if s["true"] > 0]
    per_sc: dict = {}
    for sc in sorted({r["spacecraft"] for r in records}):
        h = [r for r in hits if r["spacecraft"] == sc]
        te = [r["t_est"] - r["t"] for r in h if r.get("t_est") is not None]
        per_sc[sc] = {**_counts([c for c in counts if c["spacecraft"] == sc])["all"],
                      "temperature_bias_k": float(np.median(te)) if te else None,
                      "temperature_mae_k": float(np.median(np.abs(te))) if te else None,
                      "frp_ratio_median": float(np.median([r["frp"] / r["rh"] for r in h])) if h else None}
    return {
        "overall": _counts(counts)["all"],
        "detections": n_dets, "seconds": seconds,
        "false_positives_by_cause": {k: causes.count(k) for k in
                                     ("wildfire", "glint", "roof", "flare_duplicate", "elsewhere")},
        "recall_with_neighbour_4px": _recall(r["hit"] for r in records if r["neighbour"]),
        "recall_isolated": _recall(r["hit"] for r in records if not r["neighbour"]),
        "recall_saturated_b12": _recall(r["hit"] for r in records if r["saturated"]),
        "recall_by_rh_quartile": {"edges_mw": edges, **{k: _recall(v) for k, v in sorted(quart.items())}},
        "per_spacecraft": per_sc,
        "features": {
            "n_matched": len(hits), "n_temperature": len(t_err),
            "temperature_abs_error_median_k": float(np.median(np.abs(t_err))) if t_err else None,
            "temperature_bias_median_k": float(np.median(t_err)) if t_err else None,
            "swir_frp_over_true_rh": _q(frp_ratio),
            "swir_frp_log_r2": _log_r2([r["frp"] for r in hits], [r["rh"] for r in hits]),
        },
        "features_by_saturation": {k: _feature_errors([r for r in hits if r["sat"] == k], "t_est", "frp")
                                   for k in sorted({r["sat"] for r in hits})},
        "volume_per_matched_flare": vol_block(hits),
        "volume_per_scene": {
            "n_scenes": len(sv),
            "regressor_ratio": _q([s["reg"] / s["true"] for s in sv]),
            "linear_ratio": _q([s["lin"] / s["true"] for s in sv]),
            "regressor_90_coverage_of_sums": (sum(s["lo"] <= s["true"] <= s["hi"] for s in sv) / len(sv)) if sv else None,
        },
    }


def evaluate(n_scenes: int = DEFAULT_SCENES, seed: int = DEFAULT_SEED, size: int = gen.DEFAULT_SIZE,
             detectors=("yolo", "threshold"), yolo_runtime: str = "auto", state_dir: Path | None = None,
             yolo_weights: Path | None = None,
             volume: bool = True, progress=None, reference_features: bool = True) -> dict:
    """Score ``detectors`` ("yolo", "yolo-physics" = what processing deploys, ``detect.variants.DEPLOYED``,
    "yolo-physics-split" = the same with close pairs split, "threshold", or a ``detect.variants`` name)
    on ``n_scenes`` independent scenes; a JSON-able dict.

    ``volume``: also load the shipped regressor (else only the linear calibration is applied).
    ``reference_features``: add ``feature_reference`` (``_summarise_reference``, detector-free).
    ``progress(i, n)`` is called after each scene when given.
    """
    t_start = time.perf_counter()
    runners = {}
    setup = {}
    yolo = None  # loaded once, shared by the YOLO variants (each still runs its own inference, so
    # every variant's seconds are its own)
    from flarewatch.detect.variants import DEPLOYED, VARIANTS, YoloPool

    pool = None  # issue 10's variants (detect.variants): YOLO once per scene and merge setting
    for name in detectors:
        t0 = time.perf_counter()
        if name == "yolo-physics":  # what processing deploys: detect.variants.DEPLOYED
            name_v = DEPLOYED
        else:
            name_v = name
        if name_v in VARIANTS:
            if pool is None:
                base = yolo_detector(state_dir, yolo_runtime, yolo_weights)
                pool = YoloPool(base.weights, base.runtime)
                setup["yolo_runtime"] = base.runtime
            runners[name] = pool.build(name_v).detect
        elif name in ("yolo", "yolo-physics-split"):
            if yolo is None:
                yolo = yolo_detector(state_dir, yolo_runtime, yolo_weights)
            det = yolo
            setup["yolo_runtime"] = det.runtime
            if name == "yolo":
                runners[name] = det.detect
            else:
                from flarewatch.detect.verified import PhysicsCheck, PhysicsCheckedDetector

                check = PhysicsCheck(split_pairs=name.endswith("-split"))
                runners[name] = PhysicsCheckedDetector(det, check).detect
        elif name == "threshold":
            cfg = ThresholdDetectorConfig()
            runners[name] = lambda tile, cfg=cfg: detect_flares(tile, cfg)
        else:
            raise ValueError(f"unknown detector {name!r}; use 'yolo', 'yolo-physics', 'yolo-physics-split', "
                             f"'threshold' or one of detect.variants.VARIANTS")
        setup[f"{name}_load_seconds"] = time.perf_counter() - t0
    regressor = None
    if volume:
        from flarewatch.estimate.deployed import load_shipped_regressor

        regressor = load_shipped_regressor()
        setup["regressor_version"] = regressor.version
    cal = VolumeCalibration()
    acc = {name: {"counts": [], "records": [], "causes": [], "scene_vols": [], "seconds": 0.0, "n": 0}
           for name in runners}
    census = defaultdict(int)
    reference: list[dict] = []
    t_gen = 0.0
    for i in range(n_scenes):
        t0 = time.perf_counter()
        scene = gen.make_scene(seed, i, size=size)
        tile = scene_tile(scene)
        t_gen += time.perf_counter() - t0
        tr = scene.truth
        census["flares"] += len(tr["flares"])
        census["visible_flares"] += sum(f["visible"] for f in tr["flares"])
        census["saturated_b12_flares"] += sum(f["saturated_b12"] for f in tr["flares"])
        census["scenes_with_active_fire"] += any(w["active"] for w in tr["wildfires"])
        census["scenes_with_glint"] += bool(tr["glints"])
        census["scenes_cloudy"] += tr["atmosphere"]["cloud_fraction"] > 0
        census["roofs"] += len(tr["roofs"])
        census[tr["spacecraft"]] += 1
        if reference_features:
            reference.extend(_flare_reference(scene, tile))
        for name, run in runners.items():
            t0 = time.perf_counter()
            dets = run(tile)
            a = acc[name]
            a["seconds"] += time.perf_counter() - t0
            a["n"] += len(dets)
            counts, records, causes, sv = _score_scene(scene, tile, dets, name, regressor, cal)
            a["counts"].append(counts)
            a["records"].extend(records)
            a["causes"].extend(causes)
            a["scene_vols"].append(sv)
        if progress is not None:
            progress(i + 1, n_scenes)
    out = {
        "generator": "flarewatch.evaluation.independent (never used for training or model selection)",
        "scenes": n_scenes, "seed": seed, "size_px": size, "census": dict(census),
        "volume_truth": "linear, Zhizhin et al. 2025: 0.0115 BCM/yr per MW (31.507 kscm/d per MW of sigma T^4 S)",
        "match_radius_px": 2.0, "setup": setup, "generate_seconds": t_gen,
    }
    if reference_features:
        out["feature_reference"] = _summarise_reference(reference)
    for name, a in acc.items():
        out[name] = _summarise(a["counts"], a["records"], a["causes"], a["scene_vols"], a["seconds"], a["n"])
    out["wall_seconds"] = time.perf_counter() - t_start
    return out
