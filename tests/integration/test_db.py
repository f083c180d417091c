"""Results DB against a real PostgreSQL: migrations, site seed, idempotent writes, rollups."""

from __future__ import annotations

from datetime import date

import pytest

from flarewatch.sites import load_sites
from flarewatch.store import db

pytestmark = pytest.mark.integration


def test_migrate_is_idempotent(conn):
    assert db.migrate(conn) == []  # the session fixture applied everything already
    with conn.cursor() as cur:
        cur.execute("SELECT version FROM schema_migrations ORDER BY version")
        assert [r[0] for r in cur.fetchall()] == [v for v, _ in db.migrations()]


def test_site_seed_upsert_no_duplicates(conn):
    sites = load_sites()
    db.upsert_sites(conn, sites)
    db.upsert_sites(conn, sites)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM sites")
        assert cur.fetchone()[0] == len(sites)
    conn.commit()


def test_fetch_sites_unknown_id_is_a_clear_error(conn):
    with pytest.raises(ValueError, match="unknown or inactive site_id"):
        db.fetch_sites(conn, ["no-such-site"])


def _det(site_id, day, key, **kw):
    row = {c: None for c in db.DETECTION_COLUMNS}
    row.update(site_id=site_id, acquisition_date=day, detection_key=key, sensor="sentinel2",
               detector="threshold-tai-nhi", detector_version="threshold-tai-nhi-v1", lat=30.6, lon=47.3,
               bbox_px=[1, 2, 3, 4], features={"hot_pixels": 3})
    row.update(kw)
    return row


def _em(site_id, day, key, volume):
    return {"site_id": site_id, "acquisition_date": day, "detection_key": key, "volume_kscm_d": volume,
            "volume_method": "linear", "radiant_heat_mw": volume / 31.5, "rh_source": "viirs",
            "co2_t": volume * 1.9, "ch4_slip_t": 0.01, "co2e_t": volume * 2.2, "volume_lo_kscm_d": None,
            "volume_hi_kscm_d": None, "model_version": "calibration-linear-v1", "emission_factors": {"gwp": 30}}


def test_replace_site_day_results_upserts_and_removes_stale(conn):
    site, day = "rumaila-n", date(2024, 1, 10)
    for sensor in ("sentinel2", "viirs"):
        db.upsert_scene(conn, {c: None for c in db.SCENE_COLUMNS} | {
            "site_id": site, "acquisition_date": day, "sensor": sensor, "source": "test", "status": "ingested"})
    dets = [_det(site, day, "s2:10:10"), _det(site, day, "s2:50:60")]
    ems = [_em(site, day, "s2:10:10", 10.0), _em(site, day, "s2:50:60", 20.0)]
    db.replace_site_day_results(conn, site, day, dets, ems, ["sentinel2", "viirs"])
    db.replace_site_day_results(conn, site, day, dets, ems, ["sentinel2", "viirs"])  # retry: same rows
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM flare_detections WHERE site_id=%s AND acquisition_date=%s", (site, day))
        assert cur.fetchone()[0] == 2
        cur.execute("SELECT status, processed_at IS NOT NULL FROM scenes WHERE site_id=%s AND acquisition_date=%s",
                    (site, day))
        assert set(cur.fetchall()) == {("processed", True)}
    conn.commit()
    # reprocessing finds only one flare: the other's detection and emission rows go away
    db.replace_site_day_results(conn, site, day, dets[:1], ems[:1], ["sentinel2", "viirs"])
    with conn.cursor() as cur:
        cur.execute("SELECT detection_key FROM flare_detections WHERE site_id=%s AND acquisition_date=%s", (site, day))
        assert [r[0] for r in cur.fetchall()] == ["s2:10:10"]
        cur.execute("SELECT count(*) FROM flare_emissions WHERE site_id=%s AND acquisition_date=%s", (site, day))
        assert cur.fetchone()[0] == 1
    conn.commit()


def test_rollups_daily_and_monthly(conn):
    site, day = "ahvaz-w", date(2024, 2, 3)
    db.upsert_scene(conn, {c: None for c in db.SCENE_COLUMNS} | {
        "site_id": site, "acquisition_date": day, "sensor": "sentinel2", "source": "test", "status": "ingested",
        "cloud_fraction": 0.25})
    db.replace_site_day_results(conn, site, day, [_det(site, day, "s2:1:1"), _det(site, day, "s2:9:9")],
                                [_em(site, day, "s2:1:1", 5.0), _em(site, day, "s2:9:9", 7.0)], ["sentinel2"])
    db.refresh_rollups(conn, [day])
    db.refresh_rollups(conn, [day])  # rerun: same totals, no duplicates
    with conn.cursor() as cur:
        cur.execute("SELECT n_flares, volume_kscm, s2_observed, viirs_observed, cloud_fraction"
                    " FROM emissions_daily WHERE site_id=%s AND day=%s", (site, day))
        assert cur.fetchall() == [(2, 12.0, True, False, 0.25)]
        cur.execute("SELECT group_level, group_value, n_sites, site_days, volume_kscm FROM emissions_monthly"
                    " WHERE month = '2024-02-01' ORDER BY group_level")
        rows = cur.fetchall()
    conn.commit()
    assert rows == [("country", "Iran", 1, 1, 12.0), ("field", "Ahvaz", 1, 1, 12.0),
                    ("operator", "National Iranian South Oil Company", 1, 1, 12.0)]


def test_pending_and_stale_work_is_found_from_state(conn):
    site, day = "parshall", date(2024, 3, 5)
    db.upsert_scene(conn, {c: None for c in db.SCENE_COLUMNS} | {
        "site_id": site, "acquisition_date": day, "sensor": "sentinel2", "source": "test", "status": "ingested"})
    assert (site, day) in db.pending_site_days(conn)
    db.replace_site_day_results(conn, site, day, [], [], ["sentinel2"])
    assert (site, day) not in db.pending_site_days(conn)
    assert day in db.stale_rollup_days(conn)  # processed, never rolled up
    db.refresh_rollups(conn, [day])
    assert day not in db.stale_rollup_days(conn)
    # re-ingest (e.g. a rerun of flare_ingest): pending again until processed
    db.upsert_scene(conn, {c: None for c in db.SCENE_COLUMNS} | {
        "site_id": site, "acquisition_date": day, "sensor": "sentinel2", "source": "test", "status": "ingested"})
    assert (site, day) in db.pending_site_days(conn)
    db.replace_site_day_results(conn, site, day, [], [], ["sentinel2"])
    with conn.cursor() as cur:
        cur.execute("SELECT n_flares, volume_kscm FROM emissions_daily WHERE site_id=%s AND day=%s", (site, day))
        assert cur.fetchall() == [(0, 0.0)]  # a site-day with no flares is a zero, not a gap
    conn.commit()


def test_scene_site_days_lists_the_sites_with_scenes_on_those_days(conn):
    day = date(2024, 4, 9)
    db.upsert_scene(conn, {"site_id": "ebocha", "acquisition_date": day, "sensor": "viirs", "source": "test",
                           "status": "no_data"})
    assert db.scene_site_days(conn, [day]) == [("ebocha", day)]
    assert db.scene_site_days(conn, []) == []
