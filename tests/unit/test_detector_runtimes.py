"""The deployed runtimes (OpenVINO, ONNX Runtime) find the same flares as PyTorch, and the
production export cache exports each model once."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from flarewatch.detect import deployed as detectors
from flarewatch.simulation.scene import simulate_scene
from flarewatch.sites import load_sites


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    from flarewatch.detect.yolo import offline_environment

    state = tmp_path_factory.mktemp("state")
    offline_environment(state)
    calls = []

    def fetch(dest):
        calls.append(dest)
        shutil.copyfile(detectors.shipped_weights(), dest)

    weights = detectors.deployable_weights(fetch, state / "models" / "detector" / "shipped")
    return weights, calls


def test_exports_are_made_once_and_reused(deployed):
    weights, calls = deployed
    assert len(calls) == 1
    assert (weights.parent / "best.onnx").exists()
    assert (weights.parent / "best_openvino_model" / "best.xml").exists()
    mtime = (weights.parent / "best.onnx").stat().st_mtime_ns
    again = detectors.deployable_weights(lambda dest: calls.append(dest), weights.parent)
    assert again == weights and len(calls) == 1
    assert (weights.parent / "best.onnx").stat().st_mtime_ns == mtime


def test_runtimes_give_identical_detections(deployed):
    from flarewatch.detect.yolo import YoloFlareDetector

    weights, _ = deployed
    dets = {rt: YoloFlareDetector(weights, runtime=rt) for rt in ("torch", "onnx", "openvino")}
    assert YoloFlareDetector(weights).runtime == "openvino"  # auto picks the fastest on CPU
    sites = {s.site_id: s for s in load_sites()}
    n_found = 0
    for site_id, day in (("rumaila-n", date(2025, 6, 3)), ("ebocha", date(2025, 6, 5)),
                         ("cantarell", date(2025, 6, 2))):
        tile = simulate_scene(sites[site_id], day).tile
        ref = dets["torch"].detect(tile)
        n_found += len(ref)
        for rt in ("onnx", "openvino"):
            got = dets[rt].detect(tile)
            assert [(d.peak_row, d.peak_col) for d in got] == [(d.peak_row, d.peak_col) for d in ref], rt
            for a, b in zip(got, ref):
                assert abs(a.row - b.row) < 0.1 and abs(a.col - b.col) < 0.1, rt
                assert abs(a.confidence - b.confidence) < 1e-2, rt  # OpenVINO may run bf16 on CPU
    assert n_found > 0
