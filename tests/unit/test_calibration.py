"""Calibration import without a database: units, formats, every kind of bad row, simulated meter."""

from __future__ import annotations

import csv
import io
import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from flarewatch.config import MCF_TO_M3
from flarewatch.meters import formats
from flarewatch.meters import importer as cal
from flarewatch.simulation import meters as sim_meters
from flarewatch.simulation.flares import site_day_flows
from flarewatch.simulation.scene import simulate_scene
from flarewatch.sites import load_sites

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "reported-flares" / "reported_flares_sample.csv"
SITES = {s.site_id: s for s in load_sites()}
SITE_IDS = set(SITES)
HEADER = "site_id,period_start,period_end,volume,unit,source,source_key,operator"
REPORTED_HEADER = "run,state,key_type,key,month,operator,flared"
MAP = {("ND", "api", "33061014590000"): "parshall", ("ND", "api", "33061009690000"): "parshall",
       ("NM", "api", "30015450640000"): "rumaila-n"}


def native(*rows: str) -> str:
    return "\n".join((HEADER, *rows)) + "\n"


def reported(*rows: str) -> str:
    return "\n".join((REPORTED_HEADER, *rows)) + "\n"


def validate(text, **kw):
    kw.setdefault("site_ids", SITE_IDS)
    kw.setdefault("site_map", MAP)
    return cal.validate_calibration(text, name="test.csv", **kw)


def reasons(result) -> dict[int, str]:
    return {r.row_number: r.reason for r in result.rejected}


def assert_nothing_dropped(result):
    assert result.accepted_rows + len(result.rejected) == result.n_rows
    numbers = sorted([n for m in (*result.accepted, *result.superseded) for n in m.rows]
                     + [r.row_number for r in result.rejected])
    assert len(numbers) == len(set(numbers)) == result.n_rows


# ------------------------------------------------------------------------------------------------
# units
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("volume,unit,days,expected_kscm", [
    (1000.0, "Mcf", 1, 28.316846592),          # 1000 Mcf = 1e6 ft3 = 28,316.846592 m3
    (1.0, "MMcf", 1, 28.316846592),
    (1.0, "bcf", 1, 28316.846592),
    (1000.0, "scf", 1, 0.028316846592),
    (5.0, "kscm", 1, 5.0),
    (5.0, "KSCM", 30, 5.0),                    # a volume unit is not multiplied by the days
    (2500.0, "m3", 1, 2.5),
    (2500.0, "scm", 1, 2.5),
    (2.0, "mmscm", 1, 2000.0),
    (0.001, "bcm", 1, 1000.0),
    (4.0, "e3m3", 1, 4.0),
    (10.0, "kscm/d", 30, 300.0),               # a daily rate times the period's days
    (100.0, "Mcf/d", 31, 100 * 31 * 28.316846592 / 1000),
    (3.0, " kscm / day ", 2, 6.0),
])
def test_unit_conversions(volume, unit, days, expected_kscm):
    assert formats.to_kscm(volume, unit, days) == pytest.approx(expected_kscm, rel=1e-12)


def test_mcf_constant_is_the_exact_cubic_foot():
    assert MCF_TO_M3 == pytest.approx(1000 * 0.3048**3, rel=1e-12)


@pytest.mark.parametrize("unit,kind,reason", [
    ("bbl", "unknown unit", "unknown unit 'bbl'"),
    ("", "missing unit", "missing unit"),
    ("mscm", "ambiguous unit", "ambiguous unit 'mscm': use kscm (thousand) or mmscm (million)"),
    ("MCM/d", "ambiguous unit", "ambiguous unit 'MCM/d': use kscm (thousand) or mmscm (million)"),
])
def test_bad_units(unit, kind, reason):
    with pytest.raises(formats.UnitError) as exc:
        formats.parse_unit(unit)
    assert (exc.value.kind, exc.value.reason) == (kind, reason)


# ------------------------------------------------------------------------------------------------
# formats
# ------------------------------------------------------------------------------------------------
def test_native_format_accepts_and_normalises():
    res = validate(native(
        "parshall,2025-06-01,2025-06-30,3000,Mcf,NDIC,api:1,EOG",
        "parshall,2025-06-01,2025-06-01,80.5,kscm,simulated-meter,parshall-meter,",
        "cantarell,2025-06-01,2025-06-10,50,kscm/d,pemex-report,,Pemex",
    ))
    assert res.fmt == "native" and not res.rejected
    a, b, c = res.accepted
    assert a.volume_kscm == pytest.approx(84.950539776) and a.volume_reported == 3000 and a.unit_reported == "Mcf"
    assert (a.source, a.source_key, a.operator, a.days) == ("NDIC", "api:1", "EOG", 30)
    assert b.operator is None and b.volume_kscm == 80.5
    assert c.volume_kscm == 500.0 and c.source_key == "" and c.volume_kscm_d == 50.0
    assert_nothing_dropped(res)


def test_native_without_optional_columns_and_any_column_order():
    text = "unit,volume,source,site_id,period_end,period_start\nkscm,1,meter,parshall,2025-01-02,2025-01-01\n"
    (m,) = validate(text).accepted
    assert (m.site_id, m.period_start, m.period_end, m.volume_kscm, m.source_key) == (
        "parshall", date(2025, 1, 1), date(2025, 1, 2), 1.0, "")


def test_zero_volume_is_a_measurement():
    (m,) = validate(native("parshall,2025-06-01,2025-06-01,0,kscm,meter,m1,")).accepted
    assert m.volume_kscm == 0.0


@pytest.mark.parametrize("text,message", [
    ("", "test.csv: empty file, expected a CSV header"),
    ("\n\n", "test.csv: empty file, expected a CSV header"),
    ("site_id,period_start,volume,unit\nparshall,2025-01-01,1,kscm\n",
     "test.csv: missing required columns ['period_end', 'source'] for the native calibration format"),
    ("state,key,month,flared\nND,1,2019-01-01,5\n",
     "test.csv: missing required columns ['key_type'] for the reported calibration format"),
    ('{"site_id": "parshall", "volume": 1}\n', "test.csv: missing required columns"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "test.csv: binary file, not gzip and not CSV text (looks like a PNG image)"),
    (b"site_id,volume\x00\n", "test.csv: binary file, not gzip and not CSV text (NUL bytes)"),
    (b"site_id,volume\xe9\n", "test.csv: not a UTF-8 CSV text file"),
])
def test_unreadable_files_raise_naming_the_file_and_columns(text, message):
    with pytest.raises(formats.CalibrationFileError) as exc:
        validate(text)
    assert str(exc.value).startswith(message), str(exc.value)


def test_forced_format_checks_its_columns():
    with pytest.raises(formats.CalibrationFileError, match=r"missing required columns \['state', 'key_type', 'key', "
                                                      r"'month', 'flared'\] for the reported"):
        validate(native("parshall,2025-06-01,2025-06-01,1,kscm,m,,"), fmt="reported")
    assert validate(native("parshall,2025-06-01,2025-06-01,1,kscm,m,,"), fmt="native").fmt == "native"


def test_bom_and_crlf_and_blank_lines():
    text = "\ufeff" + HEADER + "\r\n\r\nparshall,2025-06-01,2025-06-01,1,kscm,m,,\r\n"
    res = validate(text.encode("utf-8"))
    (m,) = res.accepted
    assert m.rows == (2,)  # the blank line keeps its number: rows are data lines after the header
    assert res.n_rows == 1


# ------------------------------------------------------------------------------------------------
# every kind of bad row, native format
# ------------------------------------------------------------------------------------------------
def test_every_kind_of_bad_native_row_has_its_specific_reason():
    res = validate(native(
        "parshall,2025-06-01,2025-06-01,10,kscm,meter,m1,",      # 1 ok
        "parshall,2025-06-02,2025-06-02,-5,kscm,meter,m1,",      # 2 negative
        "parshall,2025-06-03,2025-06-03,7,bbl,meter,m1,",        # 3 unknown unit
        "xyz,2025-06-04,2025-06-04,7,kscm,meter,m1,",            # 4 unknown site
        "parshall,2025-02-01,2025-01-01,7,kscm,meter,m2,",       # 5 end before start
        "parshall,2025-13-01,2025-13-01,7,kscm,meter,m1,",       # 6 unparseable date
        "parshall,2025-06-05,2025-06-05,9e9,kscm,meter,m1,",     # 7 implausible
        "parshall,2025-06-06,2025-06-06,nan,kscm,meter,m1,",     # 8 non-finite
        "parshall,2025-06-07,2025-06-07,abc,kscm,meter,m1,",     # 9 unparseable volume
        "parshall,2025-06-08,2025-06-08,,kscm,meter,m1,",        # 10 missing volume
        "parshall,2025-06-01,2025-06-01,10,kscm,meter,m1,",      # 11 duplicate of 1
        "parshall,2025-06-01,2025-06-03,30,kscm,meter,m1,",      # 12 overlaps 1
        ",2025-06-09,2025-06-09,1,kscm,meter,m1,",               # 13 missing site
        "parshall,2025-06-10,2025-06-10,1,kscm,,m1,",            # 14 missing source
        "parshall,2025-06-11,2025-06-11,1,kscm,meter,m1,,extra", # 15 wrong number of fields
        "parshall,2025-06-12,2025-06-12,1,,meter,m1,",           # 16 missing unit
        "parshall,2025-06-13,2025-06-13,1,mscm,meter,m1,",       # 17 ambiguous unit
        "parshall,2025-06-14,2025-06-14,inf,kscm,meter,m1,",     # 18 non-finite
        "parshall,,2025-06-14,1,kscm,meter,m1,",                 # 19 missing date
        "parshall,2025-06-01,2025-06-01,11,kscm,meter,m1,",      # 20 duplicate key, other value
    ))
    assert [m.rows for m in res.accepted] == [(1,)]
    assert reasons(res) == {
        2: "negative volume -5.0",
        3: "unknown unit 'bbl'",
        4: "unknown site 'xyz'",
        5: "period_end 2025-01-01 before period_start 2025-02-01",
        6: "unparseable period_start '2025-13-01' (expected YYYY-MM-DD)",
        7: "volume 9e+09 kscm/day above the 20,000 kscm/day plausibility limit",
        8: "non-finite volume nan",
        9: "unparseable volume 'abc'",
        10: "missing volume",
        11: "duplicate of row 1",
        12: "overlaps 2025-06-01..2025-06-01 (row 1)",
        13: "missing site_id",
        14: "missing source",
        15: "9 fields, the header has 8",
        16: "missing unit",
        17: "ambiguous unit 'mscm': use kscm (thousand) or mmscm (million)",
        18: "non-finite volume inf",
        19: "missing period_start",
        20: "duplicate of row 1",
    }
    assert res.by_kind() == {
        "ambiguous unit": 1, "duplicate": 2, "implausible volume": 1, "missing period_start": 1,
        "missing site_id": 1, "missing source": 1, "missing unit": 1, "missing volume": 1,
        "negative volume": 1, "non-finite volume": 2, "overlapping period": 1, "period end before start": 1,
        "unknown site": 1, "unknown unit": 1, "unparseable date": 1, "unparseable volume": 1,
        "wrong number of fields": 1,
    }
    rej = {r.row_number: r for r in res.rejected}
    assert rej[15].raw["_extra"] == ["extra"] and rej[2].raw["volume"] == "-5"  # the row as read
    assert_nothing_dropped(res)


def test_plausibility_limit_is_per_day_of_the_period():
    # 600,000 kscm over 31 days = 19,355 kscm/day: fine; over 29 days = 20,690/day: rejected
    ok = validate(native("parshall,2025-01-01,2025-01-31,600000,kscm,m,,"))
    bad = validate(native("parshall,2025-02-01,2025-03-01,600000,kscm,m,,"))
    assert len(ok.accepted) == 1
    assert reasons(bad) == {1: "volume 20689.7 kscm/day above the 20,000 kscm/day plausibility limit"}
    assert formats.MAX_SITE_RATE_KSCM_D == 20_000


def test_in_file_overlaps_per_series_only():
    res = validate(native(
        "parshall,2025-06-01,2025-06-30,100,kscm,meter,m1,",
        "parshall,2025-06-15,2025-07-15,100,kscm,meter,m1,",   # overlaps row 1
        "parshall,2025-06-15,2025-07-15,100,kscm,meter,m2,",   # other meter: fine
        "parshall,2025-06-15,2025-07-15,100,kscm,NDIC,m1,",    # other source: fine
        "cantarell,2025-06-15,2025-07-15,100,kscm,meter,m1,",  # other site: fine
        "parshall,2025-07-01,2025-07-31,100,kscm,meter,m1,",   # adjacent to row 1: fine
        "parshall,2025-05-20,2025-06-01,100,kscm,meter,m1,",   # touches row 1's first day
        "parshall,2025-07-31,2025-08-01,100,kscm,meter,m1,",   # touches row 6's last day
    ))
    assert reasons(res) == {
        2: "overlaps 2025-06-01..2025-06-30 (row 1)",
        7: "overlaps 2025-06-01..2025-06-30 (row 1)",
        8: "overlaps 2025-07-01..2025-07-31 (row 6)",
    }
    assert sorted(n for m in res.accepted for n in m.rows) == [1, 3, 4, 5, 6]


def test_overlaps_with_stored_periods_but_identical_period_is_an_update():
    stored = {("parshall", "meter", "m1"): [(date(2025, 6, 1), date(2025, 6, 30))]}
    res = validate(native(
        "parshall,2025-06-10,2025-06-10,4,kscm,meter,m1,",     # inside the stored month
        "parshall,2025-05-25,2025-06-02,4,kscm,meter,m1,",     # straddles its start
        "parshall,2025-07-01,2025-07-01,4,kscm,meter,m1,",     # after it: fine
        "parshall,2025-06-10,2025-06-10,4,kscm,meter,m2,",     # another meter: fine
    ), stored_periods=stored)
    assert reasons(res) == {1: "overlaps stored period 2025-06-01..2025-06-30",
                            2: "overlaps stored period 2025-06-01..2025-06-30"}
    assert {r.kind for r in res.rejected} == {"overlaps stored period"}
    assert [m.rows for m in res.accepted] == [(3,), (4,)]
    assert_nothing_dropped(res)
    # the stored period itself again (e.g. a corrected value): accepted, the import updates it
    same = validate(native("parshall,2025-06-01,2025-06-30,120,kscm,meter,m1,"), stored_periods=stored)
    assert not same.rejected and same.accepted[0].volume_kscm == 120.0


def test_in_file_overlap_is_checked_before_stored_and_between_many_stored_periods():
    stored = {("parshall", "meter", "m1"): [(date(2025, 6, d), date(2025, 6, d)) for d in range(1, 31, 2)]}
    res = validate(native(
        "parshall,2025-06-02,2025-06-02,1,kscm,meter,m1,",    # between stored days 1 and 3: fine
        "parshall,2025-06-04,2025-06-05,1,kscm,meter,m1,",    # covers stored day 5
        "parshall,2025-06-02,2025-06-02,1,kscm,meter,m1,",    # duplicate of row 1
    ), stored_periods=stored)
    assert reasons(res) == {2: "overlaps stored period 2025-06-05..2025-06-05", 3: "duplicate of row 1"}


# ------------------------------------------------------------------------------------------------
# the reported (state) format
# ------------------------------------------------------------------------------------------------
def test_reported_format_maps_converts_and_keeps_several_wells_apart():
    res = validate(reported(
        "20210503221516,ND,api,33061014590000,2019-02-01,EOG,37.0",
        "20210503221516,ND,api,33061009690000,2019-02-01,WLL,51.0",
        "20210503221516,ND,api,33061009690000,2019-03-01,WLL,0.0",
        "20210503221516,ND,api,33009024550000,2019-01-01,RESONANCE,71.0",
    ))
    assert res.fmt == "reported"
    a, b, c = res.accepted
    assert (a.site_id, a.source, a.source_key, a.operator) == ("parshall", "NDIC", "api:33061014590000", "EOG")
    assert (a.period_start, a.period_end, a.days) == (date(2019, 2, 1), date(2019, 2, 28), 28)
    assert a.volume_reported == 37.0 and a.unit_reported == "Mcf"
    assert a.volume_kscm == pytest.approx(37.0 * 28.316846592 / 1000)
    assert b.site_id == "parshall" and b.source_key == "api:33061009690000"  # same site, month: separate rows
    assert c.volume_kscm == 0.0 and c.period_end == date(2019, 3, 31)  # a zero month is a measurement
    assert reasons(res) == {4: "no site mapping for ND api 33009024550000"}
    assert res.rejected[0].kind == "no site mapping"
    assert_nothing_dropped(res)


def test_reported_bad_rows():
    res = validate(reported(
        "20210503221516,ND,api,33061014590000,2019-04-01,EOG,",              # 1 missing volume, not zero
        "20210503221516,ND,api,33061014590000,2019-05-15,EOG,3",             # 2 month not first day
        "20210503221516,ND,api,33061014590000,2019-06,EOG,3",                # 3 unparseable month
        "20210503221516,ND,api,33061014590000,2019-07-01,EOG,-3",            # 4 negative
        "20210503221516,ND,,33061014590000,2019-08-01,EOG,3",                # 5 missing key_type
        "20210503221516,ND,api,33061014590000,2019-09-01,EOG,3",             # 6 ok
        "20210503221516,ND,api,33061014590000,2019-09-01,EOG,3",             # 7 exact repeat: duplicate
        "20210503221516,ND,api,33061014590000,2019-10-01,EOG,9e12",          # 8 implausible
        "20210503221516,XX,api,33061014590000,2019-10-01,EOG,1",             # 9 unmapped (state is part of the key)
    ))
    assert reasons(res) == {
        1: "missing volume",
        2: "month 2019-05-15 is not the first day of a month",
        3: "unparseable month '2019-06' (expected YYYY-MM-DD)",
        4: "negative volume -3.0",
        5: "missing key_type",
        7: "duplicate of row 6 (identical line)",
        8: "volume 8.22102e+09 kscm/day above the 20,000 kscm/day plausibility limit",
        9: "no site mapping for XX api 33061014590000",
    }
    assert [m.rows for m in res.accepted] == [(6,)]
    assert_nothing_dropped(res)


def test_reported_well_month_in_parts_is_summed_and_a_bad_part_rejects_the_month():
    res = validate(reported(
        "20210503221516,NM,api,30015450640000,2019-06-01,EOG,457.0",
        "20210503221516,NM,api,30015450640000,2019-06-01,EOG,661.0",
        "20210503221516,NM,api,30015450640000,2019-06-01,EOG,187.0",
        "20210503221516,NM,api,30015450640000,2019-07-01,EOG,34.0",
        "20210503221516,NM,api,30015450640000,2019-07-01,EOG,",
    ))
    (m,) = res.accepted
    assert m.rows == (1, 2, 3) and m.volume_reported == 1305.0 and m.source == "NMOCD"
    assert m.volume_kscm == pytest.approx(1305.0 * MCF_TO_M3 / 1000)
    assert reasons(res) == {4: "row 5 of the same NM api 30015450640000 month 2019-07 run 20210503221516 was rejected"
                            " (missing volume)",
                            5: "missing volume"}
    assert_nothing_dropped(res)


def test_reported_sample_fixture():
    sample = FIXTURE.read_bytes()
    keys = {(r["state"], r["key_type"], r["key"]) for r in csv.DictReader(io.StringIO(sample.decode()))}
    assert len(keys) == 105
    res = validate(sample, site_map={k: "parshall" for k in keys})
    assert res.fmt == "reported" and res.n_rows == 1385
    # the 30 identical Texas pending-lease lines are 4 lines + 26 repeats; NM wells listed in parts are summed
    assert res.by_kind() == {"duplicate": 26}
    assert sum(len(m.rows) > 1 for m in res.accepted) > 0
    assert len({m.natural_key for m in res.accepted}) == len(res.accepted)
    assert {m.source for m in res.accepted} == {"NDIC", "NMOCD", "TXRRC"}
    assert_nothing_dropped(res)
    # with the packaged (illustrative) mapping only the Mountrail County wells land on parshall
    packaged = {(r["source"], r["key_type"], r["key"]): r["site_id"] for r in cal.load_site_map()}
    res = validate(sample, site_map=packaged)
    assert {m.site_id for m in res.accepted} == {"parshall"}
    assert {m.source_key for m in res.accepted} == {f"api:{k}" for _, _, k in packaged}
    assert res.by_kind() == {"no site mapping": res.n_rows - res.accepted_rows}


def test_packaged_site_map_points_at_demo_sites():
    rows = cal.load_site_map()
    assert len(rows) >= 3 and all(r["site_id"] in SITE_IDS and r["notes"].startswith("illustrative") for r in rows)


# ------------------------------------------------------------------------------------------------
# the simulated meter
# ------------------------------------------------------------------------------------------------
def test_site_day_flows_match_the_scene_truth():
    site, day = SITES["parshall"], date(2025, 6, 3)
    truth = {f["flare_id"]: f["flow_kscm_d"] for f in simulate_scene(site, day).truth["flares"]}
    flows = site_day_flows(site, day)
    assert flows.keys() == truth.keys()
    assert all(round(flows[k], 4) == truth[k] for k in truth)


def test_simulated_readings_are_deterministic_and_have_every_bad_row_kind():
    site = SITES["parshall"]
    start, end = date(2025, 6, 1), date(2025, 6, 30)
    text = sim_meters.simulated_meter_readings(site, start, end)
    assert text == sim_meters.simulated_meter_readings(site, start, end)
    assert text != sim_meters.simulated_meter_readings(site, start, end, seed_key="other")
    res = validate(text)
    assert {r.kind for r in res.rejected} == {"negative volume", "unknown unit", "duplicate", "overlapping period"}
    assert len(res.rejected) == 4 and res.rejected[0].row_number > len(res.accepted)  # bad rows come last
    assert all(m.source == "simulated-meter" and m.source_key == "parshall-meter" for m in res.accepted)
    assert all(m.period_start == m.period_end for m in res.accepted)
    assert_nothing_dropped(res)
    # a day reads the same in any date range (ranges can overlap from one upload to the next)
    week = {m.period_start: m.volume_kscm for m in validate(
        sim_meters.simulated_meter_readings(site, date(2025, 6, 10), date(2025, 6, 16))).accepted}
    month = {m.period_start: m.volume_kscm for m in res.accepted}
    assert week and all(month[d] == v for d, v in week.items())
    clean = validate(sim_meters.simulated_meter_readings(site, start, end, bad_rows=False))
    assert not clean.rejected and len(clean.accepted) == len(res.accepted)


def test_simulated_readings_noise_and_gaps():
    site = SITES["rumaila-n"]
    start = date(2025, 1, 1)
    end = start + timedelta(days=399)
    res = validate(sim_meters.simulated_meter_readings(site, start, end, bad_rows=False))
    days = {m.period_start: m.volume_kscm for m in res.accepted}
    gaps = 400 - len(days)
    assert 5 <= gaps <= 40  # ~5 % gap days
    ratios = [v / sum(site_day_flows(site, d).values()) for d, v in days.items() if v > 1.0]
    log_ratio = np.log(ratios)
    assert abs(float(np.mean(log_ratio))) < 0.01
    assert float(np.std(log_ratio)) == pytest.approx(0.05, abs=0.01)
    noisy = validate(sim_meters.simulated_meter_readings(site, start, start + timedelta(days=99), noise_sd=0.3,
                                                  bad_rows=False))
    r = [m.volume_kscm / sum(site_day_flows(site, m.period_start).values()) for m in noisy.accepted]
    assert float(np.std(np.log(r))) == pytest.approx(0.3, abs=0.06)
    assert all(math.isfinite(v) and v >= 0 for v in days.values())


# ------------------------------------------------------------------------------------------------
# real state-reported files: versions, resent lines, truncation, gzip, quarantined volume
# ------------------------------------------------------------------------------------------------
OLDER = FIXTURE.with_name("reported_flares_sample_older_release.csv")
NEW_RUN, OLD_RUN = "20210503221516", "20210329211814"


def sample_map() -> dict:
    keys = set()
    for path in (FIXTURE, OLDER):
        keys |= {(r["state"], r["key_type"], r["key"]) for r in csv.DictReader(io.StringIO(path.read_text()))}
    return {k: "parshall" for k in keys}


def totals(measurements) -> dict:
    return {m.natural_key: m.volume_reported for m in measurements}


@pytest.mark.parametrize("text,expected", [
    ("20210503221516", "20210503221516"), ("2021-05-03T22:15:16", "20210503221516"),
    ("2021-05-03", "20210503000000"), ("20210503", "20210503000000"), ("202105032215", "20210503221500"),
    ("r", None), ("2021050322", None), ("20211303000000", None), ("20210503251516", None), ("", None),
])
def test_report_versions_are_normalised_to_sortable_timestamps(text, expected):
    assert formats.normalize_version(text) == expected


@pytest.mark.parametrize("name,expected", [
    ("s3://rawdata/calibration/reported_flares_2021-05-03.csv.gz", "20210503000000"),
    ("/data/reported_flares_20210503221516.csv", "20210503221516"),
    ("reported_flares.csv.gz", ""),
    ("2021-05-01_2021-05-31.csv", ""),          # two dates: a period, not a release date
    ("/2021-05-03/reported_flares.csv", ""),    # only the base name counts
])
def test_version_from_file_name(name, expected):
    assert formats.version_from_name(name) == expected


def test_resent_lines_are_versions_not_parts_on_the_real_releases():
    """Both real releases in one file (lines identical except for run, and in the other order):
    the newest run of each well-month is the measurement, the older one is recorded as superseded,
    never added: the totals are the newer release's alone, not doubled."""
    site_map = sample_map()
    newer = validate(FIXTURE.read_bytes(), site_map=site_map)
    older_lines = OLDER.read_text().splitlines()[1:]
    for combined in (FIXTURE.read_text() + "\n".join(older_lines) + "\n",
                     OLDER.read_text() + "\n".join(FIXTURE.read_text().splitlines()[1:]) + "\n"):
        res = validate(combined, site_map=site_map)
        assert_nothing_dropped(res)
        only_old = set(totals(res.accepted)) - set(totals(newer.accepted))
        assert len(only_old) == 4  # the four well-months the newer release no longer has
        assert {k: v for k, v in totals(res.accepted).items() if k not in only_old} == totals(newer.accepted)
        assert {m.report_version for m in res.accepted if m.natural_key not in only_old} == {NEW_RUN}
        assert {m.report_version for m in res.superseded} == {OLD_RUN}
        assert len(res.superseded) == 1094  # the well-months of both releases: the older one recorded, not added
        assert {r.kind for r in res.rejected} == {"duplicate"}  # identical lines only (same run too)
        # operator renamed between the releases: the newer name wins
        ops = {m.operator for m in res.accepted if m.source_key == "lease:O09-32724"}
        assert ops == {"MASH OILFIELD SERVICES, LP"}


def test_parts_are_summed_per_version_and_the_newest_version_of_a_month_wins():
    res = validate(reported(
        "20210329211814,NM,api,30015450640000,2019-06-01,EOG,400.0",   # 1 older release, part 1
        "20210329211814,NM,api,30015450640000,2019-06-01,EOG,600.0",   # 2 older release, part 2
        "20210503221516,NM,api,30015450640000,2019-06-01,EOG,457.0",   # 3 newer, parts 1-3
        "20210503221516,NM,api,30015450640000,2019-06-01,EOG,661.0",
        "20210503221516,NM,api,30015450640000,2019-06-01,EOG,187.0",
        "20210503221516,NM,api,30015450640000,2019-07-01,EOG,-1",      # 6 newest version is bad ...
        "20210329211814,NM,api,30015450640000,2019-07-01,EOG,34.0",    # 7 ... the older one is not applied
        ",NM,api,30015450640000,2019-08-01,EOG,5.0",                   # 8 no run: the file version ('')
    ))
    (june, aug), (june_old, july_old) = res.accepted, res.superseded
    assert (june.rows, june.volume_reported, june.report_version) == ((3, 4, 5), 1305.0, NEW_RUN)
    assert (june_old.rows, june_old.volume_reported, june_old.report_version) == ((1, 2), 1000.0, OLD_RUN)
    assert july_old.rows == (7,) and aug.report_version == ""
    assert reasons(res) == {6: "negative volume -1.0"}
    assert res.accepted_rows + len(res.rejected) == res.n_rows
    given = validate(reported(",NM,api,30015450640000,2019-08-01,EOG,5.0"), report_version="2021-05-03")
    assert given.accepted[0].report_version == "20210503000000" and given.version_source == "run column (else given)"


def test_a_file_cut_inside_its_last_value_quarantines_that_line():
    text = reported("20210503221516,ND,api,33061014590000,2019-02-01,EOG,37.0",
                    "20210503221516,ND,api,33061009690000,2019-02-01,WLL,544.0")
    cut = text[: text.rindex("544") + 2]  # '...,WLL,54' and no line end
    res = validate(cut)
    assert [m.volume_reported for m in res.accepted] == [37.0]
    (r,) = res.rejected
    assert (r.row_number, r.kind, r.raw["flared"]) == (2, "truncated line", "54")
    assert r.reason == ("truncated line: the file ends inside this line (no line end after it); its last value may be"
                        " cut (e.g. 54 for 544)")
    assert res.notes == ("data line 2 is the last and has no line end: quarantined as truncated",)
    assert validate(text).by_kind() == {}  # the whole file: nothing quarantined
    # native files too; trailing blank space after the last line end is not a cut
    nat = validate(native("parshall,2025-06-01,2025-06-30,3000,Mcf,m,,") + "parshall,2025-07-01,2025-07-31,30")
    assert nat.by_kind() == {"truncated line": 1} and len(nat.accepted) == 1
    assert validate(text + "  \n\n").by_kind() == {}


def test_real_sample_cut_inside_its_last_value():
    data = FIXTURE.read_bytes()
    assert data.endswith(b",FANG,135.0\r\n")
    res = validate(data[:-5], site_map=sample_map())  # ends '...,FANG,13'
    last = res.n_rows
    kinds = {r.row_number: r.kind for r in res.rejected}
    assert kinds[last] == "truncated line"
    key = ("TXRRC", "pending_lease_id:33154867", "parshall", date(2020, 8, 1), date(2020, 8, 31))
    # the month the cut line belongs to is held back whole (its value is unknown), never stored as 13
    assert key not in totals(res.accepted) and not any(last in m.rows for m in res.accepted)
    assert "incomplete well-month" in kinds.values()


def test_gzip_is_recognised_by_its_magic_bytes_and_read_like_the_plain_file():
    import gzip

    data = FIXTURE.read_bytes()
    plain = validate(data, site_map=sample_map())
    for name in ("reported_flares.csv.gz", "reported_flares.csv", "no-extension"):
        res = cal.validate_calibration(gzip.compress(data), name=name, site_ids=SITE_IDS, site_map=sample_map())
        assert totals(res.accepted) == totals(plain.accepted) and res.by_kind() == plain.by_kind()
        assert res.notes == ()
    # several gzip members (a file appended to with gzip >>) read as one text
    half = data.index(b"\n", len(data) // 2) + 1
    two = gzip.compress(data[:half]) + gzip.compress(data[half:])
    assert totals(validate(two, site_map=sample_map()).accepted) == totals(plain.accepted)
    # plain text named .gz is read as text, and says so
    named = cal.validate_calibration(data, name="x.csv.gz", site_ids=SITE_IDS, site_map=sample_map())
    assert named.notes == ("named .gz but not gzip-compressed: read as plain text",)


def test_a_cut_gzip_file_quarantines_its_cut_last_line_and_says_so():
    import gzip

    data = gzip.compress(FIXTURE.read_bytes())
    res = validate(data[: len(data) - 40], site_map=sample_map())
    assert "the gzip stream ends before its end marker" in res.notes[0]
    last = max(r.row_number for r in res.rejected)
    assert {r.kind for r in res.rejected if r.row_number == last} == {"truncated line"}
    assert "the gzip stream was cut inside this line" in res.rejected[-1].reason or any(
        "gzip stream was cut" in r.reason for r in res.rejected)
    assert res.n_rows < 1385


@pytest.mark.parametrize("data,message", [
    (b"PK\x03\x04\x14\x00\x06\x00", "binary file, not gzip and not CSV text (looks like a ZIP archive (or an .xlsx"),
    (b"BZh91AY&SY", "binary file, not gzip and not CSV text (looks like a bzip2-compressed file)"),
    (b"\xfd7zXZ\x00\x00\x04", "binary file, not gzip and not CSV text (looks like an xz-compressed file)"),
    (bytes(range(1, 40)) * 10, "binary file, not gzip and not CSV text (first bytes 01 02 03"),
    (b"\x1f\x8b\x08\x00garbage-not-deflate" * 3, "corrupt gzip file"),
])
def test_binary_files_that_are_not_gzip_are_named_as_such(data, message):
    with pytest.raises(formats.CalibrationFileError) as exc:
        cal.validate_calibration(data, name="reported_flares.csv.gz", site_ids=SITE_IDS)
    assert str(exc.value).startswith(f"reported_flares.csv.gz: {message}"), str(exc.value)


def test_quarantined_volume_per_operator_and_reason_on_the_real_sample():
    res = validate(FIXTURE.read_bytes(), site_map=sample_map())
    summary, details = cal.quarantined_volume(res)
    assert len(details) == len(res.rejected) == 26
    groups = summary["by_operator_and_reason"]
    assert sum(g["rows"] for g in groups) == 26 and {g["kind"] for g in groups} == {"duplicate"}
    assert {g["source"] for g in groups} == {"TXRRC"}
    expected = sum(float(r.raw["flared"]) for r in res.rejected) * MCF_TO_M3 / 1000
    assert summary["volume_kscm"] == pytest.approx(expected, abs=1e-5)
    assert sum(g["volume_kscm"] for g in groups) == pytest.approx(expected, abs=1e-4)
    assert summary["file_volume_kscm"] == pytest.approx(
        sum(m.volume_kscm for m in res.accepted) + expected, abs=1e-5)
    assert summary["percent_of_file_volume"] == pytest.approx(100 * expected / summary["file_volume_kscm"], abs=1e-3)
    assert groups == sorted(groups, key=lambda g: -g["volume_kscm"])
    # a line whose volume cannot be read counts as a row without volume
    bad = validate(reported("20210503221516,ND,api,33061014590000,2019-04-01,EOG,abc"))
    (g,) = cal.quarantined_volume(bad)[0]["by_operator_and_reason"]
    assert (g["operator"], g["kind"], g["rows"], g["volume_kscm"], g["rows_without_volume"]) == (
        "EOG", "unparseable volume", 1, 0.0, 1)


def test_calibration_report_adds_up_quarantined_volume_over_files():
    from flarewatch.orchestration.tasks import calibration_report

    res = validate(FIXTURE.read_bytes(), site_map=sample_map())
    qv, _ = cal.quarantined_volume(res)
    summary = {"rows": res.n_rows, "inserted": 0, "updated": 0, "unchanged": 0, "older_not_applied": 3,
               "superseded_in_file": 0, "quarantined": len(res.rejected), "by_reason": res.by_kind(),
               "quarantined_volume": qv}
    report = calibration_report([summary, summary, {"skipped": "same content as x"}])
    assert (report["files"], report["skipped"], report["older_not_applied"], report["quarantined"]) == (3, 1, 6, 52)
    assert report["quarantined_volume"]["volume_kscm"] == pytest.approx(2 * qv["volume_kscm"])
    assert report["quarantined_volume"]["percent_of_file_volume"] == pytest.approx(qv["percent_of_file_volume"],
                                                                                   abs=1e-3)
    top = report["quarantined_volume"]["by_operator_and_reason"][0]
    first = qv["by_operator_and_reason"][0]
    assert (top["operator"], top["rows"]) == (first["operator"], 2 * first["rows"])
