"""Calibration-measurement files: units, the native and state-reported CSV formats, validation.

Pure functions (no database, no S3): ``read_table`` (``meters.reading``: plain or gzip, cut files,
report versions) decodes a file, ``detect_format`` recognises its
format from the header, ``validate_calibration`` splits its rows into accepted ``Measurement``s and
``Rejection``s with a specific reason each. ``meters.importer`` writes both to the database.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from flarewatch.config import MCF_TO_M3
from flarewatch.meters.reading import (  # noqa: F401  (re-exported: the file-level API of this module)
    CalibrationFileError,
    CsvTable,
    Decoded,
    decode_bytes,
    decode_text,
    normalize_version,
    paused_gc,
    read_table,
    version_from_name,
)

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
    report_version: str = ""  # YYYYMMDDhhmmss of the report (the ``run``), '' when unknown

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
    # older versions of a measurement found in the same file (a line resent with an older run):
    # recorded as such, never applied
    superseded: list[Measurement] = field(default_factory=list)
    file_version: str = ""
    version_source: str = "none"  # 'run column', 'given', 'file name', 'none'
    notes: tuple[str, ...] = ()

    @property
    def accepted_rows(self) -> int:
        """Lines that are part of a measurement (applied or an older version recorded)."""
        return sum(len(m.rows) for m in self.accepted) + sum(len(m.rows) for m in self.superseded)

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


def _reported(table: CsvTable, site_ids, site_map, file_version: str = ""
              ) -> tuple[list[Measurement], list[Rejection], list[Measurement]]:
    """Reported format: one measurement per (state, key_type, key, month) and report version.

    The version of a line is its ``run`` (else ``file_version``). Within one version, a well-month
    listed on several lines with different values is taken as parts of that month (NMOCD reports
    per completion, so one API can appear several times a month) and summed; a line identical to an
    earlier one in every field is a duplicate. A line resent with another ``run`` is another
    version of the same measurement, not a part: only the newest version in the file is a
    candidate, the older ones are returned as ``superseded`` (recorded, not applied). If any part
    of a well-month version is rejected, that whole version is (a partial sum would understate it).

    Returns ``(newest versions, rejections, superseded older versions)``.
    """
    n_header = len(table.header)
    rejected: list[Rejection] = []
    groups: dict[tuple, list[tuple[int, dict, float]]] = {}
    volume_failures: dict[tuple, tuple[int, str]] = {}
    newest: dict[tuple, str] = {}  # ident -> newest version seen on any line (even a rejected one)
    first_seen: dict[tuple, int] = {}
    has_run = "run" in table.header
    months: dict[str, date] = {}
    versions: dict[str, str | None] = {}
    for row_number, raw, n_fields in table.rows:
        ident = version = None
        try:
            if row_number in table.truncated:
                kind_reason = table.truncated[row_number]
                # identify the well-month when the line got that far, so its other parts are held back too
                try:
                    ident = (_required(raw, "state"), _required(raw, "key_type"), _required(raw, "key"),
                             _parse_date(raw, "month"))
                    version = normalize_version(_cell(raw, "run")) if has_run and _cell(raw, "run") else file_version
                except _Reject:
                    ident = None
                raise _Reject("truncated line", kind_reason)
            if n_fields != n_header:
                _check_fields(raw, n_fields, n_header)
            # the hot path (hundreds of thousands of lines): cells read inline, months and runs cached
            state = (raw.get("state") or "").strip() or _required(raw, "state")
            key_type = (raw.get("key_type") or "").strip() or _required(raw, "key_type")
            key = (raw.get("key") or "").strip() or _required(raw, "key")
            month_text = raw.get("month")
            month = months.get(month_text)
            if month is None:
                month = months[month_text] = _parse_date(raw, "month")
            if month.day != 1:
                raise _Reject("month not first day", f"month {month} is not the first day of a month")
            run = (raw.get("run") or "").strip() if has_run else ""
            if run:
                version = versions.get(run)
                if version is None:
                    version = versions[run] = normalize_version(run)
                if version is None:
                    raise _Reject("unparseable run", f"unparseable run {run!r} (expected a timestamp such as"
                                  " 20210503221516 or a date)")
            else:
                version = file_version
            ident = (state, key_type, key, month)
            seen_version = newest.get(ident)
            if seen_version is None or version > seen_version:
                newest[ident] = version
            volume = _parse_volume(raw, "flared")
            site_id = site_map.get((state, key_type, key))
            if site_id is None:
                raise _Reject("no site mapping", f"no site mapping for {state} {key_type} {key}")
            if site_id not in site_ids:
                _check_site(site_id, site_ids)
            content = tuple(raw.values())  # every cell in header order (the field count is checked above)
            if content in first_seen:
                raise _Reject("duplicate", f"duplicate of row {first_seen[content]} (identical line)")
            first_seen[content] = row_number
        except _Reject as exc:
            rejected.append(Rejection(row_number, raw, exc.kind, exc.reason))
            if ident is not None and version is not None:
                newest[ident] = max(newest.get(ident, ""), version)
                if exc.kind in ("missing volume", "unparseable volume", "non-finite volume", "negative volume",
                                "truncated line"):
                    volume_failures.setdefault((ident, version), (row_number, exc.reason))
            continue
        groups.setdefault((ident, version), []).append((row_number, raw, volume))

    accepted: list[Measurement] = []
    superseded: list[Measurement] = []
    month_ends: dict[date, date] = {}
    for (ident, version), parts in groups.items():
        state, key_type, key, month = ident
        try:
            if (ident, version) in volume_failures:
                bad_row, why = volume_failures[(ident, version)]
                raise _Reject("incomplete well-month",
                              f"row {bad_row} of the same {state} {key_type} {key} month {month:%Y-%m}"
                              f"{' run ' + version if version else ''} was rejected ({why})")
            total = parts[0][2] if len(parts) == 1 else sum(v for _, _, v in parts)
            kscm = total * MCF_TO_M3 / 1e3
            end = month_ends.get(month)
            if end is None:
                end = month_ends[month] = _month_end(month)
            _check_rate(kscm, month, end)
        except _Reject as exc:
            rejected.extend(Rejection(n, raw, exc.kind, exc.reason) for n, raw, _ in parts)
            continue
        if len(parts) == 1:
            operator = (parts[0][1].get("operator") or "").strip() or None
        else:
            operator = next((_cell(raw, "operator") for _, raw, _ in parts if _cell(raw, "operator")), None)
        m = Measurement(
            site_id=site_map[(state, key_type, key)], period_start=month, period_end=end, volume_kscm=kscm,
            volume_reported=total, unit_reported=REPORTED_UNIT, source=reported_source(state),
            source_key=f"{key_type}:{key}", operator=operator, rows=tuple([n for n, _, _ in parts]),
            report_version=version,
        )
        (accepted if version == newest[ident] else superseded).append(m)
    return accepted, rejected, superseded


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


def _dedupe_and_overlaps(accepted: list[Measurement], rows_by_number: dict[int, dict], whole_months: bool = False
                         ) -> tuple[list[Measurement], list[Rejection]]:
    """In-file checks, in file order: later copies of a natural key and periods that overlap an
    earlier accepted period of the same (site, source, source_key) are rejected. With
    ``whole_months`` (every period a calendar month: the reported format) two periods overlap only
    when identical, so only the natural key is checked (fast path)."""
    kept: list[Measurement] = []
    rejected: list[Rejection] = []
    seen: dict[tuple, int] = {}
    periods: dict[Series, list[Period]] = {}
    first_row: dict[tuple[Series, Period], int] = {}
    for m in sorted(accepted, key=lambda m: m.rows[0]):
        try:
            if m.natural_key in seen:
                raise _Reject("duplicate", f"duplicate of row {seen[m.natural_key]}")
            if whole_months:
                seen[m.natural_key] = m.rows[0]
                kept.append(m)
                continue
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
    return replace(result, accepted=kept, rejected=sorted(rejected, key=lambda r: r.row_number))


def validate_calibration(
    data: bytes | str,
    *,
    name: str = "file",
    fmt: str = "auto",
    site_ids: Iterable[str],
    site_map: Mapping[tuple[str, str, str], str] | None = None,
    stored_periods: Mapping[Series, Iterable[Period]] | None = None,
    report_version: str | None = None,
    table: CsvTable | None = None,
) -> ValidationResult:
    """Validate a calibration CSV, plain or gzip-compressed (pure: no database).

    ``site_ids``: the known sites; ``site_map``: ``{(state, key_type, key): site_id}`` for the
    reported format; ``stored_periods``: ``{(site_id, source, source_key): [(start, end), ...]}``
    already in the table (for the overlap check; None skips it). ``report_version``: the file's
    report version (a timestamp or date) for lines without a ``run``; else, for the reported
    format, a date in the file name; else none (''). ``table``: the file already read by
    ``read_table`` (saves reading it again). Raises ``CalibrationFileError`` when the file is not a
    readable calibration CSV; bad rows are returned as ``rejected``.
    """
    with paused_gc():
        return _validate(data, name, fmt, set(site_ids), site_map, stored_periods, report_version, table)


def _validate(data, name, fmt, site_ids, site_map, stored_periods, report_version, table) -> ValidationResult:
    if table is None:
        table = read_table(data, name)
    fmt = detect_format(table.header, fmt, name)
    if report_version:
        file_version = normalize_version(report_version)
        if file_version is None:
            raise ValueError(f"report_version {report_version!r} is not a timestamp or date")
        version_source = "given"
    elif fmt == "reported" and (file_version := version_from_name(name)):
        version_source = "file name"
    else:
        file_version, version_source = "", "none"
    if fmt == "reported" and "run" in table.header:
        version_source = "run column" + (f" (else {version_source})" if file_version else "")
    rows_by_number = {n: raw for n, raw, _ in table.rows}
    superseded: list[Measurement] = []
    if fmt == "native":
        candidates, rejected = [], []
        for row_number, raw, n_fields in table.rows:
            try:
                if row_number in table.truncated:
                    raise _Reject("truncated line", table.truncated[row_number])
                m = _native_measurement(row_number, raw, n_fields, len(table.header), site_ids)
                candidates.append(replace(m, report_version=file_version) if file_version else m)
            except _Reject as exc:
                rejected.append(Rejection(row_number, raw, exc.kind, exc.reason))
    else:
        candidates, rejected, superseded = _reported(table, site_ids, site_map or {}, file_version)
    kept, more = _dedupe_and_overlaps(candidates, rows_by_number, whole_months=fmt == "reported")
    result = ValidationResult(name, fmt, len(table.rows), kept, sorted(rejected + more, key=lambda r: r.row_number),
                              superseded=superseded, file_version=file_version, version_source=version_source,
                              notes=table.notes)
    if stored_periods is not None:
        result = check_stored_overlaps(result, stored_periods, rows_by_number)
    return result


def rejected_volume(fmt: str, raw: Mapping) -> tuple[str | None, str | None, float | None]:
    """``(source, operator, volume_kscm)`` of a quarantined line, as far as it can be read (None
    where not): what the quarantine summary adds up per operator and reason."""
    operator = _cell(raw, "operator") or None
    try:
        if fmt == "reported":
            state = _cell(raw, "state")
            source = reported_source(state) if state else None
            return source, operator, _parse_volume(raw, "flared") * MCF_TO_M3 / 1e3
        source = _cell(raw, "source") or None
        start, end = _parse_date(raw, "period_start"), _parse_date(raw, "period_end")
        volume = _parse_volume(raw, "volume")
        return source, operator, to_kscm(volume, _cell(raw, "unit"), max(1, (end - start).days + 1))
    except (_Reject, UnitError):
        return (source if "source" in locals() else None), operator, None


def content_hash(data: bytes | str) -> str:
    """The import batch id of a file: SHA-256 of its bytes (text is hashed as UTF-8)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


NATIVE_HEADER = (*NATIVE_COLUMNS, *NATIVE_OPTIONAL)
