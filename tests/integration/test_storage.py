"""S3 layout and helpers against a real S3 API server (rclone serve s3)."""

from __future__ import annotations

from datetime import date

import pytest

from flarewatch.store import objects as storage

pytestmark = pytest.mark.integration


def test_keys_are_deterministic_and_partitioned_by_date():
    d = date(2025, 6, 1)
    assert storage.raw_tile_key("demo", d, "rumaila-n") == \
        "sentinel2/source=demo/date=2025-06-01/site=rumaila-n/B8A_B11_B12.tif"
    assert storage.raw_viirs_key("demo", d, "x") == "viirs/source=demo/date=2025-06-01/site=x/nightfire.csv"
    assert storage.processed_keys(d, "x")["png"] == "tiles/date=2025-06-01/site=x/annotated.png"


def test_put_get_list_roundtrip(s3):
    storage.put_bytes(s3, "rawdata", "t/a.bin", b"abc")
    storage.put_bytes(s3, "rawdata", "t/a.bin", b"abcd")  # overwrite, not a second object
    assert storage.get_bytes(s3, "rawdata", "t/a.bin") == b"abcd"
    assert storage.list_keys(s3, "rawdata", "t/") == ["t/a.bin"]


def test_missing_object_is_a_clear_error(s3):
    with pytest.raises(FileNotFoundError, match="s3://rawdata/nope"):
        storage.get_bytes(s3, "rawdata", "nope/x.tif")


def test_ensure_buckets_is_idempotent(s3):
    storage.ensure_buckets(s3, ["rawdata", "processed", "extra-bucket"])
    storage.ensure_buckets(s3, ["rawdata", "processed", "extra-bucket"])
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {"rawdata", "processed", "extra-bucket"} <= names
