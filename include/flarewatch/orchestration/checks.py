"""Checks at the task boundary: errors a retry cannot heal fail at once, unknown sites, map sizes.

``fails_at_once`` wraps the task bodies of ``orchestration.tasks``: the package raises
``flarewatch.errors.PermanentError`` (bad params, unknown sites, nothing ingested) without knowing
about Airflow, and here it becomes ``AirflowFailException``, so Airflow does not retry it (three
tries over minutes with the same answer). Any other error is raised unchanged and retried.
"""

from __future__ import annotations

import functools

from flarewatch.errors import BadParams, PermanentError, UnknownSites


def cannot_heal(exc: BaseException) -> bool:
    """Whether retrying the task would only repeat ``exc``: a ``flarewatch.errors.PermanentError``
    (bad params, unknown sites, nothing ingested) or a provider's ``PermanentSourceError`` (4xx
    other than 429, bad credentials)."""
    if isinstance(exc, PermanentError):
        return True
    from flarewatch.ingest.sources.http import PermanentSourceError

    return isinstance(exc, PermanentSourceError)


def fails_at_once(fn):
    """Task bodies: an error that ``cannot_heal`` fails the task without its retries
    (``AirflowFailException``); any other error is raised as it is and retried."""

    @functools.wraps(fn)
    def body(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not cannot_heal(exc):
                raise
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"{exc} [not retried: the same inputs give the same error]") from exc

    return body


def active_sites(conn, site_ids=None) -> list:
    """The active sites (``flarewatch.sites.Site``), all or those of ``site_ids``; ids that are
    not active sites raise ``UnknownSites`` naming them and the known ones."""
    from flarewatch.store import db

    sites = db.fetch_sites(conn)
    if not site_ids:
        return sites
    known = {s.site_id for s in sites}
    unknown = set(site_ids) - known
    if unknown:
        raise UnknownSites(unknown, known)
    return [s for s in sites if s.site_id in set(site_ids)]


def check_map_length(n: int, what: str) -> None:
    """Airflow fails a mapped task asked for more than ``[core] max_map_length`` (default 1024)
    instances, after planning; say so at once, in words an operator can act on."""
    from airflow.sdk import conf

    limit = conf.getint("core", "max_map_length", fallback=1024)
    if n > limit:
        raise BadParams(f"{n} {what} is more than Airflow's [core] max_map_length ({limit}) mapped tasks of one run: "
                        "pick fewer days or sites per run")
