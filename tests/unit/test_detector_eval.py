from flarewatch.evaluation.detector import CASES, ThresholdDetector, evaluate_detectors
from flarewatch.training.detector_data import DatasetSpec


class _Nothing:
    def detect(self, tile):
        return []


def test_evaluate_detectors_on_a_tiny_split():
    spec = DatasetSpec(n_sites_test=1, days_per_site=2)
    res = evaluate_detectors({"threshold": ThresholdDetector(), "nothing": _Nothing()}, spec)
    assert res["n_scenes"] == 2
    th, no = res["detectors"]["threshold"]["cases"], res["detectors"]["nothing"]["cases"]
    assert set(th) == set(CASES)
    positives = th["all"]["tp"] + th["all"]["fn"]
    assert positives > 0
    assert no["all"]["tp"] == 0 and no["all"]["fn"] == positives and no["all"]["recall"] == 0.0
    assert th["all"]["recall"] > 0.5
