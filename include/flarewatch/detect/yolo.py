"""A YOLO (ultralytics) flare detector on the detector representation, usable offline.

Pipeline: ``detect.representation.detector_image(tile)`` (RGB uint8) is cut into ``chip_px`` square chips
with ``detect.representation.chip_windows`` (chips at the edge of a tile smaller than a chip are padded
with 0, the representation's nodata colour), the chips are predicted in batches, chip boxes are
mapped to tile pixels, each chip keeps only boxes whose centre lies in its *core* (the part of the
chip nearer to it than to its neighbour, so a flare cut by a chip border is reported by the chip
that sees it whole) and remaining duplicates are merged class-agnostically (``merge_detections``).

Conventions:

* Colour order. Ultralytics reads training PNGs with OpenCV, i.e. as BGR arrays, and treats numpy
  arrays given to ``predict`` as BGR too. Training chips are RGB PNG files of the representation,
  so at inference the RGB representation is flipped to BGR (``rgb[..., ::-1]``) before predict:
  the network sees the same channel order in both cases.
* Coordinates. Ultralytics boxes are continuous ``xyxy`` with pixel ``i`` spanning ``[i, i+1)``;
  this is the ``Tile`` convention (``(row, col) + 0.5`` is a pixel centre), so the box centre in
  tile coordinates is directly ``Detection.row/col`` and usable with ``Tile.pixel_to_lonlat``.
* ``Detection`` fields other than the box come from the tile's reflectance inside the integer
  box ``bbox`` (floor of the upper-left, ceil of the lower-right corner, clipped to the tile):
  ``peak_row/peak_col`` = the largest B12 reflectance (the local background is ~constant within a
  ~10 px box, so this is the largest B12 excess, as in ``detection.py``); ``n_pixels`` = pixels
  whose rho12 exceeds the local background (median rho12 of a ``BACKGROUND_RING_PX`` ring around
  the box) by more than ``max(HOT_EXCESS_MIN, 3 x robust SD of the ring)``, at least 1;
  ``saturated`` = any box pixel meets the baseline's saturated-pixel rule
  (``detect.threshold.hot_core_rules``: Marchese's ``rho12 > saturated_rho12 and rho11 > rho12`` or a
  clipped B12); ``cloud_flag`` = cloud mask within ``CLOUD_FLAG_DISTANCE_PX`` of the box;
  ``confidence`` = the network's score (a ranking score, not a calibrated probability).

Training (``train``) augmentations suit overhead imagery with physical radiometry: horizontal and
vertical flips (0.5 each; the scene has no up/down), small translations, mosaic (adds context and
placement variety; closed for the last epochs). Off on purpose: HSV jitter (colour *is* physics --
the representation is a fixed radiometric stretch, so hue/saturation/value encode the B12/B11/B8A
reflectance ratios that separate flames from glint and roofs), scale jitter (the pixel is always
20 m, so apparent flare size is physical), rotations/shear/perspective (interpolation smears
1-3 px hot cores) and mixup (blends radiometry). All are overridable via ``**overrides``.

Offline use: call ``offline_environment(state_dir)`` before ``import ultralytics``. Ultralytics is
AGPL-3.0.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np

from flarewatch.detect.representation import chip_windows, detector_image
from flarewatch.detect.threshold import (
    CLOUD_FLAG_DISTANCE_PX,
    Detection,
    b12_clip_dn,
    hot_core_rules,
)
from flarewatch.tiles import Tile

DETECTOR_NAME = "yolo"
RUNTIMES = ("openvino", "onnx", "torch")  # "auto" preference order on CPU
BACKGROUND_RING_PX = 4  # width of the ring around a box whose median rho12 is the local background
HOT_EXCESS_MIN = 0.05  # minimum rho12 excess over the local background for a pixel to count
MERGE_CENTRE_PX = 3.0  # boxes whose centres are closer than this are duplicates

_FONT_NAME = "Arial.ttf"


# --------------------------------------------------------------------------- environment

def offline_environment(state_dir: Path) -> dict[str, str]:
    """Point ultralytics, matplotlib, torch and OpenVINO telemetry at ``state_dir``; offline.

    Sets (and returns) ``YOLO_OFFLINE=1``, ``YOLO_CONFIG_DIR=state_dir/ultralytics``, ``CI=true``
    (the only OpenVINO telemetry opt-out that writes nothing under $HOME; ultralytics does not read
    ``CI``), ``MPLCONFIGDIR``, ``TORCH_HOME`` and, where unset, ``XDG_CACHE_HOME``/``XDG_CONFIG_HOME``
    under ``state_dir``. Copies matplotlib's DejaVuSans.ttf to ``$YOLO_CONFIG_DIR/Ultralytics/Arial.ttf``
    (ultralytics otherwise sends a HEAD request for Arial.ttf on every train/val). Call it before
    ``import ultralytics``; it then also updates ``ultralytics.settings`` (runs/datasets/weights dirs
    under ``state_dir``, sync off). Idempotent.
    """
    state_dir = Path(state_dir).resolve()
    env = {
        "YOLO_OFFLINE": "1",
        "YOLO_CONFIG_DIR": str(state_dir / "ultralytics"),
        "CI": "true",
        "MPLCONFIGDIR": str(state_dir / "matplotlib"),
        "TORCH_HOME": str(state_dir / "torch"),
    }
    for key, sub in (("XDG_CACHE_HOME", "cache"), ("XDG_CONFIG_HOME", "config")):
        env[key] = os.environ.get(key) or str(state_dir / sub)
    for key in ("YOLO_CONFIG_DIR", "MPLCONFIGDIR", "TORCH_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    os.environ.update(env)

    font_dirs = [Path(env["YOLO_CONFIG_DIR"]) / "Ultralytics"]
    if "ultralytics" in sys.modules:  # imported earlier: its config dir is already fixed
        from ultralytics.utils import USER_CONFIG_DIR
        font_dirs.append(Path(USER_CONFIG_DIR))
    _place_font(font_dirs)

    if "ultralytics" in sys.modules:
        _update_settings(state_dir)
    else:
        import ultralytics  # noqa: F401  (reads YOLO_CONFIG_DIR set above)
        _update_settings(state_dir)
    return env


def _place_font(dirs: list[Path]) -> None:
    import matplotlib

    src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        dst = d / _FONT_NAME
        if not dst.exists():
            shutil.copyfile(src, dst)


def _update_settings(state_dir: Path) -> None:
    from ultralytics import settings

    want = {
        "runs_dir": str(state_dir / "runs"),
        "datasets_dir": str(state_dir / "datasets"),
        "weights_dir": str(state_dir / "weights"),
        "sync": False,
    }
    if any(settings.get(k) != v for k, v in want.items()):
        settings.update(want)


def _device() -> str:
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


# --------------------------------------------------------------------------- training / export

def train(data_yaml: Path, out_dir: Path, *, base: str | Path = "yolo11n.yaml", epochs: int = 30,
          imgsz: int = 160, batch: int = 16, seed: int = 0, patience: int = 10, **overrides) -> Path:
    """Train a detector; returns the path of ``best.pt`` (``last.pt`` if no best was saved).

    ``base``: a model config (``yolo11n.yaml``: random init, downloads nothing) or a checkpoint
    path to fine-tune. Runs in ``out_dir/train`` (overwritten), no plots, workers=0, CPU unless
    CUDA is available, deterministic with ``seed``. Augmentations: module docstring.
    """
    from ultralytics import YOLO

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    args = {
        "data": str(Path(data_yaml).resolve()), "epochs": epochs, "imgsz": imgsz, "batch": batch, "seed": seed,
        "deterministic": True, "patience": patience, "project": str(out_dir), "name": "train", "exist_ok": True,
        "plots": False, "workers": 0, "device": _device(), "verbose": False, "amp": False,
        # augmentations (module docstring)
        "hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0, "fliplr": 0.5, "flipud": 0.5, "degrees": 0.0, "shear": 0.0,
        "perspective": 0.0, "scale": 0.0, "translate": 0.1, "mosaic": 1.0, "close_mosaic": max(1, min(10, epochs // 4)),
        "mixup": 0.0, "cutmix": 0.0, "copy_paste": 0.0,
    }
    args.update(overrides)
    model = YOLO(str(base))
    model.train(**args)
    save_dir = Path(model.trainer.save_dir)
    best = save_dir / "weights" / "best.pt"
    return best if best.exists() else save_dir / "weights" / "last.pt"


def export(weights: Path, formats=("onnx", "openvino"), imgsz: int = 160) -> dict[str, Path]:
    """Export ``weights`` (a .pt) next to it: ``<stem>.onnx``, ``<stem>_openvino_model/``; offline.

    Dynamic batch (so one call predicts a batch of chips), fp32, no embedded NMS.
    """
    from ultralytics import YOLO

    out: dict[str, Path] = {}
    for fmt in formats:
        model = YOLO(str(weights))
        kw = {"format": fmt, "imgsz": imgsz, "dynamic": True, "device": "cpu", "verbose": False}
        if fmt == "onnx":
            kw["simplify"] = True
        out[fmt] = Path(model.export(**kw))
    return out


# --------------------------------------------------------------------------- pure helpers

def chip_boxes_to_tile(boxes_xyxy: np.ndarray, chip_row: int, chip_col: int) -> np.ndarray:
    """Chip-pixel ``xyxy`` boxes (x = column) of the chip at (chip_row, chip_col) -> tile ``xyxy``."""
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4).copy()
    b[:, [0, 2]] += chip_col
    b[:, [1, 3]] += chip_row
    return b


def chip_cores(starts: list[int], chip: int, n: int) -> list[tuple[float, float]]:
    """Along one axis: the [lo, hi) span of tile coordinates each chip (by start) is responsible for.

    Neighbouring chips split their overlap at its midpoint; the first/last reach the tile edges.
    """
    s = sorted(set(starts))
    cores = []
    for i, a in enumerate(s):
        lo = 0.0 if i == 0 else (s[i - 1] + chip + a) / 2.0
        hi = float(max(n, a + chip)) if i == len(s) - 1 else (a + chip + s[i + 1]) / 2.0
        cores.append((lo, hi))
    return cores


def merge_detections(boxes: np.ndarray, scores: np.ndarray, iou: float,
                     centre_px: float = MERGE_CENTRE_PX) -> np.ndarray:
    """Class-agnostic greedy NMS on tile ``xyxy`` boxes: indices kept, by descending score.

    A box is a duplicate of a higher-scoring kept box when their IoU exceeds ``iou`` or their
    centres are closer than ``centre_px`` pixels.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    area = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    keep: list[int] = []
    suppressed = np.zeros(len(boxes), bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        iw = np.clip(np.minimum(boxes[i, 2], boxes[:, 2]) - np.maximum(boxes[i, 0], boxes[:, 0]), 0, None)
        ih = np.clip(np.minimum(boxes[i, 3], boxes[:, 3]) - np.maximum(boxes[i, 1], boxes[:, 1]), 0, None)
        inter = iw * ih
        with np.errstate(invalid="ignore", divide="ignore"):
            ious = np.where(inter > 0, inter / (area[i] + area - inter), 0.0)
        close = np.hypot(cx - cx[i], cy - cy[i]) < centre_px
        suppressed |= (ious > iou) | close
    return np.asarray(keep, dtype=np.int64)


# --------------------------------------------------------------------------- detector

def _resolve_runtime(weights: Path, runtime: str) -> tuple[str, Path]:
    weights = Path(weights)
    if weights.suffix == ".onnx":
        found = {"onnx": weights}
    elif weights.is_dir() or weights.name.endswith("_openvino_model"):
        found = {"openvino": weights}
    else:
        found = {"torch": weights}
        onnx = weights.with_suffix(".onnx")
        ov = weights.parent / f"{weights.stem}_openvino_model"
        if onnx.exists():
            found["onnx"] = onnx
        if (ov / f"{weights.stem}.xml").exists() or any(ov.glob("*.xml")):
            found["openvino"] = ov
    if runtime == "auto":
        if "torch" in found and _device() != "cpu":  # on a GPU torch is fastest
            return "torch", found["torch"]
        for rt in RUNTIMES:
            if rt in found:
                return rt, found[rt]
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; one of auto, {', '.join(RUNTIMES)}")
    if runtime not in found:
        raise FileNotFoundError(f"no {runtime} model for {weights} (export it first)")
    return runtime, found[runtime]


class YoloFlareDetector:
    """Detects flares in a ``Tile`` with a trained YOLO model; ``detect(tile) -> list[Detection]``.

    ``runtime``: "auto" (OpenVINO > ONNX Runtime > PyTorch among the exports found next to the
    weights -- ``<stem>.onnx``, ``<stem>_openvino_model/`` -- PyTorch when CUDA is available),
    or "torch"/"onnx"/"openvino". ``self.runtime`` and ``self.model_path`` tell what is used.
    """

    name = DETECTOR_NAME

    def __init__(self, weights: Path, *, runtime: str = "auto", chip_px: int = 160, overlap_px: int = 32,
                 conf: float = 0.25, iou_merge: float = 0.3, batch: int = 16, centre_px: float = MERGE_CENTRE_PX):
        from ultralytics import YOLO

        self.weights = Path(weights)
        self.runtime, self.model_path = _resolve_runtime(self.weights, runtime)
        self.chip_px, self.overlap_px = int(chip_px), int(overlap_px)
        self.conf, self.iou_merge, self.batch = float(conf), float(iou_merge), int(batch)
        self.centre_px = float(centre_px)
        self.device = _device() if self.runtime == "torch" else "cpu"
        self.model = YOLO(str(self.model_path), task="detect")
        self.direct = True  # after the first batch, skip the predictor's source loading (``_predict_direct``)
        self._direct_args: dict | None = None

    def predict_chips(self, chips_rgb: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per RGB chip: (xyxy boxes in chip pixels, scores)."""
        out = []
        kwargs = {"imgsz": self.chip_px, "conf": self.conf, "verbose": False, "device": self.device}
        for i in range(0, len(chips_rgb), self.batch):
            bgr = [np.ascontiguousarray(c[..., ::-1]) for c in chips_rgb[i:i + self.batch]]
            if self.direct and self._direct_args == kwargs:
                results = self._predict_direct(bgr)
            else:
                results = self.model.predict(bgr, **kwargs)
                self._direct_args = dict(kwargs)  # the predictor is set up with these now
            for r in results:
                b = r.boxes
                out.append((b.xyxy.cpu().numpy().astype(np.float64), b.conf.cpu().numpy().astype(np.float64)))
        return out

    def _predict_direct(self, bgr: list[np.ndarray]) -> list:
        """``self.model.predict(bgr, ...)`` once its predictor is set up: the predictor's own
        ``preprocess``, ``inference`` and ``postprocess`` (NMS, box scaling) on the batch, without
        its per-call source loader, batching generator, profilers and callbacks -- the same
        ``Results``, a few ms sooner per tile (``make bench``; tests/unit/test_yolo_direct.py
        compares both on demo chips)."""
        import torch

        p = self.model.predictor
        with p._lock, torch.inference_mode():
            p.batch = ([f"image{i}.jpg" for i in range(len(bgr))], bgr, [""] * len(bgr))
            im = p.preprocess(bgr)
            preds = p.inference(im)
            return p.postprocess(preds, im, bgr)

    def detect(self, tile: Tile) -> list[Detection]:
        """Detections sorted by (peak_row, peak_col) (then box centre, for ties)."""
        img = detector_image(tile)
        h, w = img.shape[:2]
        cp = self.chip_px
        wins = chip_windows(h, w, cp, self.overlap_px)
        row_cores = dict(zip(sorted({r for r, _ in wins}), chip_cores([r for r, _ in wins], cp, h)))
        col_cores = dict(zip(sorted({c for _, c in wins}), chip_cores([c for _, c in wins], cp, w)))
        chips = []
        for r, c in wins:
            chip = img[r:r + cp, c:c + cp]
            if chip.shape[:2] != (cp, cp):
                chip = np.pad(chip, ((0, cp - chip.shape[0]), (0, cp - chip.shape[1]), (0, 0)))
            chips.append(chip)
        all_boxes, all_scores = [], []
        for (r, c), (boxes, scores) in zip(wins, self.predict_chips(chips)):
            if not len(boxes):
                continue
            tb = chip_boxes_to_tile(boxes, r, c)
            tb[:, [0, 2]] = np.clip(tb[:, [0, 2]], 0, w)
            tb[:, [1, 3]] = np.clip(tb[:, [1, 3]], 0, h)
            cy, cx = (tb[:, 1] + tb[:, 3]) / 2, (tb[:, 0] + tb[:, 2]) / 2
            (rlo, rhi), (clo, chi) = row_cores[r], col_cores[c]
            ok = ((tb[:, 2] > tb[:, 0]) & (tb[:, 3] > tb[:, 1])
                  & (cy >= rlo) & (cy < rhi) & (cx >= clo) & (cx < chi))
            all_boxes.append(tb[ok])
            all_scores.append(scores[ok])
        if not all_boxes:
            return []
        boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
        if not len(boxes):
            return []
        keep = merge_detections(boxes, scores, self.iou_merge, self.centre_px)
        arrays = _TileArrays(tile)
        return sorted((self._detection(tile, boxes[k], float(scores[k]), arrays) for k in keep),
                      key=lambda d: (d.peak_row, d.peak_col, d.row, d.col))

    def _detection(self, tile: Tile, box: np.ndarray, score: float, arrays: _TileArrays | None = None) -> Detection:
        h, w = tile.shape
        x0, y0, x1, y1 = (float(v) for v in box)
        r0, c0 = max(0, int(np.floor(y0))), max(0, int(np.floor(x0)))
        r1, c1 = min(h, max(r0 + 1, int(np.ceil(y1)))), min(w, max(c0 + 1, int(np.ceil(x1))))
        arrays = arrays or _TileArrays(tile)
        rho8a, rho11, rho12 = arrays.rho
        sl = (slice(r0, r1), slice(c0, c1))
        box12 = rho12[sl]
        filled = np.where(np.isfinite(box12), box12, -np.inf)
        pr, pc = np.unravel_index(int(np.argmax(filled)), filled.shape)
        # local background: ring of BACKGROUND_RING_PX around the box
        g = BACKGROUND_RING_PX
        R0, C0, R1, C1 = max(0, r0 - g), max(0, c0 - g), min(h, r1 + g), min(w, c1 + g)
        ring = rho12[R0:R1, C0:C1].copy()
        ring[r0 - R0:r1 - R0, c0 - C0:c1 - C0] = np.nan
        ring = ring[np.isfinite(ring)]
        if ring.size:
            bg = float(np.median(ring))
            sd = 1.4826 * float(np.median(np.abs(ring - bg)))
        else:
            bg, sd = 0.0, 0.0
        with np.errstate(invalid="ignore"):
            n_hot = int(np.sum(box12 > bg + max(HOT_EXCESS_MIN, 3.0 * sd)))
        clip = arrays.clip
        _, _, sat = hot_core_rules(rho8a[sl], rho11[sl], box12, tile.dn[2][sl], clip_dn=clip)
        cloud = False
        if tile.cloud_mask is not None:
            d = CLOUD_FLAG_DISTANCE_PX
            cloud = bool(tile.cloud_mask[max(0, r0 - d):r1 + d, max(0, c0 - d):c1 + d].any())
        return Detection(
            row=(y0 + y1) / 2, col=(x0 + x1) / 2, peak_row=r0 + int(pr), peak_col=c0 + int(pc),
            bbox=(r0, c0, r1, c1), n_pixels=max(1, n_hot), confidence=score,
            saturated=bool(np.any(sat)), cloud_flag=cloud, detector=DETECTOR_NAME,
        )


class _TileArrays:
    """The whole-tile arrays ``YoloFlareDetector._detection`` reads, computed once per tile (not per
    box) on first use: B8A/B11/B12 reflectance and the B12 clip DN. Read only."""

    def __init__(self, tile: Tile):
        self._tile = tile
        self._rho = self._clip = None

    @property
    def rho(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._rho is None:
            self._rho = tuple(self._tile.reflectance(b) for b in ("B8A", "B11", "B12"))
        return self._rho

    @property
    def clip(self) -> int:
        if self._clip is None:
            t = self._tile
            self._clip = b12_clip_dn(t.dn[2], t.valid, t.scale, t.offset)
        return self._clip
