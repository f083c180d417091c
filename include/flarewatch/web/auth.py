"""Who is asking: Airflow's own login guards the FlareWatch app.

A plugin's FastAPI app is not protected by Airflow automatically. Every route here depends on
``api_user`` (API: 401 without a valid Airflow JWT, as a bearer token or the UI's ``_token``
session cookie) or ``page_user`` (HTML: a redirect to Airflow's login page, back here after it).
Both resolve the user through ``airflow.api_fastapi.core_api.security.get_user``, exactly as
Airflow's own API does, so tokens, expiry and the configured auth manager are Airflow's.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import HTTPException, Request, status


class LoginRequired(Exception):
    """Raised by ``page_user``; ``web.app`` turns it into a redirect to ``login_url``."""

    def __init__(self, login_url: str):
        super().__init__(login_url)
        self.login_url = login_url


async def _airflow_user(request: Request):
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    return await get_user(request, None, await bearer_scheme(request))


async def api_user(request: Request):
    """The Airflow user of an API request; 401 (no or expired credentials) / 403 (invalid token)."""
    return await _airflow_user(request)


def login_url(next_url: str) -> str:
    """Airflow's login page (its configured auth manager's), coming back to ``next_url``."""
    try:
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager().get_url_login(next_url=next_url)
    except Exception:  # noqa: BLE001 - no auth manager initialised (tests, a bare app): the default path
        return f"/auth/login?next={quote(next_url, safe='')}"


async def page_user(request: Request):
    """The Airflow user of a page request; without a valid session: to the login, and back."""
    try:
        return await _airflow_user(request)
    except HTTPException as exc:
        if exc.status_code in (status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(login_url(target)) from None
        raise


def user_name(user) -> str:
    """The name recorded with an acknowledgement."""
    for attr in ("get_name", "get_id"):
        fn = getattr(user, attr, None)
        if callable(fn) and fn():
            return str(fn())
    return str(getattr(user, "username", None) or user)
