"""Labeled YOLO dataset (ultralytics layout) of flare chips cut from simulated Sentinel-2 tiles.

Layout written by :func:`build_dataset` under ``out_dir``::

    data.yaml                      path (absolute), train/val/test image folders, names {0: flare}
    images/{train,val,test}/*.png  chips in the detector representation (representation.detector_image)
    labels/{train,val,test}/*.txt  one "0 cx cy w h" line per flare (normalised, may be empty)
    meta/{train,val,test}.jsonl    one JSON object per chip: stem, site_id, date, r0, c0, n_flares, tags

Splits use *different synthetic sites* (:func:`synthetic_sites`, site ids prefixed by the split),
so validation/test scores measure generalisation to unseen sites, not to unseen days of a seen site.

Labelling rules (what a detector can and should find):

* Positive = a truth flare that is ``active`` and ``in_scene`` and **visible**: its B12 excess over
  the local background is at least ``max(spec.min_excess_reflectance, spec.excess_snr * local_sd)``.
  The excess is measured on the tile itself (max B12 reflectance in the 3x3 pixels round the source
  minus the median B12 of the ring of the 7x7 window round it, i.e. of the pad/platform the stack
  stands on); ``local_sd`` is the robust pixel-to-pixel scatter of the 13x13 window (noise plus
  fine texture, not pad edges), so a flare has to stand out of *its* background, not just of sensor
  noise (``NOISE_SD_REFLECTANCE`` = 0.003). The floor of
  0.03 reflectance is ~10x the sensor noise and ~5 grey levels in the sqrt stretch on a bright
  desert. This decides cloud-covered flares (thick cloud keeps only 5-30 % of the flame signal, so
  some vanish) and very small flares alike: no visible excess -> no label (they are counted as
  ``n_hidden`` in the meta). Dim-but-visible flares are labeled and tagged ``small``.
* Wildfires (``truth["fires"]``), sun glint, white tanks and metal roofs are never labeled: they are
  the hard negatives the detector must learn to reject.
* Box size: a flame is sub-pixel, but the sensor PSF (gaussian sigma 0.6 px, pixel-integrated)
  spreads it over a ~3x3 px core plus a 1-px halo. The label box is nevertheless ``spec.box_px`` =
  12 px: YOLO's task-aligned assigner only takes anchor points *inside* a box, and at the finest
  stride (8 px) a 6 px box often holds none, so 6 px labels trained to zero recall (measured:
  box loss ~0, recall 0 after 4 epochs). 12 px boxes (the flare plus its immediate context)
  always hold an anchor; evaluation uses the box *centre*, which the size does not move. It
  grows with radiant heat (+1.5 px per doubling above 1 MW) and by 1 px for saturated cores, capped
  at ``box_px + 4``, because bright flares light up a wider halo. Boxes are clipped to the chip;
  a flare is labeled in a chip only when its centre lies inside the chip (chips overlap, so a flare
  cut by one chip's border sits whole in a neighbour).

Chips: every tile (320 px for the 6.4 km synthetic AOI) is cut with
``detect.representation.chip_windows(h, w, spec.chip_px, spec.overlap_px)`` (160 px chips, 40 px overlap ->
3x3 windows). In addition, for each visible flare with probability ``spec.edge_chip_prob`` an extra
chip is placed at a random offset so that the flare centre lies 0.5-8 px from a random chip border
(hard case "edge"). All chips holding a positive, glint, fire, cloud or nodata are kept; plain
background chips are kept with probability ``spec.background_keep``.

Meta tags (for splitting evaluation metrics by hard case): ``glint`` (glint day and >= 10 bright
B12 > 0.35 water pixels in the chip away from the flares), ``cloud`` (>= 5 % of the chip under the
tile cloud mask), ``fire`` (a wildfire front reaches into the chip), ``small`` (a labeled flare
with radiant heat < 0.3 MW or flow < 25 thousand m3/d), ``saturated`` (a labeled flare with a
saturated B12 core), ``edge`` (a labeled flare centre within 8 px of the chip border), ``pair``
(two labeled flares within 8 px of each other), ``nodata`` (chip holds nodata pixels).

Everything is deterministic for a given :class:`DatasetSpec` (seeded numpy generators from
SHA-256 of the spec seed and names, the simulator is deterministic, PNGs are written by PIL with
fixed settings).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

from flarewatch.detect.representation import (
    REPRESENTATION_VERSION,
    chip_windows,
    detector_image,
)
from flarewatch.simulation.scene import simulate_scene
from flarewatch.sites import Site
from flarewatch.training.randomize import randomize_scene

CLASS_NAMES = ["flare"]
SPLITS = ("train", "val", "test")
TAGS = ("glint", "cloud", "fire", "small", "saturated", "edge", "pair", "nodata")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

SMALL_RH_MW = 0.3  # "small" tag: radiant heat below this ...
SMALL_FLOW_KSCM_D = 25.0  # ... or flow below this (thousand m3/day)
EDGE_PX = 8.0  # "edge" tag: flare centre within this many px of the chip border
PAIR_PX = 8.0  # "pair" tag: two labeled flares within this many px
CLOUD_TAG_FRACTION = 0.05
GLINT_B12 = 0.35  # water + cloud stay below this in B12; glint facets exceed it
GLINT_MIN_PX = 10
LOCAL_HALF = 6  # 13x13 window for the local background of a flare

# Oil and gas regions (name, country, lat, lon) for synthetic sites: both hemispheres, many UTM zones.
OIL_REGIONS = (
    ("Permian", "US", 31.8, -102.5),
    ("Bakken", "US", 47.9, -103.2),
    ("Eagle Ford", "US", 28.6, -98.2),
    ("Gulf of Mexico", "US", 28.2, -90.5),
    ("Niger Delta", "NG", 4.9, 6.6),
    ("Basra", "IQ", 30.4, 47.6),
    ("Kirkuk", "IQ", 35.5, 44.3),
    ("Hassi Messaoud", "DZ", 31.7, 6.1),
    ("Sirte", "LY", 28.8, 19.5),
    ("Western Desert", "EG", 29.5, 27.8),
    ("Khanty-Mansiysk", "RU", 61.2, 73.4),
    ("Orenburg", "RU", 51.8, 55.1),
    ("Mangystau", "KZ", 43.6, 52.0),
    ("Dhofar", "OM", 18.9, 54.2),
    ("Ahvaz", "IR", 31.2, 48.8),
    ("Monagas", "VE", 9.6, -63.3),
    ("Neuquen", "AR", -38.3, -69.0),
    ("Campos Basin", "BR", -22.4, -40.3),
    ("Cabinda offshore", "AO", -6.2, 11.8),
    ("Cooper Basin", "AU", -27.9, 140.6),
    ("East Kalimantan", "ID", -0.9, 117.3),
    ("Gippsland", "AU", -38.3, 147.8),
    ("Talara", "PE", -4.5, -81.2),
    ("North Sea", "GB", 57.2, 1.8),
)
LAND_COVERS = ("desert", "sand", "vegetation", "cropland", "water")


@dataclass(frozen=True)
class DatasetSpec:
    """What :func:`build_dataset` builds.

    ``chip_px``: chip side in pixels, the production chip size (tiles are cut into chips of this
    size; the detector sees chips of this size at inference too); ``overlap_px``: overlap of the
    chip windows; ``n_sites_*``: synthetic sites per split (disjoint); ``days_per_site``: scenes per
    site; ``seed``: seeds the sites, days and chip sampling; ``box_px``: label box side for a
    flare (PSF ~3x3 core + halo, see module doc), enlarged for bright / saturated flares;
    ``aoi_km``: synthetic site AOI (6.4 km -> 320 px tiles); ``background_keep``: fraction of plain
    background chips kept; ``edge_chip_prob``: per visible flare, chance of an extra chip with the
    flare near its border; ``min_excess_reflectance`` / ``excess_snr``: visibility criterion.
    """

    chip_px: int = 160
    overlap_px: int = 40
    n_sites_train: int = 24
    n_sites_val: int = 6
    n_sites_test: int = 6
    days_per_site: int = 6
    seed: int = 0
    box_px: float = 12.0
    aoi_km: float = 6.4
    background_keep: float = 0.3
    edge_chip_prob: float = 0.5
    min_excess_reflectance: float = 0.03
    excess_snr: float = 5.0
    randomize: bool = False  # training.randomize.randomize_scene on every scene (domain randomisation)

    def n_sites(self, split: str) -> int:
        return {
            "train": self.n_sites_train,
            "val": self.n_sites_val,
            "test": self.n_sites_test,
        }[split]


def _rng(*parts: object) -> np.random.Generator:
    key = "|".join(str(p) for p in ("flarewatch-training-data", *parts))
    return np.random.default_rng(
        int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "little")
    )


def synthetic_sites(split: str, n: int, seed: int, aoi_km: float = 6.4) -> list[Site]:
    """``n`` deterministic synthetic training sites for ``split``.

    Site ids are ``<split>-s<seed>-<k>`` (disjoint between splits by construction); positions are
    drawn within ~1 degree of a random oil and gas region (both hemispheres, varied UTM zones);
    ``land_cover`` cycles through all five types (starting at a seed/split dependent offset).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = _rng("sites", split, seed)
    start = int(rng.integers(len(LAND_COVERS)))
    sites = []
    for k in range(n):
        name, country, lat0, lon0 = OIL_REGIONS[int(rng.integers(len(OIL_REGIONS)))]
        lat = float(np.clip(lat0 + rng.uniform(-1.0, 1.0), -80.0, 80.0))
        lon = float(lon0 + rng.uniform(-1.0, 1.0))
        lc = LAND_COVERS[(start + k) % len(LAND_COVERS)]
        sites.append(
            Site(
                site_id=f"{split}-s{seed}-{k:03d}",
                name=f"Synthetic {name} {k}",
                field=name,
                operator="synthetic",
                country=country,
                lat=round(lat, 5),
                lon=round(lon, 5),
                aoi_km=aoi_km,
                land_cover=lc,
                notes="flarewatch.training_data synthetic site",
            )
        )
    return sites


def scene_days(site: Site, n: int, seed: int) -> list[date]:
    """The ``n`` acquisition days of a synthetic site in a dataset (deterministic in ``seed``)."""
    rng = _rng("days", seed, site.site_id)
    offsets = rng.choice(
        731, size=min(n, 731), replace=False
    )  # 2023-01-01 .. 2024-12-31
    return sorted(date(2023, 1, 1) + timedelta(days=int(o)) for o in offsets)


# ------------------------------------------------------------------------------------------------
# Labels
# ------------------------------------------------------------------------------------------------
def yolo_label_lines(flares_rc, chip_r0: int, chip_c0: int, chip_px: int) -> list[str]:
    """YOLO label lines ``"0 cx cy w h"`` (normalised to the chip) for flares centred in the chip.

    ``flares_rc``: ``(row, col, box_px)`` in tile pixel coordinates (pixel (i, j) spans rows
    [i, i+1) and cols [j, j+1), as the simulator truth). A flare is kept when
    ``r0 <= row < r0 + chip_px`` and likewise for the column; its box is clipped to the chip.
    """
    lines = []
    for row, col, box in flares_rc:
        r, c = row - chip_r0, col - chip_c0
        if not (0.0 <= r < chip_px and 0.0 <= c < chip_px):
            continue
        half = box / 2.0
        y1, y2 = max(r - half, 0.0), min(r + half, float(chip_px))
        x1, x2 = max(c - half, 0.0), min(c + half, float(chip_px))
        if y2 <= y1 or x2 <= x1:
            continue
        cx, cy = (x1 + x2) / 2.0 / chip_px, (y1 + y2) / 2.0 / chip_px
        w, h = (x2 - x1) / chip_px, (y2 - y1) / chip_px
        lines.append(f"0 {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return lines


def label_box_px(spec: DatasetSpec, radiant_heat_mw: float, saturated: bool) -> float:
    """Label box side (px): ``box_px`` + 1.5 px per doubling of radiant heat above 1 MW, +1 if saturated, <= box_px + 4."""
    grow = 1.5 * math.log2(max(radiant_heat_mw, 1.0)) + (1.0 if saturated else 0.0)
    return float(min(spec.box_px + grow, spec.box_px + 4.0))


def flare_excess(b12: np.ndarray, row: float, col: float) -> tuple[float, float]:
    """(B12 excess over the local background, local fine-scale sd) of a source at (row, col).

    Excess: max B12 of the 3x3 px round the source minus the median of the ring of the 7x7 px
    round it (close enough to sit on the same well pad / platform as the stack). sd: robust
    pixel-to-pixel scatter (1.4826 * MAD of horizontal and vertical neighbour differences / sqrt 2)
    in the 13x13 window -- sensor noise plus fine texture, insensitive to pad edges and cloud
    gradients. NaN (nodata) pixels are ignored; (0, inf) when nothing is valid.
    """
    r, c = int(row), int(col)
    core = b12[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2]
    near = b12[max(r - 3, 0) : r + 4, max(c - 3, 0) : c + 4].copy()
    near[
        max(r - 1, 0) - max(r - 3, 0) : r + 2 - max(r - 3, 0),
        max(c - 1, 0) - max(c - 3, 0) : c + 2 - max(c - 3, 0),
    ] = np.nan
    win = b12[
        max(r - LOCAL_HALF, 0) : r + LOCAL_HALF + 1,
        max(c - LOCAL_HALF, 0) : c + LOCAL_HALF + 1,
    ]
    if not np.isfinite(core).any() or not np.isfinite(near).any():
        return 0.0, math.inf
    bg = float(np.nanmedian(near))
    diffs = np.concatenate([np.diff(win, axis=0).ravel(), np.diff(win, axis=1).ravel()])
    diffs = diffs[np.isfinite(diffs)]
    sd = (
        1.4826 * float(np.median(np.abs(diffs))) / math.sqrt(2.0)
        if diffs.size
        else math.inf
    )
    return float(np.nanmax(core)) - bg, sd


def visible_flares(
    scene, spec: DatasetSpec, b12: np.ndarray | None = None
) -> tuple[list[dict], list[dict]]:
    """(labeled, hidden) truth flares of a scene: active and in the scene, split by visibility."""
    if b12 is None:
        b12 = scene.tile.reflectance("B12")
    labeled, hidden = [], []
    for f in scene.truth["flares"]:
        if not (f["active"] and f["in_scene"]):
            continue
        excess, sd = flare_excess(b12, f["row"], f["col"])
        f = dict(f, b12_excess=round(excess, 5))
        if excess >= max(spec.min_excess_reflectance, spec.excess_snr * sd):
            f["box_px"] = label_box_px(spec, f["radiant_heat_mw"], f["saturated"])
            labeled.append(f)
        else:
            hidden.append(f)
    return labeled, hidden


def chip_tags(
    labeled: list[dict],
    r0: int,
    c0: int,
    chip_px: int,
    *,
    fires: list[dict] = (),
    glint_px: int = 0,
    cloud_fraction: float = 0.0,
    has_nodata: bool = False,
) -> list[str]:
    """Hard-case tags of a chip (see module doc); ``labeled``: truth flare dicts with row/col."""
    inside = [
        f
        for f in labeled
        if r0 <= f["row"] < r0 + chip_px and c0 <= f["col"] < c0 + chip_px
    ]
    tags = set()
    if glint_px >= GLINT_MIN_PX:
        tags.add("glint")
    if cloud_fraction >= CLOUD_TAG_FRACTION:
        tags.add("cloud")
    for fi in fires:
        reach = fi.get("extent_px", 0.0) / 2.0
        if (
            r0 - reach <= fi["row"] < r0 + chip_px + reach
            and c0 - reach <= fi["col"] < c0 + chip_px + reach
        ):
            tags.add("fire")
    if has_nodata:
        tags.add("nodata")
    for f in inside:
        if f["radiant_heat_mw"] < SMALL_RH_MW or f["flow_kscm_d"] < SMALL_FLOW_KSCM_D:
            tags.add("small")
        if f.get("saturated"):
            tags.add("saturated")
        r, c = f["row"] - r0, f["col"] - c0
        if min(r, c, chip_px - r, chip_px - c) < EDGE_PX:
            tags.add("edge")
    for i, a in enumerate(inside):
        for b in inside[i + 1 :]:
            if math.hypot(a["row"] - b["row"], a["col"] - b["col"]) < PAIR_PX:
                tags.add("pair")
    return [t for t in TAGS if t in tags]


# ------------------------------------------------------------------------------------------------
# Dataset
# ------------------------------------------------------------------------------------------------
def _edge_windows(
    rng, labeled, h: int, w: int, chip: int, prob: float
) -> list[tuple[int, int]]:
    """Extra chip origins putting a flare 0.5-8 px from a random chip border (inside the tile)."""
    out = []
    if h < chip or w < chip:
        return out
    for f in labeled:
        u, side, d, along = (
            rng.random(),
            int(rng.integers(4)),
            rng.uniform(0.5, EDGE_PX),
            rng.random(),
        )
        if u >= prob:
            continue
        r, c = f["row"], f["col"]
        # side 0: top, 1: bottom, 2: left, 3: right
        if side == 0:
            r0 = math.floor(r - d)
        elif side == 1:
            r0 = math.floor(r + d) - chip + 1
        else:
            r0 = math.floor(r - along * (chip - 1))
        if side == 2:
            c0 = math.floor(c - d)
        elif side == 3:
            c0 = math.floor(c + d) - chip + 1
        else:
            c0 = math.floor(c - along * (chip - 1))
        r0, c0 = int(np.clip(r0, 0, h - chip)), int(np.clip(c0, 0, w - chip))
        if r0 <= r < r0 + chip and c0 <= c < c0 + chip:
            out.append((r0, c0))
    return out


def _write_png(path: Path, img: np.ndarray) -> None:
    Image.fromarray(img, mode="RGB").save(
        path, format="PNG", optimize=False, compress_level=6
    )


def _write_data_yaml(out_dir: Path) -> None:
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASS_NAMES))
    text = (
        f"# FlareWatch flare detector dataset ({REPRESENTATION_VERSION})\n"
        f"path: {out_dir.resolve()}\n"
        "train: images/train\nval: images/val\ntest: images/test\n"
        f"names:\n{names}\n"
    )
    (out_dir / "data.yaml").write_text(text)


def _scene_chips(scene, spec: DatasetSpec, rng: np.random.Generator):
    """Yield (r0, c0, chip uint8 array, label lines, meta dict) for the kept chips of one scene."""
    tile = scene.tile
    h, w = tile.shape
    chip = spec.chip_px
    img = detector_image(tile)
    if h < chip or w < chip:  # pad small tiles with nodata (black)
        pad = np.zeros((max(h, chip), max(w, chip), 3), np.uint8)
        pad[:h, :w] = img
        img = pad
    b12 = tile.reflectance("B12")
    valid = tile.valid
    cloud = tile.cloud_mask if tile.cloud_mask is not None else np.zeros((h, w), bool)
    labeled, hidden = visible_flares(scene, spec, b12)
    truth = scene.truth
    glint_map = None
    if truth.get("glint"):
        glint_map = np.nan_to_num(b12, nan=0.0) > GLINT_B12
        rr, cc = np.ogrid[0:h, 0:w]
        for f in truth["flares"]:
            glint_map &= (rr + 0.5 - f["row"]) ** 2 + (cc + 0.5 - f["col"]) ** 2 > 36.0
    wins = chip_windows(h, w, chip, spec.overlap_px)
    edge_wins = _edge_windows(rng, labeled, h, w, chip, spec.edge_chip_prob)
    seen = set()
    boxes = [(f["row"], f["col"], f["box_px"]) for f in labeled]
    for kind, (r0, c0) in [("grid", x) for x in wins] + [
        ("edge", x) for x in edge_wins
    ]:
        u_keep = rng.random()
        if (r0, c0) in seen:
            continue
        seen.add((r0, c0))
        sl = (slice(r0, r0 + chip), slice(c0, c0 + chip))
        lines = yolo_label_lines(boxes, r0, c0, chip)
        tags = chip_tags(
            labeled, r0, c0, chip,
            fires=truth.get("fires", ()),
            glint_px=int(glint_map[sl].sum()) if glint_map is not None else 0,
            cloud_fraction=float(cloud[sl].mean()) if cloud[sl].size else 0.0,
            has_nodata=bool((~valid[sl]).any()) or r0 + chip > h or c0 + chip > w,
        )  # fmt: skip
        hard = {"glint", "cloud", "fire", "nodata"} & set(tags)
        if not lines and not hard and u_keep >= spec.background_keep:
            continue
        n_hidden = sum(
            1
            for f in hidden
            if r0 <= f["row"] < r0 + chip and c0 <= f["col"] < c0 + chip
        )
        meta = {
            "r0": r0,
            "c0": c0,
            "window": kind,
            "n_flares": len(lines),
            "n_hidden": n_hidden,
            "tags": tags,
        }
        yield r0, c0, np.ascontiguousarray(img[sl]), lines, meta


def build_dataset(
    out_dir: Path, spec: DatasetSpec = DatasetSpec(), extra_dirs=()
) -> dict:
    """Write the YOLO dataset for ``spec`` under ``out_dir`` (see module doc); returns summary counts.

    Existing ``images/``, ``labels/``, ``meta/`` and ``data.yaml`` under ``out_dir`` are replaced.
    ``extra_dirs``: folders of real labeled chips in the same layout, merged with
    :func:`merge_external` after the synthetic chips.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for sub in ("images", "labels", "meta"):
        if (out_dir / sub).exists():
            shutil.rmtree(out_dir / sub)
    for split in SPLITS:
        (out_dir / "images" / split).mkdir(parents=True)
        (out_dir / "labels" / split).mkdir(parents=True)
    (out_dir / "meta").mkdir()
    summary: dict = {
        "spec": asdict(spec),
        "representation": REPRESENTATION_VERSION,
        "splits": {},
    }
    for split in SPLITS:
        sites = synthetic_sites(split, spec.n_sites(split), spec.seed, spec.aoi_km)
        counts = {"sites": len(sites), "scenes": 0, "chips": 0, "chips_with_flares": 0, "positives": 0,
                  "hidden_flares": 0, "tags": {t: 0 for t in TAGS}}  # fmt: skip
        with open(out_dir / "meta" / f"{split}.jsonl", "w") as meta_f:
            for site in sites:
                for day in scene_days(site, spec.days_per_site, spec.seed):
                    scene = simulate_scene(site, day)
                    if spec.randomize:
                        scene = randomize_scene(scene, spec.seed, split)
                    counts["scenes"] += 1
                    rng = _rng("chips", spec.seed, site.site_id, day.isoformat())
                    for r0, c0, img, lines, meta in _scene_chips(scene, spec, rng):
                        stem = f"{site.site_id}_{day:%Y%m%d}_r{r0:03d}_c{c0:03d}"
                        _write_png(out_dir / "images" / split / f"{stem}.png", img)
                        (out_dir / "labels" / split / f"{stem}.txt").write_text(
                            "".join(x + "\n" for x in lines)
                        )
                        rec = {"stem": stem, "site_id": site.site_id, "date": day.isoformat(),
                               "land_cover": site.land_cover, "source": "simulator", **meta}  # fmt: skip
                        meta_f.write(json.dumps(rec, sort_keys=True) + "\n")
                        counts["chips"] += 1
                        counts["chips_with_flares"] += bool(lines)
                        counts["positives"] += len(lines)
                        counts["hidden_flares"] += meta["n_hidden"]
                        for t in meta["tags"]:
                            counts["tags"][t] += 1
        summary["splits"][split] = counts
    _write_data_yaml(out_dir)
    summary["external_chips"] = sum(
        merge_external(out_dir, Path(d)) for d in extra_dirs
    )
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary


# ------------------------------------------------------------------------------------------------
# Real labeled chips
# ------------------------------------------------------------------------------------------------
def _check_label_file(path: Path) -> list[str]:
    """The label lines of ``path`` normalised; ValueError naming the file and line when invalid."""
    out = []
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split()
        where = f"{path}:{lineno}: {raw!r}"
        if len(parts) != 5:
            raise ValueError(
                f"{where}: expected 5 fields 'class cx cy w h', got {len(parts)}"
            )
        try:
            cls = int(parts[0])
            vals = [float(p) for p in parts[1:]]
        except ValueError:
            raise ValueError(
                f"{where}: class id must be an integer and cx cy w h numbers"
            ) from None
        if not 0 <= cls < len(CLASS_NAMES):
            raise ValueError(
                f"{where}: unknown class id {cls} (classes: {dict(enumerate(CLASS_NAMES))})"
            )
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in vals):
            raise ValueError(f"{where}: cx cy w h must be normalised to [0, 1]")
        out.append(line)
    return out


def merge_external(out_dir: Path, extra_dir: Path) -> int:
    """Copy real labeled chips (``images/<split>/*``, ``labels/<split>/<stem>.txt``) into ``out_dir``.

    File names are prefixed with ``ext-<extra_dir name>_`` to avoid clashes; a missing label file
    means a background chip (an empty one is written). Every label file is validated before
    anything is copied (ValueError naming the file and line). Meta lines (``source`` = the folder
    name, no tags) are appended to ``meta/<split>.jsonl``. Returns the number of chips merged.
    """
    out_dir, extra_dir = Path(out_dir), Path(extra_dir)
    if not (extra_dir / "images").is_dir():
        raise ValueError(
            f"{extra_dir}: no images/ folder (expected images/<split>/, labels/<split>/)"
        )
    prefix = (
        "ext-"
        + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in extra_dir.name)
        + "_"
    )
    plan = []
    for split in SPLITS:
        img_dir = extra_dir / "images" / split
        if not img_dir.is_dir():
            continue
        for img in sorted(
            p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS
        ):
            lab = extra_dir / "labels" / split / f"{img.stem}.txt"
            lines = _check_label_file(lab) if lab.exists() else []
            plan.append((split, img, lines))
    for split, img, lines in plan:
        (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
        (out_dir / "labels" / split).mkdir(parents=True, exist_ok=True)
        (out_dir / "meta").mkdir(parents=True, exist_ok=True)
        stem = prefix + img.stem
        shutil.copyfile(img, out_dir / "images" / split / f"{stem}{img.suffix.lower()}")
        (out_dir / "labels" / split / f"{stem}.txt").write_text(
            "".join(x + "\n" for x in lines)
        )
        rec = {
            "stem": stem,
            "source": extra_dir.name,
            "n_flares": len(lines),
            "tags": [],
        }
        with open(out_dir / "meta" / f"{split}.jsonl", "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
    return len(plan)
