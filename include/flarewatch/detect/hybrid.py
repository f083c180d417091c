"""YOLO + physics, plus threshold-detector candidates that pass a strict physics check (for recall).

YOLO misses some weak or unusual flares that the TAI/NHI threshold rules catch, while the threshold
rules alone box every glint facet and fire pixel (precision 0.05 on the independent scenes). The
hybrid runs both: the physics-checked YOLO detections (``detect.verified``) are kept as they are;
each threshold-detector cluster (``detect.threshold.detect_flares``) farther than ``dedup_px``
from all of them is added when it passes ``PhysicsCheckedDetector`` with the ``strict`` check
(its box is the cluster's bounding box; a strict check may use a narrower colour band or a more
compact core than the one applied to YOLO's proposals).
"""

from __future__ import annotations

import math
from dataclasses import replace

from flarewatch.config import ThresholdDetectorConfig
from flarewatch.detect.threshold import Detection, detect_flares
from flarewatch.detect.verified import PhysicsCheck, PhysicsCheckedDetector
from flarewatch.tiles import Tile

DETECTOR_NAME = "yolo-physics-hybrid"


class _Given:
    def __init__(self, dets: list[Detection]):
        self.dets = dets

    def detect(self, tile: Tile) -> list[Detection]:
        return self.dets


class HybridDetector:
    """``detect(tile)``: ``checked``'s detections plus strictly checked threshold candidates."""

    name = DETECTOR_NAME

    def __init__(self, checked: PhysicsCheckedDetector, strict: PhysicsCheck | None = None,
                 threshold: ThresholdDetectorConfig = ThresholdDetectorConfig(), dedup_px: float = 3.0):
        self.checked = checked
        self.strict = strict or checked.check
        self.threshold = threshold
        self.dedup_px = float(dedup_px)

    def extra(self, tile: Tile, kept: list[Detection]) -> list[Detection]:
        """Threshold candidates away from ``kept`` that pass the strict check."""
        cands = [d for d in detect_flares(tile, self.threshold)
                 if all(math.hypot(d.row - k.row, d.col - k.col) > self.dedup_px for k in kept)]
        if not cands:
            return []
        passed = PhysicsCheckedDetector(_Given(cands), self.strict).detect(tile)
        return [replace(d, detector=DETECTOR_NAME) for d in passed
                if all(math.hypot(d.row - k.row, d.col - k.col) > self.dedup_px for k in kept)]

    def detect(self, tile: Tile) -> list[Detection]:
        kept = self.checked.detect(tile)
        out = kept + self.extra(tile, kept)
        return sorted(out, key=lambda d: (d.peak_row, d.peak_col, d.row, d.col))
