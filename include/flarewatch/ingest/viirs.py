"""VIIRS Nightfire (VNF) detections: parse the nightly CSV, keep flare-like rows, match to a point.

VNF (Elvidge et al. 2013, Remote Sensing 5(9):4423) fits Planck curves to night-time VIIRS
M-band radiances: ``Temp_BB`` (K), ``ESF_BB``, ``Area_BB`` = source area (m2), ``RH`` = radiant
heat sigma T^4 S (MW). Fill value 999999 (``config.VNF_FILL_VALUE``). The VNF licence forbids
redistributing its rows: fixtures must be synthetic rows in this schema.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import threading
import weakref
from collections import OrderedDict
from datetime import UTC

import numpy as np
import pandas as pd

from flarewatch.config import (
    VIIRS_FLARE_MIN_TEMP_K,
    VIIRS_MATCH_RADIUS_M,
    VNF_FILL_VALUE,
)

# Column order of the VNF nightly CSV (domain.md, "VIIRS (night, 750 m M-bands): Nightfire").
VNF_COLUMNS = (
    "id_Key",
    "Date_Mscan",
    "Lat_GMTCO",
    "Lon_GMTCO",
    "Temp_BB",
    "Temp_Bkg",
    "ESF_BB",
    "RHI",
    "RH",
    "Area_Pixel",
    "Area_BB",
    "Cloud_Mask",
    "QF_Detect",
    "QF_Fit",
    "Rad_M07",
    "Rad_M08",
    "Rad_M10",
    "Rad_M12",
    "Rad_M13",
    "Rad_M14",
    "Rad_M15",
    "Rad_M16",
)
# Kept as text: the key is an identifier, not a quantity.
VNF_TEXT_COLUMNS = ("id_Key",)
VNF_TIME_COLUMN = "Date_Mscan"
VNF_NUMERIC_COLUMNS = tuple(c for c in VNF_COLUMNS if c not in VNF_TEXT_COLUMNS and c != VNF_TIME_COLUMN)
VNF_TIME_FORMATS = ("%Y/%m/%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S")

# Mean Earth radius (m), IUGG R1 = (2a + b) / 3 for WGS84; used for haversine distances.
EARTH_MEAN_RADIUS_M = 6_371_008.8


def parse_vnf_csv(text: str) -> pd.DataFrame:
    """Parse a VNF nightly CSV into a DataFrame with the ``VNF_COLUMNS`` first (extra columns kept).

    - ``id_Key`` and any extra (non-VNF) columns stay text; ``Date_Mscan``
      ("YYYY/MM/DD HH:MM:SS.fff", UTC) becomes a tz-aware UTC timestamp; every other VNF column
      becomes float64 (units as in VNF: K, MW, m2, km2 for Area_Pixel, degrees, W m-2 sr-1 um-1
      for Rad_M*).
    - Empty cells and the fill value 999999 become NaN (NaT for the time).
    - Raises ValueError naming the missing columns, or the line, column and value of a cell that
      is not a number / not a timestamp.
    """
    lines = text.lstrip("\ufeff").splitlines()
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ValueError("VNF CSV is empty: expected a header line with columns " + ",".join(VNF_COLUMNS)) from None
    missing = [c for c in VNF_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"VNF CSV is missing columns: {missing} (header was: {header})")
    columns = list(VNF_COLUMNS) + [h for h in header if h not in VNF_COLUMNS]
    pos = {h: i for i, h in enumerate(header)}

    records: list[list[str]] = []
    line_numbers: list[int] = []
    for cells in reader:
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise ValueError(
                f"VNF CSV line {reader.line_num}: {len(cells)} fields, the header has {len(header)}"
            )
        records.append([cells[pos[c]].strip() for c in columns])
        line_numbers.append(reader.line_num)

    return _vnf_frame(columns, records, line_numbers)


def _vnf_frame(columns: list[str], records: list[list[str]], line_numbers: list[int], *,
               fast: bool = True) -> pd.DataFrame:
    """``parse_vnf_csv``'s frame of the stripped cells ``records`` (one list per data line, in
    ``columns`` order). ``fast``: when every numeric cell converts, build the frame from arrays in
    one step (the per-column path below gives the very same frame, a few times slower, and names
    the line and column of a bad cell)."""
    fill = float(VNF_FILL_VALUE)
    numeric = [c for c in columns if c in VNF_COLUMNS and c not in VNF_TEXT_COLUMNS and c != VNF_TIME_COLUMN]
    data: dict[str, object] = {}
    if records:
        # fast path: all numeric cells at once (a 2-D string array -> float64); on a bad cell fall
        # back to the per-column conversion below, which names its line and column
        idx = [columns.index(c) for c in numeric]
        cells = np.array(records, dtype=object)[:, idx]
        try:
            block = np.where(cells == "", "nan", cells).astype(np.float64)
        except ValueError:
            block = None
    else:
        block = np.zeros((0, len(numeric)))
    if fast and records and block is not None:
        table = np.array(records, dtype=object)
        for i, col in enumerate(columns):
            if col in VNF_TEXT_COLUMNS or col not in VNF_COLUMNS:
                data[col] = pd.array(table[:, i], dtype="string")
            elif col == VNF_TIME_COLUMN:
                data[col] = _parse_times(pd.Series(table[:, i], dtype=object), line_numbers)
            else:
                numbers = block[:, numeric.index(col)]
                data[col] = np.where(numbers == fill, np.nan, numbers)
        return pd.DataFrame(data, index=pd.RangeIndex(len(records)), columns=columns)
    raw = pd.DataFrame(records, columns=columns, dtype=object)
    for col in columns:
        values = raw[col] if len(raw) else pd.Series([], dtype=object)
        if col in VNF_TEXT_COLUMNS or col not in VNF_COLUMNS:
            data[col] = values.astype("string")
            continue
        if col == VNF_TIME_COLUMN:
            data[col] = _parse_times(values, line_numbers)
            continue
        if block is not None:
            numbers = block[:, numeric.index(col)]
            data[col] = pd.Series(np.where(numbers == fill, np.nan, numbers), index=raw.index, dtype="float64")
            continue
        numbers = pd.to_numeric(values.replace("", np.nan), errors="coerce").astype("float64")
        bad = numbers.isna() & (values != "")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValueError(
                f"VNF CSV line {line_numbers[i]}, column {col}: {values.iloc[i]!r} is not a number"
            )
        data[col] = numbers.mask(numbers == fill)
    return pd.DataFrame(data, index=pd.RangeIndex(len(raw)), columns=columns)


def _parse_times(values: pd.Series, line_numbers: list[int]) -> pd.Series:
    times = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    todo = values != ""
    for fmt in VNF_TIME_FORMATS:
        if not todo.any():
            break
        parsed = pd.to_datetime(values[todo], format=fmt, utc=True, errors="coerce")
        times[parsed.index] = parsed.where(parsed.notna(), times[parsed.index])
        todo = todo & times.isna()
    if todo.any():
        i = int(np.flatnonzero(todo.to_numpy())[0])
        raise ValueError(
            f"VNF CSV line {line_numbers[i]}, column {VNF_TIME_COLUMN}: {values.iloc[i]!r} is not a "
            "'YYYY/MM/DD HH:MM:SS.fff' timestamp"
        )
    return times


# Optional extra column naming where a row comes from: absent or "vnf" = a VIIRS Nightfire row;
# "firms:<SOURCE>" = a NASA FIRMS active-fire row converted to this schema (sources.firms), which
# has no Planck fit (Temp_BB, Area_BB, ESF_BB are the fill value) and RH = FIRMS FRP (MW).
VNF_ORIGIN_COLUMN = "FW_Origin"


def _from_firms(df: pd.DataFrame) -> pd.Series:
    if VNF_ORIGIN_COLUMN not in df.columns:
        return pd.Series(False, index=df.index)
    return df[VNF_ORIGIN_COLUMN].astype("string").fillna("").str.startswith("firms").astype(bool)


def flare_like(df: pd.DataFrame, min_temp_k: float = VIIRS_FLARE_MIN_TEMP_K) -> pd.DataFrame:
    """Rows that look like gas flares: ``Temp_BB >= min_temp_k`` (K) and a finite ``RH`` (MW).

    Flares burn at ~1600-2000 K, biomass fires at ~800-1200 K (Elvidge et al. 2013; the 1200 K
    cut as in Zhizhin et al. 2021). Returns a copy; idempotent.

    FIRMS rows (``FW_Origin`` = ``firms:...``) have no temperature, so the cut cannot apply: they
    were filtered when converted (night only, confidence, static/offshore type where given; see
    ``ingest.sources.firms``) and pass here with a finite RH.
    """
    temp = pd.to_numeric(df["Temp_BB"], errors="coerce")
    rh = pd.to_numeric(df["RH"], errors="coerce")
    keep = ((temp >= min_temp_k) | _from_firms(df)) & np.isfinite(rh)
    return df.loc[keep].copy()


def vnf_quality_ok(df: pd.DataFrame, qf_fit_exclude=(), qf_detect_exclude=()) -> pd.Series:
    """Boolean mask of rows usable at all: a position and a scan time (not fill values), and
    ``QF_Fit`` / ``QF_Detect`` not in the excluded values (configuration: domain.md gives no flag
    table, so nothing is excluded by default). A failed Planck fit shows as fill values in
    ``Temp_BB`` / ``RH``, which ``flare_like`` rejects."""
    lat = pd.to_numeric(df["Lat_GMTCO"], errors="coerce")
    lon = pd.to_numeric(df["Lon_GMTCO"], errors="coerce")
    ok = lat.between(-90.0, 90.0) & lon.between(-180.0, 180.0) & df[VNF_TIME_COLUMN].notna()
    if qf_fit_exclude:
        ok &= ~pd.to_numeric(df["QF_Fit"], errors="coerce").isin([float(v) for v in qf_fit_exclude])
    if qf_detect_exclude:
        ok &= ~pd.to_numeric(df["QF_Detect"], errors="coerce").isin([float(v) for v in qf_detect_exclude])
    return ok.fillna(False).astype(bool)


def in_bbox(df: pd.DataFrame, bbox: tuple[float, float, float, float]) -> pd.Series:
    """Mask of rows inside (west, south, east, north) degrees (edges included)."""
    west, south, east, north = bbox
    lat = pd.to_numeric(df["Lat_GMTCO"], errors="coerce")
    lon = pd.to_numeric(df["Lon_GMTCO"], errors="coerce")
    return (lat.between(south, north) & lon.between(west, east)).fillna(False).astype(bool)


def in_time_window(df: pd.DataFrame, start, end) -> pd.Series:
    """Mask of rows whose ``Date_Mscan`` lies in [start, end) (tz-aware or UTC-naive datetimes)."""
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
    t = df[VNF_TIME_COLUMN]
    return ((t >= start) & (t < end)).fillna(False).astype(bool)


def select_vnf_rows(text: str, mask) -> str:
    """The VNF CSV ``text`` with only the data rows where ``mask`` is true (in the order
    ``parse_vnf_csv`` numbers them), cells copied unchanged; the header is kept."""
    keep = np.asarray(mask, dtype=bool)
    lines = text.lstrip("\ufeff").splitlines()
    reader = csv.reader(lines)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    try:
        writer.writerow(next(reader))
    except StopIteration:
        return ""
    i = 0
    for cells in reader:
        if not cells or all(not c.strip() for c in cells):
            continue
        if i >= len(keep):
            raise ValueError(f"mask has {len(keep)} rows, the CSV has more")
        if keep[i]:
            writer.writerow(cells)
        i += 1
    if i != len(keep):
        raise ValueError(f"mask has {len(keep)} rows, the CSV has {i}")
    return out.getvalue()


def vnf_csv_from_records(records, extra_columns=()) -> str:
    """VNF-schema CSV text from dicts (missing cells and None/NaN become the fill value
    999999; ``extra_columns`` are appended after ``VNF_COLUMNS``, empty when missing)."""
    columns = list(VNF_COLUMNS) + [c for c in extra_columns if c not in VNF_COLUMNS]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for rec in records:
        row = []
        for c in columns:
            v = rec.get(c)
            missing = v is None or (isinstance(v, float) and not math.isfinite(v))
            if c in VNF_COLUMNS and c not in VNF_TEXT_COLUMNS and c != VNF_TIME_COLUMN:
                row.append(str(VNF_FILL_VALUE) if missing else str(v))
            else:
                row.append("" if missing else str(v))
        writer.writerow(row)
    return out.getvalue()


def night_window_utc(lon: float, day) -> tuple:
    """[start, end) in UTC of the night after ``day``'s daytime pass at longitude ``lon`` (deg):
    local mean solar time 18:00 on ``day`` to 06:00 on ``day + 1``. The VIIRS night overpasses
    (S-NPP, NOAA-20, NOAA-21) are around 01:30 LMST, the simulator's convention too."""
    from datetime import datetime, timedelta

    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    centre = midnight - timedelta(hours=float(lon) / 15.0)
    return centre - timedelta(hours=6), centre + timedelta(hours=6)


def utc_dates(start, end) -> list:
    """The UTC calendar dates that [start, end) touches."""
    from datetime import timedelta

    last = (end - timedelta(microseconds=1)).date()
    d, out = start.date(), []
    while d <= last:
        out.append(d)
        d += timedelta(days=1)
    return out


def haversine_m(lat1, lon1, lat2, lon2):
    """Great-circle distance (m) on a sphere of radius ``EARTH_MEAN_RADIUS_M``; degrees in."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    a = np.sin(dp / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2.0) ** 2
    return 2.0 * EARTH_MEAN_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def match_viirs(lat: float, lon: float, df: pd.DataFrame, radius_m: float = VIIRS_MATCH_RADIUS_M) -> pd.DataFrame:
    """VNF rows within ``radius_m`` (m) of (``lat``, ``lon``) in degrees, nearest first.

    Adds a ``distance_m`` column (haversine, m). Rows with NaN coordinates never match. Returns a
    copy (possibly empty, with the same columns plus ``distance_m``).
    """
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError(f"match_viirs needs a finite lat/lon, got ({lat}, {lon})")
    out = df.copy()
    lats = pd.to_numeric(out["Lat_GMTCO"], errors="coerce").to_numpy(dtype=np.float64)
    lons = pd.to_numeric(out["Lon_GMTCO"], errors="coerce").to_numpy(dtype=np.float64)
    out["distance_m"] = haversine_m(lat, lon, lats, lons) if len(out) else np.array([], dtype=np.float64)
    out = out.loc[out["distance_m"] <= radius_m]
    return out.sort_values("distance_m", kind="mergesort")


class VnfPoints:
    """The rows of a VNF frame prepared once for many ``match_viirs`` queries.

    ``match_viirs`` copies the frame and converts its positions on every call; here that is done
    once, the same way (a copy, ``pd.to_numeric`` of ``Lat_GMTCO`` / ``Lon_GMTCO``), so each query is
    one ``haversine_m`` over the very same arrays and gives the same rows, order and distances.
    ``frame``: the rows (positions index into it); ``min_temp_k``: None (the rows as given) or the
    ``flare_like`` cut applied to them first, as ``features.viirs.viirs_features`` and
    ``viirs_nights_seen`` apply it.
    """

    def __init__(self, df: pd.DataFrame, min_temp_k: float | None = None):
        self.frame = df if min_temp_k is None else flare_like(df, min_temp_k)
        # match_viirs's positions: the same values, and contiguous as there (a frame's float column)
        self.lats = np.ascontiguousarray(pd.to_numeric(self.frame["Lat_GMTCO"], errors="coerce"), dtype=np.float64)
        self.lons = np.ascontiguousarray(pd.to_numeric(self.frame["Lon_GMTCO"], errors="coerce"), dtype=np.float64)

    def __len__(self) -> int:
        return len(self.lats)

    def match(self, lat: float, lon: float, radius_m: float = VIIRS_MATCH_RADIUS_M) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``frame``, distances in m) of the rows ``match_viirs`` returns, nearest first."""
        if not (math.isfinite(lat) and math.isfinite(lon)):
            raise ValueError(f"match_viirs needs a finite lat/lon, got ({lat}, {lon})")
        if not len(self.lats):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        d = haversine_m(lat, lon, self.lats, self.lons)
        idx = np.flatnonzero(d <= radius_m)
        idx = idx[np.argsort(d[idx], kind="mergesort")]
        return idx, d[idx]

    def any_within(self, lat: float, lon: float, radius_m: float = VIIRS_MATCH_RADIUS_M) -> bool:
        """Whether ``match_viirs`` would return any row."""
        return bool(len(self.match(lat, lon, radius_m)[0]))


NIGHT_CACHE_SIZE = 512  # parsed nights kept per process (a few tens of kB each)


class _Night:
    __slots__ = ("frame", "min_temp_k", "points", "__weakref__")

    def __init__(self, frame: pd.DataFrame, min_temp_k: float):
        self.frame, self.min_temp_k = frame, min_temp_k  # frame = flare_like(parsed, min_temp_k)
        self.points: dict[float | None, VnfPoints] = {}


class NightCache:
    """Flare-like VNF rows of night files, parsed once per process and shared.

    ``flares(body, min_temp_k)`` = ``flare_like(parse_vnf_csv(body.decode()), min_temp_k)``, kept by
    the file's content (a BLAKE2 digest of ``body``) and the cut, so a night read again for the next
    day's ``viirs_nights_seen`` window is not parsed again, and a replaced object is (its bytes
    differ). A file that does not parse raises (ValueError) every time and is not kept. The frames
    returned are shared between callers: read them, never modify them. ``points(frame, min_temp_k)``:
    the ``VnfPoints`` of a frame, kept with it when the frame came from this cache. Thread-safe;
    least recently used nights are dropped beyond ``size``.
    """

    def __init__(self, size: int = NIGHT_CACHE_SIZE):
        self.size = size
        self.enabled = True  # False: parse every time, keep nothing (the reference the tests compare with)
        self.hits = self.misses = 0
        self._nights: OrderedDict[tuple, _Night] = OrderedDict()
        self._by_frame: weakref.WeakValueDictionary[int, _Night] = weakref.WeakValueDictionary()
        self._lock = threading.Lock()

    def flares(self, body: bytes, min_temp_k: float) -> pd.DataFrame:
        if not self.enabled:
            return flare_like(parse_vnf_csv(body.decode()), min_temp_k)
        key = (hashlib.blake2b(body, digest_size=20).digest(), float(min_temp_k))
        with self._lock:
            night = self._nights.get(key)
            if night is not None:
                self._nights.move_to_end(key)
                self.hits += 1
                return night.frame
        frame = flare_like(parse_vnf_csv(body.decode()), min_temp_k)
        with self._lock:
            self.misses += 1
            night = self._nights.setdefault(key, _Night(frame, float(min_temp_k)))
            self._by_frame[id(night.frame)] = night
            while len(self._nights) > self.size:
                self._nights.popitem(last=False)
        return night.frame

    def points(self, frame: pd.DataFrame, min_temp_k: float | None = None) -> VnfPoints:
        with self._lock:
            night = self._by_frame.get(id(frame))
        if night is None or night.frame is not frame:  # not one of ours: prepared for this call only
            return VnfPoints(frame, min_temp_k)
        key = None if min_temp_k is None else float(min_temp_k)
        if key == night.min_temp_k:  # the frame is flare_like with this cut already (idempotent): same rows
            key = None
        pts = night.points.get(key)
        if pts is None:
            pts = night.points.setdefault(key, VnfPoints(frame, key))
        return pts

    def clear(self) -> None:
        with self._lock:
            self._nights.clear()
            self._by_frame.clear()
            self.hits = self.misses = 0

    def _after_fork(self) -> None:  # a forked child gets a fresh lock (the parent's may be held)
        self._lock = threading.Lock()


NIGHTS = NightCache()  # the process's cache (``process.site_day`` fills it, ``estimate.site_day`` reads it)
os.register_at_fork(after_in_child=NIGHTS._after_fork)
