"""The detector variants compared for issue 10 (choice made on ``evaluation.hard_validation`` only).

Each variant is YOLO at a confidence threshold, optionally checked by physics
(``detect.verified.PhysicsCheck``), optionally with threshold-detector candidates that pass a strict
check (``detect.hybrid``). ``build(name, yolo_proposer)`` wraps a YOLO proposer (anything with
``detect(tile)`` whose detections carry the network's ``confidence``; run it at the lowest
threshold of the variants and the others are exact subsets, because greedy NMS never lets a box
be suppressed by a lower-scoring one). ``DEPLOYED`` is what ``detect.deployed`` runs (``deployed_detector``).
"""

from __future__ import annotations

from dataclasses import dataclass

from flarewatch.config import FLAME_MAX_TEMP_K, FLAME_MIN_TEMP_K
from flarewatch.detect.verified import PhysicsCheck

V2 = PhysicsCheck(colour_fit="ols", split_pairs=False, peak_band="b12")  # physics-v2 (until issue 10's choice)
SPLIT_AUTO = PhysicsCheck(colour_fit="rma", split_pairs=True, peak_band="auto")


@dataclass(frozen=True)
class Variant:
    conf: float = 0.25
    merge: tuple[float, float] = (0.3, 3.0)  # YoloFlareDetector's (iou_merge, centre_px)
    check: PhysicsCheck | None = None
    strict: PhysicsCheck | None = None  # set: hybrid with threshold candidates checked by it


VARIANTS: dict[str, Variant] = {
    "yolo": Variant(),
    "yolo-physics-v2": Variant(check=V2),
    "v2+split": Variant(check=PhysicsCheck(colour_fit="ols", split_pairs=True, peak_band="b12")),
    "rma": Variant(check=PhysicsCheck()),  # physics-v3, deployed
    "rma+split-b12": Variant(check=PhysicsCheck(colour_fit="rma", split_pairs=True, peak_band="b12")),
    "rma+split-b12-loose": Variant(check=PhysicsCheck(colour_fit="rma", split_pairs=True, peak_band="b12",
                                                      min_peak_share=0.1)),
    "rma+split-auto": Variant(check=SPLIT_AUTO),
    "rma+split-auto-loose": Variant(check=PhysicsCheck(colour_fit="rma", split_pairs=True, peak_band="auto",
                                                       peak_band_min_sd=3.0, min_peak_share=0.1,
                                                       max_saddle_share=0.85)),
    "rma+split-auto conf0.15": Variant(conf=0.15, check=SPLIT_AUTO),
    "rma+split-auto conf0.10": Variant(conf=0.10, check=SPLIT_AUTO),
    "v2 conf0.10": Variant(conf=0.10, check=V2),
    # the merge of YOLO's boxes (IoU > 0.3 or centres < 3 px) fuses 12 px boxes less than ~6 px
    # apart: keep boxes unless IoU > 0.7 or centres < 1.5 px, so a pair boxed twice stays two
    "v3 merge0.7": Variant(check=PhysicsCheck(), merge=(0.7, 1.5)),
    "rma+split-auto merge0.7": Variant(check=SPLIT_AUTO, merge=(0.7, 1.5)),
    "hybrid split-auto+threshold": Variant(
        check=SPLIT_AUTO,
        strict=PhysicsCheck(colour_fit="rma", split_pairs=True, peak_band="auto", max_core_extent_px=5,
                            min_temperature_k=FLAME_MIN_TEMP_K, max_temperature_k=FLAME_MAX_TEMP_K)),
}
MIN_CONF = min(v.conf for v in VARIANTS.values())
# chosen by benchmarks/select_detector.py's rule on the hard validation set: PhysicsCheck()'s
# defaults on YOLO boxes merged at IoU 0.7 / 1.5 px (physics-v3)
DEPLOYED = "v3 merge0.7"


class YoloPool:
    """One YOLO detector per merge setting, at ``MIN_CONF``, each memoised on the current tile."""

    def __init__(self, weights, runtime: str = "auto"):
        self.weights, self.runtime, self.memos = weights, runtime, {}

    def proposer(self, merge: tuple[float, float]):
        if merge not in self.memos:
            from flarewatch.detect.yolo import YoloFlareDetector

            self.memos[merge] = _Memo(YoloFlareDetector(self.weights, runtime=self.runtime, conf=MIN_CONF,
                                                        iou_merge=merge[0], centre_px=merge[1]))
        return self.memos[merge]

    def build(self, name: str):
        return build(name, self.proposer(VARIANTS[name].merge))


class _Memo:
    """A detector's detections for the current tile, computed once for all the variants (their
    timings then exclude YOLO's inference, except for the first variant run on a tile)."""

    def __init__(self, detector):
        self.detector, self.key, self.dets = detector, None, []

    def detect(self, tile):
        if self.key is not tile:
            self.key, self.dets = tile, self.detector.detect(tile)
        return self.dets


class _AtConfidence:
    def __init__(self, proposer, conf: float):
        self.proposer, self.conf = proposer, conf

    def detect(self, tile):
        return [d for d in self.proposer.detect(tile) if d.confidence >= self.conf]


def build(name: str, yolo_proposer):
    """The variant ``name`` around ``yolo_proposer``: an object with ``detect(tile)``."""
    from flarewatch.detect.hybrid import HybridDetector
    from flarewatch.detect.verified import PhysicsCheckedDetector

    v = VARIANTS[name]
    proposer = _AtConfidence(yolo_proposer, v.conf)
    if v.check is None:
        return proposer
    checked = PhysicsCheckedDetector(proposer, v.check)
    return checked if v.strict is None else HybridDetector(checked, v.strict)


def deployed_detector(weights, runtime: str = "auto"):
    """The deployed detector (``DEPLOYED``) on YOLO ``weights``: its YOLO proposer at the variant's
    confidence and merge setting, checked by physics (``detect.verified``)."""
    from flarewatch.detect.verified import PhysicsCheckedDetector
    from flarewatch.detect.yolo import YoloFlareDetector

    v = VARIANTS[DEPLOYED]
    yolo = YoloFlareDetector(weights, runtime=runtime, conf=v.conf, iou_merge=v.merge[0], centre_px=v.merge[1])
    return PhysicsCheckedDetector(yolo, v.check)
