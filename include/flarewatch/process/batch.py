"""Batches of site-days for the ``flare_process`` mapped tasks, and the loop that processes one.

No Airflow imports: ``orchestration.tasks`` opens the clients and calls ``process_batch``.
"""

from __future__ import annotations

import logging
from datetime import date

from flarewatch.config import Settings
from flarewatch.detect.deployed import production_detector
from flarewatch.estimate.deployed import production_regressor
from flarewatch.process.site_day import process_site_day
from flarewatch.store import db

log = logging.getLogger(__name__)


def batch_site_days(site_days, size: int) -> list[dict]:
    """(site_id, day) pairs -> mapped-task inputs: per acquisition day, batches of at most ``size``
    sites, sorted by day then site: ``{"acquisition_date": "YYYY-MM-DD", "site_ids": [...]}``."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    by_day: dict = {}
    for site_id, day in sorted(set(site_days), key=lambda x: (x[1], x[0])):
        by_day.setdefault(day, []).append(site_id)
    return [{"acquisition_date": day.isoformat(), "site_ids": ids[i:i + size]}
            for day, ids in by_day.items() for i in range(0, len(ids), size)]


class BatchFailed(RuntimeError):
    """Some site-days of a batch failed; the others were written. ``errors``: [(site_id, exception)]."""

    def __init__(self, day, n_sites: int, errors: list[tuple[str, BaseException]]):
        self.errors = errors
        super().__init__(f"{len(errors)} of {n_sites} site-days failed on {day}: "
                         + "; ".join(f"{s}: {type(e).__name__}: {e}" for s, e in errors))


def process_batch(conn, s3, cfg: Settings, day: date, site_ids: list[str]) -> dict:
    """Process the site-days of one acquisition day with the deployed models, loaded once.

    Every site-day runs even when one fails (its transaction is rolled back); then ``BatchFailed``
    names each failure, so the task fails and its retry re-runs the batch (every write is an
    idempotent upsert). Returns the batch's totals.
    """

    # the models are loaded once per batch: loading them costs more than processing a tile
    detector, version = production_detector(conn, s3, cfg)
    regressor, regressor_version = (None, None) if cfg.volume_model == "calibration" \
        else production_regressor(conn, s3, cfg)
    sites = {s.site_id: s for s in db.fetch_sites(conn, site_ids)}
    results, errors = [], []
    for site_id in site_ids:
        try:
            if site_id not in sites:
                raise LookupError(f"site {site_id} is not in the sites table")
            results.append(process_site_day(sites[site_id], day, s3, conn, cfg, detector=detector,
                                            detector_version=version, regressor=regressor,
                                            regressor_version=regressor_version))
        except Exception as exc:  # noqa: BLE001 - the other site-days still run; BatchFailed below
            conn.rollback()
            log.exception("%s %s failed", site_id, day)
            errors.append((site_id, exc))
    if errors:
        raise BatchFailed(day, len(site_ids), errors) from errors[0][1]
    return {"acquisition_date": day.isoformat(), "site_ids": list(site_ids),
            "n_detections": sum(r["n_detections"] for r in results),
            "volume_kscm_d": round(sum(r["volume_kscm_d"] for r in results), 4),
            "co2_t": round(sum(r["co2_t"] for r in results), 4)}
