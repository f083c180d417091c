"""The page's server-side SVG charts (flarewatch.web.charts): well-formed, escaped, deterministic,
the markers a browser test looks for, the edge cases (no rows, one row, no values) and speed."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from importlib import resources

import pytest

from flarewatch.web import charts
from flarewatch.web.charts import daily_co2_svg, daily_series_svg, nice_ticks, site_map_svg

NS = {"s": charts.SVG_NS}

SITES = [
    {"site_id": "rumaila-n", "name": "North Rumaila", "lat": 30.63, "lon": 47.33, "volume_30d_kscm": 95000.0,
     "open_alerts": 2},
    {"site_id": "ahvaz-w", "name": "Ahvaz field west", "lat": 31.29, "lon": 48.63, "volume_30d_kscm": 41000.0,
     "open_alerts": 0},
    {"site_id": "hassi-messaoud", "name": "Hassi Messaoud", "lat": 31.67, "lon": 6.07, "volume_30d_kscm": 12000.0,
     "open_alerts": 0},
    {"site_id": "ebocha", "name": "Ebocha flow station", "lat": 5.46, "lon": 6.69, "volume_30d_kscm": None,
     "open_alerts": 0},
    {"site_id": "parshall", "name": "Parshall field", "lat": 47.95, "lon": -102.2, "volume_30d_kscm": 0.0,
     "open_alerts": 1},
    {"site_id": "cantarell", "name": "Cantarell complex", "lat": 19.4, "lon": -92.2, "volume_30d_kscm": 27000.0,
     "open_alerts": 0},
]


def _rows(n: int, start: date = date(2024, 1, 1)) -> list[dict]:
    rows = []
    for i in range(n):
        observed = i % 3 != 1
        estimated = not observed and i % 2 == 0
        v = 900 + 300 * math.sin(i / 30) if (observed or estimated) else None
        status = "failed" if i == n - 1 and n > 2 else "pending" if i == n - 2 and n > 2 else "processed"
        rows.append({"date": start + timedelta(days=i), "volume_kscm_d": v,
                     "volume_low_kscm_d": None if v is None else v * 0.7,
                     "volume_high_kscm_d": None if v is None else v * 1.4,
                     "co2e_t": None if v is None else v * 2.1, "observed": observed, "status": status,
                     "estimated": estimated})
    return rows


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{{{charts.SVG_NS}}}svg"
    assert root.get("role") == "img" and root.get("aria-label")
    return root


def _texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{{{charts.SVG_NS}}}text")]


# ---------------------------------------------------------------- nice ticks

@pytest.mark.parametrize(("lo", "hi", "expected"), [
    (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    (0, 10, [0, 2, 4, 6, 8, 10]),
    (0, 2345, [0, 500, 1000, 1500, 2000, 2500]),
    (0, 97, [0, 20, 40, 60, 80, 100]),
    (0, 11, [0, 2.5, 5, 7.5, 10, 12.5]),
    (-3, 7, [-4, -2, 0, 2, 4, 6, 8]),
    (0.013, 0.049, [0.01, 0.02, 0.03, 0.04, 0.05]),
])
def test_nice_ticks_cover_the_range_with_round_steps(lo, hi, expected):
    assert nice_ticks(lo, hi, 5) == pytest.approx(expected)


def test_nice_ticks_degenerate_ranges():
    assert nice_ticks(0, 0) == [0.0, 1.0]
    assert nice_ticks(math.nan, 3) == [0.0, 1.0]
    assert nice_ticks(5, 1) == nice_ticks(1, 5)
    t = nice_ticks(40, 40)
    assert t[0] <= 40 <= t[-1] and t[0] == 0
    t = nice_ticks(-7, -7)
    assert t[0] <= -7 and t[-1] == 0


def test_nice_ticks_are_printable_without_float_noise():
    for hi in (0.3, 0.7, 3.3, 17, 123.4, 99999, 1.2e7):
        ticks = nice_ticks(0, hi, 5)
        assert ticks[0] <= 0 and ticks[-1] >= hi and 3 <= len(ticks) <= 12
        assert all(len(repr(t)) < 12 for t in ticks), ticks


# ---------------------------------------------------------------- the basemap

def test_basemap_file_is_small_and_lon_lat_rings():
    path = resources.files("flarewatch").joinpath("web/static/world-110m.json")
    assert len(path.read_bytes()) < 150_000
    data = json.loads(path.read_text())
    assert len(data["countries"]) > 150
    for c in data["countries"]:
        for ring in c["rings"]:
            assert len(ring) >= 4 and ring[0] == ring[-1]
            for lon, lat in ring:
                assert -180 <= lon <= 180 and -90 <= lat <= 90
            # cut at the antimeridian: no edge jumps across the map (except along the pole edge)
            for (a, b), (c_, d) in zip(ring, ring[1:]):
                assert abs(c_ - a) <= 180 or b == d == -90, c["name"]
    assert (resources.files("flarewatch") / "web/static/world-110m.LICENSE.txt").is_file()


# ---------------------------------------------------------------- the map

def test_site_map_markers_links_and_tooltips():
    svg = site_map_svg(SITES)
    root = _parse(svg)
    assert "fw-map" in root.get("class")
    markers = root.findall(".//s:a[@class='fw-site']", NS)
    assert sorted(m.get("data-site") for m in markers) == sorted(s["site_id"] for s in SITES)
    by_id = {m.get("data-site"): m for m in markers}
    assert by_id["rumaila-n"].get("href") == "site/rumaila-n"
    tip = by_id["rumaila-n"].find("s:title", NS).text
    assert "North Rumaila" in tip and "95,000" in tip and "open alerts: 2" in tip
    assert "no data" in by_id["ebocha"].find("s:title", NS).text
    # open alerts: a ring on rumaila-n and parshall only
    ringed = {m.get("data-site") for m in markers if m.find("s:circle[@class='fw-alert']", NS) is not None}
    assert ringed == {"rumaila-n", "parshall"}
    # the largest volume is the largest, darkest marker; no data is hollow
    radius = {k: float(m.find("s:circle", NS).get("r")) for k, m in by_id.items()}
    assert radius["rumaila-n"] > radius["ahvaz-w"] > radius["cantarell"] > radius["hassi-messaoud"]
    assert by_id["rumaila-n"].find("s:circle", NS).get("fill") == charts.RAMP[-1]
    assert by_id["hassi-messaoud"].find("s:circle", NS).get("fill") == charts.RAMP[0]
    assert by_id["ebocha"].find("s:circle", NS).get("fill") == "#ffffff"
    # markers sit at their equirectangular position
    c = by_id["cantarell"].find("s:circle", NS)
    assert float(c.get("cx")) == pytest.approx((-92.2 + 180) / 360 * 960, abs=0.1)
    assert float(c.get("cy")) == pytest.approx((90 - 19.4) / 180 * 480, abs=0.1)
    # labels name every site, legend shows the range
    texts = _texts(root)
    for s in SITES:
        assert s["site_id"] in texts
    assert "95,000" in texts and "12,000" in texts


def test_site_map_labels_do_not_overlap():
    root = _parse(site_map_svg(SITES))
    boxes = []
    for t in root.findall(".//s:g[@class='fw-labels']/s:text", NS):
        x, y, w = float(t.get("x")), float(t.get("y")), charts._text_width(t.text, 11)
        left = {"end": x - w, "middle": x - w / 2}.get(t.get("text-anchor"), x)
        boxes.append((left, y - 9, left + w, y + 3))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not charts._boxes_overlap(a, b), (a, b)


def test_site_map_escapes_text_and_links():
    evil = {"site_id": 'a"b<c>&d', "name": "<script>alert('x')</script> & co", "lat": 10, "lon": 20,
            "volume_30d_kscm": 5.0, "open_alerts": 150}
    svg = site_map_svg([evil], link=lambda s: f"/x?id={s['site_id']}&y=1")
    assert "<script>" not in svg
    root = _parse(svg)
    (marker,) = root.findall(".//s:a[@class='fw-site']", NS)
    assert marker.get("data-site") == 'a"b<c>&d'
    assert marker.get("href") == '/x?id=a"b<c>&d&y=1'
    assert "<script>alert('x')</script> & co" in marker.find("s:title", NS).text
    assert "99+" in _texts(root)
    # the default link quotes the id for a URL
    marker = _parse(site_map_svg([evil])).find(".//s:a[@class='fw-site']", NS)
    assert marker.get("href") == "site/a%22b%3Cc%3E%26d"


def test_site_map_edge_cases():
    root = _parse(site_map_svg([]))
    assert root.findall(".//s:a", NS) == []
    assert "no volumes yet" in _texts(root)
    # only sites without volumes; a site without coordinates is left out and counted
    root = _parse(site_map_svg([{**SITES[3]}, {**SITES[0], "lat": None, "volume_30d_kscm": None}]))
    assert [m.get("data-site") for m in root.findall(".//s:a", NS)] == ["ebocha"]
    assert "1 site without coordinates" in root.get("aria-label")
    # one site with a volume; small sizes scale
    root = _parse(site_map_svg([SITES[0]], width=480, height=240))
    assert root.get("viewBox") == "0 0 480 240"
    assert root.find(".//s:a/s:circle", NS).get("fill") == charts.RAMP[-1]


def test_site_map_is_deterministic():
    # speed is measured, not asserted (timed tests flake on a loaded machine): the page's response
    # times are in the README ("The FlareWatch page and API")
    assert site_map_svg(SITES) == site_map_svg(list(SITES))


# ---------------------------------------------------------------- the daily series

def test_daily_series_band_line_dots_and_coverage():
    rows = _rows(60)
    root = _parse(daily_series_svg(rows))
    assert "fw-chart" in root.get("class").split()
    assert root.find(".//s:path[@class='fw-band']", NS) is not None
    assert root.find(".//s:path[@class='fw-line']", NS) is not None
    dots = root.findall(".//s:g[@class='fw-dots']/s:circle", NS)
    assert len(dots) == sum(1 for r in rows if r["volume_kscm_d"] is not None)
    filled = [d for d in dots if d.get("fill") == charts.LINE]
    assert len(filled) == sum(1 for r in rows if r["observed"])
    cells = root.findall(".//s:g[@class='fw-coverage']/s:rect", NS)
    assert len(cells) == 60
    fills = [c.get("fill") for c in cells]
    assert fills[-1] == charts.FAILED_CELL and fills[-2] == charts.PENDING_CELL
    assert fills[1] == charts.UNOBSERVED_CELL and fills[0] == charts.OBSERVED_CELL
    texts = _texts(root)
    assert "thousand m³/d" in texts and "2024-01-01" in texts
    assert "90 % interval" in texts and "failed" in texts
    # y ticks are round and cover the highest interval bound
    top = max(r["volume_high_kscm_d"] for r in rows if r["volume_high_kscm_d"])
    tick_values = [float(t.replace(",", "")) for t in texts if t.replace(",", "").replace(".", "").isdigit()]
    assert max(tick_values) >= top and 0 in tick_values


def test_daily_series_dates_are_thinned():
    root = _parse(daily_series_svg(_rows(366)))
    dates = [t for t in _texts(root) if len(t) == 10 and t[4] == "-"]
    assert 3 <= len(dates) <= 10
    assert all(d.endswith("-01") for d in dates)  # month starts
    root = _parse(daily_series_svg(_rows(5)))
    assert [t for t in _texts(root) if t.startswith("2024-")] == [f"2024-01-0{i}" for i in range(1, 6)]


def test_daily_series_unsorted_rows_and_gaps_in_dates():
    rows = _rows(20)
    shuffled = rows[10:] + rows[:10]
    assert daily_series_svg(shuffled) == daily_series_svg(rows)
    # a missing date breaks the line and the band
    gappy = rows[:5] + rows[8:]
    d = _parse(daily_series_svg(gappy)).find(".//s:path[@class='fw-line']", NS).get("d")
    assert d.count("M") >= 2


def test_daily_charts_without_rows_say_so():
    for svg in (daily_series_svg([]), daily_co2_svg([])):
        root = _parse(svg)
        assert charts.NO_DATA_MESSAGE in _texts(root)
        assert charts.NO_DATA_MESSAGE in root.get("aria-label")


def test_daily_charts_single_row_and_all_none():
    (row,) = _rows(1)
    root = _parse(daily_series_svg([row]))
    assert len(root.findall(".//s:g[@class='fw-dots']/s:circle", NS)) == 1
    assert root.find(".//s:path[@class='fw-band']", NS) is not None  # an error bar
    assert "2024-01-01" in _texts(root)
    assert len(_parse(daily_co2_svg([row])).findall(".//s:g[@class='fw-bars']/s:rect", NS)) == 1
    empty = [{"date": date(2024, 3, d), "volume_kscm_d": None, "volume_low_kscm_d": None, "volume_high_kscm_d": None,
              "co2e_t": None, "observed": False, "status": None, "estimated": False} for d in range(1, 11)]
    root = _parse(daily_series_svg(empty))
    assert "no volume estimates in this range" in _texts(root)
    assert len(root.findall(".//s:g[@class='fw-coverage']/s:rect", NS)) == 10
    assert root.find(".//s:path[@class='fw-line']", NS) is None
    assert "no CO2e estimates in this range" in _texts(_parse(daily_co2_svg(empty)))
    # NaN values count as missing
    nan = [{**r, "volume_kscm_d": math.nan, "co2e_t": math.inf} for r in _rows(3)]
    _parse(daily_series_svg(nan))
    _parse(daily_co2_svg(nan))


def test_daily_co2_bars():
    rows = _rows(30)
    root = _parse(daily_co2_svg(rows))
    bars = root.findall(".//s:g[@class='fw-bars']/s:rect", NS)
    assert len(bars) == sum(1 for r in rows if r["co2e_t"] is not None)
    assert {b.get("fill") for b in bars} == {charts.BAR, charts.BAR_ESTIMATED}
    assert "t CO₂e/d" in _texts(root)
    # same x positions as the volume chart's dots for the same rows
    dots = _parse(daily_series_svg(rows)).findall(".//s:g[@class='fw-dots']/s:circle", NS)
    centres = [float(b.get("x")) + float(b.get("width")) / 2 for b in bars]
    assert centres == pytest.approx([float(d.get("cx")) for d in dots], abs=0.1)


def test_daily_charts_are_deterministic():
    rows = _rows(366)
    assert daily_series_svg(rows) == daily_series_svg([dict(r) for r in rows])
    assert daily_co2_svg(rows) == daily_co2_svg([dict(r) for r in rows])
