"""The loop that processes a batch of site-days for a ``flare_process`` mapped task.

``process_site_days`` takes site-days of several acquisition days (a batch of a range run) and
loads the models once for all of them; ``process_batch`` is one day of it. Batches are sized in
``orchestration.batching``. No Airflow imports: ``orchestration.tasks`` opens the clients.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from flarewatch.config import Settings
from flarewatch.detect.deployed import production_detector
from flarewatch.errors import PermanentError, UnknownSites
from flarewatch.estimate.deployed import production_regressor
from flarewatch.process.site_day import process_site_day
from flarewatch.store import db

log = logging.getLogger(__name__)


@dataclass
class Models:
    """The deployed detector and volume model, loaded on first use and kept for the batch's other
    days: loading them costs more than processing a tile."""

    loaded: bool = False
    detector: object = None
    detector_version: str | None = None
    regressor: object = None
    regressor_version: str | None = None

    def load(self, conn, s3, cfg: Settings) -> Models:
        if not self.loaded:
            self.detector, self.detector_version = production_detector(conn, s3, cfg)
            self.regressor, self.regressor_version = (None, None) if cfg.volume_model == "calibration" \
                else production_regressor(conn, s3, cfg)
            self.loaded = True
        return self


class BatchFailed(RuntimeError):
    """Some site-days of a batch failed; the others were written. ``errors``: [(site_id, exception)].
    ``permanent``: every failed site-day has used up its attempts (``store.processing``) or failed
    with an error that cannot heal (``flarewatch.errors.PermanentError``): retrying the task cannot
    help; given-up ones wait for ``flarewatch requeue``."""

    def __init__(self, day, n_sites: int, errors: list[tuple[str, BaseException]], *, permanent: bool = False,
                 gave_up: list[str] = (), connection_lost: bool = False):
        self.day, self.n_sites = day, n_sites
        self.errors, self.permanent, self.gave_up = errors, permanent, list(gave_up)
        self.connection_lost = connection_lost  # the site-days after the failure were not attempted
        text = "; ".join(f"{s}: {type(e).__name__}: {e}" for s, e in errors)
        if self.gave_up:
            text += (f"{'; ' if text else ''}marked failed after {'their' if len(self.gave_up) > 1 else 'its'} "
                     f"attempts, left out until re-queued (flarewatch requeue --date {day} --site SITE): "
                     f"{', '.join(self.gave_up)}")
        n_failed = len({s for s, _ in errors} | set(self.gave_up))
        super().__init__(f"{n_failed} of {n_sites} site-days failed on {day}: {text}")


def process_batch(conn, s3, cfg: Settings, day: date, site_ids: list[str], *, force: bool = False,
                  done_since: datetime | None = None, models: Models | None = None) -> dict:
    """Process the site-days of one acquisition day with the deployed models, loaded once.

    Every site-day runs even when one fails (its transaction is rolled back and the failure counted
    in ``site_day_processing``); then ``BatchFailed`` names each failure, so the task fails and its
    retry re-runs the batch (every write is an idempotent upsert). A site-day that failed
    ``cfg.max_process_attempts`` times is marked failed and skipped by later tries and runs, unless
    ``force`` (a manual run that names it); when only such site-days, or errors that cannot heal
    (``flarewatch.errors.PermanentError``), failed, ``BatchFailed.permanent`` tells the task not to
    retry.

    ``done_since`` (a retry of the task: the run's start): site-days processed since then and not
    ingested again since are not redone; their stored outcome (``site_day_processing``) counts in
    the totals, so a retry returns what one clean try would have. Each site-day logs one readable
    line. Returns the batch's totals (small: it is the task's XCom). ``models``: loaded once by
    ``process_site_days`` for all the days of a batch (else loaded here when there is work).
    """
    from flarewatch.store import processing

    given_up = set() if force else {r["site_id"] for r in processing.failed_site_days(conn, site_ids, [day])}
    for site_id in sorted(given_up):
        log.warning("%s %s skipped: processing gave up on it earlier (flarewatch requeue --date %s --site %s)",
                    site_id, day, day, site_id)
    reused = {} if done_since is None else \
        {r["site_id"]: r for r in processing.processed_since(conn, [s for s in site_ids if s not in given_up], day,
                                                             done_since)}
    for site_id, rec in sorted(reused.items()):
        log.info("%s %s: processed by an earlier try of this task at %s (%s flares, volume %s kscm/d, CO2e %s t); "
                 "not redone", site_id, day, rec["processed_at"].isoformat(timespec="seconds"), rec["n_detections"],
                 _num(rec["volume_kscm_d"]), _num(rec["co2e_t"]))
    todo = [s for s in site_ids if s not in given_up and s not in reused]
    results, errors, gave_up = list(reused.values()), [], sorted(given_up)
    if todo:
        # the models are loaded once per batch: loading them costs more than processing a tile
        m = (models or Models()).load(conn, s3, cfg)
        sites = {s.site_id: s for s in db.fetch_sites(conn, todo)}
    for site_id in todo:
        try:
            if site_id not in sites:
                raise UnknownSites([site_id])
            results.append(process_site_day(sites[site_id], day, s3, conn, cfg, detector=m.detector,
                                            detector_version=m.detector_version, regressor=m.regressor,
                                            regressor_version=m.regressor_version))
        except Exception as exc:  # noqa: BLE001 - the other site-days still run; BatchFailed below
            log.exception("%s %s failed", site_id, day)
            try:
                conn.rollback()
            except Exception as lost:  # noqa: BLE001 - the connection died (e.g. Postgres restarted)
                rest = site_ids[site_ids.index(site_id) + 1:]
                log.error("%s %s: the database connection is gone (%s); %d site-day(s) not attempted: %s; the task's "
                          "retry runs the batch again", site_id, day, lost, len(rest), rest)
                raise BatchFailed(day, len(site_ids), [*errors, (site_id, exc)], gave_up=gave_up,
                                  connection_lost=True) from exc
            try:
                state = processing.record_failure(conn, site_id, day, f"{type(exc).__name__}: {exc}",
                                                  cfg.max_process_attempts)
            except Exception:  # noqa: BLE001 - e.g. the database is down: the task fails and retries anyway
                conn.rollback()
                log.exception("%s %s: the failure could not be recorded", site_id, day)
                state = {"state": "retrying", "attempts": None}
            log.error("%s %s: attempt %s of %d failed; state %s", site_id, day, state["attempts"],
                      cfg.max_process_attempts, state["state"])
            errors.append((site_id, exc))
            if state["state"] == "failed":
                gave_up.append(site_id)
    if errors or gave_up:
        permanent = all(site_id in gave_up or isinstance(exc, PermanentError) for site_id, exc in errors)
        raise BatchFailed(day, len(site_ids), errors, permanent=permanent, gave_up=sorted(gave_up)) \
            from (errors[0][1] if errors else None)
    return {"acquisition_date": day.isoformat(), "site_ids": list(site_ids),
            "n_detections": sum(r["n_detections"] for r in results),
            "volume_kscm_d": round(sum(r["volume_kscm_d"] or 0.0 for r in results), 4),
            "co2_t": round(sum(r["co2_t"] or 0.0 for r in results), 4),
            "co2e_t": round(sum(r["co2e_t"] or 0.0 for r in results), 4),
            "reused": sorted(reused)}


class BatchesFailed(RuntimeError):
    """Site-days of several days of a batch failed; every other site-day was written. ``failures``:
    the ``BatchFailed`` of each day that had one; ``permanent`` when each of them is."""

    def __init__(self, failures: list[BatchFailed], n_site_days: int):
        self.failures = failures
        self.permanent = all(f.permanent for f in failures)
        self.connection_lost = any(f.connection_lost for f in failures)
        n_failed = sum(len({s for s, _ in f.errors} | set(f.gave_up)) for f in failures)
        super().__init__(f"{n_failed} of {n_site_days} site-days failed, on {len(failures)} day(s): "
                         + " | ".join(str(f) for f in failures))


def process_site_days(conn, s3, cfg: Settings, site_days: Mapping[date, list[str]], *, force: bool = False,
                      done_since: datetime | None = None) -> dict:
    """Process the site-days of a batch that spans days ({day: [site_id, ...]}), day by day
    (``process_batch``), with the models loaded once for all of them.

    A day whose site-days fail does not stop the next day: every site-day runs, then one
    ``BatchesFailed`` names each failure (``permanent`` when every failed day's is, see
    ``BatchFailed``), so the task's retry redoes only what failed (``done_since``). When the
    database connection is lost the batch stops there (the retry does the rest). Returns the
    batch's totals: the days, site-days, detections, volume, CO2 / CO2e and the site-days a retry
    reused (``"<site> <day>"``).
    """
    models, out, failures = Models(), [], []
    days = sorted(site_days)
    for day in days:
        try:
            out.append(process_batch(conn, s3, cfg, day, list(site_days[day]), force=force, done_since=done_since,
                                     models=models))
        except BatchFailed as exc:
            failures.append(exc)
            if exc.connection_lost:
                break
    n = sum(len(ids) for ids in site_days.values())
    if failures:
        if len(failures) == 1 and len(days) == 1:
            raise failures[0]
        raise BatchesFailed(failures, n) from failures[0]
    return {"days": [d.isoformat() for d in days], "site_ids": sorted({s for ids in site_days.values() for s in ids}),
            "site_days": n,
            **{k: round(sum(r[k] for r in out), 4) for k in ("n_detections", "volume_kscm_d", "co2_t", "co2e_t")},
            "reused": [f"{s} {r['acquisition_date']}" for r in out for s in r["reused"]]}


def _num(v) -> str:
    return "?" if v is None else f"{v:,.1f}"
