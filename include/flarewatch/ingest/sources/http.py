"""HTTP plumbing shared by the real scene sources: retries, timeouts, and a clear error taxonomy.

- ``make_session`` returns a ``requests.Session`` whose adapters retry (urllib3 ``Retry``) on
  429/500/502/503/504, connection errors and read timeouts, with exponential backoff
  (``backoff_s * 2**(n-1)``, capped) and honouring ``Retry-After`` (capped at
  ``MAX_RETRY_AFTER_S``). Every request gets ``timeout_s`` unless the caller passes ``timeout=``.
- ``request`` sends one request through such a session and classifies failures:
  ``PermanentSourceError`` for 4xx other than 429 (bad request, bad credentials: fail fast, no
  retries; the message names the provider, the status and the first 300 characters of the body,
  and for 401/403 the Airflow connection to check), ``TransientSourceError`` when the retries are
  exhausted on 429/5xx, timeouts or connection errors. Both derive from ``SourceError``.

Secrets that sit in URLs (the FIRMS MAP_KEY) are passed as ``redact=`` and never appear in the
messages.
"""

from __future__ import annotations

from collections.abc import Iterable

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY_STATUSES = (429, 500, 502, 503, 504)
# A provider's Retry-After above this (s) is clipped: a task slot is not held for an hour.
MAX_RETRY_AFTER_S = 300.0
# Exponential backoff between retries never exceeds this (s).
MAX_BACKOFF_S = 120.0
BODY_EXCERPT_CHARS = 300


class SourceError(Exception):
    """A real data source failed. ``provider``, ``status`` (HTTP status or None), ``url`` and
    ``body`` (first 300 characters of the answer; secrets redacted in both) say where and why."""

    def __init__(self, message: str, *, provider: str = "", status: int | None = None, url: str = "",
                 body: str = ""):
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.url = url
        self.body = body


class PermanentSourceError(SourceError):
    """Retrying will not help: 4xx other than 429, bad credentials, a malformed answer."""


class TransientSourceError(SourceError):
    """Retries exhausted on 429/5xx, timeouts or connection errors: try again later."""


class _CappedRetry(Retry):
    """``Retry`` whose honoured Retry-After is clipped to ``MAX_RETRY_AFTER_S``."""

    def get_retry_after(self, response):  # noqa: D401 - urllib3 hook
        value = super().get_retry_after(response)
        if value is None:
            return None
        return min(float(value), MAX_RETRY_AFTER_S)


class _TimeoutSession(requests.Session):
    def __init__(self, timeout_s: float):
        super().__init__()
        self.default_timeout = timeout_s

    def request(self, method, url, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", self.default_timeout)
        return super().request(method, url, **kwargs)


def make_session(
    *, retries: int = 5, backoff_s: float = 1.0, timeout_s: float = 60, user_agent: str = "flarewatch"
) -> requests.Session:
    """A ``requests.Session`` retrying 429/500/502/503/504, connect errors and read timeouts up to
    ``retries`` times with exponential backoff from ``backoff_s`` (s), honouring Retry-After, and
    applying ``timeout_s`` (s, connect and read) to every request that does not pass its own.

    Retries apply to every HTTP method (the providers' POST endpoints — Sentinel Hub process, token
    — are idempotent). After the last retry the final response is returned (not raised): use
    ``request`` to turn it into a ``TransientSourceError``.
    """
    retry = _CappedRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        backoff_factor=backoff_s,
        backoff_max=MAX_BACKOFF_S,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = _TimeoutSession(timeout_s)
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent
    return session


def default_conn_id(provider: str) -> str:
    """The Airflow connection id holding ``provider``'s credentials: ``flarewatch_<provider>``."""
    return "flarewatch_" + provider.replace("-", "_").lower()


def _redact(text: str, secrets: Iterable[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    provider: str,
    conn_id: str | None = None,
    redact: Iterable[str] = (),
    **kw,
) -> requests.Response:
    """Send ``method url`` through ``session`` (from ``make_session``); return a 2xx/3xx response.

    Raises ``PermanentSourceError`` on 4xx other than 429 (401/403: "check the credentials in
    Airflow connection <conn_id>", default ``flarewatch_<provider>``) and ``TransientSourceError``
    when the session's retries are exhausted (429/5xx still answered, timeouts, connection
    errors). ``redact``: strings (API keys in the URL) replaced by ``***`` in every message.
    Other keyword arguments go to ``session.request``.
    """
    secrets = [s for s in redact if s]
    safe_url = _redact(url, secrets)
    try:
        resp = session.request(method, url, **kw)
    except (requests.Timeout, requests.ConnectionError, requests.exceptions.RetryError) as exc:
        kind = "timed out" if isinstance(exc, requests.Timeout) or "timed out" in str(exc).lower() else "failed"
        msg = _redact(f"{provider}: {method} {safe_url} {kind} after retries: {exc}", secrets)
        err = TransientSourceError(msg, provider=provider, url=safe_url)
        if secrets:
            raise err from None
        raise err from exc
    except requests.RequestException as exc:
        msg = _redact(f"{provider}: {method} {safe_url} failed: {exc}", secrets)
        err = PermanentSourceError(msg, provider=provider, url=safe_url)
        if secrets:
            raise err from None
        raise err from exc

    status = resp.status_code
    if status < 400:
        return resp
    body = _redact((resp.text or "")[:BODY_EXCERPT_CHARS], secrets)
    if status in RETRY_STATUSES:
        raise TransientSourceError(
            f"{provider}: {method} {safe_url} still answered HTTP {status} after retries: {body!r}",
            provider=provider,
            status=status,
            url=safe_url,
            body=body,
        )
    hint = ""
    if status in (401, 403):
        hint = f"; check the credentials in Airflow connection {conn_id or default_conn_id(provider)!r}"
    raise PermanentSourceError(
        f"{provider}: {method} {safe_url} answered HTTP {status}{hint}: {body!r}",
        provider=provider,
        status=status,
        url=safe_url,
        body=body,
    )


def airflow_connection(conn_id: str, *, provider: str, required: bool = True):
    """The Airflow connection ``conn_id`` (read when a source first needs it, never at import).

    Missing: ``PermanentSourceError`` naming the connection when ``required``, else None. The
    password is registered with Airflow's secrets masker so it never shows in task logs.
    """
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:
        if type(exc).__name__ != "AirflowNotFoundException":
            raise
        if not required:
            return None
        raise PermanentSourceError(
            f"{provider}: Airflow connection {conn_id!r} is not defined; create it (README, "
            f"'Real data sources') or set AIRFLOW_CONN_{conn_id.upper()}",
            provider=provider,
        ) from None
    if conn.password:
        try:
            from airflow.sdk.log import mask_secret

            mask_secret(conn.password)
        except Exception:  # noqa: BLE001 - masking is best effort outside a task
            pass
    return conn


def json_object(data: bytes, where: str, *, provider: str) -> dict:
    """``data`` parsed as a JSON object; a provider answering something else is a permanent error."""
    import json

    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise PermanentSourceError(f"{provider}: {where} did not answer JSON: {data[:300]!r}",
                                   provider=provider, url=where) from exc
    if not isinstance(doc, dict):
        raise PermanentSourceError(f"{provider}: {where} answered {type(doc).__name__}, not a JSON object",
                                   provider=provider, url=where)
    return doc
