"""YOLO detector wrapper: offline environment, pure box helpers, and a tiny (untrained) end-to-end run."""

from __future__ import annotations

import itertools
import os
import time
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from flarewatch.detect import yolo
from flarewatch.detect.representation import chip_windows, detector_image
from flarewatch.simulation.scene import simulate_scene
from flarewatch.sites import load_sites

_ENV_KEYS = ("YOLO_CONFIG_DIR", "YOLO_OFFLINE", "CI", "MPLCONFIGDIR", "TORCH_HOME", "XDG_CACHE_HOME",
             "XDG_CONFIG_HOME")


def _restore_env_after(monkeypatch):
    """offline_environment sets os.environ; have monkeypatch restore these keys after the test."""
    for k in _ENV_KEYS:
        if k in os.environ:
            monkeypatch.setenv(k, os.environ[k])
        else:
            monkeypatch.delenv(k, raising=False)


def test_offline_environment_writes_nothing_under_home(tmp_path, monkeypatch):
    _restore_env_after(monkeypatch)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for k in ("YOLO_CONFIG_DIR", "YOLO_OFFLINE", "CI", "MPLCONFIGDIR", "TORCH_HOME"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    state = tmp_path / "state"
    env = yolo.offline_environment(state)
    env2 = yolo.offline_environment(state)  # idempotent
    assert env == env2
    assert os.environ["YOLO_OFFLINE"] == "1" and os.environ["CI"] == "true"
    assert Path(env["YOLO_CONFIG_DIR"]) == state.resolve() / "ultralytics"
    assert (state / "ultralytics" / "Ultralytics" / "Arial.ttf").stat().st_size > 100_000
    from ultralytics import settings
    from ultralytics.utils.checks import check_font

    assert Path(check_font("Arial.ttf")).exists()  # found locally, no HEAD request
    for key in ("runs_dir", "datasets_dir", "weights_dir"):
        assert Path(settings[key]).is_relative_to(state.resolve())
    assert list(home.iterdir()) == []


def test_merge_detections_across_a_chip_border():
    boxes = np.array([
        [100.0, 50.0, 108.0, 58.0],    # flare seen whole by chip A
        [100.5, 50.2, 108.4, 58.1],    # same flare from chip B (near-identical box)
        [100.0, 51.0, 103.0, 57.0],    # partial box cut by chip B's border, centre 2.5 px off
        [130.0, 50.0, 138.0, 58.0],    # a different flare
    ])
    scores = np.array([0.6, 0.8, 0.4, 0.3])
    keep = yolo.merge_detections(boxes, scores, iou=0.3)
    assert keep.tolist() == [1, 3]
    assert yolo.merge_detections(np.empty((0, 4)), np.empty(0), 0.3).tolist() == []
    # far apart, non-overlapping: all kept, by descending score
    assert yolo.merge_detections(boxes[[0, 3]], np.array([0.1, 0.9]), 0.3).tolist() == [1, 0]


def test_chip_boxes_map_to_tile_coordinates_and_cores():
    tb = yolo.chip_boxes_to_tile(np.array([[10.0, 20.0, 18.0, 30.0]]), chip_row=128, chip_col=96)
    assert tb.tolist() == [[106.0, 148.0, 114.0, 158.0]]  # x += col offset, y += row offset
    starts = sorted({r for r, _ in chip_windows(300, 300, 160, 32)})
    assert starts == [0, 128, 140]
    cores = yolo.chip_cores(starts, 160, 300)
    assert cores[0][0] == 0 and cores[-1][1] == 300
    for (_, hi), (lo, _) in itertools.pairwise(cores):
        assert hi == lo  # contiguous, no gaps
    assert cores[0] == (0.0, 144.0)  # midpoint of the [128, 160) overlap


def _tiny_dataset(root: Path, n_chips: int = 16, chip: int = 160, box: int = 8) -> tuple[Path, object]:
    """RGB PNG chips from simulated scenes with 8 px boxes on the truth flares (ultralytics layout)."""
    from PIL import Image

    sites = load_sites()
    tile = None
    k = 0
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
    for day in range(1, 40):
        for site in sites:
            if k >= n_chips:
                break
            sc = simulate_scene(site, date(2025, 3, day))
            tile = tile or sc.tile
            img = detector_image(sc.tile)
            h, w = img.shape[:2]
            r0, c0 = (day * 37) % (h - chip), (day * 53) % (w - chip)
            lines = []
            for f in sc.truth["flares"]:
                if not (f["active"] and f["in_scene"]):
                    continue
                y, x = f["row"] - r0, f["col"] - c0
                if 2 <= y < chip - 2 and 2 <= x < chip - 2:
                    lines.append(f"0 {x / chip:.6f} {y / chip:.6f} {box / chip:.6f} {box / chip:.6f}")
            split = "val" if k % 4 == 3 else "train"
            Image.fromarray(img[r0:r0 + chip, c0:c0 + chip]).save(root / "images" / split / f"c{k}.png")
            (root / "labels" / split / f"c{k}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
            k += 1
    data = root / "data.yaml"
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: flare\n")
    return data, tile


@pytest.mark.slow
def test_tiny_training_export_and_detect(tmp_path, monkeypatch):
    _restore_env_after(monkeypatch)
    monkeypatch.chdir(tmp_path)  # anything written relative to cwd lands in tmp
    yolo.offline_environment(tmp_path / "state")
    data, tile = _tiny_dataset(tmp_path / "ds")
    t0 = time.perf_counter()
    best = yolo.train(data, tmp_path / "runs", epochs=1, batch=8, patience=5)
    t_train = time.perf_counter() - t0
    assert best.exists() and best.name in ("best.pt", "last.pt")
    from ultralytics import YOLO

    assert YOLO(str(best)).task == "detect"

    det = yolo.YoloFlareDetector(best, runtime="torch", conf=0.001)
    assert det.runtime == "torch"
    dets_pt = det.detect(tile)
    assert isinstance(dets_pt, list)
    h, w = tile.shape
    for d in dets_pt:
        assert d.detector == yolo.DETECTOR_NAME
        r0, c0, r1, c1 = d.bbox
        assert 0 <= r0 < r1 <= h and 0 <= c0 < c1 <= w
        assert r0 <= d.peak_row < r1 and c0 <= d.peak_col < c1
    assert [(d.peak_row, d.peak_col) for d in dets_pt] == sorted((d.peak_row, d.peak_col) for d in dets_pt)

    t0 = time.perf_counter()
    paths = yolo.export(best, formats=("onnx",))
    t_export = time.perf_counter() - t0
    assert paths["onnx"].exists() and paths["onnx"] == best.with_suffix(".onnx")
    assert yolo.YoloFlareDetector(best).runtime == "onnx"  # auto picks the export (CPU)
    det_onnx = yolo.YoloFlareDetector(best, runtime="onnx", conf=0.001)
    dets_onnx = det_onnx.detect(tile)
    assert isinstance(dets_onnx, list)
    # same model, two runtimes: same boxes and scores (fp32 both; tolerance for kernel differences)
    def key(d):
        return d.bbox
    pt = {key(d): d for d in dets_pt}
    matched = [k for k, d in ((key(d), d) for d in dets_onnx)
               if k in pt and abs(pt[k].confidence - d.confidence) < 1e-3
               and abs(pt[k].row - d.row) < 0.05 and abs(pt[k].col - d.col) < 0.05]
    assert len(matched) >= max(len(dets_pt), len(dets_onnx)) - 1
    print(f"train 1 epoch {t_train:.1f}s, onnx export {t_export:.1f}s, "
          f"{len(dets_pt)} torch / {len(dets_onnx)} onnx detections")
