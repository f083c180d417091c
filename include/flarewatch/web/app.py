"""The FlareWatch web app: the emissions pages and the read-only JSON API, one FastAPI app.

``plugins/flarewatch_plugin.py`` mounts ``create_app()`` on Airflow's api-server at ``/flarewatch``
(``/flarewatch/`` the page, ``/flarewatch/api/v1/...`` the API, ``/flarewatch/openapi.json`` its
schema) and adds the page to the Airflow UI's navigation.
Creating the app opens nothing: the database and S3 clients are made on the first request
(``web.access``), so the scheduler and workers, which load plugins too, pay nothing for it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from flarewatch.web import api, pages
from flarewatch.web.access import Access
from flarewatch.web.auth import LoginRequired
from flarewatch.web.params import ParamError

URL_PREFIX = "/flarewatch"


def create_app(access: Access | None = None) -> FastAPI:
    """The app; ``access`` defaults to the Airflow connections (made on first use)."""
    app = FastAPI(
        # No /docs or /redoc: FastAPI's Swagger UI and ReDoc load their scripts from a CDN, and the page
        # must work offline. The schema is at /flarewatch/openapi.json (any OpenAPI viewer reads it).
        docs_url=None, redoc_url=None,
        title="FlareWatch API",
        version="1",
        description="Gas flaring measured from orbit: sites, daily volumes with 90 % intervals, monthly totals,"
                    " alerts and reports. Read-only but for acknowledging alerts. Authenticate as for Airflow's"
                    " API: `Authorization: Bearer <token from POST /auth/token>`, or the Airflow UI's session.",
    )
    app.state.access_factory = (lambda: access) if access is not None else Access.from_airflow
    app.state.access = _LazyAccess(app)

    @app.exception_handler(ParamError)
    async def _param_error(request: Request, exc: ParamError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        name = str(first.get("loc", ["", "?"])[-1])
        detail = jsonable_encoder(errors, custom_encoder={Exception: str})
        return JSONResponse({"error": "bad_parameter", "parameter": name,
                             "message": first.get("msg", "invalid"), "errors": detail}, status_code=422)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired):
        return RedirectResponse(exc.login_url, status_code=303)

    app.add_middleware(GZipMiddleware, minimum_size=2048)  # the inline SVG maps and charts compress ~5x
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")
    return app


class _LazyAccess:
    """``app.state.access``: the real ``Access`` made on first attribute use, then kept."""

    def __init__(self, app: FastAPI):
        self._app, self._real = app, None

    def __getattr__(self, name):
        if self._real is None:
            self._real = self._app.state.access_factory()
        return getattr(self._real, name)
