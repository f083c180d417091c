"""Errors that a retry cannot heal: bad parameters, unknown sites, nothing ingested for a day.

The package raises them without knowing about Airflow; ``orchestration.tasks`` turns them into
``AirflowFailException`` at the task boundary, so the task fails at once instead of being retried
three times over minutes with the same answer. Everything else (S3 or Postgres unreachable, a
provider's 5xx) stays an ordinary exception and is retried.
"""

from __future__ import annotations


class PermanentError(Exception):
    """Retrying cannot help: the same inputs give the same error."""


class BadParams(PermanentError, ValueError):
    """A run parameter (date, range, month, file, model) is malformed or inconsistent."""


class UnknownSites(PermanentError, LookupError):
    """Site ids that are not active sites. ``unknown`` and ``known`` (None: not looked up): sorted ids."""

    def __init__(self, unknown, known=None):
        self.unknown, self.known = sorted(unknown), (None if known is None else sorted(known))
        text = f"unknown or inactive site id(s): {', '.join(self.unknown)}"
        if self.known is not None:
            text += f"; known sites: {', '.join(self.known) or '(none)'}"
        super().__init__(text)


class NothingIngested(PermanentError, LookupError):
    """No scenes were ingested for a site-day or day asked for: run ``flare_ingest`` for it first."""
