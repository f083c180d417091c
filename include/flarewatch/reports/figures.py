"""The report's charts (matplotlib, Agg backend, offline: no basemap tiles) as PNG bytes.

Pure: data in, bytes out; the same data give the same bytes (no dates or versions in the PNG).
"""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

DPI = 200
BAND = "#f4a261"
LINE = "#9c3d0b"
OBS = "#1d3557"
GAP = "#d9d9d9"
MAX_BARS = 25
UNIT = "thousand m³"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _short(name: str, n: int = 28) -> str:
    return name if len(name) <= n else name[: n - 1] + "…"


def daily_chart(days: list[dict], data_through=None) -> bytes:
    """The group's daily volume (observed + filled) with its 90 % band; days no site was observed
    shaded, partly observed days marked differently."""
    fig, ax = plt.subplots(figsize=(7.2, 3.3), layout="constrained")
    x = [d["day"] for d in days]
    half = 0.5
    for d in days:
        if d["sites"] and d["observed_sites"] == 0:
            ax.axvspan(mdates.date2num(d["day"]) - half, mdates.date2num(d["day"]) + half, color=GAP, lw=0, zorder=0)
    have = [d for d in days if d["estimate"] is not None]
    if have:
        ax.fill_between([d["day"] for d in have], [d["lo"] for d in have], [d["hi"] for d in have], color=BAND,
                        alpha=0.35, lw=0, zorder=1)
        ax.plot([d["day"] for d in have], [d["estimate"] for d in have], color=LINE, lw=1.4, zorder=2)
    full = [d for d in have if d["observed_sites"] and d["observed_sites"] == d["sites"]]
    part = [d for d in have if 0 < d["observed_sites"] < d["sites"]]
    none = [d for d in have if d["observed_sites"] == 0]
    ax.plot([d["day"] for d in full], [d["estimate"] for d in full], "o", color=OBS, ms=4.5, zorder=3)
    ax.plot([d["day"] for d in part], [d["estimate"] for d in part], "D", color=OBS, mfc="white", ms=4, zorder=3)
    ax.plot([d["day"] for d in none], [d["estimate"] for d in none], "o", color=LINE, mfc="white", ms=3.5, zorder=3)
    handles = [Line2D([], [], color=LINE, lw=1.4, label="volume counted in the month"),
               Patch(color=BAND, alpha=0.35, label="90 % interval"),
               Line2D([], [], ls="", marker="o", color=OBS, ms=4.5, label="observed (every site)"),
               Line2D([], [], ls="", marker="o", color=LINE, mfc="white", ms=3.5, label="filled from neighbouring days"),
               Patch(color=GAP, label="no site observed")]
    if part:
        handles.insert(3, Line2D([], [], ls="", marker="D", color=OBS, mfc="white", ms=4, label="some sites observed"))
    if data_through is not None and x and x[0] <= data_through < x[-1]:
        ax.axvline(mdates.date2num(data_through) + half, color="black", ls="--", lw=0.8)
        handles.append(Line2D([], [], color="black", ls="--", lw=0.8, label=f"data through {data_through:%d %b}"))
    if not have:
        ax.text(0.5, 0.5, "no observed day: no estimate", transform=ax.transAxes, ha="center", va="center")
    ax.set_ylabel(f"flared volume ({UNIT}/day)")
    ax.set_ylim(bottom=0)
    if x:
        ax.set_xlim(mdates.date2num(x[0]) - 0.6, mdates.date2num(x[-1]) + 0.6)
    ax.xaxis.set_major_locator(mdates.DayLocator(bymonthday=[1, 5, 10, 15, 20, 25]))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
    ax.grid(axis="y", color="#e5e5e5", lw=0.6)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=7.5, frameon=False)
    ax.tick_params(labelsize=8)
    return _png(fig)


def site_bars(sites: list[dict]) -> bytes:
    """Month estimate per site with its 90 % interval, the observed part as a darker bar."""
    ranked = sorted(sites, key=lambda s: (-(s["volume_estimate_kscm"] or 0.0), s["site_id"]))[:MAX_BARS]
    ranked.reverse()  # largest on top
    h = 1.1 + 0.32 * max(len(ranked), 2)
    fig, ax = plt.subplots(figsize=(7.2, h), layout="constrained")
    y = list(range(len(ranked)))
    est = [s["volume_estimate_kscm"] or 0.0 for s in ranked]
    ax.barh(y, est, color=BAND, height=0.6, label="month estimate (observed + filled days)")
    ax.barh(y, [s["volume_observed_kscm"] for s in ranked], color=OBS, height=0.3, label="observed days only")
    lo = [s["volume_lo_kscm"] for s in ranked]
    hi = [s["volume_hi_kscm"] for s in ranked]
    with_ci = [i for i in y if lo[i] is not None]
    ax.errorbar([est[i] for i in with_ci], with_ci,
                xerr=[[est[i] - lo[i] for i in with_ci], [hi[i] - est[i] for i in with_ci]],
                fmt="none", ecolor="black", elinewidth=1, capsize=3, label="90 % interval")
    for i, s in enumerate(ranked):
        if s["volume_estimate_kscm"] is None:
            ax.text(0, i, "  no observed day: no estimate", va="center", fontsize=7)
    ax.set_yticks(y, [f"{_short(s['name'], 36)}\n{100 * s['completeness']:.0f} % of days observed" for s in ranked],
                  fontsize=7.5)
    ax.set_xlabel(f"flared volume in the month ({UNIT})", fontsize=9)
    ax.set_xlim(left=0)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.grid(axis="x", color="#e5e5e5", lw=0.6)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=7.5, frameon=False)
    ax.tick_params(axis="x", labelsize=8)
    return _png(fig)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 else f"{v:,.1f}"


def _frame(lons: list[float], lats: list[float], pad_deg: float, coslat: float, ratio: float = 1.35):
    """x and y limits around the points, widened (or heightened) to about ``ratio`` width / height
    in ground distance, so a north-south group does not become a thin strip."""
    x0, x1 = min(lons) - pad_deg / coslat, max(lons) + pad_deg / coslat
    y0, y1 = min(lats) - pad_deg, max(lats) + pad_deg * 1.4  # room for the site names above
    w, h = (x1 - x0) * coslat, y1 - y0
    if w < ratio * h:
        grow = (ratio * h - w) / coslat / 2
        x0, x1 = x0 - grow, x1 + grow
    elif w > ratio * h * 1.6:
        grow = (w / (ratio * 1.6) - h) / 2
        y0, y1 = y0 - grow, y1 + grow
    return (x0, x1), (y0, y1)


def site_map(sites: list[dict], flares: list[dict]) -> bytes:
    """Sites (their monitored square, name) and the month's flares as circles sized by observed
    volume, on longitude / latitude axes (equal distances; no basemap)."""
    fig, ax = plt.subplots(figsize=(7.2, 5.6), layout="constrained")
    lats = [s["lat"] for s in sites] + [f["lat"] for f in flares]
    lons = [s["lon"] for s in sites] + [f["lon"] for f in flares]
    lat0 = sum(lats) / len(lats) if lats else 0.0
    coslat = max(math.cos(math.radians(lat0)), 0.05)
    pad_deg = max(max((s["aoi_km"] for s in sites), default=5.0) / 111.32 * 0.75, 0.01)
    span = max((max(lons) - min(lons)) * coslat, max(lats) - min(lats)) if lats else 0.0
    detailed = span < 0.5  # flares apart from their site's marker only on a local map
    vmax = max((f["volume_kscm"] for f in flares), default=0.0)

    def size(v: float) -> float:
        return 20 + 380 * math.sqrt(v / vmax) if vmax > 0 else 20

    for s in sites:
        half_lat = s["aoi_km"] / 2 / 111.32
        half_lon = half_lat / max(math.cos(math.radians(s["lat"])), 0.05)
        ax.add_patch(Rectangle((s["lon"] - half_lon, s["lat"] - half_lat), 2 * half_lon, 2 * half_lat, fill=False,
                               ec="#555555", lw=0.8, ls=":", zorder=1))
        ax.plot(s["lon"], s["lat"], "s", color="#555555", ms=4, zorder=3)
        ax.annotate(_short(s["name"], 40), (s["lon"], s["lat"] + half_lat), xytext=(0, 4), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8, fontweight="bold", zorder=5,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
    if flares:
        ax.scatter([f["lon"] for f in flares], [f["lat"] for f in flares], s=[size(f["volume_kscm"]) for f in flares],
                   c="#e63946", alpha=0.55, edgecolors="#7f1d1d", linewidths=0.6, zorder=4)
    if lats:
        (x0, x1), (y0, y1) = _frame(lons, lats, pad_deg, coslat)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    if detailed and lats:
        placed: list[tuple[float, float]] = []
        min_gap = 0.045 * (y1 - y0)  # a label per flare unless another label is this close
        for f in sorted(flares, key=lambda f: -f["volume_kscm"])[:12]:
            if any(math.hypot((f["lon"] - px) * coslat, f["lat"] - py) < min_gap for px, py in placed):
                continue
            placed.append((f["lon"], f["lat"]))
            ax.annotate(f"{_fmt(f['volume_kscm'])} ({f['days']} d)", (f["lon"], f["lat"]), xytext=(9, 0),
                        textcoords="offset points", va="center", fontsize=6.5, color="#7f1d1d", zorder=6)
    if not flares:
        ax.text(0.5, 0.04, "no flare detected on the observed days of the month", transform=ax.transAxes,
                ha="center", fontsize=8)
    ax.set_aspect(1 / coslat)
    ax.set_xlabel("longitude (°)", fontsize=9)
    ax.set_ylabel("latitude (°)", fontsize=9)
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.grid(color="#eeeeee", lw=0.6)
    handles = [Line2D([], [], ls="", marker="s", color="#555555", ms=4, label="site (dotted: area monitored)")]
    if vmax > 0:
        for v in (vmax, vmax / 4, vmax / 16):
            handles.append(Line2D([], [], ls="", marker="o", color="#e63946", alpha=0.55, mec="#7f1d1d",
                                  ms=math.sqrt(size(v)), label=f"flare, {_fmt(v)} {UNIT}"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(handles), fontsize=7.5,
              frameon=False, borderpad=0.8, handletextpad=1.0, columnspacing=1.6)
    ax.tick_params(labelsize=8)
    return _png(fig)
