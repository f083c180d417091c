"""`flarewatch detect` end to end on GeoTIFFs in a temp dir, and process.files.detect_files."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest

from flarewatch import cli
from flarewatch.config import Settings
from flarewatch.estimate.site_day import estimate_site_day
from flarewatch.process import files
from flarewatch.process.files import RECORD_KEYS, detect_files
from flarewatch.simulation.scene import simulate_scene
from flarewatch.sites import load_sites
from flarewatch.tiles import encode_tile

DAY = date(2025, 6, 1)


@pytest.fixture(scope="module")
def scene():
    return simulate_scene(load_sites()[0], DAY)


def plain_product(tile) -> bytes:
    """The tile's DN as a plain product: GDAL scale/offset, band descriptions, common tag names."""
    import rasterio
    from rasterio.io import MemoryFile

    h, w = tile.shape
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", height=h, width=w, count=3, dtype="uint16", nodata=0,
                      crs=rasterio.crs.CRS.from_epsg(tile.crs_epsg), transform=tile.transform) as dst:
            dst.write(tile.dn)
            dst.scales, dst.offsets = [tile.scale] * 3, [tile.offset] * 3
            for i, b in enumerate(("B8A", "B11", "B12"), start=1):
                dst.set_band_description(i, b)
            dst.update_tags(datetime=tile.acquired_at.isoformat().replace("+00:00", "Z"),
                            sun_elevation=str(90.0 - tile.sun_zenith_deg), platform="sentinel-2a")
            if tile.cloud_mask is not None:  # the cloud mask as an L2A cut would carry it (a GDAL mask)
                dst.write_mask(np.where(tile.cloud_mask, 0, 255).astype("uint8"))
        return mem.read()


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("FLAREWATCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FLAREWATCH_DETECTOR_RUNTIME", "torch")  # no OpenVINO/ONNX export in a unit test
    for name in ("FLAREWATCH_DETECTOR", "FLAREWATCH_VOLUME_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def inputs(tmp_path, scene):
    d = tmp_path / "tiles"
    d.mkdir()
    (d / "a_own.tif").write_bytes(encode_tile(scene.tile))
    (d / "b_plain.tiff").write_bytes(plain_product(scene.tile))
    (d / "c_broken.tif").write_bytes(b"not a GeoTIFF at all")
    (d / "notes.txt").write_text("ignored")
    return d


def test_detect_end_to_end(env, inputs, scene, tmp_path, capsys):
    out = tmp_path / "results.jsonl"
    rc = cli.main(["detect", str(inputs), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"{inputs / 'c_broken.tif'}: not a readable GeoTIFF" in err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    own = [r for r in records if r["file"].endswith("a_own.tif")]
    plain = [r for r in records if r["file"].endswith("b_plain.tiff")]
    assert own and len(own) == len(plain) and len(records) == 2 * len(own)
    for r in records:
        assert tuple(r) == RECORD_KEYS
        assert r["detector_version"].startswith("yolo-shipped-")
        assert r["volume_model_version"].startswith("regressor-shipped-")
        assert r["spacecraft"] == "Sentinel-2A" and r["acquired_at"].startswith("2025-06-01T")
        assert r["volume_lo_kscm_d"] <= r["volume_kscm_d"] <= r["volume_hi_kscm_d"]
    for a, b in zip(own, plain):  # the same DN read from either encoding
        assert a["row"] == b["row"] and a["col"] == b["col"] and a["confidence"] == b["confidence"]
        assert a["volume_kscm_d"] == pytest.approx(b["volume_kscm_d"], rel=1e-6)
    # continuous pixel coordinates of a flare the simulator put there (pixel centre = index + 0.5)
    truth = [(f["row"], f["col"]) for f in scene.truth["flares"] if f["active"] and f["in_scene"]]
    for r in own:
        assert min(abs(r["row"] - tr) + abs(r["col"] - tc) for tr, tc in truth) < 2.0


def test_detect_stdout_threshold_and_calibration(env, inputs, capsys):
    env.setenv("FLAREWATCH_DETECTOR", "threshold")
    env.setenv("FLAREWATCH_VOLUME_MODEL", "calibration")
    rc = cli.main(["detect", str(inputs / "a_own.tif"), "--out", "-"])
    captured = capsys.readouterr()
    assert rc == 0
    records = [json.loads(line) for line in captured.out.splitlines()]  # stdout holds only the JSON lines
    assert records and all(r["detector_version"] == "threshold-tai-nhi-v1" for r in records)
    assert all(r["volume_model_version"].startswith("calibration-") and r["volume_lo_kscm_d"] is None for r in records)


def test_records_are_what_processing_estimates(env, scene, inputs):
    """Same features, volume and version as estimate_site_day on the real site (no VIIRS file)."""
    settings = Settings.from_env({"FLAREWATCH_DETECTOR": "threshold"})
    from flarewatch.estimate.deployed import configured_regressor

    regressor, version = configured_regressor(settings)
    est = estimate_site_day(load_sites()[0], DAY, scene.tile, None, settings, regressor=regressor,
                            regressor_version=version, detector_version="threshold-tai-nhi-v1")
    records = list(detect_files([inputs / "a_own.tif"], settings))
    assert len(records) == len(est.detection_rows)
    for rec, det, em in zip(records, est.detection_rows, est.emission_rows):
        assert (rec["row"], rec["col"], rec["lat"], rec["lon"]) == (det["pixel_row"], det["pixel_col"], det["lat"], det["lon"])
        assert (rec["temperature_k"], rec["swir_frp_mw"]) == (det["temperature_k"], det["swir_frp_mw"])
        assert (rec["volume_kscm_d"], rec["volume_lo_kscm_d"], rec["volume_hi_kscm_d"], rec["volume_model_version"]) == (
            em["volume_kscm_d"], em["volume_lo_kscm_d"], em["volume_hi_kscm_d"], em["model_version"])


def test_models_load_once_and_failures_are_collected(env, inputs, monkeypatch):
    calls = []
    real = files.configured_detector
    monkeypatch.setattr(files, "configured_detector", lambda s: calls.append(1) or real(s))
    settings = Settings.from_env({"FLAREWATCH_DETECTOR": "threshold"})
    with pytest.raises(files.FilesFailed, match="c_broken.tif") as info:
        got = []
        for rec in detect_files([inputs, inputs / "missing.tif"], settings):
            got.append(rec)
    assert calls == [1] and got  # every readable file's records came before the error
    assert [p.name for p, _ in info.value.errors] == ["c_broken.tif", "missing.tif"]


def test_options_supply_missing_tags(env, scene, tmp_path, capsys):
    import rasterio
    from rasterio.io import MemoryFile

    tile = scene.tile
    h, w = tile.shape
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", height=h, width=w, count=3, dtype="uint16", nodata=0,
                      crs=rasterio.crs.CRS.from_epsg(tile.crs_epsg), transform=tile.transform) as dst:
            dst.write(tile.dn)
            dst.scales, dst.offsets = [tile.scale] * 3, [tile.offset] * 3
        bare = tmp_path / "bare.tif"
        bare.write_bytes(mem.read())
    env.setenv("FLAREWATCH_DETECTOR", "threshold")
    assert cli.main(["detect", str(bare)]) == 1
    assert "no acquisition time" in capsys.readouterr().err
    rc = cli.main(["detect", str(bare), "--acquired", tile.acquired_at.isoformat(), "--sun-zenith",
                   str(tile.sun_zenith_deg), "--spacecraft", "S2B"])
    out = capsys.readouterr().out
    assert rc == 0
    assert all(json.loads(line)["spacecraft"] == "Sentinel-2B" for line in out.splitlines()) and out
