"""The processing state of site-days (``site_day_processing``): failures, poison site-days, re-queueing.

A success is written with the results (``db.replace_site_day_results``, one transaction). A failure
is counted here: after ``Settings.max_process_attempts`` failures since the site-day's last success,
ingest or re-queue, its state becomes ``failed`` and it leaves the pending set
(``db.pending_site_days``), so one bad site-day cannot hold every later run hostage. Nothing is
deleted: its previous results, if any, stay; the rollup shows a never-processed failed site-day
as missing (``emissions_daily.status = 'failed'``). ``requeue`` puts it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from flarewatch.store.db import fetch_dicts, transaction

STATES = ("processed", "retrying", "failed")


def record_failure(conn, site_id: str, day: date, error: str, max_attempts: int) -> dict:
    """Count one failed processing attempt of a site-day; returns ``{"state", "attempts"}``.

    Attempts restart at 1 after a success, a newer ingest of the site-day or a re-queue. The
    connection must not be inside a failed transaction (roll back first).
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    with transaction(conn) as cur:
        cur.execute("SELECT state, attempts, last_attempt_at, requeued_at FROM site_day_processing"
                    " WHERE site_id = %s AND acquisition_date = %s FOR UPDATE", (site_id, day))
        state, attempts, last_attempt, requeued = cur.fetchone() or (None, 0, None, None)
        cur.execute("SELECT max(ingested_at) FROM scenes WHERE site_id = %s AND acquisition_date = %s", (site_id, day))
        ingested = cur.fetchone()[0]
        fresh = (state is None or state == "processed" or last_attempt is None
                 or (ingested is not None and ingested > last_attempt)
                 or (requeued is not None and requeued > last_attempt))
        attempts = 1 if fresh else attempts + 1
        new_state = "failed" if attempts >= max_attempts else "retrying"
        cur.execute(
            "INSERT INTO site_day_processing (site_id, acquisition_date, state, attempts, last_error, last_attempt_at)"
            " VALUES (%s, %s, %s, %s, %s, now())"
            " ON CONFLICT (site_id, acquisition_date) DO UPDATE SET state = EXCLUDED.state,"
            " attempts = EXCLUDED.attempts, last_error = EXCLUDED.last_error, last_attempt_at = EXCLUDED.last_attempt_at",
            (site_id, day, new_state, attempts, error[:4000]),
        )
    return {"state": new_state, "attempts": attempts}


def failed_site_days(conn, site_ids: Sequence[str] | None = None, days: Sequence[date] | None = None) -> list[dict]:
    """Site-days that processing gave up on (state ``failed``, not ingested again since; optionally of
    ``site_ids`` / ``days``), oldest first, with their error: ``{"site_id", "acquisition_date",
    "attempts", "last_error", "last_attempt_at"}``."""
    sql = ("SELECT site_id, acquisition_date, attempts, last_error, last_attempt_at FROM site_day_processing p"
           " WHERE state = 'failed' AND last_attempt_at >= (SELECT coalesce(max(s.ingested_at), '-infinity')"
           " FROM scenes s WHERE s.site_id = p.site_id AND s.acquisition_date = p.acquisition_date)")
    args: list = []
    if site_ids:
        sql += " AND site_id = ANY(%s)"
        args.append(list(site_ids))
    if days:
        sql += " AND acquisition_date = ANY(%s)"
        args.append(sorted(set(days)))
    return fetch_dicts(conn, sql + " ORDER BY acquisition_date, site_id", args)


def processed_since(conn, site_ids: Sequence[str], day: date, since) -> list[dict]:
    """Site-days of ``day`` among ``site_ids`` processed at or after ``since`` (state ``processed``)
    and not ingested again since (no scene pending): what a retry of the same task can reuse. Each:
    ``{"site_id", "processed_at", "n_detections", "volume_kscm_d", "co2_t", "co2e_t"}``."""
    if not site_ids:
        return []
    return fetch_dicts(
        conn,
        "SELECT site_id, processed_at, n_detections, volume_kscm_d, co2_t, co2e_t FROM site_day_processing p"
        " WHERE acquisition_date = %s AND site_id = ANY(%s) AND state = 'processed' AND processed_at >= %s"
        " AND NOT EXISTS (SELECT 1 FROM scenes s WHERE s.site_id = p.site_id AND s.acquisition_date = p.acquisition_date"
        " AND (s.processed_at IS NULL OR s.processed_at < s.ingested_at))"
        " ORDER BY site_id",
        (day, list(site_ids), since))


def requeue(conn, site_days: Sequence[tuple[str, date]], by: str) -> list[tuple[str, date]]:
    """Put failed site-days back into the pending set (state ``retrying``, attempts 0, who and
    when recorded); returns those re-queued. Site-days not in state ``failed`` are left alone."""
    done: list[tuple[str, date]] = []
    with transaction(conn) as cur:
        for site_id, day in site_days:
            cur.execute(
                "UPDATE site_day_processing SET state = 'retrying', attempts = 0, requeued_at = now(),"
                " requeued_by = %s WHERE site_id = %s AND acquisition_date = %s AND state = 'failed'"
                " RETURNING site_id, acquisition_date",
                (by, site_id, day),
            )
            done += [(r[0], r[1]) for r in cur.fetchall()]
    return done


def processing_records(conn, start: date, end: date) -> list[dict]:
    """``site_day_processing`` rows of acquisition dates ``start`` .. ``end`` (site, day order)."""
    return fetch_dicts(conn, "SELECT * FROM site_day_processing WHERE acquisition_date BETWEEN %s AND %s"
                             " ORDER BY acquisition_date, site_id", (start, end))
