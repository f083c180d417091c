"""Object-store layout and thin S3 helpers.

Keys are deterministic functions of (source, acquisition date, site), partitioned by
acquisition date (Hive-style ``date=YYYY-MM-DD``), so a rerun overwrites the same objects.

rawdata bucket::

    sentinel2/source=<src>/date=<YYYY-MM-DD>/site=<site_id>/B8A_B11_B12.tif
    viirs/source=<src>/date=<YYYY-MM-DD>/site=<site_id>/nightfire.csv
    truth/source=<src>/date=<YYYY-MM-DD>/site=<site_id>/truth.json      (demo source only)
    raw/source=<src>/collection=<col>/baseline=<pb>/date=<YYYY-MM-DD>/site=<site_id>/<name>
    raw/source=<src>/collection=<col>/baseline=<pb>/date=<YYYY-MM-DD>/<name>   (shared by all sites)

``raw/...`` holds what a real provider answered, byte for byte (STAC items, COG windows, FIRMS
CSV, VNF nightly files), keyed by provider, collection (e.g. ``sentinel-2-c1-l2a``,
``VIIRS_NOAA20_NRT``, ``VNF_npp``) and processing baseline (e.g. ``05.11``, ``2.0NRT``, ``v30``;
``na`` when unknown), so processing can be re-run without downloading again. ``sentinel2/`` and
``viirs/`` hold the normalized tile and VNF-schema CSV processing reads, whatever the provider.

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


def _slug(value: str | None, what: str) -> str:
    """A key component: no '/', no '..', never empty (``na`` when unknown)."""
    text = str(value or "").strip()
    if not text:
        return "na"
    text = text.replace("/", "_").replace("\\", "_")
    if text in (".", ".."):
        raise ValueError(f"{what} {value!r} cannot be a key component")
    return text


def raw_object_prefix(source: str, collection: str | None, baseline: str | None, day: date,
                      site_id: str | None = None) -> str:
    """``raw/source=../collection=../baseline=../date=..[/site=..]/`` (``site_id`` None: shared)."""
    p = (f"raw/source={_slug(source, 'source')}/collection={_slug(collection, 'collection')}"
         f"/baseline={_slug(baseline, 'baseline')}/date={day.isoformat()}/")
    if site_id is not None:
        p += f"site={_slug(site_id, 'site_id')}/"
    return p


def raw_object_key(source: str, collection: str | None, baseline: str | None, day: date,
                   site_id: str | None, name: str) -> str:
    """Key of one provider response stored unchanged (see the module docstring).

    ``day``: the acquisition date (per-site objects) or the provider's file date (shared objects,
    ``site_id`` None, e.g. one VNF nightly file used by every site). ``name`` may contain '/'.
    """
    parts = [p for p in str(name).split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError(f"bad raw object name {name!r}")
    return raw_object_prefix(source, collection, baseline, day, site_id) + "/".join(parts)


def processed_prefix(day: date, site_id: str) -> str:
    return f"tiles/{_part(None, day, site_id)}/"


def processed_keys(day: date, site_id: str) -> dict[str, str]:
    p = processed_prefix(day, site_id)
    return {"png": p + "annotated.png", "geojson": p + "detections.geojson", "footprints": p + "footprints.geojson",
            "result": p + "result.json"}


QUARANTINE_PREFIX = "quarantine/"


def quarantine_key(key: str) -> str:
    """Where a raw object that failed validation is kept aside: ``quarantine/<its rawdata key>``
    (deterministic: a rerun overwrites the same copy); ``<that>.reason.json`` says why."""
    return QUARANTINE_PREFIX + key


def quarantine(s3, bucket: str, key: str, reason: dict) -> str:
    """Copy ``s3://bucket/key`` to ``quarantine_key(key)`` with a ``.reason.json`` beside it; the
    original stays where ingest put it (re-queueing after a fix re-reads it). Returns the copy's key."""
    import json

    dest = quarantine_key(key)
    s3.copy_object(Bucket=bucket, Key=dest, CopySource={"Bucket": bucket, "Key": key})
    put_bytes(s3, bucket, dest + ".reason.json", json.dumps({"source_key": key, **reason}, default=str).encode(),
              "application/json")
    return dest


def put_bytes(s3, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)


def get_bytes(s3, bucket: str, key: str) -> bytes:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey as exc:
        raise FileNotFoundError(f"s3://{bucket}/{key} does not exist") from exc


class RawStore:
    """The ``rawdata`` bucket seen by the sources: a read-through cache of provider responses.

    ``get`` returns None when the key does not exist. Sources use it to share one download
    between sites (a VNF nightly file) and across reruns.
    """

    def __init__(self, s3, bucket: str):
        self.s3 = s3
        self.bucket = bucket

    def get(self, key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        except Exception as exc:  # some S3 servers answer a plain 404 ClientError
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        put_bytes(self.s3, self.bucket, key, data, content_type)


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
