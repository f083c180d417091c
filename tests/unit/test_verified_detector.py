"""The physics check on YOLO proposals (detect.verified), on hand-made tiles."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from affine import Affine

from flarewatch import physics
from flarewatch.config import FLAME_MAX_TEMP_K, FLAME_MIN_TEMP_K, S2_WAVELENGTH_UM, Settings
from flarewatch.detect.threshold import Detection
from flarewatch.detect.verified import PhysicsCheck, PhysicsCheckedDetector, _reflectance_ratio
from flarewatch.tiles import Tile

SIZE = 40
BACKGROUND = (0.30, 0.35, 0.28)  # B8A, B11, B12 reflectance of bare soil


def _dn(rho):
    return np.clip(np.round((np.asarray(rho) + 0.1) / 0.0001), 1, 65535).astype(np.uint16)


def make_tile(sources, seed=0) -> Tile:
    """``sources``: (row, col, excess B12 reflectance, B12/B11 excess ratio) point sources, each
    spread over its pixel and a little over the 8 neighbours."""
    rng = np.random.default_rng(seed)
    rho = np.stack([np.full((SIZE, SIZE), v) for v in BACKGROUND]) + rng.normal(0, 0.003, (3, SIZE, SIZE))
    kernel = np.array([[0.05, 0.1, 0.05], [0.1, 1.0, 0.1], [0.05, 0.1, 0.05]])
    for r, c, ex12, ratio in sources:
        rho[2, r - 1:r + 2, c - 1:c + 2] += ex12 * kernel
        rho[1, r - 1:r + 2, c - 1:c + 2] += ex12 / ratio * kernel
    return Tile(dn=_dn(rho), transform=Affine(20, 0, 500000, 0, -20, 3400000), crs_epsg=32638,
                acquired_at=datetime(2025, 6, 1, 7, 30, tzinfo=UTC), sun_zenith_deg=25.0)


class Boxes:
    """A stand-in proposer returning fixed boxes."""

    def __init__(self, *boxes):
        self.boxes = boxes

    def detect(self, tile):
        return [Detection(row=(r0 + r1) / 2, col=(c0 + c1) / 2, peak_row=r0, peak_col=c0, bbox=(r0, c0, r1, c1),
                          n_pixels=1, confidence=0.9, saturated=False, cloud_flag=False, detector="yolo")
                for r0, c0, r1, c1 in self.boxes]


FLAME = _reflectance_ratio(1800.0)  # ~2.3
NO_SPLIT = PhysicsCheck(split_pairs=False)
SPLIT = PhysicsCheck(split_pairs=True)


def test_reflectance_ratio_of_flames_fires_and_flat_objects():
    assert _reflectance_ratio(1800.0) == pytest.approx(2.33, abs=0.05)
    assert _reflectance_ratio(1200.0) > 4.0 > _reflectance_ratio(1600.0) > _reflectance_ratio(3000.0) > 1.3


def test_a_flame_is_kept_and_its_box_centre_kept():
    tile = make_tile([(20, 20, 0.6, FLAME)])
    out = PhysicsCheckedDetector(Boxes((16, 16, 25, 25)), NO_SPLIT).detect(tile)
    assert len(out) == 1 and out[0].detector == "yolo-physics" and out[0].row == 20.5


def test_a_flat_hot_spot_is_rejected():
    tile = make_tile([(20, 20, 0.6, 1.0)])  # glint or a bright roof: B12/B11 ~ 1
    assert PhysicsCheckedDetector(Boxes((16, 16, 25, 25)), NO_SPLIT).detect(tile) == []


def test_the_literature_flame_band_rejects_a_fire_front():
    # off by default (the measured colour is biased on unfamiliar scenes, README); configurable
    literature = PhysicsCheck(split_pairs=False, min_temperature_k=FLAME_MIN_TEMP_K, max_temperature_k=FLAME_MAX_TEMP_K)
    fire = make_tile([(20, 20, 0.6, 7.0)])  # ~1000 K
    assert PhysicsCheckedDetector(Boxes((16, 16, 25, 25)), literature).detect(fire) == []
    assert len(PhysicsCheckedDetector(Boxes((16, 16, 25, 25)), NO_SPLIT).detect(fire)) == 1


def test_a_box_without_heat_is_rejected():
    tile = make_tile([(5, 5, 0.6, FLAME)])
    assert PhysicsCheckedDetector(Boxes((20, 20, 30, 30)), NO_SPLIT).detect(tile) == []


def test_a_clipped_flame_skips_the_colour_test():
    tile = make_tile([(20, 20, 0.6, 1.0)])
    dn = tile.dn.copy()
    dn[2, 20, 20] = 65535
    dn[1, 20, 20] = 15000  # rho11 0.4 < rho12: the clipped-flame rule
    tile = Tile(dn=dn, transform=tile.transform, crs_epsg=tile.crs_epsg, acquired_at=tile.acquired_at,
                sun_zenith_deg=tile.sun_zenith_deg)
    assert len(PhysicsCheckedDetector(Boxes((16, 16, 25, 25)), NO_SPLIT).detect(tile)) == 1


@pytest.mark.parametrize("gap", [3, 4])
def test_two_stacks_in_one_box_are_split(gap):
    tile = make_tile([(20, 18, 0.6, FLAME), (20, 18 + gap, 0.4, FLAME)])
    out = PhysicsCheckedDetector(Boxes((16, 14, 25, 27)), SPLIT).detect(tile)
    assert len(out) == 2
    assert sorted(round(d.col - 0.5) for d in out) == [18, 18 + gap]


def test_one_stack_is_not_split():
    tile = make_tile([(20, 20, 0.9, FLAME)])
    assert len(PhysicsCheckedDetector(Boxes((16, 16, 25, 25)), SPLIT).detect(tile)) == 1


def test_the_setting():
    assert Settings.from_env({}).physics_check is True
    assert Settings.from_env({"FLAREWATCH_PHYSICS_CHECK": "off"}).physics_check is False
    with pytest.raises(ValueError, match="FLAREWATCH_PHYSICS_CHECK"):
        Settings.from_env({"FLAREWATCH_PHYSICS_CHECK": "maybe"})


def test_temperature_of_a_flame_reads_back():
    t = physics.ratio_temperature(*(physics.planck_radiance(S2_WAVELENGTH_UM[b], 1800.0) for b in ("B12", "B11")))
    assert float(t) == pytest.approx(1800.0, abs=5)


def test_an_extended_hot_patch_is_not_a_flame():
    # flame-coloured but 9 px across: a sub-pixel flame blurred by the PSF is never that broad
    tile = make_tile([(20, c, 0.5, FLAME) for c in range(16, 25)])
    assert PhysicsCheckedDetector(Boxes((16, 12, 25, 29)), NO_SPLIT).detect(tile) == []
    assert len(PhysicsCheckedDetector(Boxes((16, 12, 25, 29)), NO_SPLIT).detect(make_tile([(20, 20, 0.5, FLAME)]))) == 1


# ---------------------------------------------------------------------------- close pairs (issue 10)
B8A_SHARE = 0.035  # B8A / B12 reflectance excess of a ~1800 K flame (Planck, Sentinel-2 E_sun)


def make_pair_tile(gap, ex12=(3.0, 2.0), clip=()) -> Tile:
    """Two flame-coloured stacks ``gap`` px apart on row 20 (cols 18 and 18 + gap), B8A excess
    included; ``clip``: bands ("B12", "B11") written as the SATURATED value DN 65535 where their
    reflectance exceeds 1.0 (the flames' cores)."""
    rng = np.random.default_rng(1)
    rho = np.stack([np.full((SIZE, SIZE), v) for v in BACKGROUND]) + rng.normal(0, 0.003, (3, SIZE, SIZE))
    kernel = np.array([[0.05, 0.1, 0.05], [0.1, 1.0, 0.1], [0.05, 0.1, 0.05]])
    for c, ex in zip((18, 18 + gap), ex12):
        rho[2, 19:22, c - 1:c + 2] += ex * kernel
        rho[1, 19:22, c - 1:c + 2] += ex / FLAME * kernel
        rho[0, 19:22, c - 1:c + 2] += ex * B8A_SHARE * kernel
    dn = _dn(rho)
    for band in clip:
        i = {"B8A": 0, "B11": 1, "B12": 2}[band]
        dn[i][rho[i] > 1.0] = 65535
    return Tile(dn=dn, transform=Affine(20, 0, 500000, 0, -20, 3400000), crs_epsg=32638,
                acquired_at=datetime(2025, 6, 1, 7, 30, tzinfo=UTC), sun_zenith_deg=25.0)


@pytest.mark.parametrize("clip", [(), ("B12",), ("B12", "B11")], ids=["unclipped", "B12-clipped", "B12+B11-clipped"])
@pytest.mark.parametrize("gap", [2, 3])
def test_a_pair_2_or_3_px_apart_is_separated(gap, clip):
    tile = make_pair_tile(gap, clip=clip)
    if "B12" in clip:
        assert (tile.dn[2][20, [18, 18 + gap]] == 65535).all()
    if "B11" in clip:
        assert (tile.dn[1][20, [18, 18 + gap]] == 65535).all()
    out = PhysicsCheckedDetector(Boxes((15, 14, 26, 27)), SPLIT).detect(tile)
    assert len(out) == 2
    cols = sorted(d.col for d in out)
    assert cols[0] == pytest.approx(18.5, abs=0.5) and cols[1] == pytest.approx(18.5 + gap, abs=0.5)
    assert all(d.row == pytest.approx(20.5, abs=0.5) for d in out)
    # without splitting (the deployed default) the box stays one detection
    assert len(PhysicsCheckedDetector(Boxes((15, 14, 26, 27)), NO_SPLIT).detect(tile)) == 1


@pytest.mark.parametrize("clip", [(), ("B12",), ("B12", "B11")])
def test_a_single_saturated_stack_is_not_split(clip):
    tile = make_pair_tile(0, ex12=(6.0, 0.0), clip=clip)
    assert len(PhysicsCheckedDetector(Boxes((15, 14, 26, 27)), SPLIT).detect(tile)) == 1


def test_the_deployed_check_is_physics_v3():
    from flarewatch.detect.variants import DEPLOYED, VARIANTS
    from flarewatch.detect.verified import PHYSICS_CHECK_VERSION

    assert PHYSICS_CHECK_VERSION == "physics-v3"
    assert VARIANTS[DEPLOYED].check == PhysicsCheck() and PhysicsCheck().colour_fit == "rma"


def test_the_colour_slope_survives_misregistration():
    # a sub-pixel flame through a pixel-integrated gaussian PSF (sigma 0.6 px) over a 5 x 5 core,
    # its B12 0.5 px off its B11: least squares reads it flatter (hotter), the SD ratio does not
    from scipy.special import ndtr

    from flarewatch.detect.verified import _colour_slope

    def psf(r, c, n=5, sigma=0.6):
        e = np.arange(n + 1.0)
        return np.outer(np.diff(ndtr((e - r) / sigma)), np.diff(ndtr((e - c) / sigma)))

    ex11, ex12 = psf(2.5, 2.5), 2.3 * psf(2.5, 3.0)
    ols, _ = _colour_slope(ex12, ex11, "ols")
    rma, _ = _colour_slope(ex12, ex11, "rma")
    assert ols < 1.9 and rma == pytest.approx(2.3, rel=0.05)


def test_the_hard_validation_sites_are_not_training_sites():
    from flarewatch.evaluation.hard_validation import VALIDATION_SEED
    from flarewatch.training.detector_data import DatasetSpec, synthetic_sites

    hard = {s.site_id for s in synthetic_sites("val", 40, VALIDATION_SEED)}
    spec = DatasetSpec()
    trained = {s.site_id for split in ("train", "val", "test") for s in synthetic_sites(split, 24, spec.seed)}
    assert VALIDATION_SEED != spec.seed and not hard & trained
