"""The shipped YOLO weights load offline and find a known simulated flare at the right place."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WEIGHTS = REPO / "models" / "detector" / "flare-yolo11n.pt"


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    from flarewatch.detect.yolo import YoloFlareDetector, offline_environment

    offline_environment(tmp_path_factory.mktemp("yolo-state"))
    return YoloFlareDetector(WEIGHTS, runtime="torch")


def test_shipped_weights_find_a_clear_sky_flare_at_its_lat_lon(detector):
    from flarewatch.simulation.scene import simulate_scene
    from flarewatch.sites import load_sites

    site = {s.site_id: s for s in load_sites()}["rumaila-n"]
    scene = simulate_scene(site, date(2025, 6, 3))
    truth = [f for f in scene.truth["flares"] if f["active"] and f["in_scene"] and not f["cloud_covered"]]
    assert truth, "the chosen scene must hold a clear-sky active flare"
    dets = detector.detect(scene.tile)
    for f in truth:
        near = [d for d in dets if abs(d.row - f["row"]) <= 2 and abs(d.col - f["col"]) <= 2]
        assert near, f"flare {f['flare_id']} at ({f['row']:.1f}, {f['col']:.1f}) not found in {dets}"
        lon, lat = scene.tile.pixel_to_lonlat(near[0].row, near[0].col)
        assert abs(lat - f["lat"]) < 0.0005 and abs(lon - f["lon"]) < 0.0005  # ~50 m
        assert near[0].detector == "yolo" and 0 < near[0].confidence <= 1
