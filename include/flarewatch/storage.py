"""Object-store layout and thin S3 helpers.

Keys are deterministic functions of (source, acquisition date, site), partitioned by
acquisition date (Hive-style ``date=YYYY-MM-DD``), so a rerun overwrites the same objects.

rawdata bucket::

    sentinel2/source=<src>/date=<YYYY-MM-DD>/site=<site_id>/B8A_B11_B12.tif
    viirs/source=<src>/date=<YYYY-MM-DD>/site=<site_id>/nightfire.csv
    truth/source=<src>/date=<YYYY-MM-DD>/site=<site_id>/truth.json      (demo source only)

processed bucket::

    tiles/date=<YYYY-MM-DD>/site=<site_id>/annotated.png
    tiles/date=<YYYY-MM-DD>/site=<site_id>/detections.geojson
    tiles/date=<YYYY-MM-DD>/site=<site_id>/result.json
"""

from __future__ import annotations

from datetime import date


def _part(source: str | None, day: date, site_id: str) -> str:
    src = f"source={source}/" if source else ""
    return f"{src}date={day.isoformat()}/site={site_id}"


def raw_tile_key(source: str, day: date, site_id: str) -> str:
    return f"sentinel2/{_part(source, day, site_id)}/B8A_B11_B12.tif"


def raw_viirs_key(source: str, day: date, site_id: str) -> str:
    return f"viirs/{_part(source, day, site_id)}/nightfire.csv"


def raw_truth_key(source: str, day: date, site_id: str) -> str:
    return f"truth/{_part(source, day, site_id)}/truth.json"


def processed_prefix(day: date, site_id: str) -> str:
    return f"tiles/{_part(None, day, site_id)}/"


def processed_keys(day: date, site_id: str) -> dict[str, str]:
    p = processed_prefix(day, site_id)
    return {"png": p + "annotated.png", "geojson": p + "detections.geojson", "result": p + "result.json"}


def put_bytes(s3, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)


def get_bytes(s3, bucket: str, key: str) -> bytes:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey as exc:
        raise FileNotFoundError(f"s3://{bucket}/{key} does not exist") from exc


def ensure_buckets(s3, buckets) -> None:
    """Create the buckets that do not exist yet (idempotent)."""
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in buckets:
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)


def list_keys(s3, bucket: str, prefix: str = "") -> list[str]:
    keys: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys
