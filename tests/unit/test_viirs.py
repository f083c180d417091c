"""VNF CSV parsing, flare-like filtering and distance matching (synthetic rows in the VNF schema)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from flarewatch.ingest.viirs import (
    EARTH_MEAN_RADIUS_M,
    VNF_COLUMNS,
    flare_like,
    haversine_m,
    match_viirs,
    parse_vnf_csv,
)

HEADER = ",".join(VNF_COLUMNS)


def vnf_row(key="1", when="2024/06/21 22:31:05.123", lat=30.5, lon=47.5, temp=1850, rh=3.5, area=5.2, **over) -> str:
    values = {
        "id_Key": key, "Date_Mscan": when, "Lat_GMTCO": lat, "Lon_GMTCO": lon, "Temp_BB": temp,
        "Temp_Bkg": 295, "ESF_BB": 1.3e-5, "RHI": 8.75, "RH": rh, "Area_Pixel": 0.4, "Area_BB": area,
        "Cloud_Mask": 0, "QF_Detect": 1, "QF_Fit": 2, "Rad_M07": 0.12, "Rad_M08": 0.3, "Rad_M10": 0.9,
        "Rad_M12": 1.1, "Rad_M13": 0.8, "Rad_M14": 7.1, "Rad_M15": 9.0, "Rad_M16": 8.2,
    }  # fmt: skip
    values.update(over)
    return ",".join(str(values[c]) for c in VNF_COLUMNS)


def test_columns_are_the_vnf_schema():
    assert VNF_COLUMNS[:4] == ("id_Key", "Date_Mscan", "Lat_GMTCO", "Lon_GMTCO")
    assert len(VNF_COLUMNS) == 22 and VNF_COLUMNS[-1] == "Rad_M16"


def test_parse_types_fill_and_time():
    text = "\n".join([HEADER, vnf_row(), vnf_row(key="2", Rad_M07=999999, Area_BB=999999.0), ""])
    df = parse_vnf_csv(text)
    assert list(df.columns) == list(VNF_COLUMNS)
    assert len(df) == 2
    assert df["id_Key"].tolist() == ["1", "2"]
    assert df["Temp_BB"].dtype == "float64" and df.loc[0, "Temp_BB"] == 1850.0
    assert math.isnan(df.loc[1, "Rad_M07"]) and math.isnan(df.loc[1, "Area_BB"])
    assert df.loc[0, "Rad_M07"] == pytest.approx(0.12)
    t = df.loc[0, "Date_Mscan"]
    assert t == pd.Timestamp("2024-06-21 22:31:05.123", tz="UTC")
    assert str(t.tz) == "UTC"


def test_parse_accepts_bom_blank_lines_extra_columns_and_header_only():
    text = "\ufeff" + HEADER + ",note\n\n" + vnf_row() + ",hello\n"
    df = parse_vnf_csv(text)
    assert len(df) == 1 and df.loc[0, "note"] == "hello"
    empty = parse_vnf_csv(HEADER + "\n")
    assert len(empty) == 0 and set(VNF_COLUMNS) <= set(empty.columns)
    assert empty["RH"].dtype == "float64"


def test_missing_column_is_named():
    bad = HEADER.replace(",RH,", ",").replace(",Temp_BB", "")
    with pytest.raises(ValueError, match=r"missing columns: \['Temp_BB', 'RH'\]"):
        parse_vnf_csv(bad + "\n")
    with pytest.raises(ValueError, match="empty"):
        parse_vnf_csv("")


def test_non_numeric_value_names_line_and_column():
    text = "\n".join([HEADER, vnf_row(), vnf_row(temp="hot")])
    with pytest.raises(ValueError, match=r"line 3, column Temp_BB: 'hot' is not a number"):
        parse_vnf_csv(text)
    with pytest.raises(ValueError, match=r"line 2, column Date_Mscan"):
        parse_vnf_csv("\n".join([HEADER, vnf_row(when="21.06.2024 22:31")]))
    with pytest.raises(ValueError, match=r"line 2: 3 fields"):
        parse_vnf_csv(HEADER + "\n1,2,3\n")


def test_flare_like_keeps_hot_rows_with_radiant_heat():
    text = "\n".join(
        [HEADER, vnf_row(key="a"), vnf_row(key="fire", temp=950), vnf_row(key="edge", temp=1200),
         vnf_row(key="norh", rh=999999), vnf_row(key="notemp", temp=999999)]
    )  # fmt: skip
    df = parse_vnf_csv(text)
    assert flare_like(df)["id_Key"].tolist() == ["a", "edge"]
    assert flare_like(df, min_temp_k=900)["id_Key"].tolist() == ["a", "fire", "edge"]
    assert flare_like(flare_like(df))["id_Key"].tolist() == ["a", "edge"]  # idempotent


def test_haversine_one_degree_of_latitude():
    assert haversine_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(EARTH_MEAN_RADIUS_M * math.pi / 180.0)
    assert haversine_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(111_195.08, abs=0.1)
    # a degree of longitude at 60 N is half as long
    assert haversine_m(60.0, 10.0, 60.0, 11.0) == pytest.approx(111_195.08 / 2, rel=1e-3)


def test_match_by_distance_sorted_nearest_first():
    m_per_deg = 111_195.08
    lat0, lon0 = 30.5, 47.5
    rows = [
        vnf_row(key="far", lat=lat0 + 1000 / m_per_deg),  # 1000 m north: outside 750 m
        vnf_row(key="mid", lat=lat0 + 500 / m_per_deg),
        vnf_row(key="near", lat=lat0 - 200 / m_per_deg),
        vnf_row(key="nolat", lat=999999),
    ]
    df = parse_vnf_csv("\n".join([HEADER, *rows]))
    got = match_viirs(lat0, lon0, df)
    assert got["id_Key"].tolist() == ["near", "mid"]
    assert got["distance_m"].tolist() == pytest.approx([200.0, 500.0], abs=0.5)
    assert match_viirs(lat0, lon0, df, radius_m=1500)["id_Key"].tolist() == ["near", "mid", "far"]
    assert len(df) == 4 and "distance_m" not in df.columns  # input untouched
    none = match_viirs(0.0, 0.0, df)
    assert len(none) == 0 and "distance_m" in none.columns
    empty = match_viirs(lat0, lon0, parse_vnf_csv(HEADER + "\n"))
    assert len(empty) == 0 and "distance_m" in empty.columns
    with pytest.raises(ValueError, match="finite"):
        match_viirs(float("nan"), lon0, df)
