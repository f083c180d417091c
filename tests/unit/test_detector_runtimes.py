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


def test_direct_predict_gives_the_predictors_boxes(deployed):
    """``YoloFlareDetector._predict_direct`` (the predictor's own pre/post-processing without its
    source loader, issue 14) returns bit for bit the boxes and scores of ``model.predict``, for every
    runtime, with batches of several sizes."""
    from flarewatch.detect.representation import chip_windows, detector_image
    from flarewatch.detect.yolo import YoloFlareDetector

    weights, _ = deployed
    sites = {s.site_id: s for s in load_sites()}
    chips = []
    for site_id, day in (("rumaila-n", date(2025, 6, 3)), ("ebocha", date(2025, 6, 5)),
                         ("cantarell", date(2025, 6, 2))):
        img = detector_image(simulate_scene(sites[site_id], day).tile)
        chips += [img[r:r + 160, c:c + 160] for r, c in chip_windows(*img.shape[:2], 160, 32)]
    for rt in ("torch", "onnx", "openvino"):
        det = YoloFlareDetector(weights, runtime=rt, batch=5)
        direct = det.predict_chips(chips)  # the first batch sets the predictor up, the others go direct
        det.direct = False
        ref = det.predict_chips(chips)
        assert len(direct) == len(ref) == len(chips)
        assert sum(len(b) for b, _ in ref) > 0, rt
        for (b1, s1), (b2, s2) in zip(direct, ref):
            assert b1.tobytes() == b2.tobytes() and s1.tobytes() == s2.tobytes(), rt
        det.direct = True
        tile = simulate_scene(sites["rumaila-n"], date(2025, 6, 3)).tile
        a = det.detect(tile)
        det.direct = False
        assert a == det.detect(tile), rt
