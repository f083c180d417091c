"""Each speed-up of the per-tile task (issue 14) gives exactly what the code it replaces gives.

- ``ingest.viirs._vnf_frame``: the one-step frame of a VNF CSV equals the per-column one;
- ``ingest.viirs.NightCache``: a night file parsed once per content, re-parsed when it changes,
  never kept when it does not parse;
- ``ingest.viirs.VnfPoints`` and ``features.viirs.viirs_features_at`` / ``viirs_nights_seen_at``:
  the rows, order and distances of ``match_viirs`` and the values of ``viirs_features`` /
  ``viirs_nights_seen``;
- ``features.extract.TileArrays``: ``extract_features`` gives the same dict with the tile's arrays
  shared between detections;
- ``process.render``: the pasted scale bar, north arrow and legend are pixel for pixel (and byte
  for byte) what drawing them gives, and they are drawn when a label reaches into the legend band;
  ``png_bytes`` encodes the very pixels PIL's encoder does.
"""

from __future__ import annotations

import csv
import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from flarewatch.config import VIIRS_FLARE_MIN_TEMP_K, Settings
from flarewatch.detect.threshold import Detection, detect_flares
from flarewatch.features.extract import (
    TileArrays,
    extract_features,
    viirs_features,
    viirs_features_at,
    viirs_nights_seen,
    viirs_nights_seen_at,
)
from flarewatch.ingest import viirs
from flarewatch.ingest.viirs import (
    VNF_COLUMNS,
    NightCache,
    VnfPoints,
    flare_like,
    match_viirs,
    parse_vnf_csv,
    vnf_csv_from_records,
)
from flarewatch.process import render
from flarewatch.simulation.scene import simulate_scene
from flarewatch.sites import load_sites

DAYS = [date(2025, 6, 1) + timedelta(days=i) for i in range(6)]


@pytest.fixture(scope="module")
def scenes():
    return [(site, d, simulate_scene(site, d)) for site in load_sites() for d in DAYS]


def _frames(text: str):
    lines = text.lstrip("\ufeff").splitlines()
    reader = csv.reader(lines)
    header = [h.strip() for h in next(reader)]
    columns = list(VNF_COLUMNS) + [h for h in header if h not in VNF_COLUMNS]
    pos = {h: i for i, h in enumerate(header)}
    records, numbers = [], []
    for cells in reader:
        if cells and any(c.strip() for c in cells):
            records.append([cells[pos[c]].strip() for c in columns])
            numbers.append(reader.line_num)
    return (viirs._vnf_frame(columns, records, numbers, fast=True),
            viirs._vnf_frame(columns, records, numbers, fast=False))


def _same_frame(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert list(a.dtypes) == list(b.dtypes) and list(a.columns) == list(b.columns)


def _odd_csv() -> str:
    """Fill values, empty cells, a missing time, times without fractions, an extra (FIRMS) column."""
    base = {c: 1.0 for c in VNF_COLUMNS}
    recs = []
    for i in range(5):
        rec = dict(base, id_Key=f"k{i}", Date_Mscan=f"2025/06/0{i + 1} 01:2{i}:00" + (".125" if i % 2 else ""),
                   Lat_GMTCO=30.0 + i / 100, Lon_GMTCO=47.0, Temp_BB=1000.0 + 300 * i, RH=5.0 + i,
                   FW_Origin="firms:VIIRS_NOAA20_NRT" if i == 4 else "vnf")
        recs.append(rec)
    recs[1]["Area_BB"] = None  # -> the fill value 999999
    recs[2]["Date_Mscan"] = None  # -> empty
    text = vnf_csv_from_records(recs, extra_columns=("FW_Origin",))
    return text.replace(",1.0,", ",,", 1)  # one empty numeric cell


def test_vnf_frame_in_one_step_equals_the_per_column_frame(scenes):
    for _, _, scene in scenes:
        _same_frame(*_frames(scene.viirs_csv))
    fast, slow = _frames(_odd_csv())
    _same_frame(fast, slow)
    assert fast["Area_BB"].isna().sum() >= 1 and fast["Date_Mscan"].isna().sum() == 1
    assert str(fast["FW_Origin"].dtype) == str(slow["FW_Origin"].dtype)
    _same_frame(parse_vnf_csv(_odd_csv()), slow)


def test_night_cache_parses_each_content_once():
    cache = NightCache(size=2)
    text = _odd_csv()
    a = cache.flares(text.encode(), 1200.0)
    assert cache.flares(text.encode(), 1200.0) is a and (cache.hits, cache.misses) == (1, 1)
    _same_frame(a, flare_like(parse_vnf_csv(text), 1200.0))
    other_cut = cache.flares(text.encode(), 1500.0)  # another cut is another entry
    assert other_cut is not a and len(other_cut) < len(a)
    changed = "\n".join(text.splitlines()[:-1]) + "\n"  # a replaced object: one row less
    b = cache.flares(changed.encode(), 1200.0)
    assert b is not a and len(b) == len(a) - 1
    assert cache.flares(text.encode(), 1200.0) is not a  # size 2: the oldest was dropped
    for _ in range(2):
        with pytest.raises(ValueError):
            cache.flares(b"\xff\xfe not a csv", 1200.0)
    cache.enabled = False  # the reference: parsed every time
    c = cache.flares(text.encode(), 1200.0)
    _same_frame(c, a)
    assert c is not cache.flares(text.encode(), 1200.0)


def test_prepared_points_match_as_match_viirs(scenes):
    rng = np.random.default_rng(14)
    cache = NightCache()
    n_matched = 0
    nights = []
    for _, _, scene in scenes:
        frame = cache.flares(scene.viirs_csv.encode(), 1200.0)
        nights.append(frame)
        if not len(frame):
            continue
        for cut in (None, VIIRS_FLARE_MIN_TEMP_K, 1500.0):
            pts = cache.points(frame, cut)
            assert cache.points(frame, cut) is pts  # kept with the cached frame
            fresh = VnfPoints(frame, cut)
            rows = frame if cut is None else flare_like(frame, cut)
            for _ in range(8):
                i = int(rng.integers(len(frame)))
                lat = float(frame["Lat_GMTCO"].iloc[i]) + rng.normal(0, 0.006)
                lon = float(frame["Lon_GMTCO"].iloc[i]) + rng.normal(0, 0.006)
                want = match_viirs(lat, lon, rows)
                for p in (pts, fresh):
                    pos, dist = p.match(lat, lon)
                    assert p.frame["id_Key"].iloc[pos].tolist() == want["id_Key"].tolist()
                    assert dist.tobytes() == want["distance_m"].to_numpy().tobytes()
                    assert p.any_within(lat, lon) == (len(want) > 0)
                n_matched += len(want)
                assert viirs_features_at(lat, lon, cache.points(frame, VIIRS_FLARE_MIN_TEMP_K)) == \
                    viirs_features(lat, lon, frame, VIIRS_FLARE_MIN_TEMP_K)
    assert n_matched > 50
    with pytest.raises(ValueError):
        VnfPoints(nights[0]).match(math.nan, 0.0)
    # nights_seen over windows of nights, some missing or empty, with another cut
    empty = nights[0].iloc[:0]
    for _, _, scene in scenes[:12]:
        window = [*nights[:5], None, empty]
        for cut in (1200.0, 1700.0):
            pts = [cache.points(n, cut) if n is not None and len(n) else None for n in window]
            frame = cache.flares(scene.viirs_csv.encode(), 1200.0)
            for lat, lon in zip(frame["Lat_GMTCO"], frame["Lon_GMTCO"]):
                assert viirs_nights_seen_at(lat, lon, pts) == viirs_nights_seen(lat, lon, window, min_temp_k=cut)
    assert viirs_nights_seen_at(None, 47.0, []) == viirs_nights_seen(None, 47.0, []) == 0


def test_shared_tile_arrays_give_the_same_features(scenes):
    cfg = Settings().detector
    n = 0
    for _, _, scene in scenes:
        tile = scene.tile
        dets = detect_flares(tile, cfg)
        frame = flare_like(parse_vnf_csv(scene.viirs_csv), 1200.0)
        arrays = TileArrays(tile)
        pts = VnfPoints(frame, VIIRS_FLARE_MIN_TEMP_K) if len(frame) else None
        for det in dets:
            ref = extract_features(tile, det, frame)
            got = extract_features(tile, det, frame, viirs_points=pts, tile_arrays=arrays)
            assert got == ref or (_nan_equal(got, ref))
            n += 1
    assert n > 20


def _nan_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))
        for x, y in ((a[k], b[k]) for k in a))


def _png_both(monkeypatch, *args, **kwargs) -> tuple[bytes, bytes]:
    fast = render.annotated_png(*args, **kwargs)
    with monkeypatch.context() as m:
        m.setattr(render, "STATIC_OVERLAYS", False)
        slow = render.annotated_png(*args, **kwargs)
    return fast, slow


def test_pasted_overlays_are_what_drawing_gives(scenes, monkeypatch):
    cfg = Settings().detector
    for site, d, scene in scenes[::3]:
        dets = detect_flares(scene.tile, cfg)
        labels = [f"{i + 1}. {100 * i:,} [1-2]" for i in range(len(dets))]
        fast, slow = _png_both(monkeypatch, scene.tile, dets, title=f"{site.name}, {d}", subtitle="x flare(s)",
                               labels=labels, viirs=[(40.0, 60.0, "V1. 12 [1-3]")], legend=True)
        assert fast == slow
    assert render._legend_overlay(500, render.LEGEND_BAND_PX) is not None  # the demo's size is pasted
    # a label and a VIIRS circle at the bottom edge reach into the legend band: it is drawn there
    tile = scenes[0][2].tile
    h, w = tile.shape
    edge = Detection(row=h - 1.5, col=w / 2, peak_row=h - 2, peak_col=w // 2, bbox=(h - 3, w // 2 - 1, h, w // 2 + 2),
                     n_pixels=3, confidence=0.9, saturated=False, cloud_flag=False)
    drawn = []
    legend = render._legend
    monkeypatch.setattr(render, "_legend", lambda *a: drawn.append(1) or legend(*a))
    render.annotated_png(tile, [], title="t", legend=True)
    assert drawn == []  # pasted
    fast, slow = _png_both(monkeypatch, tile, [edge], title="t", labels=["1. a long label at the very bottom"],
                           viirs=[(h - 1.0, 20.0, "V1. at the bottom")], legend=True)
    assert fast == slow and len(drawn) == 2  # drawn, in both
    # a tile too small for the overlays' boxes: drawn each time, still the same
    small = scenes[0][2].tile
    small = type(small)(**{**small.__dict__, "dn": small.dn[:, :20, :20].copy(),
                           "cloud_mask": None if small.cloud_mask is None else small.cloud_mask[:20, :20].copy()})
    assert render._scale_and_north_overlay((40, 40 + 34 + 72), 40, 40, 34) is None
    fast, slow = _png_both(monkeypatch, small, [], title="t", legend=True)
    assert fast == slow


def test_upscale_is_two_repeats():
    img = np.random.default_rng(0).integers(0, 255, (7, 5, 3), dtype=np.uint8)
    want = np.repeat(np.repeat(img, render.UPSCALE, axis=0), render.UPSCALE, axis=1)
    got = render._upscale(img)
    assert got.flags.c_contiguous and got.dtype == want.dtype and np.array_equal(got, want)


def test_png_bytes_are_the_pictures_pil_encodes(scenes, monkeypatch):
    import io

    from PIL import Image

    def pixels(data: bytes) -> np.ndarray:
        img = Image.open(io.BytesIO(data))
        img.load()
        assert img.mode == "RGB"
        return np.asarray(img)

    cfg = Settings().detector
    for site, d, scene in scenes[::4]:
        dets = detect_flares(scene.tile, cfg)
        args = (scene.tile, dets)
        kwargs = {"title": f"{site.name}, {d}", "labels": [f"{i + 1}. {i}" for i in range(len(dets))], "legend": True}
        ours = render.annotated_png(*args, **kwargs)
        with monkeypatch.context() as m:
            m.setattr(render, "FAST_PNG", False)
            pil = render.annotated_png(*args, **kwargs)
        assert ours != pil and np.array_equal(pixels(ours), pixels(pil))
    rng = np.random.default_rng(3)
    for shape in ((1, 1, 3), (1, 7, 3), (9, 1, 3), (33, 65, 3), (128, 96, 3)):
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        img[1::3] = img[0::3][: len(img[1::3])]  # some rows repeating the one above
        assert np.array_equal(pixels(render.png_bytes(img)), img)
    with pytest.raises(ValueError):
        render.png_bytes(np.zeros((4, 4), dtype=np.uint8))
