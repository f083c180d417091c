"""Server-side SVG charts for the FlareWatch page: a world map of the sites and the daily series.

Pure functions from rows to an inline ``<svg>`` string: no JavaScript, no CDN, no I/O except
reading the packaged basemap (``static/world-110m.json``, Natural Earth 110m countries) once.
Every text is escaped; the same input gives the same string.

- :func:`site_map_svg` — equirectangular world map, one linked marker per site (``class="fw-site"``,
  ``data-site="<site_id>"``), sized (area) and coloured by the last 30 days' volume, open alerts ringed.
- :func:`daily_series_svg` — daily volume with its 90 % interval band, observed / estimated days
  marked, and a coverage strip (observed, unobserved, pending, failed) along the x axis.
- :func:`daily_co2_svg` — daily CO2e tonnes as bars, on the same x axis.
- :func:`nice_ticks` — round axis ticks (1, 2, 2.5, 5 x 10^k steps) covering a range.

Why this module is long: it is the page's whole drawing layer (the map with its basemap projection,
label placement and legend; the two daily charts with their shared frame, axes and legend) built on
one set of private text, number and escaping helpers; split, the pieces would import each other's
internals.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import date
from functools import lru_cache
from html import escape
from importlib import resources
from urllib.parse import quote

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif"

# ColorBrewer YlOrRd, 5 classes (yellow -> red)
RAMP = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
OCEAN = "#dcecf7"
LAND = "#e3e3e0"
LAND_EDGE = "#ffffff"
GRATICULE = "#b9d3e6"
ALERT = "#d7191c"
NO_DATA = "#6b6b6b"
INK = "#222222"
MUTED = "#666666"
GRID = "#e6e6e6"
LINE = "#1f5fa8"
BAND = "#9ecae1"
BAR = "#7a5195"
BAR_ESTIMATED = "#c9b3d9"
OBSERVED_CELL = "#1f5fa8"
UNOBSERVED_CELL = "#c8c8c8"
PENDING_CELL = "#f0ad4e"
FAILED_CELL = "#d7191c"

NO_DATA_MESSAGE = "no data in this range"


# ---------------------------------------------------------------------------------------------
# helpers

def _n(v: float) -> str:
    """A coordinate: one decimal, no trailing zeros, no "-0" (deterministic and short)."""
    s = f"{v:.1f}"
    if s.endswith(".0"):
        s = s[:-2]
    return "0" if s == "-0" else s


def _attr(v: object) -> str:
    return escape(str(v), quote=True)


def _num(v: object) -> float | None:
    """A finite float, or None (None, NaN, infinities, non-numbers)."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def fmt_value(v: float | None, unit: str = "") -> str:
    """A value for humans: 3 significant figures, thousands separated; ``n/a`` for None."""
    v = _num(v)
    if v is None:
        return "n/a"
    a = abs(v)
    if a >= 100 or a == 0:
        s = f"{v:,.0f}"
    elif a >= 10:
        s = f"{v:,.1f}"
    elif a >= 1:
        s = f"{v:,.2f}"
    else:
        s = f"{v:.3g}"
    return f"{s} {unit}".rstrip() if unit else s


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round ticks (step 1, 2, 2.5 or 5 x 10^k) from <= ``lo`` to >= ``hi``.

    ``lo == hi`` widens to a unit around the value (``[0, 1]`` for zero); non-finite bounds give
    ``[0, 1]``; reversed bounds are swapped. Ticks are rounded to the step's decimals, so they
    print without float noise.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if lo > hi:
        lo, hi = hi, lo
    if lo == hi:
        if lo == 0:
            return [0.0, 1.0]
        pad = abs(lo) * 0.5
        lo, hi = (0.0, hi + pad) if lo > 0 else (lo - pad, 0.0)
    n = max(1, n)
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    decimals = _decimals(step)
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    return [round(k * step, decimals) + 0.0 for k in range(first, last + 1)]


def _decimals(step: float) -> int:
    """Decimals needed to print multiples of ``step`` exactly (0.25 -> 2, 5 -> 0)."""
    for d in range(7):
        if abs(step * 10 ** d - round(step * 10 ** d)) < 1e-6:
            return d
    return 6


def _tick_label(v: float, ticks: Sequence[float]) -> str:
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    return "0" if v == 0 else f"{v:,.{_decimals(step)}f}"


def _text(x: float, y: float, s: str, *, size: float = 11, anchor: str = "start", fill: str = INK,
          weight: str | None = None, halo: bool = False, extra: str = "") -> str:
    a = f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" fill="{fill}"'
    if anchor != "start":
        a += f' text-anchor="{anchor}"'
    if weight:
        a += f' font-weight="{weight}"'
    if halo:
        a += ' stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke"'
    return f"{a}{extra}>{escape(s)}</text>"


def _svg_open(width: int, height: int, css_class: str, label: str) -> str:
    return (f'<svg xmlns="{SVG_NS}" class="{css_class}" role="img" aria-label="{_attr(label)}" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'style="max-width:100%;height:auto" font-family="{_attr(FONT)}">'
            f"<title>{escape(label)}</title>")


def _text_width(s: str, size: float) -> float:
    """Rough rendered width of ``s`` (sans-serif, ~0.6 em a character)."""
    return 0.6 * size * len(s)


# ---------------------------------------------------------------------------------------------
# the world map

@lru_cache(maxsize=1)
def world_countries() -> tuple[tuple[tuple[tuple[float, float], ...], ...], ...]:
    """The packaged basemap: per country, its rings of (lon, lat) (holes are further rings)."""
    text = resources.files("flarewatch").joinpath("web/static/world-110m.json").read_text()
    data = json.loads(text)
    return tuple(tuple(tuple((float(p[0]), float(p[1])) for p in ring) for ring in c["rings"])
                 for c in data["countries"])


def _tenths(v: int) -> str:
    """An integer count of tenths as a short path number (27 -> "2.7", -3 -> "-.3", 40 -> "4")."""
    sign, a = ("-" if v < 0 else ""), abs(v)
    whole, frac = divmod(a, 10)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole if whole else ''}.{frac}"


def _join(nums: list[str]) -> str:
    """Path numbers joined as tightly as SVG allows (no separator before a minus sign)."""
    out = nums[0]
    for t in nums[1:]:
        out += t if t[0] == "-" else " " + t
    return out


@lru_cache(maxsize=8)
def _land_path(width: int, height: int) -> str:
    """All countries as one path: absolute moves, relative lines, in tenths of a pixel."""
    sx, sy = width / 36.0, height / 18.0  # tenths of a pixel per degree
    parts = []
    for country in world_countries():
        for ring in country:
            pts: list[tuple[int, int]] = []
            for lon, lat in ring:
                p = (round((lon + 180) * sx), round((90 - lat) * sy))
                if not pts or p != pts[-1]:
                    pts.append(p)
            if len(pts) < 4:
                continue
            deltas = []
            for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
                deltas += [_tenths(x1 - x0), _tenths(y1 - y0)]
            parts.append(f"M{_join([_tenths(pts[0][0]), _tenths(pts[0][1])])}l{_join(deltas)}z")
    return "".join(parts)


def _graticule(width: int, height: int, step: int = 30) -> str:
    sx, sy = width / 360.0, height / 180.0
    d = []
    for lon in range(-180 + step, 180, step):
        x = _n((lon + 180) * sx)
        d.append(f"M{x} 0V{height}")
    for lat in range(-90 + step, 90, step):
        y = _n((90 - lat) * sy)
        d.append(f"M0 {y}H{width}")
    return (f'<path d="{"".join(d)}" fill="none" stroke="{GRATICULE}" stroke-width="0.6" '
            f'stroke-dasharray="2 3"/>')


def _default_link(site: dict) -> str:
    return f"site/{quote(str(site['site_id']), safe='')}"


def _ramp_index(v: float, vmin: float, vmax: float) -> int:
    if vmax <= vmin:
        return len(RAMP) - 1
    return min(len(RAMP) - 1, int((v - vmin) / (vmax - vmin) * len(RAMP)))


def _boxes_overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_labels(markers: list[dict], width: int, height: int, size: float,
                  reserved: Sequence[tuple[float, float, float, float]]) -> list[dict]:
    """Greedy label placement: for each marker (north to south, west to east) the first candidate
    position (right, left, above, below, then stacked further up/down on either side) whose box
    stays inside the map and hits no label, marker or reserved box placed so far; else the one
    with the fewest hits that covers no other label; else no label (the marker's tooltip names
    the site). Far candidates get a leader line."""
    obstacles = [(m["x"] - m["r"], m["y"] - m["r"], m["x"] + m["r"], m["y"] + m["r"]) for m in markers]
    obstacles += list(reserved)
    placed: list[tuple[float, float, float, float]] = []
    out = []
    for m in sorted(markers, key=lambda m: (m["y"], m["x"], m["site_id"])):
        x, y, r, s = m["x"], m["y"], m["r"], m["site_id"]
        w, h = _text_width(s, size), size
        gap = r + 3
        cands = [(x + gap, y + h * 0.35, "start"), (x - gap, y + h * 0.35, "end"),
                 (x, y - gap - 1, "middle"), (x, y + gap + h * 0.8, "middle")]
        for k in range(1, 7):
            dy = k * (h + 2)
            for dx in (4.0, 4.0 + w / 2):
                cands += [(x + gap + dx, y + h * 0.35 - dy, "start"), (x + gap + dx, y + h * 0.35 + dy, "start"),
                          (x - gap - dx, y + h * 0.35 - dy, "end"), (x - gap - dx, y + h * 0.35 + dy, "end")]
        own = (x - r, y - r, x + r, y + r)
        best = None
        for i, (tx, ty, anchor) in enumerate(cands):
            left = tx if anchor == "start" else tx - w if anchor == "end" else tx - w / 2
            box = (left - 1, ty - h * 0.8, left + w + 1, ty + h * 0.25)
            if box[0] < 0 or box[2] > width or box[1] < 0 or box[3] > height:
                continue
            hits = sum(_boxes_overlap(box, b) for b in placed) * 3
            hits += sum(_boxes_overlap(box, b) for b in obstacles if b != own)
            if best is None or hits < best[0]:
                best = (hits, i, tx, ty, anchor, box)
            if hits == 0:
                break
        if best is None or best[0] >= 3:  # no room without covering another label: the tooltip names it
            continue
        _, i, tx, ty, anchor, box = best
        placed.append(box)
        out.append({"site_id": s, "x": tx, "y": ty, "anchor": anchor, "leader": i >= 4,
                    "mx": x, "my": y, "r": r, "box": box})
    return out


def site_map_svg(sites: list[dict], *, width: int = 960, height: int = 480,
                 link: Callable[[dict], str] = _default_link) -> str:
    """An equirectangular world map of ``sites`` as an inline ``<svg class="fw-map">``.

    Each site dict has ``site_id``, ``name``, ``lat``, ``lon``, ``volume_30d_kscm`` (thousand m3
    flared over the last 30 days; None or 0: a small hollow "no data" circle) and ``open_alerts``.
    A marker's area grows with the volume and its colour steps through a 5-class yellow-to-red
    ramp between the smallest and the largest volume on the map; open alerts add a red ring and
    a badge with their count. Markers are ``<a class="fw-site" data-site="<site_id>" href=link(site)>``
    with a ``<title>`` tooltip; labels show the site id. Sites without finite coordinates are not
    drawn (the aria-label counts them).
    """
    width, height = int(width), int(height)
    sx, sy = width / 360.0, height / 180.0
    scale = min(width / 960.0, height / 480.0)
    r_max, r_min, r_none = 16 * max(scale, 0.5), 3.5 * max(scale, 0.5), 4 * max(scale, 0.5)
    label_size = 11.0

    vols = {}
    drawable = []
    for s in sites:
        lat, lon = _num(s.get("lat")), _num(s.get("lon"))
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            continue
        v = _num(s.get("volume_30d_kscm"))
        vols[str(s["site_id"])] = v if v is not None and v > 0 else None
        drawable.append((s, lat, lon))
    with_data = [v for v in vols.values() if v is not None]
    vmin, vmax = (min(with_data), max(with_data)) if with_data else (0.0, 0.0)

    markers = []
    for s, lat, lon in drawable:
        sid = str(s["site_id"])
        v = vols[sid]
        alerts = int(_num(s.get("open_alerts")) or 0)
        r = r_none if v is None else max(r_min, r_max * math.sqrt(v / vmax))
        markers.append({"site": s, "site_id": sid, "x": (lon + 180) * sx, "y": (90 - lat) * sy, "r": r,
                        "v": v, "alerts": alerts})

    n_alert_sites = sum(1 for m in markers if m["alerts"] > 0)
    skipped = len(sites) - len(markers)
    label = (f"World map of {len(markers)} flaring site{'s' if len(markers) != 1 else ''}; marker size and colour: "
             f"gas flared over the last 30 days; {n_alert_sites} site{'s' if n_alert_sites != 1 else ''} "
             f"with open alerts")
    if skipped:
        label += f"; {skipped} site{'s' if skipped != 1 else ''} without coordinates not shown"

    out = [_svg_open(width, height, "fw-map", label),
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="{OCEAN}"/>',
           _graticule(width, height),
           f'<path class="fw-land" d="{_land_path(width, height)}" fill="{LAND}" fill-rule="evenodd" '
           f'stroke="{LAND_EDGE}" stroke-width="0.5" stroke-linejoin="round"/>',
           f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="none" stroke="{GRATICULE}"/>']

    # legend box (bottom left, over the South Pacific)
    legend, legend_box = _map_legend(vmin, vmax, bool(with_data), r_max, r_none, height, scale)

    # markers: the largest first so that small ones stay visible and clickable on top
    out.append('<g class="fw-sites">')
    badges = []
    for m in sorted(markers, key=lambda m: (-m["r"], m["site_id"])):
        s, x, y, r, v, alerts = m["site"], m["x"], m["y"], m["r"], m["v"], m["alerts"]
        name = str(s.get("name") or m["site_id"])
        tip = (f"{name} ({m['site_id']})\nflared over the last 30 days: "
               f"{'no data' if v is None else fmt_value(v, 'thousand m³')}\nopen alerts: {alerts}")
        out.append(f'<a class="fw-site" data-site="{_attr(m["site_id"])}" href="{_attr(link(s))}">'
                   f"<title>{escape(tip)}</title>")
        if v is None:
            out.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(r)}" fill="#ffffff" fill-opacity="0.6" '
                       f'stroke="{NO_DATA}" stroke-width="1.5"/>')
        else:
            fill = RAMP[_ramp_index(v, vmin, vmax)]
            out.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(r)}" fill="{fill}" fill-opacity="0.9" '
                       f'stroke="#444444" stroke-width="0.8"/>')
        if alerts > 0:
            out.append(f'<circle class="fw-alert" cx="{_n(x)}" cy="{_n(y)}" r="{_n(r + 2.5)}" fill="none" '
                       f'stroke="{ALERT}" stroke-width="2"/>')
            bx, by = x + (r + 2.5) * 0.72, y - (r + 2.5) * 0.72
            text = str(alerts) if alerts < 100 else "99+"
            br = 6.5 if len(text) == 1 else 8.5
            out.append(f'<circle cx="{_n(bx)}" cy="{_n(by)}" r="{_n(br)}" fill="{ALERT}" stroke="#ffffff" '
                       f'stroke-width="1"/>')
            out.append(_text(bx, by + 3, text, size=8.5, anchor="middle", fill="#ffffff", weight="bold"))
            badges.append((bx - br, by - br, bx + br, by + br))
        out.append("</a>")
    out.append("</g>")

    labels = _place_labels(markers, width, height, label_size, [legend_box, *badges])
    out.append('<g class="fw-labels" pointer-events="none">')
    for lb in labels:
        if lb["leader"]:
            lx = lb["box"][0] if lb["anchor"] == "start" else lb["box"][2]
            ly = (lb["box"][1] + lb["box"][3]) / 2
            out.append(f'<line x1="{_n(lb["mx"])}" y1="{_n(lb["my"])}" x2="{_n(lx)}" y2="{_n(ly)}" '
                       f'stroke="{MUTED}" stroke-width="0.7"/>')
        out.append(_text(lb["x"], lb["y"], lb["site_id"], size=label_size, anchor=lb["anchor"], halo=True))
    out.append("</g>")
    out.append(legend)
    out.append("</svg>")
    return "".join(out)


def _round1(v: float) -> float:
    """``v`` to one significant figure (23,750 -> 20,000)."""
    mag = 10 ** math.floor(math.log10(v))
    return round(v / mag) * mag


def _map_legend(vmin: float, vmax: float, has_data: bool, r_max: float, r_none: float, height: int,
                scale: float) -> tuple[str, tuple[float, float, float, float]]:
    s = max(scale, 0.75)
    x0, w = 8.0, 222 * s
    h = 52 * s + 2 * r_max + 8
    y0 = height - h - 8 - 50 * scale  # above Antarctica
    fs = 10 * s
    g = [f'<g class="fw-legend" transform="translate({_n(x0)} {_n(y0)})">',
         f'<rect x="0" y="0" width="{_n(w)}" height="{_n(h)}" rx="4" fill="#ffffff" fill-opacity="0.88" '
         f'stroke="#bbbbbb" stroke-width="0.6"/>',
         _text(8 * s, 14 * s, "Flared, last 30 days (thousand m³)", size=fs, weight="bold")]
    cell = (w - 16 * s) / len(RAMP)
    for i, c in enumerate(RAMP):
        g.append(f'<rect x="{_n(8 * s + i * cell)}" y="{_n(20 * s)}" width="{_n(cell)}" height="{_n(9 * s)}" '
                 f'fill="{c}" stroke="#888888" stroke-width="0.4"/>')
    if has_data:
        g.append(_text(8 * s, 40 * s, fmt_value(vmin), size=fs))
        g.append(_text(w - 8 * s, 40 * s, fmt_value(vmax), size=fs, anchor="end"))
    else:
        g.append(_text(w / 2, 40 * s, "no volumes yet", size=fs, anchor="middle", fill=MUTED))
    # size legend: the largest volume and a round value near a quarter of it (area-proportional)
    cy = 46 * s + r_max + 2
    if has_data:
        q = _round1(vmax / 4)
        r_q = r_max * math.sqrt(q / vmax)
        g.append(f'<circle cx="{_n(8 * s + r_max)}" cy="{_n(cy)}" r="{_n(r_max)}" fill="none" stroke="#444444" '
                 f'stroke-width="0.8"/>')
        g.append(f'<circle cx="{_n(8 * s + r_max)}" cy="{_n(cy + r_max - r_q)}" r="{_n(r_q)}" fill="none" '
                 f'stroke="#444444" stroke-width="0.8"/>')
        g.append(_text(12 * s + 2 * r_max, cy - r_max + 8 * s, fmt_value(vmax), size=fs))
        g.append(_text(12 * s + 2 * r_max, cy + r_max - 2 * s, fmt_value(q), size=fs))
    nx = 12 * s + 2 * r_max + 58 * s
    g.append(f'<circle cx="{_n(nx)}" cy="{_n(cy - 7 * s)}" r="{_n(r_none)}" fill="#ffffff" stroke="{NO_DATA}" '
             f'stroke-width="1.5"/>')
    g.append(_text(nx + r_none + 4 * s, cy - 4 * s, "no data", size=fs))
    g.append(f'<circle cx="{_n(nx)}" cy="{_n(cy + 9 * s)}" r="{_n(r_none)}" fill="none" stroke="{ALERT}" '
             f'stroke-width="2"/>')
    g.append(_text(nx + r_none + 4 * s, cy + 12 * s, "open alerts", size=fs))
    g.append("</g>")
    return "".join(g), (x0, y0, x0 + w, y0 + h)


# ---------------------------------------------------------------------------------------------
# the daily charts

_MARGIN = {"left": 64, "right": 18, "top": 30, "bottom": 44}


def _date_ticks(d0: date, d1: date, max_ticks: int) -> list[date]:
    """Round dates to label between ``d0`` and ``d1``: days (every 1, 2, 7, 14), month starts
    (every 1, 2, 3, 6 months) or years — the finest that gives at most ``max_ticks``."""
    max_ticks = max(2, max_ticks)
    span = (d1 - d0).days
    if span <= 0:
        return [d0]
    for step in (1, 2, 7, 14):
        if span // step + 1 <= max_ticks:
            return [date.fromordinal(d0.toordinal() + k) for k in range(0, span + 1, step)]
    m0, m1 = d0.year * 12 + d0.month - 1, d1.year * 12 + d1.month - 1
    for mstep in (1, 2, 3, 6, 12, 24, 60, 120):
        months = [m for m in range(m0, m1 + 1) if m % mstep == 0]
        ticks = [date(m // 12, m % 12 + 1, 1) for m in months]
        ticks = [t for t in ticks if d0 <= t <= d1]
        if len(ticks) <= max_ticks:
            return ticks or [d0]
    return [d0, d1]


class _Frame:
    """The plot area of a daily chart and its date / value scales."""

    def __init__(self, rows: list[dict], width: int, height: int, strip: float):
        self.width, self.height = width, height
        self.left, self.right = _MARGIN["left"], width - _MARGIN["right"]
        self.top, self.bottom = _MARGIN["top"], height - _MARGIN["bottom"] - strip
        self.strip = strip
        self.d0, self.d1 = rows[0]["date"], rows[-1]["date"]
        self.o0 = self.d0.toordinal()
        self.span = max(0, self.d1.toordinal() - self.o0)
        # half a day of padding on both sides so the first and last days' bars and dots fit
        self.day_w = (self.right - self.left) / (self.span + 1)

    def x(self, d: date) -> float:
        return self.left + (d.toordinal() - self.o0 + 0.5) * self.day_w

    def set_y(self, ticks: list[float]) -> None:
        self.ticks = ticks
        self.y0, self.y1 = ticks[0], ticks[-1]

    def y(self, v: float) -> float:
        return self.bottom - (v - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)


def _axes(f: _Frame, unit: str) -> list[str]:
    out = []
    grid = []
    for t in f.ticks:
        y = f.y(t)
        grid.append(f"M{_n(f.left)} {_n(y)}H{_n(f.right)}")
        out.append(_text(f.left - 6, y + 3.5, _tick_label(t, f.ticks), size=10.5, anchor="end", fill=MUTED))
    out.insert(0, f'<path class="fw-grid" d="{"".join(grid)}" stroke="{GRID}" stroke-width="1" fill="none"/>')
    out.append(_text(14, (f.top + f.bottom) / 2, unit, size=11, anchor="middle", fill=MUTED,
                     extra=f' transform="rotate(-90 14 {_n((f.top + f.bottom) / 2)})"'))
    axis_y = f.bottom + f.strip
    out.append(f'<path d="M{_n(f.left)} {_n(axis_y)}H{_n(f.right)}" stroke="#999999" stroke-width="1"/>')
    max_ticks = int((f.right - f.left) // 84)
    ticks = _date_ticks(f.d0, f.d1, max_ticks)
    marks = []
    for d in ticks:
        x = f.x(d)
        marks.append(f"M{_n(x)} {_n(axis_y)}v4")
        out.append(_text(x, axis_y + 16, d.isoformat(), size=10.5, anchor="middle", fill=MUTED))
    out.append(f'<path d="{"".join(marks)}" stroke="#999999" stroke-width="1"/>')
    return out


def _runs(rows: list[dict], ok: Callable[[dict], bool]) -> list[list[dict]]:
    """Maximal runs of consecutive days (no missing date, no failing row) for which ``ok`` holds."""
    runs: list[list[dict]] = []
    cur: list[dict] = []
    prev = None
    for r in rows:
        if ok(r) and (prev is None or not cur or r["date"].toordinal() - prev == 1):
            cur.append(r)
        else:
            if cur:
                runs.append(cur)
            cur = [r] if ok(r) else []
        prev = r["date"].toordinal()
    if cur:
        runs.append(cur)
    return runs


def _empty(width: int, height: int, css_class: str, label: str, message: str = NO_DATA_MESSAGE) -> str:
    return (_svg_open(width, height, css_class, f"{label}: {message}")
            + f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="#fafafa" stroke="{GRID}"/>'
            + _text(width / 2, height / 2 + 4, message, size=13, anchor="middle", fill=MUTED)
            + "</svg>")


def _legend_items(items: list[tuple[str, str]], x_right: float, y: float) -> str:
    """A one-line legend ending at ``x_right``: (swatch svg at 0,0 about 14 wide, text)."""
    parts = []
    widths = [22 + _text_width(t, 10.5) + 14 for _, t in items]
    x = x_right - sum(widths)
    for (swatch, t), w in zip(items, widths):
        parts.append(f'<g transform="translate({_n(x)} {_n(y)})">{swatch}{_text(20, 4, t, size=10.5)}</g>')
        x += w
    return '<g class="fw-chart-legend">' + "".join(parts) + "</g>"


def _day_status(r: dict) -> str:
    if r.get("status") == "failed":
        return "failed"
    if r.get("status") == "pending":
        return "pending"
    return "observed" if r.get("observed") else "unobserved"


_CELL = {"observed": OBSERVED_CELL, "unobserved": UNOBSERVED_CELL, "pending": PENDING_CELL, "failed": FAILED_CELL}


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted((r for r in rows if isinstance(r.get("date"), date)), key=lambda r: r["date"])


def _range_text(rows: list[dict]) -> str:
    d0, d1 = rows[0]["date"], rows[-1]["date"]
    return d0.isoformat() if d0 == d1 else f"{d0.isoformat()} to {d1.isoformat()}"


def daily_series_svg(rows: list[dict], *, width: int = 960, height: int = 300) -> str:
    """The daily flared volume of one site as an inline ``<svg class="fw-chart">``.

    ``rows`` (sorted here by ``date``) carry ``date``, ``volume_kscm_d``, ``volume_low_kscm_d`` and
    ``volume_high_kscm_d`` (the 90 % interval; any may be None), ``observed``, ``status``
    ('processed' | 'pending' | 'failed' | None) and ``estimated`` (gap-filled). The interval is a
    shaded band (an error bar for an isolated day), the volume a line broken where it is missing,
    filled dots on observed days and hollow dots on estimated ones; a strip along the x axis marks
    every day observed / unobserved / pending / failed. No rows: a "no data in this range" message.
    """
    width, height = int(width), int(height)
    title = "Daily flared gas volume"
    rows = _sorted(rows)
    if not rows:
        return _empty(width, height, "fw-chart", title)
    strip = 10.0
    f = _Frame(rows, width, height, strip)
    vals = []
    for r in rows:
        for k in ("volume_kscm_d", "volume_low_kscm_d", "volume_high_kscm_d"):
            v = _num(r.get(k))
            if v is not None:
                vals.append(v)
    ymax = max(vals) if vals else 0.0
    ymin = min(0.0, min(vals)) if vals else 0.0
    f.set_y(nice_ticks(ymin, ymax if ymax > ymin else ymin + 1, 5))

    n_obs = sum(1 for r in rows if r.get("observed"))
    n_est = sum(1 for r in rows if r.get("estimated") and _num(r.get("volume_kscm_d")) is not None)
    label = (f"{title}, thousand m³ per day, {_range_text(rows)}: {len(rows)} day{'s' if len(rows) != 1 else ''}, "
             f"{n_obs} observed, {n_est} estimated")
    out = [_svg_open(width, height, "fw-chart fw-daily-volume", label), *_axes(f, "thousand m³/d")]

    # 90 % interval band
    def has_band(r: dict) -> bool:
        return _num(r.get("volume_low_kscm_d")) is not None and _num(r.get("volume_high_kscm_d")) is not None

    band, bars = [], []
    for run in _runs(rows, has_band):
        if len(run) == 1:
            r = run[0]
            x = f.x(r["date"])
            bars.append(f"M{_n(x)} {_n(f.y(_num(r['volume_low_kscm_d'])))}V{_n(f.y(_num(r['volume_high_kscm_d'])))}")
            continue
        up = [f"{_n(f.x(r['date']))} {_n(f.y(_num(r['volume_high_kscm_d'])))}" for r in run]
        lo = [f"{_n(f.x(r['date']))} {_n(f.y(_num(r['volume_low_kscm_d'])))}" for r in reversed(run)]
        band.append("M" + "L".join(up + lo) + "Z")
    if band:
        out.append(f'<path class="fw-band" d="{"".join(band)}" fill="{BAND}" fill-opacity="0.55" stroke="none"/>')
    if bars:
        out.append(f'<path class="fw-band" d="{"".join(bars)}" stroke="{BAND}" stroke-width="{_n(max(2, min(8, f.day_w * 0.6)))}"/>')

    # the volume line and its dots
    lines = []
    for run in _runs(rows, lambda r: _num(r.get("volume_kscm_d")) is not None):
        if len(run) > 1:
            lines.append("M" + "L".join(f"{_n(f.x(r['date']))} {_n(f.y(_num(r['volume_kscm_d'])))}" for r in run))
    if lines:
        out.append(f'<path class="fw-line" d="{"".join(lines)}" fill="none" stroke="{LINE}" stroke-width="1.6" '
                   f'stroke-linejoin="round"/>')
    dot_r = 2.6 if f.day_w >= 3 else 1.8
    dots = ['<g class="fw-dots">']
    for r in rows:
        v = _num(r.get("volume_kscm_d"))
        if v is None or not (r.get("observed") or r.get("estimated")):
            continue
        lo, hi = _num(r.get("volume_low_kscm_d")), _num(r.get("volume_high_kscm_d"))
        kind = "observed" if r.get("observed") else "estimated (gap-filled)"
        tip = (f"{r['date'].isoformat()}: {fmt_value(v, 'thousand m³')} ({kind})"
               + (f"\n90 % interval {fmt_value(lo)} – {fmt_value(hi)}" if lo is not None and hi is not None else "")
               + (f"\nCO2e {fmt_value(_num(r.get('co2e_t')), 't')}" if _num(r.get("co2e_t")) is not None else ""))
        fill = LINE if r.get("observed") else "#ffffff"
        dots.append(f'<circle cx="{_n(f.x(r["date"]))}" cy="{_n(f.y(v))}" r="{_n(dot_r)}" fill="{fill}" '
                    f'stroke="{LINE}" stroke-width="1.2"><title>{escape(tip)}</title></circle>')
    dots.append("</g>")
    out.extend(dots)

    # coverage strip: one cell per day
    cells = ['<g class="fw-coverage">']
    cw = min(max(f.day_w - (0.6 if f.day_w > 3 else 0), 0.6), 24.0)
    for r in rows:
        st = _day_status(r)
        x = f.x(r["date"]) - cw / 2
        cells.append(f'<rect x="{_n(x)}" y="{_n(f.bottom + 2)}" width="{_n(cw)}" height="{_n(strip - 3)}" '
                     f'fill="{_CELL[st]}"><title>{r["date"].isoformat()}: {st}</title></rect>')
    cells.append("</g>")
    out.extend(cells)

    if not vals:
        out.append(_text((f.left + f.right) / 2, (f.top + f.bottom) / 2, "no volume estimates in this range",
                         size=13, anchor="middle", fill=MUTED))

    statuses = {_day_status(r) for r in rows}
    with_volume = [r for r in rows if _num(r.get("volume_kscm_d")) is not None]
    items = []
    if any(has_band(r) for r in rows):
        items.append((f'<rect x="0" y="-5" width="16" height="10" fill="{BAND}" fill-opacity="0.55"/>', "90 % interval"))
    if any(r.get("observed") for r in with_volume):
        items.append((f'<path d="M0 0H16" stroke="{LINE}" stroke-width="1.6"/>'
                      f'<circle cx="8" cy="0" r="2.6" fill="{LINE}"/>', "observed"))
    if any(r.get("estimated") and not r.get("observed") for r in with_volume):
        items.append((f'<circle cx="8" cy="0" r="2.6" fill="#ffffff" stroke="{LINE}" stroke-width="1.2"/>',
                      "estimated"))
    for st, text in (("unobserved", "not observed"), ("pending", "pending"), ("failed", "failed")):
        if st in statuses:
            items.append((f'<rect x="2" y="-4" width="12" height="7" fill="{_CELL[st]}"/>', text))
    out.append(_text(f.left, 16, title, size=12, weight="bold"))
    out.append(_legend_items(items, f.right, 13))
    out.append("</svg>")
    return "".join(out)


def daily_co2_svg(rows: list[dict], *, width: int = 960, height: int = 180) -> str:
    """The daily CO2e (tonnes, ``co2e_t``) of one site as bars in an inline ``<svg class="fw-chart">``,
    on the same x axis as :func:`daily_series_svg` for the same rows and width (estimated days in a
    lighter colour). No rows: a "no data in this range" message."""
    width, height = int(width), int(height)
    title = "Daily CO2e"
    rows = _sorted(rows)
    if not rows:
        return _empty(width, height, "fw-chart", title)
    f = _Frame(rows, width, height, 0.0)
    vals = [v for v in (_num(r.get("co2e_t")) for r in rows) if v is not None]
    ymax = max(vals) if vals else 0.0
    ymin = min(0.0, min(vals)) if vals else 0.0
    f.set_y(nice_ticks(ymin, ymax if ymax > ymin else ymin + 1, 4))
    label = (f"{title}, tonnes per day, {_range_text(rows)}: total "
             f"{fmt_value(sum(vals), 't') if vals else 'n/a'} over {len(vals)} day{'s' if len(vals) != 1 else ''} with a value")
    out = [_svg_open(width, height, "fw-chart fw-daily-co2", label), *_axes(f, "t CO₂e/d")]
    bw = min(max(f.day_w * 0.8, 0.8), 24.0)
    base = f.y(0.0)
    out.append('<g class="fw-bars">')
    for r in rows:
        v = _num(r.get("co2e_t"))
        if v is None:
            continue
        x = f.x(r["date"]) - bw / 2
        top, bottom = min(f.y(v), base), max(f.y(v), base)
        fill = BAR if r.get("observed") else BAR_ESTIMATED
        tip = f"{r['date'].isoformat()}: {fmt_value(v, 't CO2e')}" + ("" if r.get("observed") else " (estimated)")
        out.append(f'<rect x="{_n(x)}" y="{_n(top)}" width="{_n(bw)}" height="{_n(max(bottom - top, 0.5))}" '
                   f'fill="{fill}"><title>{escape(tip)}</title></rect>')
    out.append("</g>")
    if not vals:
        out.append(_text((f.left + f.right) / 2, (f.top + f.bottom) / 2, "no CO2e estimates in this range",
                         size=13, anchor="middle", fill=MUTED))
    items = [(f'<rect x="2" y="-5" width="12" height="10" fill="{BAR}"/>', "observed"),
             (f'<rect x="2" y="-5" width="12" height="10" fill="{BAR_ESTIMATED}"/>', "estimated")] if vals else []
    out.append(_text(f.left, 16, "Daily CO₂e (tonnes)", size=12, weight="bold"))
    out.append(_legend_items(items, f.right, 13))
    out.append("</svg>")
    return "".join(out)
