"""The HTML pages under ``/flarewatch/``: overview, site, alerts, reports, and file downloads.

Server-rendered (Jinja2 templates in ``web/templates``, inline SVG charts from ``web.charts``, one
vendored stylesheet in ``web/static``): no CDN and no JavaScript library, so the page works
offline and inside the Airflow UI's plugin frame. Every page needs an Airflow login
(``web.auth.page_user``: a redirect to Airflow's login otherwise).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from flarewatch.web import charts, files, params, queries, runs
from flarewatch.web.auth import page_user, user_name

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
SERIES_DAYS = 90  # the site page's default window: the 90 days up to the data's last day (or from its first)


def _num(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _pct(value) -> str:
    """A percentage; a no-break space keeps the sign on the number's line ("7 %" wrapped in a card)."""
    return "–" if value is None else f"{100 * value:.0f}\u00a0%"


def _interval(lo, hi, digits: int = 1) -> str:
    """``lo – hi``; a single dash where the model gives no interval (the published calibration)."""
    if lo is None or hi is None:
        return "–"
    if lo == hi:  # a degenerate interval (no flare, or a model without one): the value alone
        return _num(lo, digits)
    return f"{_num(lo, digits)} – {_num(hi, digits)}"


templates.env.filters["num"] = _num
templates.env.globals["interval"] = _interval
templates.env.filters["pct"] = _pct


def _render(request: Request, name: str, user, **context) -> HTMLResponse:
    base = request.scope.get("root_path", "").rstrip("/")
    return templates.TemplateResponse(request, name, {"base": base, "user": user_name(user), **context})


def _access(request: Request):
    return request.app.state.access


def _month(day: date | None) -> date | None:
    return day.replace(day=1) if day else None


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, user: Annotated[object, Depends(page_user)],
             start: Annotated[str | None, Query()] = None, end: Annotated[str | None, Query()] = None):
    base = request.scope.get("root_path", "").rstrip("/")
    with _access(request).db() as conn:
        rng = queries.data_range(conn)
        last = rng["last_day"]
        period = None
        if last and (start or end):
            period = params.date_range(start or str(rng["first_day"]), end or str(last), last,
                                       max_days=params.MAX_PERIOD_DAYS)
        sites = queries.sites(conn, last, period=period)
        periods = []
        if last:
            periods = [("Last day", queries.totals(conn, last, last)),
                       ("Last 30 days", queries.totals(conn, last - timedelta(days=29), last)),
                       ("Selected period" if period else "All data", queries.totals(conn, *(period or (rng["first_day"], last))))]
        month = queries.month_estimate(conn, _month(last)) if last else None
        _, open_alerts = queries.alerts(conn, "open", None, limit=10, offset=0)
    dag_runs, runs_error = runs.latest_runs()
    site_map = charts.site_map_svg(sites, link=lambda s: f"{base}/site/{s['site_id']}")
    return _render(request, "overview.html", user, rng=rng, sites=sites, periods=periods, month=month, period=period,
                   open_alerts=open_alerts, dag_runs=dag_runs, runs_error=runs_error, site_map=site_map)


def _chart_rows(days: list[dict], first: date, last: date) -> list[dict]:
    """One chart row per calendar day of ``first`` .. ``last``: a day without a site-day row (no
    scene ingested) is drawn as not observed, never as zero."""
    by_day = {d["day"]: d for d in days}
    out = []
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        d = by_day.get(day)
        if d is None:
            out.append({"date": day, "volume_kscm_d": None, "volume_low_kscm_d": None, "volume_high_kscm_d": None,
                        "co2e_t": None, "observed": False, "status": None, "estimated": False})
            continue
        out.append({"date": day, "volume_kscm_d": d["volume_kscm"], "volume_low_kscm_d": d["volume_lo_kscm"],
                    "volume_high_kscm_d": d["volume_hi_kscm"], "co2e_t": d["co2e_t"], "observed": bool(d["observed"]),
                    "status": d["status"], "estimated": False})
    return out


@router.get("/site/{site_id}", response_class=HTMLResponse)
def site_page(request: Request, site_id: str, user: Annotated[object, Depends(page_user)],
              start: Annotated[str | None, Query()] = None, end: Annotated[str | None, Query()] = None,
              day: Annotated[str | None, Query()] = None):
    with _access(request).db() as conn:
        known = queries.site_ids(conn)
        params.site(site_id, known)
        rng = queries.data_range(conn)
        first, last = params.date_range(start, end, rng["last_day"], default_days=SERIES_DAYS)
        if not start and rng["first_day"] and first < rng["first_day"] <= last:
            first = rng["first_day"]  # a short history fills the chart instead of a corner of 90 days
        _, days = queries.daily(conn, site_id, first, last, limit=params.MAX_RANGE_DAYS, offset=0)
        chosen = params.parse_date("day", day)
        if chosen is None:  # the last observed day with flares, else the last day shown
            flaring = [d["day"] for d in days if d["n_flares"]]
            chosen = flaring[-1] if flaring else (days[-1]["day"] if days else None)
        flares = queries.detections(conn, site_id, chosen) if chosen else []
        chosen_row = next((d for d in days if d["day"] == chosen), None)
        site = next(s for s in queries.sites(conn, rng["last_day"]) if s["site_id"] == site_id)
        recon = queries.reconciliation(conn, site_id)
        _, site_alerts = queries.alerts(conn, None, site_id, limit=20, offset=0)
    versions: dict[tuple, int] = {}
    for d in days:
        if d["detector_version"] or d["volume_model_version"]:
            key = (d["detector_version"], d["volume_model_version"])
            versions[key] = versions.get(key, 0) + 1
    rows = _chart_rows(days, first, last)
    return _render(
        request, "site.html", user, site=site, first=first, last=last, days=days, chosen=chosen,
        chosen_row=chosen_row, flares=flares, recon=recon, site_alerts=site_alerts, versions=versions,
        series_svg=charts.daily_series_svg(rows), co2_svg=charts.daily_co2_svg(rows),
        png_key=files.annotated_key(site_id, chosen) if chosen else None,
        process_runs_url="/dags/flare_process/runs", ingest_runs_url="/dags/flare_ingest/runs")


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, user: Annotated[object, Depends(page_user)],
                status: Annotated[str | None, Query()] = "open", site_id: Annotated[str | None, Query()] = None,
                offset: Annotated[int | None, Query()] = None):
    status = params.choice("status", status, queries.ALERT_STATUSES)
    limit, offset = params.paging(100, offset)
    with _access(request).db() as conn:
        known = queries.site_ids(conn)
        if site_id:
            params.site(site_id, known)
        total, rows = queries.alerts(conn, status, site_id or None, limit=limit, offset=offset)
    return _render(request, "alerts.html", user, alerts=rows, total=total, status=status or "", site_id=site_id or "",
                   known=known, statuses=queries.ALERT_STATUSES, limit=limit, offset=offset)


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_form(request: Request, alert_id: int, user: Annotated[object, Depends(page_user)],
                     back: Annotated[str, Form()] = ""):
    """The alerts page's Acknowledge button (a plain form POST; the session cookie is SameSite=Lax)."""
    with _access(request).db(write=True) as conn:
        if queries.alerts_by_id(conn, alert_id) is None:
            raise params.ParamError("alert_id", f"no alert {alert_id}", status=404, error="unknown_alert")
        queries.acknowledge(conn, alert_id, user_name(user))
    base = request.scope.get("root_path", "").rstrip("/")
    target = back if back.startswith(f"{base}/") else f"{base}/alerts"
    return RedirectResponse(target, status_code=303)


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, user: Annotated[object, Depends(page_user)]):
    access = _access(request)
    rows = files.list_reports(access.s3(), access.processed_bucket)
    grouped: dict[tuple, list[dict]] = {}
    for r in rows:
        grouped.setdefault((r["month"], r["level"], r["value"]), []).append(r)
    return _render(request, "reports.html", user, grouped=grouped)


@router.get("/files/{key:path}", name="download")
def download(request: Request, key: str, user: Annotated[object, Depends(page_user)]):
    """A report file or annotated tile from ``processed`` (other keys: 404)."""
    content_type = files.servable(key)
    if content_type is None:
        raise params.ParamError("key", f"{key!r} is not a report or tile file", status=404, error="not_found")
    access = _access(request)
    try:
        obj = access.s3().get_object(Bucket=access.processed_bucket, Key=key)
    except Exception as exc:  # noqa: BLE001 - botocore's NoSuchKey and friends
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            raise params.ParamError("key", f"{key!r} does not exist", status=404, error="not_found") from None
        raise
    headers = {"Cache-Control": "private, max-age=300"}
    if not content_type.startswith("image/"):
        headers["Content-Disposition"] = f'attachment; filename="{key.rsplit("/", 1)[-1]}"'
    return Response(obj["Body"].read(), media_type=content_type, headers=headers)


def query_string(**kwargs) -> str:
    return urlencode({k: v for k, v in kwargs.items() if v not in (None, "")})


templates.env.globals["qs"] = query_string
