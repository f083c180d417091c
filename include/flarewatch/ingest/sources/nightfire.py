"""VIIRS Nightfire (VNF) nightly CSV files as a VIIRS source (``FLAREWATCH_VIIRS_SOURCE=nightfire``).

Where the files are: ``FLAREWATCH_VNF_URL_TEMPLATE``, an ``https://`` URL or an ``s3://bucket/key``
with placeholders ``{yyyymmdd}``, ``{yyyy}``, ``{mm}``, ``{dd}``, ``{date}`` (YYYY-MM-DD) and
``{doy}`` (001..366) for the file's UTC date, e.g. the Earth Observation Group's
``https://eogdata.mines.edu/.../VNF_npp_d{yyyymmdd}_noaa_v30-ez.csv.gz`` (gzip is recognised by
its magic bytes). HTTP auth: the Airflow connection ``flarewatch_vnf`` when it exists: its
password is sent as ``Authorization: Bearer <password>``, or, when its extra has ``token_url``,
login/password (+ extra ``client_id``/``client_secret``) are exchanged for an access token with an
OAuth2 password grant first (EOG's Keycloak works this way). s3:// templates use the AWS
connection ``FLAREWATCH_VNF_S3_CONN_ID`` (default: the flarewatch S3 connection).

One file per UTC date and satellite, shared by every site: it is fetched once, stored unchanged
under ``raw/source=nightfire/collection=VNF_<sat>/baseline=v<NN>/date=<file date>/<file name>``
(no site in the key), and read back from rawdata by every later site and rerun (the
``flarewatch_nightfire`` pool has one slot, so sites of a run queue behind the first download).
A file that is not published (HTTP 404 / NoSuchKey) is an outcome, not a failure: ``nodata``
(or ``partial`` when the night spans two files and one is there).

Per site: the rows of the night after the acquisition day (``ingest.viirs.night_window_utc``, which can
span two UTC files), inside the AOI (``Site.bbox``), usable (``ingest.viirs.vnf_quality_ok``: position,
scan time, QF exclusions from configuration) and flare-like (``ingest.viirs.flare_like``: Temp_BB >=
1200 K, finite RH; fill value 999999 = missing) are written, cells unchanged, as the site's VNF CSV.
"""

from __future__ import annotations

import gzip
import logging
import re
from datetime import date

from flarewatch.config import Settings
from flarewatch.ingest.sources.base import ViirsResult
from flarewatch.ingest.sources.http import (
    PermanentSourceError,
    TransientSourceError,
    airflow_connection,
    make_session,
    request,
)
from flarewatch.sites import Site
from flarewatch.store import objects as storage

log = logging.getLogger(__name__)

PROVIDER = "nightfire"
_SAT_RE = re.compile(r"VNF_([A-Za-z0-9]+)_d\d{8}")
_VERSION_RE = re.compile(r"_v(\d+)")


def file_url(template: str, day: date) -> str:
    """``template`` filled for the file of UTC date ``day``."""
    try:
        return template.format(yyyymmdd=f"{day:%Y%m%d}", yyyy=f"{day:%Y}", mm=f"{day:%m}", dd=f"{day:%d}",
                               date=day.isoformat(), doy=f"{day.timetuple().tm_yday:03d}")
    except (KeyError, IndexError) as exc:
        raise ValueError(f"FLAREWATCH_VNF_URL_TEMPLATE has an unknown placeholder {exc}; use {{yyyymmdd}}, "
                         "{yyyy}, {mm}, {dd}, {date} or {doy}") from None


def collection_and_baseline(file_name: str) -> tuple[str, str]:
    """(``VNF_<sat>``, ``v<NN>``) from a VNF file name (``VNF_npp_d20250601_noaa_v30-ez.csv.gz``
    -> ``VNF_npp``, ``v30``); ``VNF`` / ``na`` when the name does not say."""
    m = _SAT_RE.search(file_name)
    v = _VERSION_RE.search(file_name)
    return (f"VNF_{m.group(1)}" if m else "VNF", f"v{v.group(1)}" if v else "na")


def decode_vnf_bytes(data: bytes) -> str:
    """CSV text of a VNF file, gunzipped when it starts with the gzip magic bytes."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8-sig", errors="replace")


class NightfireSource:
    """VIIRS provider ``nightfire``: ``fetch_viirs(site, day) -> ViirsResult``.

    ``token``: a bearer token to use instead of the Airflow connection; ``session``: a
    ``requests.Session`` (default ``ingest.sources.http.make_session``); ``s3_client``: a boto3 client
    for s3:// templates. Nightly files are kept in memory per instance and in ``raw_store``.
    """

    name = PROVIDER

    def __init__(self, settings: Settings | None = None, *, raw_store=None, session=None, token: str | None = None,
                 s3_client=None):
        self.settings = settings or Settings.from_env()
        src = self.settings.sources
        if not src.vnf_url_template:
            raise PermanentSourceError(
                f"{PROVIDER}: FLAREWATCH_VNF_URL_TEMPLATE is not set; point it at the nightly VNF files "
                "(https://.../VNF_npp_d{yyyymmdd}_noaa_v30-ez.csv.gz or s3://bucket/prefix/...)", provider=PROVIDER)
        self.template = src.vnf_url_template
        self.raw_store = raw_store
        self.session = session or make_session(retries=src.http_retries, backoff_s=src.http_backoff_s,
                                               timeout_s=src.http_timeout_s, user_agent="flarewatch (VIIRS Nightfire)")
        self._token = token
        self._token_loaded = token is not None
        self._s3 = s3_client
        self._files: dict[date, tuple[str, str, object] | None] = {}  # day -> (key, text, DataFrame) | None
        self.downloads = 0

    # -- credentials (lazy) -----------------------------------------------------------------
    def _auth_headers(self) -> dict:
        if not self._token_loaded:
            self._token_loaded = True
            conn = airflow_connection(self.settings.sources.vnf_conn_id, provider=PROVIDER, required=False)
            if conn is not None:
                extra = conn.extra_dejson or {}
                if extra.get("token_url"):
                    self._token = self._password_grant(extra, conn.login, conn.password)
                else:
                    self._token = conn.password or None
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def _password_grant(self, extra: dict, login: str | None, password: str | None) -> str:
        conn_id = self.settings.sources.vnf_conn_id
        if not (login and password):
            raise PermanentSourceError(f"{PROVIDER}: Airflow connection {conn_id!r} has token_url but no login/password",
                                       provider=PROVIDER)
        form = {"grant_type": "password", "username": login, "password": password,
                "client_id": extra.get("client_id", "")}
        if extra.get("client_secret"):
            form["client_secret"] = extra["client_secret"]
        resp = request(self.session, "POST", extra["token_url"], provider=PROVIDER, conn_id=conn_id,
                       redact=[password, extra.get("client_secret", "")], data=form)
        try:
            token = resp.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            raise PermanentSourceError(f"{PROVIDER}: the token endpoint answered without access_token: "
                                       f"{resp.text[:300]!r}", provider=PROVIDER, status=resp.status_code) from None
        return token

    # -- nightly files ------------------------------------------------------------------------
    def _download(self, url: str) -> bytes | None:
        """The file's bytes, or None when it does not exist (not published yet)."""
        if url.startswith("s3://"):
            bucket, _, key = url[5:].partition("/")
            s3 = self._s3_client()
            try:
                return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except s3.exceptions.NoSuchKey:
                return None
            except Exception as exc:
                code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
                if code in ("404", "NoSuchKey", "NotFound"):
                    return None
                if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                    raise PermanentSourceError(f"{PROVIDER}: {url}: {code}; check the AWS connection", provider=PROVIDER) from exc
                raise TransientSourceError(f"{PROVIDER}: {url}: {exc}", provider=PROVIDER) from exc
        try:
            resp = request(self.session, "GET", url, provider=PROVIDER, conn_id=self.settings.sources.vnf_conn_id,
                           headers=self._auth_headers(), redact=[self._token or ""])
        except PermanentSourceError as exc:
            if exc.status == 404:
                return None
            raise
        return resp.content

    def _s3_client(self):
        if self._s3 is None:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            conn_id = self.settings.sources.vnf_s3_conn_id or self.settings.s3_conn_id
            self._s3 = S3Hook(aws_conn_id=conn_id).get_conn()
        return self._s3

    def night_file(self, day: date):
        """(rawdata key, CSV text, parsed DataFrame) of the file for UTC date ``day``, or None when
        it is not published. Reuses memory, then rawdata, then downloads (and stores) it."""
        from flarewatch.ingest.viirs import parse_vnf_csv

        if day in self._files:
            return self._files[day]
        url = file_url(self.template, day)
        name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or f"VNF_d{day:%Y%m%d}.csv"
        collection, baseline = collection_and_baseline(name)
        key = storage.raw_object_key(PROVIDER, collection, baseline, day, None, name)
        data = self.raw_store.get(key) if self.raw_store is not None else None
        fresh = data is None
        if fresh:
            data = self._download(url)
            if data is None:
                log.info("VNF file for %s not published: %s", day, url.split("?")[0])
                self._files[day] = None
                return None
            self.downloads += 1
        text = decode_vnf_bytes(data)
        try:
            df = parse_vnf_csv(text)
        except ValueError as exc:
            raise PermanentSourceError(f"{PROVIDER}: {name}: {exc}", provider=PROVIDER) from exc
        if fresh and self.raw_store is not None:
            ctype = "application/gzip" if data[:2] == b"\x1f\x8b" else "text/csv"
            self.raw_store.put(key, data, ctype)
        self._files[day] = (key, text, df, data if (fresh and self.raw_store is None) else None)
        return self._files[day]

    def fetch_viirs(self, site: Site, day: date):
        from flarewatch.ingest.viirs import (
            flare_like,
            in_bbox,
            in_time_window,
            night_window_utc,
            select_vnf_rows,
            utc_dates,
            vnf_quality_ok,
        )

        src = self.settings.sources
        window = night_window_utc(site.lon, day)
        bbox = site.bbox()
        parts, missing, raw_keys, raw_objects = [], [], [], {}
        n_rows = n_aoi = 0
        for d in utc_dates(*window):
            got = self.night_file(d)
            if got is None:
                missing.append(d)
                continue
            key, text, df, unsaved = got
            raw_keys.append(key)
            if unsaved is not None:  # no raw store: let ingest_site_day store it
                raw_objects[key] = (unsaved, "application/gzip" if unsaved[:2] == b"\x1f\x8b" else "text/csv")
            n_rows += len(df)
            mask = (vnf_quality_ok(df, src.vnf_qf_fit_exclude, src.vnf_qf_detect_exclude)
                    & in_bbox(df, bbox) & in_time_window(df, *window))
            n_aoi += int(mask.sum())
            flares = flare_like(df.loc[mask], self.settings.calibration.min_temperature_k)
            parts.append(select_vnf_rows(text, df.index.isin(flares.index)))
        meta = {"provider": PROVIDER, "files": raw_keys, "missing_dates": [d.isoformat() for d in missing],
                "bbox": list(bbox), "window_utc": [window[0].isoformat(), window[1].isoformat()],
                "rows_in_files": n_rows, "rows_in_aoi_window": n_aoi}
        night = f"night {window[0]:%Y-%m-%d %H:%M}..{window[1]:%Y-%m-%d %H:%M} UTC"
        if not parts:
            return ViirsResult(viirs_csv=None, status="no_data", outcome="nodata", meta=meta,
                               detail=f"no VNF file published for {', '.join(d.isoformat() for d in missing)} ({night})")
        csv_text = _join_csv(parts)
        n_flares = max(0, len([ln for ln in csv_text.splitlines() if ln.strip()]) - 1)
        meta["flare_like"] = n_flares
        detail = f"VNF: {n_flares} flare-like detection(s) of {n_aoi} in the AOI, {night}"
        outcome = "ok" if n_flares else "no_detections"
        if missing:
            outcome = "partial"
            detail += f"; file(s) for {', '.join(d.isoformat() for d in missing)} not published"
        return ViirsResult(viirs_csv=csv_text, status="ingested", outcome=outcome, detail=detail, meta=meta,
                           raw_objects=raw_objects, raw_keys=raw_keys)


def _join_csv(parts: list[str]) -> str:
    """Concatenate CSV texts that share a header (by column name when the headers differ)."""
    import csv
    import io

    headers = [p.splitlines()[0] if p else "" for p in parts]
    if len(set(headers)) == 1:
        return headers[0] + "\n" + "".join(p.split("\n", 1)[1] if "\n" in p else "" for p in parts)
    columns: list[str] = []
    rows: list[dict] = []
    for p in parts:
        reader = csv.DictReader(p.splitlines())
        for c in reader.fieldnames or []:
            if c not in columns:
                columns.append(c)
        rows.extend(reader)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
