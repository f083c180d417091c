"""Reading calibration files: bytes (plain or gzip) to text to a ``CsvTable``; report versions.

gzip is recognised by its magic bytes, whatever the name; other binary files are named for what
they look like; a last line without its line end (a file cut short) is marked as truncated. Pure
functions; ``meters.formats`` validates what this module reads.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date


class CalibrationFileError(ValueError):
    """The file cannot be read as a calibration CSV at all (not text, no header, missing columns)."""


@dataclass(frozen=True)
class CsvTable:
    """A CSV file as read: lower-cased header and ``(row_number, raw, n_fields)`` per data line.

    ``row_number`` is the line number counted from the header (1 = the first line after it);
    ``raw`` maps column -> cell text as read, extra cells under ``'_extra'``; ``n_fields`` is the
    number of cells the line had. ``truncated`` maps the row number of a line that shows the file
    was cut (no line end after the last line) to the reason; ``notes`` are file-level remarks
    (gzip-compressed, a gzip stream that ends early, ...) for the import summary.
    """

    name: str
    header: tuple[str, ...]
    rows: tuple[tuple[int, dict, int], ...]
    truncated: Mapping[int, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    compressed: bool = False


# Magic bytes of binary files people put where a CSV belongs (checked after gzip's 1f 8b).
_BINARY_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (or an .xlsx / .ods workbook)"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"\x28\xb5\x2f\xfd", "a zstd-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) / OLE file"),
    (b"%PDF", "a PDF document"),
    (b"PAR1", "a Parquet file"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
)
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Decoded:
    """File bytes made text: ``compressed`` when they were gzip, ``cut`` says why a gzip stream is
    incomplete (None when whole), ``notes`` (what was unusual) for the import summary."""

    text: str
    compressed: bool = False
    cut: str | None = None
    notes: tuple[str, ...] = ()


def _gunzip(data: bytes, name: str) -> tuple[bytes, str | None]:
    """Every gzip member of ``data`` decompressed; ``(bytes, why cut)`` where ``why cut`` is None
    for a whole stream. A corrupt stream (bad header, bad deflate data, CRC mismatch) raises."""
    out: list[bytes] = []
    rest = data
    while rest:
        d = zlib.decompressobj(wbits=31)
        try:
            out.append(d.decompress(rest))
            out.append(d.flush())
        except zlib.error as exc:
            raise CalibrationFileError(f"{name}: corrupt gzip file ({exc}); nothing imported") from exc
        if not d.eof:
            return b"".join(out), (f"the gzip stream ends before its end marker ({len(data):,} compressed bytes):"
                                   " the file was cut")
        rest = d.unused_data.lstrip(b"\x00")  # members may be padded with zeros
        if rest and not rest.startswith(GZIP_MAGIC):
            raise CalibrationFileError(f"{name}: trailing garbage after the gzip data; nothing imported")
    return b"".join(out), None


def decode_bytes(data: bytes | str, name: str) -> Decoded:
    """File bytes -> text. gzip is recognised by its magic bytes (``1f 8b``), whatever the name;
    other binary files (ZIP/xlsx, bzip2, xz, ...) and non-UTF-8 bytes raise
    ``CalibrationFileError`` saying what the file looks like. A BOM is removed."""
    if isinstance(data, str):
        text, compressed, cut, notes = data, False, None, []
    else:
        compressed, cut, notes = False, None, []
        if data[:2] == GZIP_MAGIC:
            data, cut = _gunzip(data, name)
            compressed = True
            if cut:
                notes.append(cut)
            if data[:2] == GZIP_MAGIC:
                raise CalibrationFileError(f"{name}: gzip inside gzip; decompress it once before importing")
        elif name.lower().endswith((".gz", ".gzip")):
            notes.append("named .gz but not gzip-compressed: read as plain text")
        for magic, what in _BINARY_MAGIC:
            if data.startswith(magic):
                raise CalibrationFileError(f"{name}: binary file, not gzip and not CSV text (looks like {what});"
                                           " expected a CSV text file or a gzip-compressed CSV (.csv.gz)")
        if b"\x00" not in data[:4096] and _looks_binary(data):
            raise CalibrationFileError(f"{name}: binary file, not gzip and not CSV text (first bytes"
                                       f" {data[:8].hex(' ')}); expected a CSV text file or a gzip-compressed"
                                       " CSV (.csv.gz)")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            if b"\x00" in data[:4096]:
                raise CalibrationFileError(f"{name}: binary file, not gzip and not CSV text (first bytes"
                                           f" {data[:8].hex(' ')}); expected a CSV text file or a gzip-compressed"
                                           " CSV (.csv.gz)") from exc
            raise CalibrationFileError(f"{name}: not a UTF-8 CSV text file ({exc.reason} at byte {exc.start})") from exc
    if "\x00" in text:
        raise CalibrationFileError(f"{name}: binary file, not gzip and not CSV text (NUL bytes); expected a CSV"
                                   " text file or a gzip-compressed CSV (.csv.gz)")
    return Decoded(text.lstrip("\ufeff"), compressed, cut, tuple(notes))


def _looks_binary(data: bytes) -> bool:
    """More than 10 % control bytes (other than tab/CR/LF) in the first 4 KiB."""
    head = data[:4096]
    ctrl = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    return ctrl > len(head) / 10


def decode_text(data: bytes | str, name: str) -> str:
    """File bytes (plain or gzip) -> text; ``CalibrationFileError`` when not text."""
    return decode_bytes(data, name).text


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a large file is read and validated: the
    hundreds of thousands of small dicts and tuples (none cyclic) otherwise trigger collections
    that traverse all of them again and again (measured: reading and validating take about twice
    as long)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_table(data: bytes | str, name: str) -> CsvTable:
    """Parse CSV text (plain or gzip) into a ``CsvTable``; blank lines are skipped (their numbers
    still count). A last line without its line end, or the last line of a gzip stream that was
    cut, is marked in ``truncated`` (the validation quarantines it: its last value may be cut,
    e.g. 54 for 544)."""
    with paused_gc():
        return _read_table(data, name)


def _read_table(data: bytes | str, name: str) -> CsvTable:
    decoded = decode_bytes(data, name)
    text = decoded.text
    reader = csv.reader(io.StringIO(text, newline=""))
    header: tuple[str, ...] | None = None
    header_line = 0
    rows = []
    last_line = 0
    try:
        for cells in reader:
            start_line, last_line = last_line + 1, reader.line_num
            if not (cells and cells[0].strip()) and not any(c.strip() for c in cells):
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
    truncated: dict[int, str] = {}
    notes = list(decoded.notes)
    tail = text[max(text.rfind("\n"), text.rfind("\r")) + 1:]  # after the last line end
    if rows and tail.strip():
        n = rows[-1][0]
        why = ("the gzip stream was cut inside this line" if decoded.cut else
               "the file ends inside this line (no line end after it)")
        truncated[n] = f"truncated line: {why}; its last value may be cut (e.g. 54 for 544)"
        notes.append(f"data line {n} is the last and has no line end: quarantined as truncated")
    elif decoded.cut and rows:
        notes.append(f"the lines after data line {rows[-1][0]} are missing (gzip stream cut after a line end)")
    return CsvTable(name=name, header=header, rows=tuple(rows), truncated=truncated, notes=tuple(notes),
                    compressed=decoded.compressed)


# --------------------------------------------------------------------------------------------
# Report versions
# --------------------------------------------------------------------------------------------
_NAME_STAMP = re.compile(r"(?<!\d)(\d{14}|\d{8}|\d{4}-\d{2}-\d{2})(?!\d)")


def normalize_version(text: str) -> str | None:
    """A report version as ``YYYYMMDDhhmmss`` text (sortable), from a ``run`` such as
    ``20210503221516``, ``2021-05-03T22:15:16`` or a date ``2021-05-03``; None when it is not one."""
    digits = re.sub(r"\D", "", text or "")
    if len(digits) not in (8, 12, 14):
        return None
    digits = digits.ljust(14, "0")
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None
    if int(digits[8:10]) > 23 or int(digits[10:12]) > 59 or int(digits[12:14]) > 59:
        return None
    return digits


def version_from_name(name: str) -> str:
    """The report date in a file's base name (``reported_flares_20210503.csv.gz``,
    ``..._2021-05-03...``, a 14-digit run); '' when there is none or more than one."""
    base = re.split(r"[/\\]", name)[-1]
    found = {v for v in (normalize_version(m) for m in _NAME_STAMP.findall(base)) if v}
    return found.pop() if len(found) == 1 else ""
