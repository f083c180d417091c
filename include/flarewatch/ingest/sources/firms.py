"""NASA FIRMS area API as a VIIRS source (``FLAREWATCH_VIIRS_SOURCE=firms``).

Request (domain.md; FIRMS API docs)::

    GET {FLAREWATCH_FIRMS_URL}/api/area/csv/{MAP_KEY}/{SOURCE}/{west},{south},{east},{north}/{days}/{YYYY-MM-DD}

``SOURCE``: VIIRS_SNPP_NRT, VIIRS_NOAA20_NRT, VIIRS_NOAA21_NRT (near real time, ~3 h latency) or
VIIRS_SNPP_SP, VIIRS_NOAA20_SP (standard processing, months later; adds ``type``). ``days`` 1..5
from the date on: longer ranges are split into <= 5-day windows (``day_windows``). The MAP_KEY
is the password of the Airflow connection ``flarewatch_firms``, read on first use. Quota: 5000
transactions per 10 minutes per MAP_KEY; a multi-day request counts as several.

Errors: FIRMS answers some errors with HTTP 200 (or 400/403) and a plain-text body instead of the
CSV header (``latitude,longitude,...``): "Invalid MAP_KEY." -> ``PermanentSourceError`` (check the
connection); "Exceeding allowed transaction limit" -> wait ``FLAREWATCH_FIRMS_LIMIT_WAIT_S``
(doubling, ``FLAREWATCH_FIRMS_LIMIT_RETRIES`` times) then ``TransientSourceError``; anything else
that is not CSV -> ``PermanentSourceError`` with the first 300 characters. 429/5xx/timeouts are
retried by ``ingest.sources.http``.

FIRMS is an active-fire product, not Nightfire: no Planck fit, so no ``Temp_BB``/``Area_BB`` and
the 1200 K flare test cannot apply. Each night detection becomes one VNF-schema row
(``ingest.viirs.VNF_COLUMNS``): position, scan time (acq_date + acq_time), ``RH`` = FIRMS ``frp`` (MW;
a MIR-radiance FRP, not the Planck-fit radiant heat of VNF: expect different magnitudes),
``Area_Pixel`` = scan x track (km2), ``RHI`` = frp / Area_Pixel (W m-2), every other VNF column the
fill value 999999, plus ``FW_Origin`` = ``firms:<SOURCE>`` and the FIRMS fields as ``FIRMS_*``
text columns. The FIRMS filter instead of the temperature test (``keep_row``): night only
(``daynight == 'N'``), scanned in the night window after the acquisition day
(``ingest.viirs.night_window_utc``), inside the AOI, confidence >= ``FLAREWATCH_FIRMS_MIN_CONFIDENCE``
(l < n < h; default n), and where FIRMS gives a ``type`` (SP files): 2 (static land source,
which holds flares) or 3 (offshore) only. ``ingest.viirs.flare_like`` lets these rows through on RH.
Every FIRMS response is stored unchanged under
``raw/source=firms/collection=<SOURCE>/baseline=<version>/date=<day>/site=<site>/``.
"""

from __future__ import annotations

import csv
import logging
import time
from datetime import UTC, date, timedelta

from flarewatch.config import FIRMS_MAX_DAY_RANGE, Settings
from flarewatch.ingest.sources.base import ViirsResult
from flarewatch.ingest.sources.http import (
    PermanentSourceError,
    SourceError,
    TransientSourceError,
    airflow_connection,
    make_session,
    request,
)
from flarewatch.sites import Site
from flarewatch.store import objects as storage

log = logging.getLogger(__name__)

PROVIDER = "firms"
CSV_HEADER_START = "latitude"
CONFIDENCE_RANK = {"l": 0, "n": 1, "h": 2}
STATIC_TYPES = {"2", "3"}  # FIRMS SP `type`: 2 static land source (flares), 3 offshore
EXTRA_COLUMNS = ("FW_Origin", "FIRMS_satellite", "FIRMS_confidence", "FIRMS_bright_ti4", "FIRMS_bright_ti5",
                 "FIRMS_scan", "FIRMS_track", "FIRMS_version", "FIRMS_type")


def day_windows(start: date, end: date, max_days: int = FIRMS_MAX_DAY_RANGE) -> list[tuple[date, int]]:
    """[start, end] (inclusive) as (first day, number of days) windows of at most ``max_days``:
    12 days -> 5 + 5 + 2."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if not 1 <= max_days <= FIRMS_MAX_DAY_RANGE:
        raise ValueError(f"max_days must be in 1..{FIRMS_MAX_DAY_RANGE}, got {max_days}")
    out, d = [], start
    while d <= end:
        n = min(max_days, (end - d).days + 1)
        out.append((d, n))
        d += timedelta(days=n)
    return out


def classify_body(text: str) -> str:
    """``csv`` (the FIRMS header, or an empty body = no detections), ``invalid_key``,
    ``limit`` (transaction limit) or ``error`` (any other plain-text answer)."""
    head = text.lstrip("\ufeff").strip()
    if not head or head.lower().startswith(CSV_HEADER_START):
        return "csv"
    low = head[:500].lower()
    if "invalid map_key" in low or "invalid mapkey" in low:
        return "invalid_key"
    if "transaction limit" in low:
        return "limit"
    return "error"


def _confidence(value: str) -> int | None:
    v = (value or "").strip().lower()
    return CONFIDENCE_RANK.get(v[:1]) if v else None


def _float(value) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and abs(f) != float("inf") else None


def scan_time(row: dict):
    """UTC datetime of a FIRMS row (``acq_date`` YYYY-MM-DD + ``acq_time`` HHMM, zero-padded or not)."""
    from datetime import datetime

    hhmm = str(row.get("acq_time", "")).strip().split(".")[0].zfill(4)
    return datetime.strptime(f"{row['acq_date'].strip()} {hhmm}", "%Y-%m-%d %H%M").replace(tzinfo=UTC)


def keep_row(row: dict, *, bbox, window, min_confidence: str = "n") -> bool:
    """The FIRMS flare filter (module docstring)."""
    if str(row.get("daynight", "")).strip().upper() != "N":
        return False
    lat, lon = _float(row.get("latitude")), _float(row.get("longitude"))
    if lat is None or lon is None:
        return False
    west, south, east, north = bbox
    if not (south <= lat <= north and west <= lon <= east):
        return False
    try:
        t = scan_time(row)
    except (KeyError, ValueError):
        return False
    if not (window[0] <= t < window[1]):
        return False
    conf = _confidence(row.get("confidence", ""))
    if conf is not None and conf < CONFIDENCE_RANK[min_confidence]:
        return False
    typ = str(row.get("type", "") or "").strip()
    if typ and typ.split(".")[0] not in STATIC_TYPES:
        return False
    return _float(row.get("frp")) is not None


def to_vnf_record(row: dict, source: str) -> dict:
    """One FIRMS row as a VNF-schema record (module docstring); missing VNF cells = fill."""
    t = scan_time(row)
    lat, lon = row["latitude"].strip(), row["longitude"].strip()
    frp = _float(row.get("frp"))
    scan, track = _float(row.get("scan")), _float(row.get("track"))
    area_px = scan * track if scan and track else None
    return {
        "id_Key": f"FIRMS_{source}_{t:%Y%m%d_%H%M}_{lat}_{lon}",
        "Date_Mscan": f"{t:%Y/%m/%d %H:%M:%S}.000",
        "Lat_GMTCO": lat,
        "Lon_GMTCO": lon,
        "RH": frp,
        "Area_Pixel": round(area_px, 6) if area_px else None,
        "RHI": round(frp / area_px, 6) if (frp is not None and area_px) else None,
        "FW_Origin": f"firms:{source}",
        "FIRMS_satellite": row.get("satellite", ""),
        "FIRMS_confidence": row.get("confidence", ""),
        "FIRMS_bright_ti4": row.get("bright_ti4", ""),
        "FIRMS_bright_ti5": row.get("bright_ti5", ""),
        "FIRMS_scan": row.get("scan", ""),
        "FIRMS_track": row.get("track", ""),
        "FIRMS_version": row.get("version", ""),
        "FIRMS_type": row.get("type", "") or "",
    }


def parse_firms_csv(text: str) -> list[dict]:
    """Rows of a FIRMS area CSV as dicts (empty list for an empty body or a header only)."""
    text = text.lstrip("\ufeff")
    if not text.strip():
        return []
    rows = list(csv.DictReader(text.splitlines()))
    header = rows and list(rows[0].keys())
    if header and ("latitude" not in header or "longitude" not in header):
        raise PermanentSourceError(f"{PROVIDER}: CSV without latitude/longitude columns: {header}", provider=PROVIDER)
    return [{(k or "").strip(): (v or "").strip() for k, v in r.items()} for r in rows]


class FirmsClient:
    """The FIRMS area API: one call per (source, bbox, window), plain-text errors detected."""

    def __init__(self, *, base_url: str, map_key=None, conn_id: str = "flarewatch_firms", session=None,
                 limit_wait_s: float = 60.0, limit_retries: int = 3, sleep=time.sleep,
                 retries: int = 5, backoff_s: float = 1.0, timeout_s: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self._map_key = map_key
        self.conn_id = conn_id
        self.session = session or make_session(retries=retries, backoff_s=backoff_s, timeout_s=timeout_s,
                                               user_agent="flarewatch (FIRMS area API)")
        self.limit_wait_s = limit_wait_s
        self.limit_retries = limit_retries
        self.sleep = sleep
        self.transactions = 0  # requests sent (each day of a window counts against the quota)

    @property
    def map_key(self) -> str:
        if self._map_key is None:
            conn = airflow_connection(self.conn_id, provider=PROVIDER)
            key = (conn.password or "").strip()
            if not key:
                raise PermanentSourceError(
                    f"{PROVIDER}: Airflow connection {self.conn_id!r} has no password; put the FIRMS MAP_KEY there",
                    provider=PROVIDER)
            self._map_key = key
        return self._map_key

    def area_url(self, source: str, bbox, start: date, days: int, *, key: str | None = None) -> str:
        if not 1 <= days <= FIRMS_MAX_DAY_RANGE:
            raise ValueError(f"FIRMS day range must be 1..{FIRMS_MAX_DAY_RANGE}, got {days}")
        area = ",".join(f"{v:.5f}" for v in bbox)
        return f"{self.base_url}/api/area/csv/{key or self.map_key}/{source}/{area}/{days}/{start.isoformat()}"

    def area_csv(self, source: str, bbox, start: date, days: int) -> str:
        """The CSV text of one window (``days`` <= 5), exactly as FIRMS sent it."""
        key = self.map_key
        url = self.area_url(source, bbox, start, days, key=key)
        safe = url.replace(key, "***")
        for attempt in range(self.limit_retries + 1):
            try:
                resp = request(self.session, "GET", url, provider=PROVIDER, conn_id=self.conn_id, redact=[key])
                text, status = resp.text, resp.status_code
            except PermanentSourceError as exc:  # FIRMS also sends its plain-text errors as 400/403
                if classify_body(exc.body) not in ("invalid_key", "limit"):
                    raise
                text, status = exc.body, exc.status
            self.transactions += days
            kind = classify_body(text)
            if kind == "csv":
                return text
            if kind == "invalid_key":
                raise PermanentSourceError(
                    f"{PROVIDER}: FIRMS rejected the MAP_KEY (HTTP {status}: {text.strip()[:100]!r}); check the "
                    f"credentials in Airflow connection {self.conn_id!r} (password = MAP_KEY from "
                    "https://firms.modaps.eosdis.nasa.gov/api/map_key/)", provider=PROVIDER, status=status, url=safe)
            if kind == "limit":
                if attempt < self.limit_retries:
                    wait = self.limit_wait_s * (2 ** attempt)
                    log.warning("FIRMS transaction limit reached (%s); waiting %.0f s (%d/%d)", safe, wait,
                                attempt + 1, self.limit_retries)
                    self.sleep(wait)
                    continue
                raise TransientSourceError(
                    f"{PROVIDER}: still over the FIRMS transaction limit (5000 per 10 minutes per MAP_KEY) after "
                    f"{self.limit_retries} waits; {safe}", provider=PROVIDER, status=status, url=safe)
            raise PermanentSourceError(
                f"{PROVIDER}: {safe} answered HTTP {status} with text instead of CSV: {text.strip()[:300]!r}",
                provider=PROVIDER, status=status, url=safe)
        raise AssertionError("unreachable")

    def area_range(self, source: str, bbox, start: date, end: date) -> list[tuple[date, int, str]]:
        """[start, end] in <= 5-day windows: (window start, days, CSV text) per request."""
        return [(d, n, self.area_csv(source, bbox, d, n)) for d, n in day_windows(start, end)]


class FirmsSource:
    """VIIRS provider ``firms``: ``fetch_viirs(site, day) -> ViirsResult``."""

    name = PROVIDER

    def __init__(self, settings: Settings | None = None, *, raw_store=None, client: FirmsClient | None = None):
        self.settings = settings or Settings.from_env()
        src = self.settings.sources
        self.raw_store = raw_store
        self.client = client or FirmsClient(
            base_url=src.firms_url, conn_id=src.firms_conn_id, limit_wait_s=src.firms_limit_wait_s,
            limit_retries=src.firms_limit_retries, retries=src.http_retries, backoff_s=src.http_backoff_s,
            timeout_s=src.http_timeout_s)

    def fetch_viirs(self, site: Site, day: date):
        from flarewatch.ingest.viirs import (
            night_window_utc,
            utc_dates,
            vnf_csv_from_records,
        )

        src = self.settings.sources
        bbox = site.bbox()
        window = night_window_utc(site.lon, day)
        dates = utc_dates(*window)
        raw_objects: dict[str, tuple[bytes, str]] = {}
        records: list[dict] = []
        seen: set[str] = set()
        n_rows = 0
        per_source: dict[str, int] = {}
        for source in src.firms_sources:
            kept = 0
            for start, days, text in self.client.area_range(source, bbox, dates[0], dates[-1]):
                rows = parse_firms_csv(text)
                n_rows += len(rows)
                version = next((r.get("version") for r in rows if r.get("version")), None)
                key = storage.raw_object_key(PROVIDER, source, version, day, site.site_id,
                                             f"area_{start.isoformat()}_{days}d.csv")
                raw_objects[key] = (text.encode("utf-8"), "text/csv")
                for row in rows:
                    if not keep_row(row, bbox=bbox, window=window, min_confidence=src.firms_min_confidence):
                        continue
                    rec = to_vnf_record(row, source)
                    if rec["id_Key"] in seen:
                        continue
                    seen.add(rec["id_Key"])
                    records.append(rec)
                    kept += 1
            per_source[source] = kept
        records.sort(key=lambda r: (r["Date_Mscan"], r["id_Key"]))
        csv_text = vnf_csv_from_records(records, EXTRA_COLUMNS)
        meta = {
            "provider": PROVIDER, "firms_sources": list(src.firms_sources), "bbox": list(bbox),
            "window_utc": [window[0].isoformat(), window[1].isoformat()], "rows_received": n_rows,
            "rows_kept": len(records), "kept_per_source": per_source, "transactions": self.client.transactions,
        }
        detail = (f"FIRMS {','.join(src.firms_sources)}: {len(records)} night detection(s) kept of {n_rows} "
                  f"in the AOI, night {window[0]:%Y-%m-%d %H:%M}..{window[1]:%Y-%m-%d %H:%M} UTC "
                  "(no Temp_BB: FIRMS filter, not the 1200 K test)")
        return ViirsResult(viirs_csv=csv_text, status="ingested", outcome="ok" if records else "no_detections",
                           detail=detail, meta=meta, raw_objects=raw_objects)


__all__ = ["FirmsClient", "FirmsSource", "SourceError", "classify_body", "day_windows", "keep_row", "parse_firms_csv",
           "to_vnf_record"]
