"""Training units for the volume regressor: calibration periods aligned with the detections in them.

A **unit** is one site x calibration period (daily meter reading, monthly report, ...). The units
DataFrame has one row per unit with columns:

| column | meaning |
|---|---|
| ``site_id`` | the site (the group for site-grouped CV and the held-out split) |
| ``period_start``, ``period_end`` | the period, both days included (``datetime.date``) |
| ``n_days`` | days in the period |
| ``n_days_processed`` | days of the period with a processed scene (the days the model sees) |
| ``n_flares`` | detections on those days (all days together) |
| ``target_kscm_d`` | metered volume / ``n_days``: mean daily flared volume, thousand m3/day |
| ``flare_inputs`` | array (n_flares, len(``INPUT_COLUMNS``)): a row per detection of the processed days |

(``INPUT_COLUMNS`` and ``flare_inputs``, the row of one detection's features, are in ``estimate.regressor``.)

The regressor's design row of a unit is ``sum_f phi(flare_inputs_f) / n_days_processed`` (see
``regressor``), i.e. the mean over the processed days of the site-day sums, so a unit keeps the
per-flare inputs, not a pre-aggregated basis (the basis depends on the exponent hyper-parameter).
Synthetic units add ``true_kscm_d`` (the noise-free simulator flow) and ``land_cover``.

Two sources:

* ``units_from_db``: periods of ``v_calibration_site_periods`` (period_end inclusive) joined with
  the ``scenes`` rows of status ``processed`` (Sentinel-2 or VIIRS) and the ``flare_detections``
  of those days. Periods below ``min_coverage`` (share of processed days) or without a usable
  volume are dropped; ``df.attrs["dropped"]`` lists them with the reason.
* ``synthetic_units``: simulated site-days of synthetic sites run through exactly what
  ``flare_process`` runs (``estimate.site_day.estimate_site_day``: detection, features, VIIRS matching and
  sharing, VIIRS-only detections), with the simulator's true site flow as the meter reading
  (times lognormal meter noise). Built site-days are cached under ``cache_dir`` keyed by the recipe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from flarewatch.config import Settings
from flarewatch.detect.deployed import shipped_weights
from flarewatch.estimate.regressor import (
    INPUT_COLUMNS,
    INPUTS_VERSION,
    flare_inputs_matrix,
)
from flarewatch.estimate.site_day import estimate_site_day
from flarewatch.ingest.viirs import flare_like, parse_vnf_csv

log = logging.getLogger(__name__)

UNIT_COLUMNS = ("site_id", "period_start", "period_end", "n_days", "n_days_processed", "n_flares",
                "target_kscm_d", "flare_inputs")
DEFAULT_MIN_COVERAGE = 0.5
CALIBRATION_VIEW = "v_calibration_site_periods"


def empty_units() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in UNIT_COLUMNS})


def _inputs_array(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1, len(INPUT_COLUMNS))


# ------------------------------------------------------------------------------------------
# From the database
# ------------------------------------------------------------------------------------------
def units_from_db(conn, *, start: date | None = None, end: date | None = None,
                  min_coverage: float = DEFAULT_MIN_COVERAGE, site_ids=None) -> pd.DataFrame:
    """Units from the calibration periods lying within [``start``, ``end``] (all when None).

    Processed site-days: a ``scenes`` row with status ``processed`` for (site_id, acquisition_date),
    sensor ``sentinel2`` or ``viirs``. A period needs ``n_days_processed / n_days >=
    min_coverage``; its target is ``volume_kscm_d`` (``volume_kscm / n_days`` when that is NULL).
    ``df.attrs["dropped"]``: list of ``{site_id, period_start, period_end, reason}``;
    ``df.attrs["n_periods"]``: periods read.
    """
    if not 0.0 < min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be in (0, 1], got {min_coverage}")
    where, args = [], []
    if start is not None:
        where.append("period_start >= %s")
        args.append(start)
    if end is not None:
        where.append("period_end <= %s")
        args.append(end)
    if site_ids:
        where.append("site_id = ANY(%s)")
        args.append(list(site_ids))
    sql = (f"SELECT site_id, period_start, period_end, volume_kscm, volume_kscm_d FROM {CALIBRATION_VIEW}"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY site_id, period_start, period_end")
    with conn.cursor() as cur:
        cur.execute(sql, args)
        periods = cur.fetchall()
    conn.commit()
    dropped: list[dict] = []
    if not periods:
        df = empty_units()
        df.attrs.update(dropped=dropped, n_periods=0)
        return df

    sites = sorted({p[0] for p in periods})
    lo, hi = min(p[1] for p in periods), max(p[2] for p in periods)
    with conn.cursor() as cur:
        cur.execute("SELECT DISTINCT site_id, acquisition_date FROM scenes WHERE status = 'processed'"
                    " AND sensor IN ('sentinel2', 'viirs') AND site_id = ANY(%s) AND acquisition_date BETWEEN %s AND %s",
                    (sites, lo, hi))
        processed = {(r[0], r[1]) for r in cur.fetchall()}
        cur.execute("SELECT site_id, acquisition_date, features FROM flare_detections WHERE site_id = ANY(%s)"
                    " AND acquisition_date BETWEEN %s AND %s ORDER BY site_id, acquisition_date, detection_key",
                    (sites, lo, hi))
        detections: dict[tuple[str, date], list[dict]] = {}
        for site_id, day, feats in cur.fetchall():
            if isinstance(feats, str):
                feats = json.loads(feats)
            detections.setdefault((site_id, day), []).append(feats or {})
    conn.commit()

    rows = []
    for site_id, ps, pe, vol, vol_d in periods:
        n_days = (pe - ps).days + 1
        rec = {"site_id": site_id, "period_start": ps, "period_end": pe}
        if n_days < 1:
            dropped.append({**rec, "reason": "period_end before period_start"})
            continue
        target = vol_d if vol_d is not None else (vol / n_days if vol is not None else None)
        if target is None or not math.isfinite(float(target)):
            dropped.append({**rec, "reason": "no metered volume"})
            continue
        if float(target) < 0:
            dropped.append({**rec, "reason": f"negative volume {float(target):g}"})
            continue
        days = [ps + timedelta(days=i) for i in range(n_days)]
        done = [d for d in days if (site_id, d) in processed]
        coverage = len(done) / n_days
        if not done:
            dropped.append({**rec, "reason": f"no processed day in the {n_days}-day period"})
            continue
        if coverage < min_coverage:
            dropped.append({**rec, "reason": f"coverage {coverage:.2f} ({len(done)}/{n_days} days processed)"
                                             f" < min_coverage {min_coverage:g}"})
            continue
        feats = [f for d in done for f in detections.get((site_id, d), [])]
        rows.append({**rec, "n_days": n_days, "n_days_processed": len(done), "n_flares": len(feats),
                     "target_kscm_d": float(target), "flare_inputs": flare_inputs_matrix(feats)})
    df = pd.DataFrame(rows, columns=list(UNIT_COLUMNS)) if rows else empty_units()
    df.attrs.update(dropped=dropped, n_periods=len(periods))
    if dropped:
        log.info("calibration periods dropped: %d of %d (%s)", len(dropped), len(periods),
                 "; ".join(f"{d['site_id']} {d['period_start']}..{d['period_end']}: {d['reason']}" for d in dropped[:5]))
    return df


# ------------------------------------------------------------------------------------------
# Synthetic (simulator) units
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticRecipe:
    """What ``synthetic_units`` builds: ``n_sites`` synthetic sites (ids ``reg-s<seed>-<k>``, disjoint
    from the detector's training sites) x ``days`` consecutive days from a per-site start date in
    2023-2024; ``detector``: ``threshold`` (TAI/NHI) or ``yolo`` (the shipped weights);
    ``period_days``: calibration period length (1 = daily meter); ``meter_noise_sd``: sd of the
    lognormal meter error on each period's volume; ``aoi_km``: site AOI."""

    n_sites: int = 48
    days: int = 20
    seed: int = 0
    detector: str = "threshold"
    period_days: int = 1
    meter_noise_sd: float = 0.05
    aoi_km: float = 6.4

    def site_day_key(self, detector_version: str) -> str:
        """Cache key of the site-day records (periods and meter noise are applied afterwards)."""
        from flarewatch.simulation.scene import SIMULATOR_VERSION

        blob = json.dumps({"n_sites": self.n_sites, "days": self.days, "seed": self.seed, "aoi_km": self.aoi_km,
                           "detector": detector_version, "simulator": SIMULATOR_VERSION,
                           "inputs": INPUTS_VERSION, "code": code_fingerprint()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Modules whose code decides what a simulated site-day's detections and features are: a change to
# any of them invalidates cached site-days.
# (``estimate.regressor.flare_inputs`` is covered by ``estimate.regressor.INPUTS_VERSION``.)
_FINGERPRINT_MODULES = ("simulation/scene", "detect/threshold", "features/extract", "ingest/viirs", "estimate/site_day",
                        "physics", "tiles", "detect/yolo", "detect/representation", "estimate/calibrations")


def code_fingerprint() -> str:
    """sha256 (16 hex) of the source of the modules that produce the site-day records."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parents[1]  # the flarewatch package
    for name in _FINGERPRINT_MODULES:
        path = here / f"{name}.py"
        h.update(name.encode() + (path.read_bytes() if path.exists() else b""))
    return h.hexdigest()[:16]


def _rng(*parts) -> np.random.Generator:
    key = "|".join(str(p) for p in ("flarewatch-regressor-data", *parts))
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "little"))


def regressor_sites(n_sites: int, seed: int, aoi_km: float = 6.4):
    """Synthetic sites for the regressor (positions / land covers as ``training.detector_data.synthetic_sites``)."""
    from flarewatch.training.detector_data import synthetic_sites

    return [replace(s, site_id=f"reg-s{seed}-{k:03d}", name=f"Regressor {s.name}",
                    notes="flarewatch.regressor_data synthetic site")
            for k, s in enumerate(synthetic_sites("train", n_sites, seed, aoi_km))]


def site_days(site_id: str, days: int, seed: int) -> list[date]:
    """``days`` consecutive days from a deterministic start in 2023-01-01 .. 2024-12-31."""
    start = date(2023, 1, 1) + timedelta(days=int(_rng("start", seed, site_id).integers(0, 731)))
    return [start + timedelta(days=i) for i in range(days)]


def _site_day_flow(site, day, truth: dict) -> float:
    """The meter's truth: ``simulation.flares.site_day_flows`` summed over the site's stacks."""
    from flarewatch.simulation.flares import site_day_flows

    return float(sum(site_day_flows(site, day).values()))


def detector_version(detector) -> str:
    """Version string of a detector name ('threshold', 'yolo' = the shipped weights) or object."""
    if detector in (None, "threshold"):
        return "threshold-tai-nhi-v1"
    if detector == "yolo":
        return "yolo-shipped-" + hashlib.sha256(shipped_weights().read_bytes()).hexdigest()[:8]
    if hasattr(detector, "detect"):
        return str(getattr(detector, "version", type(detector).__name__))
    raise ValueError(f"detector must be 'threshold', 'yolo' or an object with detect(tile), got {detector!r}")


def resolve_detector(detector, state_dir: Path | None = None):
    """(detector object or None for the threshold detector, version string) for a name or object."""
    version = detector_version(detector)
    if detector in (None, "threshold"):
        return None, version
    if detector == "yolo":
        import tempfile

        from flarewatch.detect.yolo import YoloFlareDetector, offline_environment

        offline_environment(Path(state_dir or tempfile.gettempdir()) / "yolo")
        return YoloFlareDetector(shipped_weights(), runtime="torch"), version
    return detector, version


def site_days_cache_path(recipe: SyntheticRecipe, cache_dir: Path, detector=None) -> Path:
    """Where ``synthetic_site_days`` caches ``recipe``'s site-days."""
    return Path(cache_dir) / f"site-days-{recipe.site_day_key(detector_version(detector or recipe.detector))}.json"


def simulate_site_day_record(site, day: date, settings, detector=None, detector_version: str | None = None) -> dict:
    """One simulated site-day as the pipeline processes it: true flow + per-flare inputs."""
    from flarewatch.simulation.scene import simulate_scene

    scene = simulate_scene(site, day)
    viirs = flare_like(parse_vnf_csv(scene.viirs_csv), settings.calibration.min_temperature_k)
    est = estimate_site_day(site, day, scene.tile, viirs, settings, detector=detector,
                            detector_version=detector_version)
    feats = [r["features"] for r in est.detection_rows]
    return {"site_id": site.site_id, "day": day.isoformat(), "land_cover": scene.truth["land_cover"],
            "flow_kscm_d": _site_day_flow(site, day, scene.truth),
            "cloud_fraction": scene.truth["cloud_fraction"],
            "flare_inputs": flare_inputs_matrix(feats).round(8).tolist()}


def synthetic_site_days(recipe: SyntheticRecipe, *, cache_dir: Path | None = None, detector=None,
                        progress: bool = False) -> list[dict]:
    """Site-day records of ``recipe`` (cached as JSON under ``cache_dir`` when given)."""

    detector = detector if detector is not None else recipe.detector
    path = site_days_cache_path(recipe, cache_dir, detector) if cache_dir else None
    if path is not None and path.exists():
        return json.loads(path.read_text())["records"]
    det, det_version = resolve_detector(detector, cache_dir)
    settings = Settings()
    records: list[dict] = []
    t0 = time.perf_counter()
    sites = regressor_sites(recipe.n_sites, recipe.seed, recipe.aoi_km)
    for k, site in enumerate(sites):
        for day in site_days(site.site_id, recipe.days, recipe.seed):
            records.append(simulate_site_day_record(site, day, settings, det, det_version))
        if progress and (k + 1) % 8 == 0:
            el = time.perf_counter() - t0
            print(f"  {k + 1}/{len(sites)} sites, {len(records)} site-days, {el:.0f} s "
                  f"({el / len(records):.3f} s per site-day)", flush=True)
    seconds = time.perf_counter() - t0
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"recipe": asdict(recipe), "detector_version": det_version,
                                   "seconds": round(seconds, 2), "records": records}))
        tmp.replace(path)
    log.info("built %d synthetic site-days in %.1f s", len(records), seconds)
    return records


def units_from_site_days(records: list[dict], period_days: int = 1, meter_noise_sd: float = 0.05,
                         seed: int = 0) -> pd.DataFrame:
    """Group each site's consecutive site-day records into periods of ``period_days`` days.

    Target = mean true daily flow over the period x lognormal(0, ``meter_noise_sd``) (seeded by
    seed, site and period start). Every simulated day is processed (n_days_processed = n_days);
    a trailing partial period is kept with its own length.
    """
    if period_days < 1:
        raise ValueError(f"period_days must be >= 1, got {period_days}")
    by_site: dict[str, list[dict]] = {}
    for r in records:
        by_site.setdefault(r["site_id"], []).append(r)
    rows = []
    for site_id in sorted(by_site):
        recs = sorted(by_site[site_id], key=lambda r: r["day"])
        for i in range(0, len(recs), period_days):
            chunk = recs[i:i + period_days]
            ps, pe = date.fromisoformat(chunk[0]["day"]), date.fromisoformat(chunk[-1]["day"])
            true = float(np.mean([r["flow_kscm_d"] for r in chunk]))
            noise = float(_rng("meter", seed, site_id, ps.isoformat()).lognormal(0.0, meter_noise_sd)) \
                if meter_noise_sd > 0 else 1.0
            inputs = [row for r in chunk for row in r["flare_inputs"]]
            rows.append({"site_id": site_id, "period_start": ps, "period_end": pe, "n_days": len(chunk),
                         "n_days_processed": len(chunk), "n_flares": len(inputs),
                         "target_kscm_d": true * noise, "flare_inputs": _inputs_array(inputs),
                         "true_kscm_d": true, "land_cover": chunk[0].get("land_cover")})
    return pd.DataFrame(rows)


def synthetic_units(n_sites: int = 48, days: int = 20, seed: int = 0, detector="threshold", *,
                    period_days: int = 1, meter_noise_sd: float = 0.05, cache_dir: Path | None = None,
                    progress: bool = False) -> pd.DataFrame:
    """Units from simulated site-days (module doc); ``detector``: 'threshold', 'yolo' or an object."""
    name = detector if isinstance(detector, str) else "custom"
    recipe = SyntheticRecipe(n_sites=n_sites, days=days, seed=seed, detector=name, period_days=period_days,
                             meter_noise_sd=meter_noise_sd)
    records = synthetic_site_days(recipe, cache_dir=cache_dir, detector=detector, progress=progress)
    return units_from_site_days(records, period_days, meter_noise_sd, seed)


# ------------------------------------------------------------------------------------------
# Snapshot hash
# ------------------------------------------------------------------------------------------
def data_snapshot(units_df: pd.DataFrame) -> str:
    """sha256 of the units sorted by (site, period): ids, periods, day counts, targets and inputs."""
    h = hashlib.sha256(f"flarewatch-regressor-units|inputs-v{INPUTS_VERSION}".encode())
    order = sorted(range(len(units_df)), key=lambda i: (str(units_df["site_id"].iloc[i]),
                                                         str(units_df["period_start"].iloc[i]),
                                                         str(units_df["period_end"].iloc[i])))
    for i in order:
        r = units_df.iloc[i]
        h.update(json.dumps([str(r["site_id"]), str(r["period_start"]), str(r["period_end"]), int(r["n_days"]),
                             int(r["n_days_processed"]), round(float(r["target_kscm_d"]), 6)]).encode())
        h.update((np.round(_inputs_array(r["flare_inputs"]), 6) + 0.0).astype("<f8").tobytes())  # +0.0: no -0.0
    return h.hexdigest()
