"""The objects of the ``processed`` bucket the page offers: monthly reports and annotated tiles.

Only keys under ``reports/`` and ``tiles/`` (and ``layers/``) with a known file type are served,
so the page cannot be used to read anything else from the bucket.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

SERVED_PREFIXES = ("reports/", "tiles/", "layers/")
CONTENT_TYPES = {".pdf": "application/pdf", ".csv": "text/csv; charset=utf-8", ".png": "image/png",
                 ".json": "application/json", ".geojson": "application/geo+json",
                 ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
_REPORT_RE = re.compile(r"^reports/month=(\d{4}-\d{2})/(operator|field|country)=([^/]+)/([^/]+)$")


def servable(key: str) -> str | None:
    """The content type of a key the page may serve, else None."""
    if not key.startswith(SERVED_PREFIXES) or ".." in key.split("/") or "//" in key:
        return None
    return CONTENT_TYPES.get(PurePosixPath(key).suffix.lower())


def list_reports(s3, bucket: str) -> list[dict]:
    """Every report file: month, level, value (the key's slug), file, size, modified, key; newest month first."""
    out = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix="reports/"):
        for obj in page.get("Contents", []):
            m = _REPORT_RE.match(obj["Key"])
            if m is None:
                continue
            out.append({"month": m.group(1), "level": m.group(2), "value": m.group(3), "file": m.group(4),
                        "size": obj["Size"], "modified": obj["LastModified"], "key": obj["Key"]})
    out.sort(key=lambda r: (-int(r["month"].replace("-", "")), r["level"], r["value"], r["file"]))
    return out


def annotated_key(site_id: str, day) -> str:
    """The annotated PNG of a site-day (where processing writes it)."""
    from flarewatch.store.objects import processed_keys

    return processed_keys(day, site_id)["png"]
