"""The monthly report as a PDF (reportlab platypus): title page, charts, map, tables, methods.

Pure: ``ReportData`` and the chart PNGs in, bytes out. ``invariant=1`` fixes the creation date and
the document id, so the same data give the same bytes.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from flarewatch.reports.data import ReportData
from flarewatch.reports.tables import completeness_words, month_words

WIDTH = A4[0] - 36 * mm
_SS = getSampleStyleSheet()
H1 = ParagraphStyle("h1", parent=_SS["Title"], fontSize=20, leading=24, alignment=TA_LEFT, spaceAfter=4)
H2 = ParagraphStyle("h2", parent=_SS["Heading2"], fontSize=13, leading=16, spaceBefore=8, spaceAfter=4)
BODY = ParagraphStyle("body", parent=_SS["BodyText"], fontSize=9.5, leading=12.5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=8, leading=10, textColor=colors.HexColor("#444444"))
CELL = ParagraphStyle("cell", parent=BODY, fontSize=7.5, leading=9)
CELL_B = ParagraphStyle("cellb", parent=CELL, fontName="Helvetica-Bold")
LEVEL_WORD = {"operator": "Operator", "field": "Field", "country": "Country"}
KSCM = "thousand m\u00b3"


def _p(text: str, style=BODY) -> Paragraph:
    return Paragraph(text, style)


def _e(v) -> str:
    return escape(str(v))


def _n(v, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def _band(v, lo, hi) -> str:
    return "no estimate" if v is None else f"{_n(v)} [{_n(lo)}\u2013{_n(hi)}]"


def _image(png: bytes, width: float) -> Image:
    from reportlab.lib.utils import ImageReader

    w, h = ImageReader(io.BytesIO(png)).getSize()
    return Image(io.BytesIO(png), width=width, height=width * h / w)


def _table(rows: list[list], widths: list[float], header_rows: int = 1, total_row: bool = False,
           right: tuple[int, ...] = ()) -> Table:
    t = Table(rows, colWidths=widths, repeatRows=header_rows)
    style = [*[("ALIGN", (c, header_rows), (c, -1), "RIGHT") for c in right], ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#bbbbbb")),
             ("BACKGROUND", (0, 0), (-1, header_rows - 1), colors.HexColor("#e8edf3")),
             ("VALIGN", (0, 0), (-1, -1), "TOP"), ("FONTSIZE", (0, 0), (-1, -1), 7.5),
             ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3)]
    if total_row:
        style.append(("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#f3f3f3")))
    t.setStyle(TableStyle(style))
    return t


def _title_page(data: ReportData) -> list:
    g = data.group
    ce_d, ce_m = _efficiencies(data)
    key = [
        [_p("<b>Flared gas, whole month (estimate)</b>", CELL),
         _p(f"{_band(g['volume_estimate_kscm'], g['volume_lo_kscm'], g['volume_hi_kscm'])} {KSCM}<br/>"
            "estimate [90 % interval]", CELL)],
        [_p("<b>Observed days only</b>", CELL), _p(f"{_n(g['volume_observed_kscm'])} {KSCM}", CELL)],
        [_p("<b>CO<sub>2</sub></b>", CELL), _p(f"{_n(g['co2_t'])} t (combustion efficiency {ce_d:g})", CELL)],
        [_p(f"<b>CO<sub>2</sub>e, efficiency {ce_d:g}</b>", CELL),
         _p(f"{_band(g['co2e_t'], g['co2e_lo_t'], g['co2e_hi_t'])} t", CELL)],
        [_p(f"<b>CO<sub>2</sub>e, measured efficiency {ce_m:g}</b>", CELL),
         _p(f"{_band(g['co2e_measured_ce_t'], g['co2e_measured_ce_lo_t'], g['co2e_measured_ce_hi_t'])} t", CELL)],
        [_p("<b>Completeness</b>", CELL),
         _p(f"{g['observed_site_days']} of {g['calendar_site_days']} site-days observed "
            f"({100 * g['completeness']:.0f} %)", CELL)],
        [_p("<b>Alerts in the month</b>", CELL),
         _p(f"{len(data.alerts)} ({sum(1 for a in data.alerts if a['status'] == 'open')} open)", CELL)],
    ]
    sites = ", ".join(_e(s["name"]) for s in data.sites[:40]) + (
        f" and {len(data.sites) - 40} more" if len(data.sites) > 40 else "")
    return [
        _p("FlareWatch monthly flaring report", SMALL),
        _p(f"{LEVEL_WORD[data.level]}: {_e(data.value)}", H1),
        _p(f"<b>{month_words(data.month)}</b> \u00b7 {len(data.sites)} site(s): {sites}", BODY),
        Spacer(1, 6 * mm),
        _table([[k, v] for k, v in key], [WIDTH * 0.36, WIDTH * 0.64], header_rows=0),
        Spacer(1, 5 * mm),
        _p("How complete is this month?", H2),
        _p(_e(completeness_words(data))),
        _p("How to read the numbers", H2),
        _p("Volumes are thousand cubic metres of gas flared (1 thousand m\u00b3 = 35.3 thousand cubic feet). "
           "The <b>estimate</b> covers every calendar day: days a satellite saw count as measured, the other days "
           "are filled from the site's nearest observed days. The <b>90 % interval</b> [low\u2013high] is where "
           "the month's volume very likely lies; it is wide when few days were observed. "
           "CO<sub>2</sub>e is given for two combustion efficiencies side by side: the usual "
           f"{ce_d:g} assumption and the lower {ce_m:g} measured on real flares, which means more unburnt "
           "methane and more CO<sub>2</sub>e. Sources are on the methods page."),
        _p("Contents: daily series and monthly totals by site (page 2), map of the sites, tables of site "
           "totals, alerts and the comparison with reported volumes, methods and factors.", SMALL),
    ]


def _efficiencies(data: ReportData) -> tuple[float, float]:
    sr = data.group["scenario_sources"]
    return (sr.get("default", {}).get("combustion_efficiency", data.factors["combustion_efficiency"]),
            sr.get("measured_ce", {}).get("combustion_efficiency", data.factors["measured_combustion_efficiency"]))


def _sites_table(data: ReportData) -> Table:
    ce_d, ce_m = _efficiencies(data)
    head = ["Site", "Observed\nsite-days", f"Observed\n({KSCM})", f"Estimate [90 %]\n({KSCM})",
            f"CO2\n(t, {ce_d:g})", f"CO2e\n(t, {ce_d:g})", f"CO2e\n(t, {ce_m:g})",
            "Complete-\nness"]
    rows = [[_p(f"<b>{h}</b>".replace("\n", "<br/>"), CELL) for h in head]]
    for s in data.sites:
        rows.append([_p(f"{_e(s['name'])} <font color='#666666'>({_e(s['site_id'])})</font>", CELL),
                     f"{s['observed_site_days']}/{s['calendar_site_days']}",
                     _n(s["volume_observed_kscm"]),
                     _p(_band(s["volume_estimate_kscm"], s["volume_lo_kscm"], s["volume_hi_kscm"]), CELL),
                     _n(s["co2_t"]), _n(s["co2e_t"]), _n(s["co2e_measured_ce_t"]), f"{100 * s['completeness']:.0f} %"])
    g = data.group
    rows.append([_p("<b>Total</b>", CELL), f"{g['observed_site_days']}/{g['calendar_site_days']}",
                 _n(g["volume_observed_kscm"]), _p(_band(g["volume_estimate_kscm"], g["volume_lo_kscm"],
                                                         g["volume_hi_kscm"]), CELL_B),
                 _n(g["co2_t"]), _n(g["co2e_t"]), _n(g["co2e_measured_ce_t"]), f"{100 * g['completeness']:.0f} %"])
    w = WIDTH
    return _table(rows, [w * 0.25, w * 0.09, w * 0.1, w * 0.18, w * 0.09, w * 0.1, w * 0.1, w * 0.09],
                  total_row=True, right=(1, 2, 4, 5, 6, 7))


def _alerts_table(data: ReportData) -> list:
    if not data.alerts:
        return [_p("No alert for these sites in the month.")]
    names = {s["site_id"]: s["name"] for s in data.sites}
    rows = [[_p(f"<b>{h}</b>", CELL) for h in ("Days", "Site", "Kind", "Severity", "Status", "What")]]
    for a in data.alerts:
        days = f"{a['period_start']:%d %b}" + ("" if a["period_end"] == a["period_start"]
                                               else f"\u2013{a['period_end']:%d %b}")
        rows.append([days, _p(_e(names.get(a["site_id"], a["site_id"])), CELL), _p(_e(a["kind"].replace("_", " ")), CELL), a["severity"],
                     a["status"], _p(_e(a["message"]), CELL)])
    w = WIDTH
    return [_table(rows, [w * 0.12, w * 0.17, w * 0.13, w * 0.09, w * 0.11, w * 0.38])]


FLAG_WORDS = {"under_reported": "report BELOW interval", "over_reported": "report above interval",
              "consistent": "within interval", "no_estimate": "no estimate"}


def _recon_table(data: ReportData) -> list:
    if not data.reconciliation:
        return [_p("No reported or metered volume covers these sites in the month.")]
    names = {s["site_id"]: s["name"] for s in data.sites}
    rows = [[_p(f"<b>{h}</b>", CELL) for h in ("Site / operator", "Source", f"Reported ({KSCM})", "Days",
                                                 f"FlareWatch, same days [90 %] ({KSCM})", "Ratio", "Reading")]]
    for r in data.reconciliation:
        who = names.get(r["group_value"], r["group_value"]) if r["group_level"] == "site" else \
            f"{r['group_value']} (operator total)"
        rows.append([_p(_e(who), CELL), _p(_e(r["source"]), CELL), _n(r["reported_kscm"]), str(r["reported_days"]),
                     _p(_band(r["estimate_kscm"], r["estimate_lo_kscm"], r["estimate_hi_kscm"]), CELL),
                     _n(r["ratio"], 2), _p(FLAG_WORDS.get(r["flag"], r["flag"]), CELL)])
    w = WIDTH
    return [_table(rows, [w * 0.2, w * 0.12, w * 0.12, w * 0.07, w * 0.23, w * 0.08, w * 0.18], right=(2, 3, 5)),
            _p("Ratio = FlareWatch estimate / reported volume over the days the report covers. "
               "A report below FlareWatch's interval may be under-reporting; above it, the satellites may have "
               "missed flares.", SMALL)]


EF_SOURCES = {
    "co2": "1.935 t CO2 per thousand m3 (0.0548 t/Mcf), the default of open flaring monitors",
    "ch4": "associated-gas methane fraction 0.80 (typical; an assumption), density 0.678 kg/m3 at 15 C",
    "gwp": "methane GWP 30 (World Bank GGFR convention)",
}


def _methods(data: ReportData) -> list:
    g, f = data.group, data.factors
    sr = g["scenario_sources"]
    site_method = data.sites[0]["method"] if data.sites else g["method"]
    rows = [
        ("Gap filling (per site)", site_method),
        ("Group totals", "the sites' estimates and bounds added up (bounds added: conservative)"),
        ("Daily band (chart)", "observed day: its flares' 90 % bounds added up; filled day: the neighbours' mean "
                               "bounds widened by 1.645 x the leave-one-out fill error sd. The month's interval "
                               "adds the fill error as 1.645 x sd x sqrt(filled days), so it is narrower than the "
                               "sum of the daily bands."),
        ("CO2", f"volume x {f['co2_t_per_kscm']:g} t CO2 per thousand m3 x combustion efficiency; source: "
                + EF_SOURCES["co2"]),
        ("CH4 slip and CO2e", f"CH4 = volume x CH4 fraction {f['methane_fraction_vol']:g} x (1 - efficiency) x "
                              f"{f['methane_density_kg_m3']:g} kg/m3; CO2e = CO2 + CH4 x {f['methane_gwp']:g}; "
                              f"sources: {EF_SOURCES['ch4']}; {EF_SOURCES['gwp']}"),
    ]
    for name, label in (("default", "Scenario 1: default efficiency"), ("measured_ce", "Scenario 2: measured")):
        s = sr.get(name)
        if s:
            rows.append((label, f"{s['combustion_efficiency']:g}: {s['source']}"))
    rows.append(("Completeness", "observed site-days / calendar site-days (days before a site's first scene are "
                                 "not counted); a day is observed when processing handled it and a sensor saw the "
                                 "site"))
    rows.append(("Flares on the map", "detections of the month's processed days within 300 m of each other drawn "
                                      "as one flare, sized by the volume observed on its days (days in brackets)"))
    rows.append(("Alerts", "alerts table: rules (threshold, consecutive flaring, new flare site, reported gap) and "
                           "anomalies (robust median / MAD, local outlier factor) whose days overlap the month; "
                           "status as of the report"))
    rows.append(("Sources of the numbers", "results database tables emissions_monthly_estimate, kpi_monthly, alerts, "
                                           "reconciliation_monthly, emissions_daily, flare_detections, flare_emissions"))
    if data.data_through is not None:
        rows.append(("Data through", f"{data.data_through:%Y-%m-%d} (last acquisition date with scenes)"))
    return [_p("Methods, factors and sources", H2),
            _table([[_p(f"<b>{_e(k)}</b>", CELL), _p(_e(v), CELL)] for k, v in rows], [WIDTH * 0.22, WIDTH * 0.78],
                   header_rows=0)]


def _footer(data: ReportData):
    label = f"FlareWatch \u00b7 {LEVEL_WORD[data.level]} {data.value} \u00b7 {month_words(data.month)}"

    def draw(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7.5)
        canvas.setFillColor(colors.HexColor("#666666"))
        canvas.drawString(18 * mm, 10 * mm, label[:110])
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, f"page {doc.page}")
        canvas.restoreState()

    return draw


def build_pdf(data: ReportData, charts: dict[str, bytes]) -> bytes:
    """The PDF; ``charts``: ``daily``, ``sites``, ``map`` PNGs (``figures``)."""
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=16 * mm,
                            bottomMargin=18 * mm, invariant=1,
                            title=f"FlareWatch {data.level} {data.value} {data.month:%Y-%m}",
                            author="FlareWatch", subject="Monthly flaring report", creator="FlareWatch")
    story = _title_page(data)
    story += [PageBreak(), _p("Daily flared volume", H2),
              _p("The group's daily total: observed days as measured, the other days filled from neighbouring "
                 "observed days. Grey: no site observed that day.", SMALL),
              _image(charts["daily"], WIDTH),
              _p("Month total by site", H2),
              _p("Bars: whole-month estimate with its 90 % interval; dark inner bar: what the observed days alone "
                 "add up to. Below each name: the share of the month's days observed.", SMALL),
              _image(charts["sites"], WIDTH * (0.9 if len(data.sites) > 12 else 1.0))]
    story += [PageBreak(), _p("Map of the sites and their flares", H2),
              _p("Each circle is a flare seen in the month, sized by the volume observed on its days (labels: "
                 "thousand m\u00b3 observed, days seen). Squares: the sites, dotted: the area monitored. No "
                 "background map (offline).", SMALL),
              _image(charts["map"], WIDTH)]
    story += [PageBreak(), _p("Site totals", H2), _sites_table(data),
              _p("Estimate = whole month with unobserved days filled; CO<sub>2</sub> and CO<sub>2</sub>e in tonnes at "
                 "combustion efficiency {:g} (default) and {:g} (measured on real flares).".format(*_efficiencies(data)),
                 SMALL)]
    story += [KeepTogether([_p("Alerts of the month", H2), *_alerts_table(data)])]
    story += [KeepTogether([_p("Reported vs observed", H2), *_recon_table(data)])]
    story += [PageBreak(), *_methods(data)]
    doc.build(story, onFirstPage=_footer(data), onLaterPages=_footer(data))
    return buf.getvalue()
