"""Calibration measurements: metered or state-reported flared volumes per site and period.

A calibration measurement is the total gas flared at one site over an inclusive period
``[period_start, period_end]``, by one meter, well or lease, normalised to thousand standard m3
(``volume_kscm``). The regressor aligns them with detections through the view
``v_calibration_site_periods`` (migration ``sql/004_calibration.sql``).

Two CSV formats are accepted, recognised from the header (``detect_format``):

* **native**: ``site_id,period_start,period_end,volume,unit,source[,source_key][,operator]``;
  ``volume`` in ``unit`` (``UNITS``; a ``/d`` suffix makes it a daily rate multiplied by the
  period's days).
* **reported**: the state-reported monthly volumes of ``tests/fixtures/reported-flares/``
  (``run,state,key_type,key,month,operator,flared``; ``flared`` in Mcf for the whole month),
  mapped to sites through ``calibration_site_map`` (``source`` = state code, ``key_type``, ``key``).

Validation (``validate_calibration``) splits the rows into accepted measurements and rejected
rows, each with a specific reason; rejected rows go to ``calibration_quarantine`` and nothing is
dropped: every data line of a file is either part of an accepted measurement or quarantined.
``import_calibration`` writes both in one transaction and is idempotent (upsert on the natural key
``(source, source_key, site_id, period_start, period_end)``; an unchanged row is not rewritten).

Pure functions first (formats, units, validation, the simulated meter), then thin DB and S3
wrappers. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import io
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .config import MCF_TO_M3

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------
# Cubic metres per unit (lower case). Standard and actual cubic metres are not distinguished:
# volumes are taken as reported at standard conditions (the 15 C vs 60 F reference temperatures
# differ by ~0.2 %, below any meter's accuracy).
UNITS: dict[str, float] = {
    "m3": 1.0,
    "scm": 1.0,
    "sm3": 1.0,
    "kscm": 1e3,  # thousand standard m3: the project's unit
    "e3m3": 1e3,  # thousand m3 (Canadian regulators' notation)
    "mmscm": 1e6,  # million standard m3
    "e6m3": 1e6,
    "bcm": 1e9,  # billion m3
    "scf": MCF_TO_M3 / 1e3,  # one cubic foot
    "mcf": MCF_TO_M3,  # thousand cubic feet (US "M" = 1000): 28.316846592 m3
    "mscf": MCF_TO_M3,
    "mmcf": MCF_TO_M3 * 1e3,  # million cubic feet
    "mmscf": MCF_TO_M3 * 1e3,
    "bcf": MCF_TO_M3 * 1e6,  # billion cubic feet
}
# Units whose prefix means a thousand in one convention and a million in another: refused
# rather than guessed (a factor 1000 error would pass every other check).
AMBIGUOUS_UNITS = {
    "mscm": "use kscm (thousand) or mmscm (million)",
    "mcm": "use kscm (thousand) or mmscm (million)",
    "mm3": "use mmscm (million m3)",
}
RATE_SUFFIXES = ("/d", "/day")

# Plausibility limit on a site's mean flared rate over a period. PROJECT ASSUMPTION: 20,000
# thousand m3/day is 7.3 bcm/yr at a single site, about 5 % of the world's flaring in 2024
# (151 bcm, World Bank tracker, domain.md); a larger value is a unit or typing error.
MAX_SITE_RATE_KSCM_D = 20_000.0


class UnitError(ValueError):
    """A unit that is missing, unknown or ambiguous; ``kind`` is the quarantine category."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def parse_unit(unit: str) -> tuple[float, bool]:
    """``(m3 per unit, is a daily rate)`` for a unit string (case and spaces ignored).

    ``'Mcf'`` -> ``(28.316846592, False)``; ``'kscm/d'`` -> ``(1000.0, True)``. Raises
    ``UnitError`` for a missing, unknown or ambiguous unit.
    """
    u = "".join((unit or "").split()).lower()
    if not u:
        raise UnitError("missing unit", "missing unit")
    per_day = False
    for suffix in RATE_SUFFIXES:
        if u.endswith(suffix):
            u, per_day = u[: -len(suffix)], True
            break
    if u in AMBIGUOUS_UNITS:
        raise UnitError("ambiguous unit", f"ambiguous unit {unit.strip()!r}: {AMBIGUOUS_UNITS[u]}")
    if u not in UNITS:
        raise UnitError("unknown unit", f"unknown unit {unit.strip()!r}")
    return UNITS[u], per_day


def to_kscm(volume: float, unit: str, days: int = 1) -> float:
    """``volume`` in ``unit`` over a period of ``days`` days -> total thousand standard m3.

    A daily-rate unit (``'mcf/d'``) is multiplied by ``days``; a volume unit is not.
    """
    m3, per_day = parse_unit(unit)
    return volume * m3 / 1e3 * (days if per_day else 1)


# --------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------
NATIVE_COLUMNS = ("site_id", "period_start", "period_end", "volume", "unit", "source")
NATIVE_OPTIONAL = ("source_key", "operator")
REPORTED_COLUMNS = ("state", "key_type", "key", "month", "flared")
REPORTED_OPTIONAL = ("run", "operator")
FORMATS = ("native", "reported")
REPORTED_UNIT = "Mcf"
# Measurement source for a reported state (the regulator the volumes were reported to).
REPORTED_SOURCES = {"ND": "NDIC", "NM": "NMOCD", "TX": "TXRRC"}


class CalibrationFileError(ValueError):
    """The file cannot be read as a calibration CSV at all (not text, no header, missing columns)."""


@dataclass(frozen=True)
class CsvTable:
    """A CSV file as read: lower-cased header and ``(row_number, raw)`` per data line.

    ``row_number`` is the line number counted from the header (1 = the first line after it);
    ``raw`` maps column -> cell text as read, extra cells under ``'_extra'``; ``n_fields`` is the
    number of cells the line had.
    """

    name: str
    header: tuple[str, ...]
    rows: tuple[tuple[int, dict, int], ...]


def decode_text(data: bytes | str, name: str) -> str:
    """File bytes -> text (UTF-8, a BOM removed); ``CalibrationFileError`` when not text."""
    if isinstance(data, str):
        text = data
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CalibrationFileError(f"{name}: not a UTF-8 CSV text file ({exc.reason} at byte {exc.start})") from exc
    if "\x00" in text:
        raise CalibrationFileError(f"{name}: not a CSV text file (binary content)")
    return text.lstrip("\ufeff")


def read_table(data: bytes | str, name: str) -> CsvTable:
    """Parse CSV text into a ``CsvTable``; blank lines are skipped (their numbers still count)."""
    text = decode_text(data, name)
    reader = csv.reader(io.StringIO(text, newline=""))
    header: tuple[str, ...] | None = None
    header_line = 0
    rows = []
    last_line = 0
    try:
        for cells in reader:
            start_line, last_line = last_line + 1, reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = tuple(c.strip().lower() for c in cells)
                header_line = start_line
                dup = sorted({h for h in header if header.count(h) > 1})
                if dup:
                    raise CalibrationFileError(f"{name}: duplicate column names in the header: {dup}")
                continue
            raw = {h: c for h, c in zip(header, cells)}
            if len(cells) > len(header):
                raw["_extra"] = list(cells[len(header):])
            rows.append((start_line - header_line, raw, len(cells)))
    except csv.Error as exc:
        raise CalibrationFileError(f"{name}: not a readable CSV file (line {reader.line_num}: {exc})") from exc
    if header is None:
        raise CalibrationFileError(f"{name}: empty file, expected a CSV header")
    return CsvTable(name=name, header=header, rows=tuple(rows))


def detect_format(header: Sequence[str], fmt: str = "auto", name: str = "file") -> str:
    """``'native'`` or ``'reported'`` from the header (or check the one asked for).

    Raises ``CalibrationFileError`` naming the file and the missing required columns.
    """
    have = set(header)
    required = {"native": NATIVE_COLUMNS, "reported": REPORTED_COLUMNS}
    if fmt not in ("auto", *FORMATS):
        raise ValueError(f"format must be 'auto', 'native' or 'reported', got {fmt!r}")
    if fmt == "auto":
        for candidate in FORMATS:
            if set(required[candidate]) <= have:
                return candidate
        # report against the format the header resembles most (ties: native)
        fmt = max(FORMATS, key=lambda f: (len(set(required[f]) & have), f == "native"))
        hint = (f" (header: {','.join(header)}; native needs {','.join(NATIVE_COLUMNS)};"
                f" reported needs {','.join(REPORTED_COLUMNS)})")
    else:
        hint = f" (header: {','.join(header)})"
    missing = [c for c in required[fmt] if c not in have]
    if missing:
        raise CalibrationFileError(f"{name}: missing required columns {missing} for the {fmt} calibration format{hint}")
    return fmt


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------
Series = tuple[str, str, str]  # (site_id, source, source_key)
Period = tuple[date, date]


@dataclass(frozen=True)
class Measurement:
    """One accepted measurement; ``rows`` are the data lines it came from (several when a
    reported well-month is listed in parts)."""

    site_id: str
    period_start: date
    period_end: date
    volume_kscm: float
    volume_reported: float
    unit_reported: str
    source: str
    source_key: str = ""
    operator: str | None = None
    rows: tuple[int, ...] = ()

    @property
    def days(self) -> int:
        return (self.period_end - self.period_start).days + 1

    @property
    def series(self) -> Series:
        return (self.site_id, self.source, self.source_key)

    @property
    def natural_key(self) -> tuple[str, str, str, date, date]:
        return (self.source, self.source_key, self.site_id, self.period_start, self.period_end)

    @property
    def volume_kscm_d(self) -> float:
        return self.volume_kscm / self.days


@dataclass(frozen=True)
class Rejection:
    """A quarantined data line: ``kind`` is the reason's category, ``reason`` the specific text."""

    row_number: int
    raw: dict
    kind: str
    reason: str


@dataclass
class ValidationResult:
    """What a file yields: accepted measurements and rejected lines (every line is in one of them)."""

    name: str
    fmt: str
    n_rows: int
    accepted: list[Measurement] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def accepted_rows(self) -> int:
        return sum(len(m.rows) for m in self.accepted)

    def by_kind(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rejected:
            out[r.kind] = out.get(r.kind, 0) + 1
        return dict(sorted(out.items()))


class _Reject(Exception):
    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind, self.reason = kind, reason


def _fmt_num(v: float) -> str:
    return repr(float(v))


def _cell(raw: dict, col: str) -> str:
    return (raw.get(col) or "").strip()


def _required(raw: dict, col: str) -> str:
    value = _cell(raw, col)
    if not value:
        raise _Reject(f"missing {col}", f"missing {col}")
    return value


def _parse_date(raw: dict, col: str) -> date:
    text = _required(raw, col)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _Reject("unparseable date", f"unparseable {col} {text!r} (expected YYYY-MM-DD)") from None


def _parse_volume(raw: dict, col: str) -> float:
    text = _cell(raw, col)
    if not text:
        raise _Reject("missing volume", "missing volume")
    try:
        v = float(text)
    except ValueError:
        raise _Reject("unparseable volume", f"unparseable volume {text!r}") from None
    if not math.isfinite(v):
        raise _Reject("non-finite volume", f"non-finite volume {text}")
    if v < 0:
        raise _Reject("negative volume", f"negative volume {_fmt_num(v)}")
    return v


def _check_fields(raw: dict, n_fields: int, n_header: int) -> None:
    if n_fields != n_header:
        raise _Reject("wrong number of fields", f"{n_fields} fields, the header has {n_header}")


def _check_site(site_id: str, site_ids: Iterable[str]) -> None:
    if site_id not in site_ids:
        raise _Reject("unknown site", f"unknown site {site_id!r}")


def _check_rate(volume_kscm: float, start: date, end: date) -> None:
    rate = volume_kscm / ((end - start).days + 1)
    if rate > MAX_SITE_RATE_KSCM_D:
        raise _Reject("implausible volume", f"volume {rate:.6g} kscm/day above the {MAX_SITE_RATE_KSCM_D:,.0f}"
                      " kscm/day plausibility limit")


def _native_measurement(row_number: int, raw: dict, n_fields: int, n_header: int,
                        site_ids: Iterable[str]) -> Measurement:
    _check_fields(raw, n_fields, n_header)
    site_id = _required(raw, "site_id")
    source = _required(raw, "source")
    start = _parse_date(raw, "period_start")
    end = _parse_date(raw, "period_end")
    if end < start:
        raise _Reject("period end before start", f"period_end {end} before period_start {start}")
    volume = _parse_volume(raw, "volume")
    unit = _cell(raw, "unit")
    try:
        kscm = to_kscm(volume, unit, (end - start).days + 1)
    except UnitError as exc:
        raise _Reject(exc.kind, exc.reason) from None
    _check_site(site_id, site_ids)
    _check_rate(kscm, start, end)
    return Measurement(
        site_id=site_id, period_start=start, period_end=end, volume_kscm=kscm, volume_reported=volume,
        unit_reported=unit, source=source, source_key=_cell(raw, "source_key"),
        operator=_cell(raw, "operator") or None, rows=(row_number,),
    )


def _month_end(month: date) -> date:
    nxt = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def reported_source(state: str) -> str:
    """Measurement ``source`` for a reported state code (the regulator; the code when unknown)."""
    return REPORTED_SOURCES.get(state.upper(), state)


def _reported(table: CsvTable, site_ids, site_map) -> tuple[list[Measurement], list[Rejection]]:
    """Reported format: one measurement per (state, key_type, key, month).

    A well-month listed on several lines with different values is taken as parts of that month
    (NMOCD reports per completion, so one API can appear several times a month) and summed; a
    line identical to an earlier one in every field is a duplicate. If any part of a well-month
    is rejected, the whole well-month is (a partial sum would understate it).
    """
    n_header = len(table.header)
    rejected: list[Rejection] = []
    groups: dict[tuple, list[tuple[int, dict, float]]] = {}
    volume_failures: dict[tuple, tuple[int, str]] = {}
    first_seen: dict[tuple, int] = {}
    for row_number, raw, n_fields in table.rows:
        ident = None
        try:
            _check_fields(raw, n_fields, n_header)
            state = _required(raw, "state")
            key_type = _required(raw, "key_type")
            key = _required(raw, "key")
            month = _parse_date(raw, "month")
            if month.day != 1:
                raise _Reject("month not first day", f"month {month} is not the first day of a month")
            ident = (state, key_type, key, month)
            volume = _parse_volume(raw, "flared")
            site_id = site_map.get((state, key_type, key))
            if site_id is None:
                raise _Reject("no site mapping", f"no site mapping for {state} {key_type} {key}")
            _check_site(site_id, site_ids)
            content = tuple(sorted((k, str(v)) for k, v in raw.items()))
            if content in first_seen:
                raise _Reject("duplicate", f"duplicate of row {first_seen[content]}")
            first_seen[content] = row_number
        except _Reject as exc:
            rejected.append(Rejection(row_number, raw, exc.kind, exc.reason))
            if ident is not None and exc.kind in ("missing volume", "unparseable volume", "non-finite volume",
                                                  "negative volume"):
                volume_failures.setdefault(ident, (row_number, exc.reason))
            continue
        groups.setdefault(ident, []).append((row_number, raw, volume))

    accepted: list[Measurement] = []
    for ident, parts in groups.items():
        state, key_type, key, month = ident
        try:
            if ident in volume_failures:
                bad_row, why = volume_failures[ident]
                raise _Reject("incomplete well-month",
                              f"row {bad_row} of the same {state} {key_type} {key} month {month:%Y-%m} was rejected ({why})")
            total = sum(v for _, _, v in parts)
            kscm = total * MCF_TO_M3 / 1e3
            end = _month_end(month)
            _check_rate(kscm, month, end)
        except _Reject as exc:
            rejected.extend(Rejection(n, raw, exc.kind, exc.reason) for n, raw, _ in parts)
            continue
        operator = next((_cell(raw, "operator") for _, raw, _ in parts if _cell(raw, "operator")), None)
        accepted.append(Measurement(
            site_id=site_map[(state, key_type, key)], period_start=month, period_end=end, volume_kscm=kscm,
            volume_reported=total, unit_reported=REPORTED_UNIT, source=reported_source(state),
            source_key=f"{key_type}:{key}", operator=operator, rows=tuple(n for n, _, _ in parts),
        ))
    return accepted, rejected


def _overlapping(periods: list[Period], start: date, end: date) -> Period | None:
    """The period in ``periods`` (sorted, pairwise disjoint) that overlaps [start, end] without
    being identical to it, or None."""
    i = bisect.bisect_right(periods, (end, date.max))
    if i == 0:
        return None
    p = periods[i - 1]  # the latest-starting period that starts on or before ``end``
    if p == (start, end):
        return None  # the same period again: an update, not an overlap
    return p if p[1] >= start else None


def _dedupe_and_overlaps(accepted: list[Measurement], rows_by_number: dict[int, dict]
                         ) -> tuple[list[Measurement], list[Rejection]]:
    """In-file checks, in file order: later copies of a natural key and periods that overlap an
    earlier accepted period of the same (site, source, source_key) are rejected."""
    kept: list[Measurement] = []
    rejected: list[Rejection] = []
    seen: dict[tuple, int] = {}
    periods: dict[Series, list[Period]] = {}
    first_row: dict[tuple[Series, Period], int] = {}
    for m in sorted(accepted, key=lambda m: m.rows[0]):
        try:
            if m.natural_key in seen:
                raise _Reject("duplicate", f"duplicate of row {seen[m.natural_key]}")
            ps = periods.setdefault(m.series, [])
            hit = _overlapping(ps, m.period_start, m.period_end)
            if hit is not None:
                raise _Reject("overlapping period",
                              f"overlaps {hit[0]}..{hit[1]} (row {first_row[(m.series, hit)]})")
        except _Reject as exc:
            rejected.extend(Rejection(n, rows_by_number[n], exc.kind, exc.reason) for n in m.rows)
            continue
        seen[m.natural_key] = m.rows[0]
        bisect.insort(ps, (m.period_start, m.period_end))
        first_row[(m.series, (m.period_start, m.period_end))] = m.rows[0]
        kept.append(m)
    return kept, rejected


def check_stored_overlaps(result: ValidationResult, stored_periods: Mapping[Series, Iterable[Period]],
                          rows_by_number: dict[int, dict]) -> ValidationResult:
    """Reject accepted measurements whose period overlaps a different stored period of the same
    (site, source, source_key); the identical stored period is an idempotent update."""
    index = {s: sorted(ps) for s, ps in stored_periods.items()}
    kept, rejected = [], list(result.rejected)
    for m in result.accepted:
        hit = _overlapping(index.get(m.series, []), m.period_start, m.period_end)
        if hit is None:
            kept.append(m)
        else:
            reason = f"overlaps stored period {hit[0]}..{hit[1]}"
            rejected.extend(Rejection(n, rows_by_number[n], "overlaps stored period", reason) for n in m.rows)
    return ValidationResult(result.name, result.fmt, result.n_rows, kept, sorted(rejected, key=lambda r: r.row_number))


def validate_calibration(
    data: bytes | str,
    *,
    name: str = "file",
    fmt: str = "auto",
    site_ids: Iterable[str],
    site_map: Mapping[tuple[str, str, str], str] | None = None,
    stored_periods: Mapping[Series, Iterable[Period]] | None = None,
) -> ValidationResult:
    """Validate a calibration CSV (pure: no database).

    ``site_ids``: the known sites; ``site_map``: ``{(state, key_type, key): site_id}`` for the
    reported format; ``stored_periods``: ``{(site_id, source, source_key): [(start, end), ...]}``
    already in the table (for the overlap check; None skips it). Raises ``CalibrationFileError``
    when the file is not a readable calibration CSV; bad rows are returned as ``rejected``.
    """
    table = read_table(data, name)
    fmt = detect_format(table.header, fmt, name)
    site_ids = set(site_ids)
    rows_by_number = {n: raw for n, raw, _ in table.rows}
    if fmt == "native":
        candidates, rejected = [], []
        for row_number, raw, n_fields in table.rows:
            try:
                candidates.append(_native_measurement(row_number, raw, n_fields, len(table.header), site_ids))
            except _Reject as exc:
                rejected.append(Rejection(row_number, raw, exc.kind, exc.reason))
    else:
        candidates, rejected = _reported(table, site_ids, site_map or {})
    kept, more = _dedupe_and_overlaps(candidates, rows_by_number)
    result = ValidationResult(name, fmt, len(table.rows), kept, sorted(rejected + more, key=lambda r: r.row_number))
    if stored_periods is not None:
        result = check_stored_overlaps(result, stored_periods, rows_by_number)
    return result


def content_hash(data: bytes | str) -> str:
    """The import batch id of a file: SHA-256 of its bytes (text is hashed as UTF-8)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


# --------------------------------------------------------------------------------------------
# Simulated meter (the demo's calibration data)
# --------------------------------------------------------------------------------------------
SIMULATED_SOURCE = "simulated-meter"
NATIVE_HEADER = (*NATIVE_COLUMNS, *NATIVE_OPTIONAL)
METER_GAP_PROBABILITY = 0.05  # simulator assumption: a meter misses ~1 day in 20


def _seeded(*parts: object):
    import numpy as np

    key = "|".join(str(p) for p in ("flarewatch-calibration", *parts))
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "little"))


def _meter_rows(site, start: date, end: date, *, noise_sd: float, seed_key: str, gap_probability: float,
                bad_rows: bool) -> list[list[str]]:
    from .simulator import site_day_flows

    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    meter = f"{site.site_id}-meter"
    rows: list[list[str]] = []
    readings: list[tuple[date, float]] = []
    day = start
    while day <= end:
        # one generator per site-day: the same day reads the same in any date range
        rng = _seeded(seed_key, "reading", site.site_id, day.isoformat())
        gap, noise = rng.random() < gap_probability, float(rng.lognormal(0.0, noise_sd))
        if not gap:
            value = round(sum(site_day_flows(site, day).values()) * noise, 3)
            readings.append((day, value))
            rows.append([site.site_id, day.isoformat(), day.isoformat(), f"{value:.3f}", "kscm",
                         SIMULATED_SOURCE, meter, site.operator])
        day += timedelta(days=1)
    if bad_rows and readings:
        # Deliberately bad rows, appended after the good ones so that the good ones are kept:
        # a negative value, an unknown unit, a duplicate and a period overlapping a reading.
        rng = _seeded(seed_key, "bad-rows", site.site_id, start.isoformat(), end.isoformat())
        pick = [readings[int(i)] for i in rng.integers(0, len(readings), size=4)]
        (d1, v1), (d2, v2), (d3, v3), (d4, v4) = pick
        rows.append([site.site_id, d1.isoformat(), d1.isoformat(), f"{-max(v1, 1.0):.3f}", "kscm",
                     SIMULATED_SOURCE, meter, site.operator])
        rows.append([site.site_id, d2.isoformat(), d2.isoformat(), f"{v2 * 6.29:.1f}", "bbl",
                     SIMULATED_SOURCE, meter, site.operator])
        rows.append([site.site_id, d3.isoformat(), d3.isoformat(), f"{v3:.3f}", "kscm",
                     SIMULATED_SOURCE, meter, site.operator])
        p0, p1 = (d4, d4 + timedelta(days=1)) if d4 < end else (d4 - timedelta(days=1), d4)
        rows.append([site.site_id, p0.isoformat(), p1.isoformat(), f"{2 * v4:.3f}", "kscm",
                     SIMULATED_SOURCE, meter, site.operator])
    return rows


def _native_csv(rows: Iterable[Sequence[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(NATIVE_HEADER)
    writer.writerows(rows)
    return buf.getvalue()


def simulated_meter_readings(
    site,
    start: date,
    end: date,
    *,
    noise_sd: float = 0.05,
    seed_key: str = "meter-v1",
    gap_probability: float = METER_GAP_PROBABILITY,
    bad_rows: bool = True,
) -> str:
    """A native-format calibration CSV of a simulated flow meter at ``site`` for ``start..end``.

    One row per day (period_start = period_end = the day, unit ``kscm``, source
    ``simulated-meter``, source_key ``<site_id>-meter``): the simulator's true site flow on that
    day (``simulator.site_day_flows`` summed over the stacks) times lognormal(0, ``noise_sd``)
    meter noise, rounded to 1 m3. Days drawn as gaps (probability ``gap_probability``) have no
    row. With ``bad_rows``, four deliberately bad rows follow the readings: a negative value, an
    unknown unit (``bbl``), a duplicate of a reading and a two-day period overlapping a reading.
    Deterministic in (``seed_key``, site, day) for the readings and in the date range for the
    bad rows. Simulator assumptions, not literature.
    """
    return _native_csv(_meter_rows(site, start, end, noise_sd=noise_sd, seed_key=seed_key,
                                   gap_probability=gap_probability, bad_rows=bad_rows))


def demo_calibration_key(start: date, end: date) -> str:
    return f"calibration/{SIMULATED_SOURCE}/{start.isoformat()}_{end.isoformat()}.csv"


def upload_demo_calibration(s3, settings, sites, start: date, end: date) -> str:
    """Write the simulated meter readings of ``sites`` for ``start..end`` to one native CSV in the
    raw bucket (``calibration/simulated-meter/<start>_<end>.csv``); returns its ``s3://`` URI.

    The calibration_import DAG's daily run (or a manual run with ``s3_key``) imports it.
    """
    from . import storage

    rows = [r for site in sites for r in _meter_rows(site, start, end, noise_sd=0.05, seed_key="meter-v1",
                                                     gap_probability=METER_GAP_PROBABILITY, bad_rows=True)]
    key = demo_calibration_key(start, end)
    storage.put_bytes(s3, settings.raw_bucket, key, _native_csv(rows).encode(), content_type="text/csv")
    return f"s3://{settings.raw_bucket}/{key}"


# --------------------------------------------------------------------------------------------
# Site mapping (reported wells / leases -> sites)
# --------------------------------------------------------------------------------------------
SITE_MAP_COLUMNS = ("source", "key_type", "key", "site_id", "notes")


def load_site_map(path: str | Path | None = None) -> list[dict]:
    """Rows of a site-map CSV (``SITE_MAP_COLUMNS``; '#' lines are comments); the packaged,
    illustrative ``data/calibration_site_map.csv`` when ``path`` is None."""
    if path is None:
        text = resources.files("flarewatch").joinpath("data/calibration_site_map.csv").read_text()
    else:
        text = Path(path).read_text()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(lines)
    missing = [c for c in SITE_MAP_COLUMNS[:4] if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"site map CSV is missing columns {missing}")
    return [{c: (row.get(c) or "").strip() for c in SITE_MAP_COLUMNS} for row in reader]


def seed_site_map(conn, rows: Iterable[Mapping]) -> int:
    """Upsert ``calibration_site_map`` rows (dicts with ``SITE_MAP_COLUMNS``); returns the count."""
    from . import db

    values = [(r["source"], r["key_type"], r["key"], r["site_id"], r.get("notes") or None) for r in rows]
    with db.transaction(conn) as cur:
        cur.executemany(
            "INSERT INTO calibration_site_map (source, key_type, key, site_id, notes) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (source, key_type, key) DO UPDATE SET site_id = EXCLUDED.site_id, notes = EXCLUDED.notes,"
            " updated_at = now()"
            " WHERE (calibration_site_map.site_id, calibration_site_map.notes)"
            " IS DISTINCT FROM (EXCLUDED.site_id, EXCLUDED.notes)",
            values,
        )
    return len(values)


def fetch_site_map(conn) -> dict[tuple[str, str, str], str]:
    with conn.cursor() as cur:
        cur.execute("SELECT source, key_type, key, site_id FROM calibration_site_map")
        out = {(s, t, k): site for s, t, k, site in cur.fetchall()}
    conn.commit()
    return out


# --------------------------------------------------------------------------------------------
# Database import
# --------------------------------------------------------------------------------------------
# Serialises imports (the overlap check reads what an import is about to write).
_IMPORT_LOCK_ID = 0x43616C6962

_UPSERT_MEASUREMENTS = """
INSERT INTO calibration_measurements (site_id, period_start, period_end, volume_kscm, volume_reported,
    unit_reported, source, source_key, operator, imported_from, import_batch)
VALUES %s
ON CONFLICT (source, source_key, site_id, period_start, period_end) DO UPDATE SET
    volume_kscm = EXCLUDED.volume_kscm, volume_reported = EXCLUDED.volume_reported,
    unit_reported = EXCLUDED.unit_reported, operator = EXCLUDED.operator,
    imported_from = EXCLUDED.imported_from, import_batch = EXCLUDED.import_batch, loaded_at = now()
WHERE (calibration_measurements.volume_kscm, calibration_measurements.volume_reported,
       calibration_measurements.unit_reported, calibration_measurements.operator)
   IS DISTINCT FROM (EXCLUDED.volume_kscm, EXCLUDED.volume_reported, EXCLUDED.unit_reported, EXCLUDED.operator)
RETURNING (xmax = 0) AS inserted
"""

_UPSERT_QUARANTINE = """
INSERT INTO calibration_quarantine (imported_from, import_batch, row_number, raw, kind, reason)
VALUES %s
ON CONFLICT (import_batch, row_number) DO UPDATE SET
    raw = EXCLUDED.raw, kind = EXCLUDED.kind, reason = EXCLUDED.reason, quarantined_at = now()
WHERE (calibration_quarantine.kind, calibration_quarantine.reason, calibration_quarantine.raw)
   IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.reason, EXCLUDED.raw)
"""


def _stored_periods(cur, series: set[Series]) -> dict[Series, list[Period]]:
    if not series:
        return {}
    sites, sources, keys = (sorted({s[i] for s in series}) for i in range(3))
    cur.execute(
        "SELECT site_id, source, source_key, period_start, period_end FROM calibration_measurements"
        " WHERE site_id = ANY(%s) AND source = ANY(%s) AND source_key = ANY(%s)",
        (sites, sources, keys),
    )
    out: dict[Series, list[Period]] = {}
    for site_id, source, key, start, end in cur.fetchall():
        if (site_id, source, key) in series:
            out.setdefault((site_id, source, key), []).append((start, end))
    return out


def import_calibration(
    conn,
    data: bytes | str,
    *,
    imported_from: str,
    site_ids: Iterable[str] | None = None,
    site_map: Mapping[tuple[str, str, str], str] | None = None,
    fmt: str = "auto",
    etag: str | None = None,
) -> dict:
    """Validate a calibration file and write it in one transaction; returns a summary dict.

    ``site_ids`` / ``site_map`` default to the ``sites`` and ``calibration_site_map`` tables.
    Accepted measurements are upserted on their natural key (an unchanged row is left as it
    is, a changed value is updated); rejected lines are upserted into ``calibration_quarantine``
    keyed by (batch, line), and quarantine rows of this batch that now pass are removed; the file
    is logged in ``calibration_imports``. Raises ``CalibrationFileError`` (nothing written) when
    the file is not a readable calibration CSV.

    Summary keys: imported_from, import_batch, format, rows, accepted_rows, accepted
    (measurements), inserted, updated, unchanged, quarantined, by_reason ({kind: lines}).
    """
    from psycopg2.extras import execute_values

    from . import db

    batch = content_hash(data)
    table = read_table(data, imported_from)  # fail before touching the database
    detect_format(table.header, fmt, imported_from)
    with db.transaction(conn) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_IMPORT_LOCK_ID,))
        if site_ids is None:
            cur.execute("SELECT site_id FROM sites")
            site_ids = [r[0] for r in cur.fetchall()]
        if site_map is None:
            cur.execute("SELECT source, key_type, key, site_id FROM calibration_site_map")
            site_map = {(s, t, k): site for s, t, k, site in cur.fetchall()}
        result = validate_calibration(data, name=imported_from, fmt=fmt, site_ids=site_ids, site_map=site_map)
        rows_by_number = {n: raw for n, raw, _ in table.rows}
        stored = _stored_periods(cur, {m.series for m in result.accepted})
        result = check_stored_overlaps(result, stored, rows_by_number)
        if result.accepted_rows + len(result.rejected) != result.n_rows:  # nothing may be dropped silently
            raise AssertionError(f"{imported_from}: {result.n_rows} rows read but {result.accepted_rows} accepted"
                                 f" and {len(result.rejected)} quarantined")

        inserted = updated = 0
        if result.accepted:
            values = [(m.site_id, m.period_start, m.period_end, m.volume_kscm, m.volume_reported, m.unit_reported,
                       m.source, m.source_key, m.operator, imported_from, batch) for m in result.accepted]
            returned = execute_values(cur, _UPSERT_MEASUREMENTS, values, page_size=1000, fetch=True)
            inserted = sum(1 for (ins,) in returned if ins)
            updated = len(returned) - inserted
        if result.rejected:
            values = [(imported_from, batch, r.row_number, json.dumps(r.raw, sort_keys=True), r.kind, r.reason)
                      for r in result.rejected]
            execute_values(cur, _UPSERT_QUARANTINE, values, template="(%s, %s, %s, %s::jsonb, %s, %s)",
                           page_size=1000)
        cur.execute("DELETE FROM calibration_quarantine WHERE import_batch = %s AND NOT (row_number = ANY(%s))",
                    (batch, [r.row_number for r in result.rejected]))
        summary = {
            "imported_from": imported_from,
            "import_batch": batch,
            "format": result.fmt,
            "rows": result.n_rows,
            "accepted_rows": result.accepted_rows,
            "accepted": len(result.accepted),
            "inserted": inserted,
            "updated": updated,
            "unchanged": len(result.accepted) - inserted - updated,
            "quarantined": len(result.rejected),
            "by_reason": result.by_kind(),
        }
        cur.execute(
            "INSERT INTO calibration_imports (import_batch, imported_from, etag, file_format, n_rows,"
            " n_accepted_rows, n_quarantined, summary) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)"
            " ON CONFLICT (import_batch, imported_from) DO UPDATE SET etag = EXCLUDED.etag,"
            " file_format = EXCLUDED.file_format, n_rows = EXCLUDED.n_rows,"
            " n_accepted_rows = EXCLUDED.n_accepted_rows, n_quarantined = EXCLUDED.n_quarantined,"
            " summary = EXCLUDED.summary, last_imported_at = now()",
            (batch, imported_from, etag, result.fmt, result.n_rows, result.accepted_rows, len(result.rejected),
             json.dumps(summary)),
        )
    return summary


def format_summary(summary: dict) -> str:
    """One human line for logs."""
    if summary.get("skipped"):
        return f"{summary['imported_from']}: skipped, {summary['skipped']}"
    reasons = ", ".join(f"{k}: {n}" for k, n in summary.get("by_reason", {}).items()) or "none"
    return (f"{summary['imported_from']} ({summary['format']}, batch {summary['import_batch'][:12]}): "
            f"{summary['rows']} rows -> {summary['accepted']} measurements from {summary['accepted_rows']} rows "
            f"({summary['inserted']} new, {summary['updated']} updated, {summary['unchanged']} unchanged), "
            f"{summary['quarantined']} rows quarantined ({reasons})")


# --------------------------------------------------------------------------------------------
# Files: S3 objects and local paths
# --------------------------------------------------------------------------------------------
CALIBRATION_PREFIX = "calibration/"


def parse_s3_uri(value: str, default_bucket: str) -> tuple[str, str]:
    """``'s3://bucket/key'`` or a bare key (in ``default_bucket``) -> ``(bucket, key)``."""
    value = value.strip()
    if value.startswith("s3://"):
        bucket, _, key = value[5:].partition("/")
        if not bucket or not key:
            raise ValueError(f"expected s3://bucket/key, got {value!r}")
        return bucket, key
    return default_bucket, value.lstrip("/")


def read_s3_object(s3, bucket: str, key: str) -> tuple[bytes, str | None]:
    """The object's bytes and ETag; ``FileNotFoundError`` when it does not exist."""
    try:
        obj = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey as exc:
        raise FileNotFoundError(f"s3://{bucket}/{key} does not exist") from exc
    return obj["Body"].read(), (obj.get("ETag") or "").strip('"') or None


def list_calibration_objects(s3, bucket: str, prefix: str = CALIBRATION_PREFIX) -> list[dict]:
    """``[{key, etag, size}]`` of the objects under ``prefix`` (folders markers excluded), by key."""
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith("/"):
                out.append({"key": obj["Key"], "etag": (obj.get("ETag") or "").strip('"'), "size": obj.get("Size")})
    return sorted(out, key=lambda o: o["key"])


def new_objects(conn, bucket: str, objects: Sequence[dict]) -> list[dict]:
    """The objects not yet imported with this ETag from this URI (``calibration_imports``)."""
    with conn.cursor() as cur:
        cur.execute("SELECT imported_from, etag FROM calibration_imports WHERE etag IS NOT NULL")
        done = set(cur.fetchall())
    conn.commit()
    return [o for o in objects if (f"s3://{bucket}/{o['key']}", o["etag"]) not in done]


def batch_imported(conn, batch: str) -> str | None:
    """Where a batch (file content) was first imported from, or None."""
    with conn.cursor() as cur:
        cur.execute("SELECT imported_from FROM calibration_imports WHERE import_batch = %s"
                    " ORDER BY first_imported_at LIMIT 1", (batch,))
        row = cur.fetchone()
    conn.commit()
    return row[0] if row else None


def import_s3_object(conn, s3, bucket: str, key: str, *, fmt: str = "auto", force: bool = False) -> dict:
    """Import ``s3://bucket/key``. Unless ``force``, content already imported (same hash, under
    any key) is not imported again: the URI is logged as an alias and the summary says skipped."""
    data, etag = read_s3_object(s3, bucket, key)
    uri = f"s3://{bucket}/{key}"
    batch = content_hash(data)
    if not force:
        first = batch_imported(conn, batch)
        if first is not None:
            _log_alias(conn, batch, uri, etag, first)
            return {"imported_from": uri, "import_batch": batch, "skipped": f"same content as {first}"}
    return import_calibration(conn, data, imported_from=uri, fmt=fmt, etag=etag)


def _log_alias(conn, batch: str, uri: str, etag: str | None, first: str) -> None:
    from . import db

    with db.transaction(conn) as cur:
        cur.execute(
            "INSERT INTO calibration_imports (import_batch, imported_from, etag, file_format, n_rows,"
            " n_accepted_rows, n_quarantined, summary)"
            " SELECT import_batch, %s, %s, file_format, n_rows, n_accepted_rows, n_quarantined,"
            " summary || jsonb_build_object('same_content_as', %s::text)"
            " FROM calibration_imports WHERE import_batch = %s AND imported_from = %s"
            " ON CONFLICT (import_batch, imported_from) DO UPDATE SET etag = EXCLUDED.etag",
            (uri, etag, first, batch, first),
        )


def import_path(conn, path: str | Path, *, fmt: str = "auto") -> dict:
    """Import a local calibration file (always imported; a re-import is harmless)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"calibration file not found: {p}")
    return import_calibration(conn, p.read_bytes(), imported_from=str(p.resolve()), fmt=fmt)
