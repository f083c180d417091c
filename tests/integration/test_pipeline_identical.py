"""The per-tile task's speed-ups change nothing it writes (issue 14), on real Postgres + S3.

The same demo site-days are ingested and processed twice, each time into a fresh database and
fresh buckets: once with every speed-up of ``process.site_day.process_site_day`` switched off (the
reference: each VIIRS night parsed column by column on every read, the DataFrame matching
functions for each detection, the PNG rendered with its legend drawn before the other objects
are written and the rows after them) and once as deployed (nights parsed once per process and
matched on prepared arrays, the tile's arrays shared by its detections, the PNG rendered in the
background with its static parts pasted and encoded by ``render.png_bytes``, the rows' commit
waiting for it). Every row and every object must be identical, byte for byte, the PNG pictures
pixel for pixel. A replaced VIIRS object and an unreadable one must be seen as such by the night
cache.
"""

from __future__ import annotations

import dataclasses
import functools
import io
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
from PIL import Image

from flarewatch.config import Settings
from flarewatch.dev import servers
from flarewatch.estimate import site_day as estimate_mod
from flarewatch.ingest import viirs
from flarewatch.ingest.site_day import ingest_site_day
from flarewatch.ingest.sources import get_source
from flarewatch.process import render
from flarewatch.process import site_day as process_mod
from flarewatch.process.site_day import process_site_day
from flarewatch.store import db
from flarewatch.store import objects as storage
from flarewatch.store.seed import migrate_and_seed

pytestmark = pytest.mark.integration

DAYS = [date(2024, 12, 1) + timedelta(days=i) for i in range(8)]  # a full viirs_nights_seen window for the last
SITES = ("rumaila-n", "cantarell", "ebocha")


def _reference(monkeypatch) -> None:
    monkeypatch.setattr(viirs.NIGHTS, "enabled", False)
    monkeypatch.setattr(viirs, "_vnf_frame", functools.partial(viirs._vnf_frame, fast=False))
    monkeypatch.setattr(estimate_mod, "PREPARED", False)
    monkeypatch.setattr(process_mod, "BACKGROUND_PNG", False)
    monkeypatch.setattr(render, "STATIC_OVERLAYS", False)
    monkeypatch.setattr(render, "FAST_PNG", False)


@contextmanager
def _world(pg_server_dsn, s3, name: str):
    # the same (emptied) buckets for both runs: their names end up in the rows' details
    cfg = dataclasses.replace(Settings(), raw_bucket="ident-raw", processed_bucket="ident-processed")
    storage.ensure_buckets(s3, [cfg.raw_bucket, cfg.processed_bucket])
    for bucket in (cfg.raw_bucket, cfg.processed_bucket):
        for key in storage.list_keys(s3, bucket):
            s3.delete_object(Bucket=bucket, Key=key)
    with servers.temporary_database(pg_server_dsn, f"fw_ident_{name}") as dsn:
        conn = db.connect(dsn)
        try:
            migrate_and_seed(conn, site_map=False)
            yield conn, cfg
        finally:
            conn.close()


def _snapshot(conn, s3, cfg) -> dict:
    out = {}
    with conn.cursor() as cur:
        for table, order in (("flare_detections", "site_id, acquisition_date, detection_key"),
                             ("flare_emissions", "site_id, acquisition_date, detection_key"),
                             ("scenes", "site_id, acquisition_date, sensor, source"),
                             ("site_day_processing", "site_id, acquisition_date")):
            cur.execute(f"SELECT * FROM {table} ORDER BY {order}")
            cols = [c.name for c in cur.description]
            out[table] = [{k: v for k, v in zip(cols, r) if not k.endswith("_at") and not k.startswith("airflow")}
                          for r in cur.fetchall()]
    conn.commit()
    out["objects"] = {k: storage.get_bytes(s3, cfg.processed_bucket, k)
                      for k in storage.list_keys(s3, cfg.processed_bucket)}
    return out


def _run(conn, s3, cfg) -> dict:
    sites = {s.site_id: s for s in db.fetch_sites(conn, list(SITES))}
    for d in DAYS:
        for s in SITES:
            ingest_site_day(sites[s], d, get_source("demo"), s3, conn, cfg)
    results = [process_site_day(sites[s], d, s3, conn, cfg) for d in DAYS for s in SITES]
    # a previous night replaced (one row less) and one unreadable: the days after them are redone
    site = sites[SITES[0]]
    night_keys = db.viirs_night_keys(conn, site.site_id, DAYS[0], DAYS[-1])
    body = storage.get_bytes(s3, cfg.raw_bucket, night_keys[DAYS[3]]).decode()
    storage.put_bytes(s3, cfg.raw_bucket, night_keys[DAYS[3]], "\n".join(body.splitlines()[:-1]).encode())
    storage.put_bytes(s3, cfg.raw_bucket, night_keys[DAYS[5]], b"\xff\xfe not a csv")
    results += [process_site_day(site, d, s3, conn, cfg) for d in DAYS[4:]]
    return {"results": results, **_snapshot(conn, s3, cfg)}


def _pixels(png: bytes) -> tuple:
    img = Image.open(io.BytesIO(png))
    img.load()
    return img.mode, img.size, img.tobytes()


def test_speedups_write_identical_rows_and_objects(pg_server_dsn, s3, monkeypatch):
    with _world(pg_server_dsn, s3, "ref") as (conn, cfg), monkeypatch.context() as m:
        _reference(m)
        ref = _run(conn, s3, cfg)
    viirs.NIGHTS.clear()
    with _world(pg_server_dsn, s3, "fast") as (conn, cfg):
        fast = _run(conn, s3, cfg)
        assert viirs.NIGHTS.hits > 0  # the previous nights came from the cache
    n_flares = sum(r["n_detections"] for r in ref["results"])
    assert n_flares > 20 and any(r["n_viirs_only"] for r in ref["results"])
    assert len(ref["objects"]) == 4 * len(SITES) * len(DAYS)
    for key in ("results", "flare_detections", "flare_emissions", "scenes", "site_day_processing"):
        assert fast[key] == ref[key], key
    assert fast["objects"].keys() == ref["objects"].keys()
    for k, data in ref["objects"].items():
        if k.endswith(".png"):  # PIL's encoder there, render.png_bytes here: the same picture
            assert _pixels(fast["objects"][k]) == _pixels(data), k
        else:
            assert fast["objects"][k] == data, k
    nights_seen = {r["features"]["viirs_nights_seen"] for r in fast["flare_detections"]}
    assert max(nights_seen) >= 6  # the full window was read


def test_rows_are_committed_only_once_every_object_is_written(pg_server_dsn, s3, monkeypatch):
    """The PNG is written in the background while the rows are sent: when its write fails, the
    site-day's rows are rolled back and the error is the task's."""
    with _world(pg_server_dsn, s3, "commit") as (conn, cfg):
        site = db.fetch_sites(conn, [SITES[0]])[0]
        ingest_site_day(site, DAYS[0], get_source("demo"), s3, conn, cfg)
        put = storage.put_bytes

        def failing_png(s3_, bucket, key, data, content_type="application/octet-stream"):
            if key.endswith(".png"):
                raise OSError("the object store went away")
            return put(s3_, bucket, key, data, content_type)

        monkeypatch.setattr(storage, "put_bytes", failing_png)
        with pytest.raises(OSError, match="went away"):
            process_site_day(site, DAYS[0], s3, conn, cfg)
        snap = _snapshot(conn, s3, cfg)
        assert snap["flare_detections"] == [] and snap["site_day_processing"] == []
        assert {r["status"] for r in snap["scenes"]} == {"ingested"}
        monkeypatch.setattr(storage, "put_bytes", put)
        result = process_site_day(site, DAYS[0], s3, conn, cfg)
        snap = _snapshot(conn, s3, cfg)
        assert len(snap["flare_detections"]) == result["n_detections"] > 0
        assert set(result["objects"].values()) <= set(snap["objects"])
