import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flarewatch.simulation.scene import simulate_scene
from flarewatch.sites import Site
from flarewatch.training.detector_data import (
    CLASS_NAMES,
    DatasetSpec,
    _rng,
    _scene_chips,
    build_dataset,
    chip_tags,
    merge_external,
    synthetic_sites,
    visible_flares,
    yolo_label_lines,
)

TINY = DatasetSpec(
    n_sites_train=2,
    n_sites_val=1,
    n_sites_test=1,
    days_per_site=1,
    aoi_km=3.2,
    chip_px=64,
    overlap_px=16,
)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds")
    summary = build_dataset(out, TINY)
    return out, summary


def _parse(label: Path) -> list[list[float]]:
    rows = []
    for line in label.read_text().splitlines():
        parts = line.split()
        assert len(parts) == 5
        assert int(parts[0]) in range(len(CLASS_NAMES))
        vals = [float(p) for p in parts[1:]]
        assert all(0.0 <= v <= 1.0 for v in vals)
        rows.append(vals)
    return rows


def test_layout_is_ultralytics_compatible(tiny_dataset):
    out, summary = tiny_dataset
    yaml_text = (out / "data.yaml").read_text()
    assert f"path: {out.resolve()}" in yaml_text
    for key in (
        "train: images/train",
        "val: images/val",
        "test: images/test",
        "0: flare",
    ):
        assert key in yaml_text
    total_labels = 0
    for split in ("train", "val", "test"):
        images = sorted((out / "images" / split).glob("*.png"))
        assert len(images) == summary["splits"][split]["chips"] > 0
        meta = [
            json.loads(x)
            for x in (out / "meta" / f"{split}.jsonl").read_text().splitlines()
        ]
        assert sorted(m["stem"] for m in meta) == [p.stem for p in images]
        by_stem = {m["stem"]: m for m in meta}
        for img in images:
            label = out / "labels" / split / f"{img.stem}.txt"
            assert label.exists()
            rows = _parse(label)
            total_labels += len(rows)
            assert by_stem[img.stem]["n_flares"] == len(rows)
            with Image.open(img) as im:
                assert im.size == (TINY.chip_px, TINY.chip_px) and im.mode == "RGB"
    assert total_labels == sum(s["positives"] for s in summary["splits"].values()) > 0


def test_splits_have_disjoint_sites(tiny_dataset):
    out, _ = tiny_dataset
    ids = {}
    for split in ("train", "val", "test"):
        ids[split] = {
            json.loads(x)["site_id"]
            for x in (out / "meta" / f"{split}.jsonl").read_text().splitlines()
        }
        assert all(s.startswith(split + "-") for s in ids[split])
    assert (
        not (ids["train"] & ids["val"])
        and not (ids["train"] & ids["test"])
        and not (ids["val"] & ids["test"])
    )
    train = synthetic_sites("train", 10, 0)
    assert {s.land_cover for s in train} == {
        "desert",
        "sand",
        "vegetation",
        "cropland",
        "water",
    }
    assert len({s.utm_epsg for s in train}) > 3
    assert (
        synthetic_sites("train", 10, 0) == train
        and synthetic_sites("train", 10, 1) != train
    )


def test_deterministic(tiny_dataset, tmp_path):
    out, summary = tiny_dataset
    summary2 = build_dataset(tmp_path, TINY)
    assert summary2["splits"] == summary["splits"]
    for split in ("train", "val", "test"):
        a = {p.name: p.read_bytes() for p in (out / "labels" / split).glob("*.txt")}
        b = {
            p.name: p.read_bytes() for p in (tmp_path / "labels" / split).glob("*.txt")
        }
        assert a == b
        assert (out / "meta" / f"{split}.jsonl").read_text() == (
            tmp_path / "meta" / f"{split}.jsonl"
        ).read_text()


def test_yolo_label_lines_math():
    # centred flare in a 100 px chip at (100, 200): box 10 px
    assert yolo_label_lines([(150.0, 250.0, 10.0)], 100, 200, 100) == [
        "0 0.500000 0.500000 0.100000 0.100000"
    ]
    # centre exactly on the chip's top-left corner: kept, box clipped to the chip (5 x 5 px)
    assert yolo_label_lines([(100.0, 200.0, 10.0)], 100, 200, 100) == [
        "0 0.025000 0.025000 0.050000 0.050000"
    ]
    # centre 2 px from the right border: width = 5 + 2 px, centred at 98.5 - 3.5 ...
    (line,) = yolo_label_lines([(150.0, 298.0, 10.0)], 100, 200, 100)
    _, cx, cy, w, h = line.split()
    assert float(w) == pytest.approx(0.07) and float(cx) == pytest.approx(
        (93 + 100) / 2 / 100
    )
    assert float(h) == pytest.approx(0.1) and float(cy) == pytest.approx(0.5)
    # centres outside the chip (including on the far border) are excluded
    assert (
        yolo_label_lines(
            [(99.9, 250.0, 6.0), (150.0, 300.0, 6.0), (250.0, 250.0, 6.0)],
            100,
            200,
            100,
        )
        == []
    )


def test_merge_external(tiny_dataset, tmp_path):
    out, _ = tiny_dataset
    ext = tmp_path / "real-ng"
    (ext / "images" / "train").mkdir(parents=True)
    (ext / "labels" / "train").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(
        ext / "images" / "train" / "chip1.png"
    )
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(
        ext / "images" / "train" / "chip2.png"
    )
    (ext / "labels" / "train" / "chip1.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (ext / "labels" / "train" / "chip2.txt").write_text(
        "0 0.5 0.5 0.1 0.1\n1 0.2 0.2 0.1 0.1\n"
    )
    with pytest.raises(ValueError, match=r"chip2\.txt:2.*unknown class id 1"):
        merge_external(out, ext)
    assert not list((out / "images" / "train").glob("ext-*"))  # nothing copied on error
    (ext / "labels" / "train" / "chip2.txt").write_text("0 1.2 0.5 0.1 0.1\n")
    with pytest.raises(ValueError, match=r"chip2\.txt:1.*\[0, 1\]"):
        merge_external(out, ext)
    (ext / "labels" / "train" / "chip2.txt").unlink()  # missing label = background chip
    assert merge_external(out, ext) == 2
    assert (out / "images" / "train" / "ext-real-ng_chip1.png").exists()
    assert (
        out / "labels" / "train" / "ext-real-ng_chip1.txt"
    ).read_text() == "0 0.5 0.5 0.1 0.1\n"
    assert (out / "labels" / "train" / "ext-real-ng_chip2.txt").read_text() == ""
    assert "ext-real-ng_chip1" in (out / "meta" / "train.jsonl").read_text()


def test_chip_tags_hand_made():
    lab = [
        {
            "row": 3.0,
            "col": 50.0,
            "radiant_heat_mw": 5.0,
            "flow_kscm_d": 200.0,
            "saturated": True,
        },
        {
            "row": 50.0,
            "col": 50.0,
            "radiant_heat_mw": 0.1,
            "flow_kscm_d": 5.0,
            "saturated": False,
        },
        {
            "row": 53.0,
            "col": 54.0,
            "radiant_heat_mw": 2.0,
            "flow_kscm_d": 80.0,
            "saturated": False,
        },
        {
            "row": 500.0,
            "col": 500.0,
            "radiant_heat_mw": 0.1,
            "flow_kscm_d": 5.0,
            "saturated": False,
        },  # other chip
    ]
    fire = {"row": 110.0, "col": 20.0, "extent_px": 30.0}
    tags = chip_tags(
        lab, 0, 0, 100, fires=[fire], glint_px=50, cloud_fraction=0.2, has_nodata=True
    )
    assert tags == [
        "glint",
        "cloud",
        "fire",
        "small",
        "saturated",
        "edge",
        "pair",
        "nodata",
    ]
    assert chip_tags(
        lab[1:2],
        0,
        0,
        100,
        fires=[{"row": 300.0, "col": 20.0, "extent_px": 10.0}],
        glint_px=3,
    ) == ["small"]


def test_glint_scene_is_tagged_and_not_labeled():
    site = Site(
        "glint-probe", "p", "f", "o", "NG", 4.5, 6.2, aoi_km=3.2, land_cover="water"
    )
    scene = simulate_scene(site, date(2024, 1, 2))
    assert scene.truth["glint"]
    spec = DatasetSpec(chip_px=64, overlap_px=16, background_keep=1.0)
    labeled, _ = visible_flares(scene, spec)
    chips = list(_scene_chips(scene, spec, _rng("t")))
    assert any("glint" in m["tags"] for *_, m in chips)
    assert sum(m["n_flares"] for *_, m in chips if m["window"] == "grid") >= len(
        labeled
    )
    # labels only at truth flares, never on the glint patch
    for r0, c0, _, lines, _ in chips:
        for line in lines:
            _, cx, cy, _, _ = map(float, line.split())
            assert any(
                abs(f["row"] - (r0 + cy * 64)) < 5
                and abs(f["col"] - (c0 + cx * 64)) < 5
                for f in labeled
            )


def test_cloud_hidden_flare_not_labeled_and_fire_never_labeled():
    spec = DatasetSpec()
    scene = simulate_scene(
        Site("p", "p", "f", "o", "NG", 4.5, 6.2, aoi_km=3.2), date(2024, 1, 2)
    )
    b12 = scene.tile.reflectance("B12")
    f = next(x for x in scene.truth["flares"] if x["active"] and x["in_scene"])
    r, c = int(f["row"]), int(f["col"])
    assert visible_flares(scene, spec, b12)[0]
    flat = b12.copy()
    flat[r - 4 : r + 5, c - 4 : c + 5] = np.nanmedian(
        b12
    )  # flame hidden under thick cloud: no excess left
    labeled, hidden = visible_flares(scene, spec, flat)
    assert f["flare_id"] in {h["flare_id"] for h in hidden}
    assert f["flare_id"] not in {x["flare_id"] for x in labeled}
    scene.truth["fires"] = [{"row": 10.0, "col": 10.0, "extent_px": 5.0}]
    assert all("fire_id" not in x for x in visible_flares(scene, spec)[0])
