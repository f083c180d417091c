"""Sentinel-2 from Sentinel Hub (Copernicus Data Space Ecosystem, or the commercial service) via sentinelhub-py.

Credentials: an OAuth client (id + secret). ``SentinelHubS2.from_airflow_connection()`` reads them
from the Airflow connection ``flarewatch_sentinelhub``: login = client id, password = client
secret, host = the service base URL (default CDSE ``https://sh.dataspace.copernicus.eu``; the
commercial service is ``https://services.sentinel-hub.com``), extra (all optional)
``{"collection": "l2a" | "l1c", "token_url": ..., "max_cloud": 80, "cloud_band": "auto"}``.

For a site-day:

1. Catalog API search (``SentinelHubCatalog``: ``/api/v1/catalog/1.0.0/search``) for the
   collection over the AOI's lon/lat bbox and the UTC day, following the ``context.next`` token
   (every page kept as received); then ``s2common.select_acquisition`` (granules intersecting
   the AOI, ``eo:cloud_cover`` <= ``max_cloud``, the pass covering the AOI best).
2. One Process API request (``SentinelHubRequest``) over the site's grid: the AOI bounds in the
   site's UTM zone, width x height = the 20 m grid, the chosen pass's time range,
   ``maxCloudCoverage`` = ``max_cloud``, mosaicking ``leastCC``, nearest resampling. The
   evalscript returns one uint16 TIFF: B8A, B11, B12 already in the pipeline's DN convention
   (DN = (reflectance + 0.1) / 0.0001, 1..65535; 0 = nodata), the cloud band (SCL class for L2A;
   the s2cloudless CLM mask for L1C, where the deployment has it; see ``cloud_band``), dataMask,
   and the sun zenith angle x 100. Reflectances are Sentinel Hub's (``harmonizeValues`` left at
   its default: the baseline 04.00 offset is already applied).
3. The TIFF is stored as received; ``from_raw`` builds the tile from it (clouds: SCL 8/9/10 or CLM == 1).

Retries: sentinelhub-py's own (5xx and connection errors: ``max_attempts`` tries with sleeps of
``retry_sleep_s`` x 3^n; 429: waits Retry-After, at most ``max_rate_limit_retries`` times).
Errors are re-raised as ``http.PermanentSourceError`` (bad credentials, 4xx: fail fast, with the
connection to check) or ``http.TransientSourceError`` (retries exhausted).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from datetime import UTC, date, timedelta

import numpy as np

from flarewatch.config import S2_NODATA_DN, S2_REFLECTANCE_OFFSET, S2_REFLECTANCE_SCALE
from flarewatch.ingest.sources import http
from flarewatch.ingest.sources.s2common import (
    SCL_CLOUD_CLASSES,
    S2Result,
    SiteWindow,
    day_bounds,
    feature_datetime,
    finish_tile,
    no_tile_result,
    processing_baseline,
    select_acquisition,
    site_window,
    spacecraft_of,
    sun_zenith_fallback,
)
from flarewatch.sites import Site

log = logging.getLogger(__name__)

PROVIDER = "sentinel-hub"
DEFAULT_CONN_ID = "flarewatch_sentinelhub"
CDSE_BASE_URL = "https://sh.dataspace.copernicus.eu"
CDSE_TOKEN_URL = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
COMMERCIAL_BASE_URL = "https://services.sentinel-hub.com"
COMMERCIAL_TOKEN_URL = "https://services.sentinel-hub.com/auth/realms/main/protocol/openid-connect/token"
COLLECTIONS = ("l2a", "l1c")
CLOUD_BANDS = ("auto", "SCL", "CLM", "none")
# Output bands of the evalscript's TIFF, in order.
RESPONSE_BANDS = ("B8A", "B11", "B12", "CLOUD", "dataMask", "SZA_X100")
CLM_CLOUD = 1

_EVALSCRIPT = """//VERSION=3
// FlareWatch: B8A, B11, B12 as uint16 DN with DN = (reflectance - ({offset})) / {scale} in 1..65535
// (0 = nodata), then the cloud band ({cloud}), dataMask, and the sun zenith angle x 100.
function setup() {{
  return {{
    input: [{{bands: [{inputs}]}}],
    output: {{id: "default", bands: 6, sampleType: "UINT16"}}
  }};
}}
function dn(r) {{
  return Math.min(65535, Math.max(1, Math.round((r - ({offset})) / {scale})));
}}
function evaluatePixel(s) {{
  if (s.dataMask === 0) {{
    return [0, 0, 0, 0, 0, 0];
  }}
  return [dn(s.B8A), dn(s.B11), dn(s.B12), {cloud_value}, 1, Math.round(s.sunZenithAngles * 100)];
}}
"""


def evalscript(cloud_band: str) -> str:
    """The evalscript for a cloud band 'SCL', 'CLM' or 'none' (see the module docstring)."""
    inputs = ["B8A", "B11", "B12"] + ([cloud_band] if cloud_band != "none" else []) + ["dataMask", "sunZenithAngles"]
    return _EVALSCRIPT.format(
        offset=S2_REFLECTANCE_OFFSET, scale=S2_REFLECTANCE_SCALE,
        cloud=cloud_band if cloud_band != "none" else "none: 0",
        inputs=", ".join(f'"{b}"' for b in inputs),
        cloud_value=f"s.{cloud_band}" if cloud_band != "none" else "0",
    )


def default_token_url(base_url: str) -> str:
    """CDSE's Keycloak for ``*.dataspace.copernicus.eu``, else the commercial service's."""
    return CDSE_TOKEN_URL if "dataspace.copernicus.eu" in base_url else COMMERCIAL_TOKEN_URL


def _data_collection(level: str, base_url: str):
    """``DataCollection.SENTINEL2_L2A``/``L1C`` bound to ``base_url`` (CDSE needs its own service_url)."""
    from sentinelhub import DataCollection

    base = DataCollection.SENTINEL2_L2A if level == "l2a" else DataCollection.SENTINEL2_L1C
    url = base_url.rstrip("/")
    if (base.service_url or "").rstrip("/") == url:
        return base
    name = f"FLAREWATCH_SENTINEL2_{level.upper()}_{hashlib.sha1(url.encode()).hexdigest()[:10]}"
    # An equal definition registered under another name (e.g. by the user) is reused.
    return DataCollection(base.value.derive(service_url=url, _name=name))


class SentinelHubS2:
    """Sentinel-2 L2A or L1C tiles from a Sentinel Hub deployment (CDSE by default)."""

    name = "sentinel-hub"

    def __init__(self, *, client_id: str, client_secret: str, base_url: str = CDSE_BASE_URL,
                 token_url: str | None = None, collection: str = "l2a", max_cloud: float = 80,
                 cloud_band: str = "auto", conn_id: str = DEFAULT_CONN_ID, page_limit: int = 100,
                 max_pages: int = 10, max_attempts: int = 4, retry_sleep_s: float = 5.0,
                 rate_limit_wait_s: float = 30.0, max_rate_limit_retries: int = 5, timeout_s: float = 120.0):
        """``collection``: 'l2a' or 'l1c'; ``max_cloud``: highest granule cloud cover (percent);
        ``cloud_band``: 'auto' (SCL for L2A, CLM for L1C), 'SCL', 'CLM' or 'none' (a deployment
        without CLM); ``conn_id``: named in credential errors; ``max_attempts``/``retry_sleep_s``:
        tries and first sleep (s, x3 each retry) on 5xx and connection errors;
        ``rate_limit_wait_s``: wait on a 429 without Retry-After; ``timeout_s``: per request."""
        collection = str(collection).lower()
        if collection not in COLLECTIONS:
            raise ValueError(f"collection must be one of {COLLECTIONS}, got {collection!r}")
        if cloud_band not in CLOUD_BANDS:
            raise ValueError(f"cloud_band must be one of {CLOUD_BANDS}, got {cloud_band!r}")
        if not 0 <= float(max_cloud) <= 100:
            raise ValueError(f"max_cloud must be a percentage in [0, 100], got {max_cloud}")
        if not client_id or not client_secret:
            raise http.PermanentSourceError(
                f"{PROVIDER}: no OAuth client id/secret; set login (client id) and password (client secret) "
                f"of Airflow connection {conn_id!r}", provider=PROVIDER)
        self.client_id, self._client_secret = client_id, client_secret
        self.base_url = base_url.rstrip("/")
        self.token_url = token_url or default_token_url(self.base_url)
        self.level = collection
        self.collection = f"sentinel-2-{collection}"
        self.max_cloud = float(max_cloud)
        self.cloud_band = ("SCL" if collection == "l2a" else "CLM") if cloud_band == "auto" else cloud_band
        self.conn_id = conn_id
        self.page_limit, self.max_pages = int(page_limit), int(max_pages)
        self.rate_limit_wait_s = float(rate_limit_wait_s)
        self.timeout_s = float(timeout_s)
        self.max_attempts, self.retry_sleep_s = int(max_attempts), float(retry_sleep_s)
        self.max_rate_limit_retries = int(max_rate_limit_retries)
        self._sh_session = None

    def __repr__(self) -> str:
        return (f"SentinelHubS2(base_url={self.base_url!r}, collection={self.level!r}, client_id={self.client_id!r}, "
                f"max_cloud={self.max_cloud:g})")

    @classmethod
    def from_airflow_connection(cls, conn_id: str = DEFAULT_CONN_ID, **overrides) -> SentinelHubS2:
        """Build from Airflow connection ``conn_id`` (login = client id, password = client secret,
        host = base URL, extra: collection, token_url, max_cloud, cloud_band). ``overrides`` win."""
        from airflow.sdk import BaseHook

        try:
            c = BaseHook.get_connection(conn_id)
        except Exception as exc:  # AirflowNotFoundException and friends
            raise http.PermanentSourceError(
                f"{PROVIDER}: Airflow connection {conn_id!r} is not defined ({exc}); e.g. "
                f"AIRFLOW_CONN_{conn_id.upper()}='{{\"conn_type\": \"http\", \"login\": \"<client id>\", "
                f"\"password\": \"<client secret>\", \"host\": \"{CDSE_BASE_URL}\", \"extra\": {{\"collection\": \"l2a\"}}}}'",
                provider=PROVIDER) from exc
        extra = c.extra_dejson or {}
        host = (c.host or "").strip()
        if host and "://" not in host:
            scheme = c.schema if c.schema in ("http", "https") else "https"
            host = f"{scheme}://{host}" + (f":{c.port}" if c.port else "")
        kwargs = {"client_id": c.login or "", "client_secret": c.password or "", "conn_id": conn_id,
                  "base_url": extra.get("base_url") or host or CDSE_BASE_URL}
        for key in ("collection", "token_url", "max_cloud", "cloud_band"):
            if extra.get(key) not in (None, ""):
                kwargs[key] = extra[key]
        kwargs.update(overrides)
        return cls(**kwargs)

    # -- public ------------------------------------------------------------------------------
    def fetch_s2(self, site: Site, day: date) -> S2Result:
        """Catalog search, one Process API request, and the site's tile for ``day`` (UTC)."""
        day, _, _ = day_bounds(day)
        window = site_window(site)
        raw: dict[str, tuple[bytes, str]] = {}
        self._catalog_search(window, day, raw)
        choice = self._choose(window, day, raw)
        if choice.outcome is None:
            request = self._process_request(window, choice.features)
            raw["process/request.json"] = (json.dumps(request.payload, indent=1, default=str).encode(), "application/json")
            response = self._download(request.download_list[0], what="process")
            raw["process/response.tif"] = (response.content, response.headers.get("Content-Type", "image/tiff"))
        return self._build(site, day, window, raw)

    def from_raw(self, site: Site, day: date, raw_objects: dict[str, tuple[bytes, str]]) -> S2Result:
        """Rebuild the result from stored ``raw_objects`` (as returned by ``fetch_s2``), offline."""
        day, _, _ = day_bounds(day)
        return self._build(site, day, site_window(site), dict(raw_objects))

    # -- sentinelhub-py plumbing -------------------------------------------------------------
    def _config(self):
        from sentinelhub import SHConfig

        # use_defaults: never read or write ~/.config/sentinelhub/config.toml
        return SHConfig(use_defaults=True, sh_client_id=self.client_id, sh_client_secret=self._client_secret,
                        sh_base_url=self.base_url, sh_token_url=self.token_url,
                        max_download_attempts=self.max_attempts, download_sleep_time=self.retry_sleep_s,
                        download_timeout_seconds=self.timeout_s, max_retries=self.max_rate_limit_retries)

    def _client(self):
        from sentinelhub import SentinelHubDownloadClient, SentinelHubSession

        config = self._config()
        if self._sh_session is None:
            try:
                self._sh_session = SentinelHubSession(config=config)
            except Exception as exc:
                raise self._error(exc, "token") from exc
        return SentinelHubDownloadClient(config=config, session=self._sh_session,
                                         default_retry_time=self.rate_limit_wait_s)

    def _download(self, request, *, what: str):
        client = self._client()
        try:
            return client.download([request], max_threads=1, decode_data=False)[0]
        except Exception as exc:
            raise self._error(exc, what, request.url) from exc

    def _error(self, exc: Exception, what: str, url: str | None = None) -> http.SourceError:
        """Map sentinelhub-py / oauthlib / requests failures onto the source error taxonomy."""
        import requests
        from oauthlib.oauth2.rfc6749.errors import OAuth2Error
        from sentinelhub.exceptions import (
            DownloadFailedException,
            OutOfRequestsException,
        )

        hint = f"check the client id and secret in Airflow connection {self.conn_id!r}"
        if isinstance(exc, OAuth2Error):
            status = getattr(exc, "status_code", None)
            return http.PermanentSourceError(
                f"{PROVIDER}: authentication at {self.token_url} failed (HTTP {status}, {exc.error}: "
                f"{exc.description}); {hint}", provider=PROVIDER, status=status, url=self.token_url)
        if isinstance(exc, OutOfRequestsException):
            return http.TransientSourceError(f"{PROVIDER}: {what} still rate-limited (HTTP 429) after "
                                             f"{self.max_rate_limit_retries} tries", provider=PROVIDER, status=429,
                                             url=url or "")
        if isinstance(exc, ValueError) and "sh_client_id" in str(exc):
            return http.PermanentSourceError(f"{PROVIDER}: {exc}; {hint}", provider=PROVIDER)
        cause = exc.request_exception if isinstance(exc, DownloadFailedException) else exc
        if isinstance(cause, requests.HTTPError) and cause.response is not None:
            status = cause.response.status_code
            where = url or cause.response.url
            body = (cause.response.text or "")[: http.BODY_EXCERPT_CHARS]
            if 400 <= status < 500 and status != 429:
                extra = f"; {hint}" if status in (401, 403) else ""
                return http.PermanentSourceError(f"{PROVIDER}: {what} {where} answered HTTP {status}{extra}: {body!r}",
                                                 provider=PROVIDER, status=status, url=where)
            return http.TransientSourceError(f"{PROVIDER}: {what} {where} still answered HTTP {status} after "
                                             f"{self.max_attempts} tries: {body!r}", provider=PROVIDER,
                                             status=status, url=where)
        if isinstance(cause, (requests.ConnectionError, requests.Timeout)):
            return http.TransientSourceError(f"{PROVIDER}: {what} {url or ''} failed after {self.max_attempts} "
                                             f"tries: {cause}", provider=PROVIDER, url=url or "")
        if isinstance(exc, DownloadFailedException):
            return http.TransientSourceError(f"{PROVIDER}: {what} failed: {exc}", provider=PROVIDER, url=url or "")
        return http.PermanentSourceError(f"{PROVIDER}: {what} failed: {exc!r}", provider=PROVIDER, url=url or "")

    # -- catalog -----------------------------------------------------------------------------
    def _catalog_search(self, window: SiteWindow, day: date, raw: dict) -> None:
        from sentinelhub import (
            CRS,
            BBox,
            DownloadRequest,
            Geometry,
            MimeType,
            SentinelHubCatalog,
        )
        from sentinelhub.constants import RequestType
        from shapely.geometry import shape

        _, start, end = day_bounds(day)
        west, south, east, north = window.lonlat_bbox()
        if west <= east:
            where = {"bbox": BBox((west, south, east, north), CRS.WGS84)}
        else:  # the AOI crosses the antimeridian: search its two halves, not a world-wide bbox
            where = {"geometry": Geometry(shape(window.aoi_geojson()), CRS.WGS84)}
        catalog = SentinelHubCatalog(config=self._config())
        search = catalog.search(_data_collection(self.level, self.base_url), **where,
                                time=(start.replace(tzinfo=None), end.replace(tzinfo=None)), limit=self.page_limit)
        next_token = None
        for page in range(1, self.max_pages + 1):
            payload = dict(search.params)
            if next_token is not None:
                payload["next"] = next_token
            request = DownloadRequest(url=search.url, post_values=payload, request_type=RequestType.POST,
                                      headers={"Content-Type": MimeType.JSON.get_string()}, data_type=MimeType.JSON,
                                      use_session=True)
            response = self._download(request, what="catalog search")
            raw[f"catalog/page-{page:03d}.json"] = (response.content,
                                                    response.headers.get("Content-Type", "application/json"))
            doc = _json(response.content, search.url)
            next_token = (doc.get("context") or {}).get("next")
            if next_token is None or not doc.get("features"):
                return
        log.warning("%s: stopped after %d catalog pages for %s on %s", PROVIDER, self.max_pages, window.site_id, day)

    def _choose(self, window: SiteWindow, day: date, raw: dict):
        pages = sorted((int(m.group(1)), name) for name in raw if (m := _PAGE_NAME.match(name)))
        if not pages:
            raise ValueError("raw objects hold no catalog/page-NNN.json: nothing to rebuild from")
        features = []
        for _, name in pages:
            features.extend(_json(raw[name][0], name).get("features") or [])
        return select_acquisition(features, window, max_cloud=self.max_cloud, collection=self.collection,
                                  day=day, n_pages=len(pages))

    # -- process -----------------------------------------------------------------------------
    def _process_request(self, window: SiteWindow, features: list[dict]):
        from sentinelhub import CRS, BBox, MimeType, MosaickingOrder, SentinelHubRequest

        times = [feature_datetime(f) for f in features]
        t0 = (min(times) - timedelta(minutes=2)).astimezone(UTC).replace(tzinfo=None)
        t1 = (max(times) + timedelta(minutes=2)).astimezone(UTC).replace(tzinfo=None)
        return SentinelHubRequest(
            evalscript=evalscript(self.cloud_band),
            input_data=[SentinelHubRequest.input_data(
                data_collection=_data_collection(self.level, self.base_url), time_interval=(t0, t1),
                maxcc=self.max_cloud / 100.0, mosaicking_order=MosaickingOrder.LEAST_CC,
                upsampling="NEAREST", downsampling="NEAREST")],
            responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
            bbox=BBox(window.bounds, crs=CRS(window.crs_epsg)),
            size=(window.width, window.height),
            config=self._config(),
        )

    def _build(self, site: Site, day: date, window: SiteWindow, raw: dict) -> S2Result:
        choice = self._choose(window, day, raw)
        if choice.outcome:
            return no_tile_result(choice.outcome, choice.detail, window=window, collection=self.collection,
                                  source=self.name, raw_objects=raw)
        item_ids = [str(f.get("id")) for f in choice.features]
        baselines = sorted({b for b in (processing_baseline(f) for f in choice.features) if b})
        baseline = ",".join(baselines) or None
        acquired_at = feature_datetime(choice.features[0])
        if "process/response.tif" not in raw:
            raise ValueError("raw objects lack process/response.tif: cannot rebuild without downloading")
        bands = _decode_response(raw["process/response.tif"][0], window)
        valid = bands[RESPONSE_BANDS.index("dataMask")] > 0
        dn = bands[:3]
        valid &= np.all(dn != S2_NODATA_DN, axis=0)
        if not valid.any():
            return no_tile_result("nodata", f"{self.collection} {' + '.join(item_ids)} over {site.site_id} on "
                                  f"{day.isoformat()}: every AOI pixel is nodata", window=window,
                                  collection=self.collection, source=self.name, raw_objects=raw,
                                  item_ids=item_ids, baseline=baseline, acquired_at=acquired_at)
        rho = np.where(valid[None], dn.astype(np.float32) * np.float32(S2_REFLECTANCE_SCALE)
                       + np.float32(S2_REFLECTANCE_OFFSET), np.nan).astype(np.float32)
        cloud_code = bands[RESPONSE_BANDS.index("CLOUD")]
        if self.cloud_band == "SCL":
            cloud = np.isin(cloud_code, SCL_CLOUD_CLASSES)
        elif self.cloud_band == "CLM":
            cloud = cloud_code == CLM_CLOUD
        else:
            cloud = None
        sza_band = bands[RESPONSE_BANDS.index("SZA_X100")][valid]
        sza = float(np.mean(sza_band)) / 100.0 if sza_band.size and sza_band.any() else \
            sun_zenith_fallback(site.lat, site.lon, acquired_at)
        return finish_tile(rho, cloud, window, site=site, day=day, acquired_at=acquired_at, sun_zenith_deg=sza,
                           collection=self.collection, source=self.name, item_ids=item_ids, baseline=baseline,
                           raw_objects=raw, spacecraft=spacecraft_of(choice.features))


_PAGE_NAME = re.compile(r"^catalog/page-(\d+)\.json$")


def _json(data: bytes, where: str) -> dict:
    return http.json_object(data, where, provider=PROVIDER)


def _decode_response(data: bytes, window: SiteWindow) -> np.ndarray:
    """The Process API TIFF as a (6, H, W) uint16 array, checked against the site grid."""
    from rasterio.errors import RasterioIOError
    from rasterio.io import MemoryFile

    try:
        with MemoryFile(data) as mem, mem.open() as src:
            arr = src.read()
    except RasterioIOError as exc:
        raise http.PermanentSourceError(f"{PROVIDER}: the Process API answer is not a readable TIFF: {exc}",
                                        provider=PROVIDER) from exc
    expected = (len(RESPONSE_BANDS), window.height, window.width)
    if arr.shape != expected:
        raise http.PermanentSourceError(f"{PROVIDER}: the Process API TIFF has shape {arr.shape}, expected {expected}",
                                        provider=PROVIDER)
    return arr.astype(np.uint16, copy=False)
