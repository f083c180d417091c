"""Bad input in rawdata gives a clear error naming the object and leaves existing results alone."""

from __future__ import annotations

from datetime import date

import pytest

from flarewatch.config import Settings
from flarewatch.ingest.site_day import ingest_site_day
from flarewatch.ingest.sources import get_source
from flarewatch.process.site_day import process_site_day
from flarewatch.store import db
from flarewatch.store import objects as storage

pytestmark = pytest.mark.integration


def _site(conn, site_id):
    return db.fetch_sites(conn, [site_id])[0]


def _detections(conn, site_id, day):
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM flare_detections WHERE site_id=%s AND acquisition_date=%s", (site_id, day))
        n = cur.fetchone()[0]
    conn.commit()
    return n


def _scene(conn, site_id, day, sensor):
    return db.fetch_scenes(conn, site_id, day)[sensor]


def test_corrupt_tile_is_quarantined_and_the_day_is_not_observed_by_sentinel2(conn, s3):
    cfg, day = Settings(), date(2025, 7, 2)
    site = _site(conn, "hassi-messaoud")
    ingest_site_day(site, day, get_source("demo"), s3, conn, cfg)
    process_site_day(site, day, s3, conn, cfg)
    assert _detections(conn, site.site_id, day) > 0

    key = storage.raw_tile_key("demo", day, site.site_id)
    storage.put_bytes(s3, cfg.raw_bucket, key, b"this is not a GeoTIFF")
    result = process_site_day(site, day, s3, conn, cfg)
    scene = _scene(conn, site.site_id, day, "sentinel2")
    assert (scene["status"], scene["outcome"]) == ("quarantined", "unreadable")
    assert f"s3://rawdata/{key}" in scene["detail"] and "not a readable GeoTIFF" in scene["detail"]
    assert storage.get_bytes(s3, cfg.raw_bucket, storage.quarantine_key(key)) == b"this is not a GeoTIFF"
    assert storage.get_bytes(s3, cfg.raw_bucket, key) == b"this is not a GeoTIFF"  # the original stays: nothing lost
    assert result["scenes"]["sentinel2"] == {"status": "quarantined", "outcome": "unreadable"}
    assert result["n_sentinel2"] == 0
    db.refresh_rollups(conn, [day])
    with conn.cursor() as cur:
        cur.execute("SELECT status, s2_observed, viirs_observed FROM emissions_daily WHERE site_id = %s AND day = %s",
                    (site.site_id, day))
        assert cur.fetchone() == ("processed", False, True)
    conn.commit()


def test_malformed_viirs_csv_is_quarantined_and_sentinel2_still_counts(conn, s3):
    cfg, day = Settings(), date(2025, 7, 3)
    site = _site(conn, "rumaila-n")
    ingest_site_day(site, day, get_source("demo"), s3, conn, cfg)
    key = storage.raw_viirs_key("demo", day, site.site_id)
    storage.put_bytes(s3, cfg.raw_bucket, key, b"id_Key,Lat_GMTCO\nx,1\n")
    result = process_site_day(site, day, s3, conn, cfg)
    scene = _scene(conn, site.site_id, day, "viirs")
    assert (scene["status"], scene["outcome"]) == ("quarantined", "bad_file")
    assert "missing" in scene["detail"]
    assert result["scenes"]["sentinel2"]["status"] == "processed"
    assert result["n_viirs_only"] == 0


def test_processing_a_day_that_was_never_ingested_says_so(conn, s3):
    with pytest.raises(LookupError, match="run flare_ingest for that date first"):
        process_site_day(_site(conn, "ebocha"), date(2019, 1, 1), s3, conn, Settings())


def test_unknown_scene_source_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown scene source 'sentinel-magic'"):
        get_source("sentinel-magic")
