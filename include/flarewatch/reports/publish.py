"""Render a group's report files and write them: to ``s3://processed/reports/...`` (the
``emissions_report`` DAG) or to a local folder (``flarewatch report``). The only writing in
``flarewatch.reports``.

Keys are deterministic: ``reports/month=YYYY-MM/<level>=<slug of value>/<file>``. An object whose
bytes are already there is not written again, so a rerun on the same data changes nothing (not
even the object's modification time).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import unicodedata
from datetime import date
from pathlib import Path

from flarewatch.config import Settings
from flarewatch.reports.data import ReportData, group_report, groups, read_month

log = logging.getLogger(__name__)

FILES = ("report.pdf", "report.xlsx", "daily.csv", "sites.csv", "alerts.csv", "reconciliation.csv")
CONTENT_TYPES = {".pdf": "application/pdf", ".csv": "text/csv; charset=utf-8",
                 ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def slug(value: str) -> str:
    """A key component for a group's name: ASCII, lower case, words joined by '-'."""
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    text = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if not text:
        raise ValueError(f"{value!r} gives an empty key component")
    return text


def report_folder(month: date, level: str, value: str) -> str:
    """``month=YYYY-MM/<level>=<slug>``: the same below ``reports/`` in S3 and below a local folder."""
    return f"month={month:%Y-%m}/{level}={slug(value)}"


def report_prefix(month: date, level: str, value: str) -> str:
    return f"reports/{report_folder(month, level, value)}/"


def render(data: ReportData) -> dict[str, bytes]:
    """File name -> bytes of one report (pure)."""
    from flarewatch.reports import figures
    from flarewatch.reports.pdf import build_pdf
    from flarewatch.reports.tables import group_daily
    from flarewatch.reports.workbook import build_csvs, build_xlsx

    charts = {"daily": figures.daily_chart(group_daily(data), data.data_through),
              "sites": figures.site_bars(data.sites),
              "map": figures.site_map(data.sites, data.flares)}
    return {"report.pdf": build_pdf(data, charts), "report.xlsx": build_xlsx(data), **build_csvs(data)}


def put_if_changed(s3, bucket: str, key: str, body: bytes) -> bool:
    """Write ``body`` unless the object already holds these bytes (single-part ETag = MD5); True if written."""
    from botocore.exceptions import ClientError

    md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
    try:
        if s3.head_object(Bucket=bucket, Key=key)["ETag"].strip('"') == md5:
            return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=CONTENT_TYPES[Path(key).suffix])
    return True


def _check_unique(month: date, wanted: list[tuple[str, str]]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for level, value in wanted:
        other = seen.setdefault((level, slug(value)), value)
        if other != value:
            raise ValueError(f"{level}s {other!r} and {value!r} of {month:%Y-%m} share the key {slug(value)!r}")


def publish_month(conn, s3, settings: Settings, month: date, level: str | None = None,
                  value: str | None = None) -> list[dict]:
    """Render and write the month's reports (one group, one level or all); one dict per report."""
    data = read_month(conn, month, settings)
    wanted = groups(data, level, value)
    _check_unique(month, groups(data))
    out = []
    for lvl, val in wanted:
        t0 = time.perf_counter()
        files = render(group_report(data, lvl, val))
        prefix = report_prefix(month, lvl, val)
        written = [name for name, body in files.items()
                   if put_if_changed(s3, settings.processed_bucket, prefix + name, body)]
        out.append({"month": f"{month:%Y-%m}", "level": lvl, "value": val,
                    "prefix": f"s3://{settings.processed_bucket}/{prefix}", "files": sorted(files),
                    "written": written, "seconds": round(time.perf_counter() - t0, 2)})
        log.info("%s: %d file(s), %d written (%.1f s)", out[-1]["prefix"], len(files), len(written),
                 out[-1]["seconds"])
    return out


def write_local(conn, settings: Settings, month: date, out_dir: Path, level: str | None = None,
                value: str | None = None) -> list[dict]:
    """The same reports written under ``out_dir/month=YYYY-MM/<level>=<slug>/``."""
    data = read_month(conn, month, settings)
    out = []
    for lvl, val in groups(data, level, value):
        t0 = time.perf_counter()
        files = render(group_report(data, lvl, val))
        folder = Path(out_dir) / report_folder(month, lvl, val)
        folder.mkdir(parents=True, exist_ok=True)
        for name, body in files.items():
            path = folder / name
            if not path.exists() or path.read_bytes() != body:
                path.write_bytes(body)
        out.append({"month": f"{month:%Y-%m}", "level": lvl, "value": val, "folder": str(folder),
                    "files": sorted(files), "seconds": round(time.perf_counter() - t0, 2)})
    return out
