"""flarewatch.reports without a database: keys, group choice, day values, flare grouping, words,
and a whole report rendered from hand-made data (pages, sheets, same bytes twice)."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest

from flarewatch.analytics.gapfill import DayVolume, estimate_month, fill_days, month_days
from flarewatch.reports import publish
from flarewatch.reports.data import ReportData, filter_groups, flare_locations
from flarewatch.reports.tables import completeness_words, group_daily

JUNE = date(2025, 6, 1)


def test_slug_and_prefix_are_stable_key_components():
    assert publish.slug("Rumaila Operating Organisation") == "rumaila-operating-organisation"
    assert publish.slug("Bakken (Parshall)") == "bakken-parshall"
    assert publish.slug("Côte d'Ivoire / Nord") == "cote-d-ivoire-nord"
    assert publish.report_prefix(JUNE, "field", "Bakken (Parshall)") == "reports/month=2025-06/field=bakken-parshall/"
    with pytest.raises(ValueError):
        publish.slug("///")


def test_filter_groups_levels_values_and_clear_errors():
    found = [("site", "a"), ("operator", "Op"), ("field", "F"), ("country", "C"), ("field", "G")]
    assert filter_groups(found, JUNE) == [("operator", "Op"), ("field", "F"), ("field", "G"), ("country", "C")]
    assert filter_groups(found, JUNE, "field") == [("field", "F"), ("field", "G")]
    assert filter_groups(found, JUNE, None, "C") == [("country", "C")]
    with pytest.raises(ValueError, match="no field 'X' in 2025-06; known: F, G"):
        filter_groups(found, JUNE, "field", "X")
    with pytest.raises(ValueError, match="level must be one of"):
        filter_groups(found, JUNE, "site")


def test_fill_days_add_up_to_the_month_estimate():
    days = month_days(JUNE)
    observed = {JUNE + timedelta(days=i): DayVolume(10.0 + i, 8.0 + i, 13.0 + i) for i in (0, 3, 4, 12, 20)}
    values = fill_days(days, observed, 15)
    assert len(values) == 30 and values[JUNE] == observed[JUNE]
    assert values[JUNE + timedelta(days=1)].volume == pytest.approx((10.0 + 13.0) / 2)
    assert sum(v.volume for v in values.values()) == pytest.approx(estimate_month(days, observed, 15).estimate)
    assert fill_days(days, {}, 15) == {}


def test_flare_locations_group_nearby_detections():
    det = [{"site_id": "s", "acquisition_date": JUNE + timedelta(days=i), "lat": 30.0 + dy, "lon": 47.0,
            "volume_kscm_d": v} for i, dy, v in ((0, 0.0, 5.0), (1, 0.001, 7.0), (1, 0.02, 1.0))]
    flares = flare_locations(det)
    assert [(round(f["volume_kscm"], 1), f["days"]) for f in flares] == [(12.0, 2), (1.0, 1)]


def _data(n_obs: int = 2) -> ReportData:
    sites = []
    daily = []
    for k, sid in enumerate(("a-1", "b-2")):
        est = 100.0 * (k + 1)
        sites.append({"site_id": sid, "name": f"Site {sid}", "field": "F", "operator": "Op", "country": "C",
                      "lat": 30.0 + 0.05 * k, "lon": 47.0, "aoi_km": 5.0, "group_level": "site", "group_value": sid,
                      "month": JUNE, "n_sites": 1, "calendar_site_days": 30, "observed_site_days": n_obs,
                      "unprocessed_site_days": 0, "completeness": n_obs / 30, "data_through": JUNE + timedelta(29),
                      "volume_observed_kscm": 10.0, "volume_estimate_kscm": est, "volume_lo_kscm": est * 0.8,
                      "volume_hi_kscm": est * 1.3, "co2_t": est * 1.9, "co2e_t": est * 2.2, "co2e_lo_t": est * 1.8,
                      "co2e_hi_t": est * 2.9, "co2e_measured_ce_t": est * 3.2, "co2e_measured_ce_lo_t": est * 2.6,
                      "co2e_measured_ce_hi_t": est * 4.1, "scenario_sources": {}, "method": "per-site method",
                      "kpi_flaring_days": n_obs})
        for i, day in enumerate(month_days(JUNE)):
            obs = i < n_obs
            daily.append({"day": day, "site_id": sid, "site_name": f"Site {sid}", "status": "processed" if obs
                          else "no scene", "observed": obs, "n_flares": 1 if obs else None,
                          "volume": 5.0 if obs else None, "lo": 4.0 if obs else None, "hi": 6.0 if obs else None,
                          "estimate": est / 30, "est_lo": est / 40, "est_hi": est / 20, "filled": not obs})
    group = {**sites[0], "group_level": "operator", "group_value": "Op", "n_sites": 2, "calendar_site_days": 60,
             "observed_site_days": 2 * n_obs, "completeness": n_obs / 30, "volume_estimate_kscm": 300.0,
             "method": "sum of the sites", "scenario_sources": {
                 "default": {"combustion_efficiency": 0.98, "source": "World Bank GGFR"},
                 "measured_ce": {"combustion_efficiency": 0.91, "source": "Plant et al. 2022, Science 377:1566"}}}
    return ReportData(month=JUNE, level="operator", value="Op", group=group, sites=sites, daily=daily,
                      flares=[{"site_id": "a-1", "lat": 30.001, "lon": 47.001, "volume_kscm": 9.0, "days": 2}],
                      alerts=[], reconciliation=[],
                      factors={"co2_t_per_kscm": 1.935, "combustion_efficiency": 0.98,
                               "measured_combustion_efficiency": 0.91, "methane_fraction_vol": 0.8,
                               "methane_density_kg_m3": 0.678, "methane_gwp": 30.0, "gapfill_max_days": 15},
                      data_through=JUNE + timedelta(days=29))


def test_words_and_daily_totals():
    data = _data()
    text = completeness_words(data)
    assert "these 2 sites on 4 of 60 site-days (7 %)" in text and "sparsely observed" in text
    days = group_daily(data)
    assert len(days) == 30 and days[0]["observed_sites"] == 2 and days[5]["observed_sites"] == 0
    assert days[0]["estimate"] == pytest.approx(10.0)


def test_a_report_renders_reads_back_and_repeats_byte_for_byte():
    import pypdfium2 as pdfium
    from openpyxl import load_workbook

    files = publish.render(_data())
    assert sorted(files) == sorted(publish.FILES)
    pdf = pdfium.PdfDocument(files["report.pdf"])
    text = " ".join(" ".join(pdf[i].get_textpage().get_text_range().split()) for i in range(len(pdf)))
    assert len(pdf) == 5 and "Site a-1" in text and "Site b-2" in text and "No alert" in text
    pdf.close()
    wb = load_workbook(io.BytesIO(files["report.xlsx"]))
    assert wb.sheetnames == ["daily", "monthly", "sites", "alerts", "reconciliation", "methods"]
    assert [c.value for c in wb["alerts"][1]][:3] == ["alert_id", "kind", "severity"]
    assert wb["daily"].max_row == 1 + 60
    assert publish.render(_data()) == files
