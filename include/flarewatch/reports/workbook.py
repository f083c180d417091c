"""The report's Excel workbook (openpyxl) and CSVs: the tables of ``tables`` with their headers.

Pure: ``ReportData`` in, bytes out. The workbook's created / modified dates are fixed (the month's
first day) and its zip entries carry a fixed timestamp, so the same data give the same bytes.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from flarewatch.reports.data import ReportData
from flarewatch.reports.tables import headers, month_words, rows, table_records

SHEETS = ("daily", "monthly", "sites", "alerts", "reconciliation", "methods")
CSVS = ("daily", "sites", "alerts", "reconciliation")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def methods_rows(data: ReportData) -> list[tuple[str, str]]:
    g, f = data.group, data.factors
    out = [("report", f"{data.level} {data.value}, {month_words(data.month)}"),
           ("sites", ", ".join(s["site_id"] for s in data.sites)),
           ("data through", f"{data.data_through}" if data.data_through else "no scene yet"),
           ("gap filling", g["method"]),
           ("daily 90 % band (sheet daily)", "observed day: its flares' 90 % bounds added up; filled day: the "
                                             "neighbours' mean bounds widened by 1.645 x the leave-one-out fill "
                                             "error sd"),
           ("month 90 % interval", "measured bounds + 1.645 x fill error sd x sqrt(filled days); groups: the sites' "
                                   "bounds added"),
           ("gap filling reach [days]", str(f["gapfill_max_days"])),
           ("CO2 factor [t CO2 per thousand m3 at full combustion]", f"{f['co2_t_per_kscm']:g}"),
           ("methane fraction of the gas [vol]", f"{f['methane_fraction_vol']:g}"),
           ("methane density [kg/m3]", f"{f['methane_density_kg_m3']:g}"),
           ("methane GWP (CO2e)", f"{f['methane_gwp']:g}")]
    for name, s in sorted(g["scenario_sources"].items()):
        out.append((f"scenario {name}: combustion efficiency", f"{s['combustion_efficiency']:g}"))
        out.append((f"scenario {name}: source", s["source"]))
    out.append(("completeness", "observed site-days / calendar site-days (from a site's first scene)"))
    out.append(("tables read", "emissions_monthly_estimate, kpi_monthly, alerts, reconciliation_monthly, "
                               "emissions_daily, flare_detections, flare_emissions"))
    return out


def _cell(v):
    if isinstance(v, (dict, list)):
        return str(v)
    return v


def _fixed_zip(raw: bytes, modified: datetime) -> bytes:
    """The same zip with a fixed timestamp on every entry (zipfile stamps the current time) and a
    fixed modified date in ``docProps/core.xml`` (openpyxl stamps the time of saving)."""
    out = io.BytesIO()
    stamp = f"{modified:%Y-%m-%dT%H:%M:%SZ}".encode()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", rb"\g<1>" + stamp + rb"\g<2>",
                              body)
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            dst.writestr(fixed, body)
    return out.getvalue()


def build_xlsx(data: ReportData) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    stamp = datetime.combine(data.month, datetime.min.time())
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.properties.creator = "FlareWatch"
    wb.properties.lastModifiedBy = "FlareWatch"
    wb.properties.title = f"FlareWatch {data.level} {data.value} {data.month:%Y-%m}"
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="E8EDF3")
    tables = table_records(data)
    for name in SHEETS:
        ws = wb.create_sheet(name)
        if name == "methods":
            cols, body = [("item", "k", None), ("value", "v", None)], [list(r) for r in methods_rows(data)]
        else:
            cols, records = tables[name]
            body = rows(cols, records)
        ws.append(headers(cols))
        for r in body:
            ws.append([_cell(v) for v in r])
        for i, (h, _, fmt) in enumerate(cols, start=1):
            letter = get_column_letter(i)
            ws[f"{letter}1"].font, ws[f"{letter}1"].fill = bold, fill
            ws[f"{letter}1"].alignment = Alignment(wrap_text=True, vertical="top")
            width = max([len(h) * 0.55] + [len(str(r[i - 1])) for r in body[:200] if r[i - 1] is not None])
            ws.column_dimensions[letter].width = min(max(10.0, width + 2), 90 if name == "methods" else 45)
            if fmt:
                for (c,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                    if isinstance(c.value, (int, float, date)):
                        c.number_format = fmt
        ws.freeze_panes = "A2"
        ws.row_dimensions[1].height = 45 if name != "methods" else 15
    buf = io.BytesIO()
    wb.save(buf)
    return _fixed_zip(buf.getvalue(), stamp)


def build_csvs(data: ReportData) -> dict[str, bytes]:
    """``<name>.csv`` -> UTF-8 bytes (header row, ISO dates, numbers unrounded)."""
    tables = table_records(data)
    out = {}
    for name in CSVS:
        cols, records = tables[name]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(headers(cols))
        for r in rows(cols, records):
            w.writerow(["" if v is None else v for v in r])
        out[f"{name}.csv"] = buf.getvalue().encode("utf-8")
    return out
