"""The read-only JSON API under ``/flarewatch/api/v1`` (acknowledging an alert is its one write).

Every route needs an Airflow login (``web.auth.api_user``). Parameters are checked by
``web.params``: a bad date, month, level or status, an unknown site or an oversize range answers
4xx with ``{"error", "parameter", "message"}``; long lists page with ``limit`` / ``offset`` and say
``total`` and the ``next`` page's URL.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from flarewatch.web import files, params, queries
from flarewatch.web.auth import api_user, user_name

router = APIRouter(prefix="/api/v1", dependencies=[Depends(api_user)], tags=["FlareWatch"])

Limit = Annotated[int | None, Query(description=f"page size, 1 .. {params.MAX_LIMIT}")]
Offset = Annotated[int | None, Query(description="rows to skip")]


def clean(value):
    """JSON-ready: NaN / inf floats become null (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def _next(request: Request, total: int, limit: int, offset: int) -> str | None:
    if offset + limit >= total:
        return None
    return str(request.url.include_query_params(offset=offset + limit, limit=limit))


def _page(request: Request, key: str, total: int, rows: list[dict], limit: int, offset: int, **extra) -> dict:
    return clean({**extra, "total": total, "limit": limit, "offset": offset,
                  "next": _next(request, total, limit, offset), key: rows})


def _access(request: Request):
    return request.app.state.access


@router.get("/sites", summary="Sites with their totals (all data or start..end), last-30-days volume, open alerts")
def list_sites(request: Request,
               start: Annotated[str | None, Query(description="totals from this acquisition date (YYYY-MM-DD)")] = None,
               end: Annotated[str | None, Query(description="totals up to this acquisition date (YYYY-MM-DD)")] = None,
               ) -> dict:
    with _access(request).db() as conn:
        rng = queries.data_range(conn)
        period = None
        if start or end:
            period = params.date_range(start or str(rng["first_day"] or end), end or str(rng["last_day"] or start),
                                       rng["last_day"], max_days=params.MAX_PERIOD_DAYS)
        sites = queries.sites(conn, rng["last_day"], period=period)
        first, last = period or (rng["first_day"], rng["last_day"])
        total = queries.totals(conn, first, last) if last else None
    return clean({"data_range": rng, "period": {"start": first, "end": last}, "window_days": 30,
                  "count": len(sites), "totals": total, "sites": sites})


@router.get("/sites/{site_id}/daily", summary="A site's daily volume (90 % interval), CO2, CO2e and observations")
def site_daily(request: Request, site_id: str,
               start: Annotated[str | None, Query(description="first acquisition date, YYYY-MM-DD")] = None,
               end: Annotated[str | None, Query(description="last acquisition date, YYYY-MM-DD")] = None,
               limit: Limit = None, offset: Offset = None) -> dict:
    limit, offset = params.paging(limit, offset, default_limit=params.MAX_RANGE_DAYS)
    with _access(request).db() as conn:
        params.site(site_id, queries.site_ids(conn))
        first, last = params.date_range(start, end, queries.data_range(conn)["last_day"])
        total, rows = queries.daily(conn, site_id, first, last, limit=limit, offset=offset)
    return _page(request, "days", total, rows, limit, offset, site_id=site_id, start=first, end=last)


@router.get("/sites/{site_id}/days/{day}/detections", summary="A site-day's flares with features and intervals")
def site_day_detections(request: Request, site_id: str, day: str) -> dict:
    when = params.parse_date("day", day)
    with _access(request).db() as conn:
        params.site(site_id, queries.site_ids(conn))
        rows = queries.detections(conn, site_id, when)
    return clean({"site_id": site_id, "day": when, "annotated_png": f"files/{files.annotated_key(site_id, when)}",
                  "count": len(rows), "detections": rows})


@router.get("/monthly", summary="Monthly totals per operator, field or country, with the gap-aware estimate")
def monthly(request: Request,
            level: Annotated[str | None, Query(description="operator | field | country")] = "operator",
            month: Annotated[str | None, Query(description="YYYY-MM; empty = every month")] = None,
            limit: Limit = None, offset: Offset = None) -> dict:
    level = params.choice("level", level, queries.LEVELS, required=True)
    when = params.parse_month("month", month)
    limit, offset = params.paging(limit, offset)
    with _access(request).db() as conn:
        total, rows = queries.monthly(conn, level, when, limit=limit, offset=offset)
    return _page(request, "rows", total, rows, limit, offset, level=level, month=when)


@router.get("/alerts", summary="Alerts, newest period first")
def list_alerts(request: Request,
                status: Annotated[str | None, Query(description="open | acknowledged | resolved; empty = all")] = None,
                site_id: Annotated[str | None, Query(description="only this site")] = None,
                limit: Limit = None, offset: Offset = None) -> dict:
    status = params.choice("status", status, queries.ALERT_STATUSES)
    limit, offset = params.paging(limit, offset)
    with _access(request).db() as conn:
        if site_id:
            params.site(site_id, queries.site_ids(conn))
        total, rows = queries.alerts(conn, status, site_id, limit=limit, offset=offset)
    return _page(request, "alerts", total, rows, limit, offset, status=status, site_id=site_id)


@router.post("/alerts/{alert_id}/acknowledge", summary="Acknowledge an open alert (who and when are recorded)")
def acknowledge_alert(request: Request, alert_id: int, user: Annotated[object, Depends(api_user)]) -> dict:
    by = user_name(user)
    with _access(request).db(write=True) as conn:
        before = queries.alerts_by_id(conn, alert_id)
        if before is None:
            raise params.ParamError("alert_id", f"no alert {alert_id}", status=404, error="unknown_alert")
        if before["status"] == "resolved":
            raise params.ParamError("alert_id", f"alert {alert_id} is resolved; nothing to acknowledge", status=409,
                                    error="alert_resolved")
        after = queries.acknowledge(conn, alert_id, by)
    return clean({"changed": before["status"] == "open", "alert": after})


@router.get("/reports", summary="The monthly report files in the processed bucket, with download URLs")
def list_reports(request: Request,
                 month: Annotated[str | None, Query(description="YYYY-MM; empty = every month")] = None,
                 level: Annotated[str | None, Query(description="operator | field | country")] = None) -> dict:
    when = params.parse_month("month", month)
    level = params.choice("level", level, queries.LEVELS)
    access = _access(request)
    rows = files.list_reports(access.s3(), access.processed_bucket)
    rows = [r for r in rows if (when is None or r["month"] == f"{when:%Y-%m}") and (level is None or r["level"] == level)]
    base = request.scope.get("root_path", "").rstrip("/") + "/files"
    for r in rows:
        r["url"] = f"{base}/{r['key']}"
    return clean({"month": when, "level": level, "count": len(rows), "reports": rows})
