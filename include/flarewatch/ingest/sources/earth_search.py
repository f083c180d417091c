"""Sentinel-2 from Earth Search (Element 84's public STAC API over the AWS open-data COGs).

No credentials. For a site-day:

1. ``POST {stac_url}/search`` for the collection (default ``sentinel-2-c1-l2a``; also
   ``sentinel-2-l2a``), the AOI polygon and the UTC day, with pystac-client's ``ItemSearch``
   (no landing-page request), which follows ``links[rel=next]`` (POST with ``body``/``merge`` as
   the STAC API spec says, or GET); at most ``max_pages`` pages. Its requests go through
   ``http.request`` (the project's session: retries, Retry-After, timeout, error taxonomy) and
   every answer is kept byte for byte in ``raw_objects`` as ``search/page-NNN.json``.
2. ``s2common.select_acquisition``: granules intersecting the AOI, granule cloud cover <=
   ``max_cloud``, the pass covering the AOI best; its granules in mosaic order.
3. For each granule, the windows over the AOI (+2 px) of the ``nir08`` (B8A), ``swir16`` (B11),
   ``swir22`` (B12) and ``scl`` COGs, read with rasterio through GDAL ``/vsicurl/`` (HTTP range
   requests; GDAL retries 429/5xx itself). Each window is kept unchanged (native dtype, grid and
   CRS) as a small GeoTIFF in ``raw_objects``.
4. Reflectance = DN * scale + offset with each asset's ``raster:bands`` scale and offset (the
   ``earthsearch:boa_offset_applied`` flag is ignored: it is unreliable; without raster:bands the
   processing baseline decides: offset -0.1 from 04.00 on), nearest-neighbour onto the site grid,
   first granule wins and later ones fill its nodata; clouds = SCL 8/9/10.

``from_raw(site, day, raw_objects)`` repeats steps 2 and 4 from stored raw objects, with no download.
Errors: ``http.PermanentSourceError`` (4xx other than 429, malformed answers) and
``http.TransientSourceError`` (429/5xx/timeouts after retries); "nothing to ingest" is an outcome
in the ``S2Result``, never an exception.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date

import numpy as np
from pystac_client import ItemSearch
from pystac_client.stac_api_io import StacApiIO

from flarewatch.config import S2_BANDS
from flarewatch.ingest.sources import http
from flarewatch.ingest.sources.s2common import (
    SCL_CLOUD_CLASSES,
    SCL_NODATA,
    S2Result,
    SiteWindow,
    baseline_has_offset,
    day_bounds,
    decode_band_window,
    encode_band_window,
    feature_datetime,
    finish_tile,
    no_tile_result,
    processing_baseline,
    reflectance_from_dn,
    reproject_to_window,
    select_acquisition,
    site_window,
    spacecraft_of,
    sun_zenith_fallback,
)
from flarewatch.sites import Site

log = logging.getLogger(__name__)

DEFAULT_STAC_URL = "https://earth-search.aws.element84.com/v1"
PROVIDER = "earth-search"
# Earth Search v1 asset keys (STAC common band names) for the pipeline's bands.
BAND_ASSETS = {"B8A": "nir08", "B11": "swir16", "B12": "swir22"}
SCL_ASSET = "scl"
WINDOW_MARGIN_PX = 2

_PAGE_NAME = re.compile(r"^search/page-(\d+)\.json$")


def _gdal_path(href: str) -> str:
    if href.startswith(("http://", "https://")):
        return "/vsicurl/" + href
    if href.startswith("s3://"):  # requester-pays / private buckets: needs AWS credentials in the env
        return "/vsis3/" + href[len("s3://"):]
    return href


_HTTP_CODE = re.compile(r"HTTP (?:response|error) code\s*:?\s*(\d{3})", re.IGNORECASE)


def _gdal_error(exc: Exception, href: str) -> http.SourceError:
    """Classify a GDAL read failure: 4xx (not 429) is permanent, the rest (5xx, timeouts) transient."""
    text = str(exc)
    m = _HTTP_CODE.search(text)
    status = int(m.group(1)) if m else None
    if status is not None and 400 <= status < 500 and status != 429:
        return http.PermanentSourceError(f"{PROVIDER}: reading {href} answered HTTP {status}: {text[:300]}",
                                         provider=PROVIDER, status=status, url=href)
    return http.TransientSourceError(f"{PROVIDER}: reading {href} failed after retries: {text[:300]}",
                                     provider=PROVIDER, status=status, url=href)


class EarthSearchS2:
    """Sentinel-2 tiles from the Earth Search STAC API (public, no credentials)."""

    name = "earth-search"

    def __init__(self, *, stac_url: str = DEFAULT_STAC_URL, collection: str = "sentinel-2-c1-l2a",
                 max_cloud: float = 80, session=None, page_limit: int = 100, max_pages: int = 10,
                 gdal_max_retry: int = 5, gdal_retry_delay_s: float = 1.0, gdal_timeout_s: int = 60):
        """``max_cloud``: highest granule ``eo:cloud_cover`` (percent) read; ``session``: a
        ``requests.Session`` (default ``http.make_session()``: retries with backoff on 429/5xx);
        ``page_limit``/``max_pages``: search page size and the most pages followed;
        ``gdal_*``: GDAL's own HTTP retry count, delay (s) and timeout (s) for the COG reads."""
        if not 0 <= max_cloud <= 100:
            raise ValueError(f"max_cloud must be a percentage in [0, 100], got {max_cloud}")
        if not (1 <= page_limit <= 10000 and max_pages >= 1):
            raise ValueError(f"page_limit must be in [1, 10000] and max_pages >= 1, got {page_limit}, {max_pages}")
        self.stac_url = stac_url.rstrip("/")
        self.collection = collection
        self.max_cloud = float(max_cloud)
        self.session = session
        self.page_limit = int(page_limit)
        self.max_pages = int(max_pages)
        self.gdal_env = {
            "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
            "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff",
            "GDAL_HTTP_MAX_RETRY": str(int(gdal_max_retry)),
            "GDAL_HTTP_RETRY_DELAY": str(float(gdal_retry_delay_s)),
            "GDAL_HTTP_TIMEOUT": str(int(gdal_timeout_s)),
            "GDAL_HTTP_USERAGENT": "flarewatch",
            "GDAL_HTTP_MULTIRANGE": "SERIAL",
            "VSI_CACHE": "TRUE",
        }

    # -- public ------------------------------------------------------------------------------
    def fetch_s2(self, site: Site, day: date) -> S2Result:
        """Search, read the band windows and build the site's tile for ``day`` (UTC)."""
        day, _, _ = day_bounds(day)
        window = site_window(site)
        raw: dict[str, tuple[bytes, str]] = {}
        self._search(window, day, raw)
        return self._build(site, day, window, raw, download=True)

    def from_raw(self, site: Site, day: date, raw_objects: dict[str, tuple[bytes, str]]) -> S2Result:
        """Rebuild the result from stored ``raw_objects`` (as returned by ``fetch_s2``), offline."""
        day, _, _ = day_bounds(day)
        return self._build(site, day, site_window(site), dict(raw_objects), download=False)

    # -- search ------------------------------------------------------------------------------
    def _session(self):
        if self.session is None:
            self.session = http.make_session()
        return self.session

    def _search(self, window: SiteWindow, day: date, raw: dict) -> None:
        _, start, end = day_bounds(day)
        search = ItemSearch(f"{self.stac_url}/search", method="POST", stac_io=_PageStacIO(self._session(), raw),
                            collections=[self.collection], intersects=window.aoi_geojson(), limit=self.page_limit,
                            datetime=f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%S}.999Z")
        try:
            for n, page in enumerate(search.pages_as_dicts(), 1):  # ends at a page without features or next link
                if n >= self.max_pages:
                    if any(ln.get("rel") == "next" for ln in page.get("links") or []):
                        log.warning("%s: stopped after %d search pages for %s on %s", PROVIDER, self.max_pages,
                                    window.site_id, day)
                    return
        except (KeyError, TypeError, AttributeError) as exc:  # e.g. a link without rel or href
            raise http.PermanentSourceError(f"{PROVIDER}: malformed STAC search page from {search.url}: {exc!r}",
                                            provider=PROVIDER, url=search.url) from exc

    # -- build -------------------------------------------------------------------------------
    def _build(self, site: Site, day: date, window: SiteWindow, raw: dict, *, download: bool) -> S2Result:
        pages = sorted((int(m.group(1)), name) for name in raw if (m := _PAGE_NAME.match(name)))
        if not pages:
            raise ValueError("raw objects hold no search/page-NNN.json: nothing to rebuild from")
        features = []
        for _, name in pages:
            features.extend(_json(raw[name][0], name).get("features") or [])
        choice = select_acquisition(features, window, max_cloud=self.max_cloud, collection=self.collection,
                                    day=day, n_pages=len(pages))
        if choice.outcome:
            return no_tile_result(choice.outcome, choice.detail, window=window, collection=self.collection,
                                  source=self.name, raw_objects=raw)

        rho = np.full((len(S2_BANDS), window.height, window.width), np.nan, dtype=np.float32)
        scl = np.full((window.height, window.width), SCL_NODATA, dtype=np.uint8)
        have_scl = np.zeros((window.height, window.width), dtype=bool)
        contributors: list[dict] = []
        notes: list[str] = []
        for item in choice.features:
            item_id = str(item["id"])
            raw.setdefault(f"items/{item_id}.json", (json.dumps(item, indent=1).encode(), "application/geo+json"))
            baseline = processing_baseline(item)
            bands = []
            for band in S2_BANDS:
                asset_key = BAND_ASSETS[band]
                data = self._window(raw, item, asset_key, window, download)
                if data is None:
                    bands = None
                    break
                scale, offset, nodata = _asset_scaling(item, asset_key, baseline)
                bands.append(reflectance_from_dn(data, scale, offset, nodata))
            if bands is None:
                notes.append(f"{item_id} does not cover the AOI")
                continue
            item_rho = np.stack(bands)
            fill = np.all(np.isfinite(item_rho), axis=0) & ~np.all(np.isfinite(rho), axis=0)
            if not fill.any():
                continue
            rho[:, fill] = item_rho[:, fill]
            has_scl = SCL_ASSET in item.get("assets", {})
            scl_data = self._window(raw, item, SCL_ASSET, window, download) if has_scl else None
            if scl_data is not None:
                scl[fill] = scl_data[fill]
                have_scl |= fill
            contributors.append(item)

        first = contributors[0] if contributors else choice.features[0]
        acquired_at = feature_datetime(first)
        item_ids = [str(f["id"]) for f in (contributors or choice.features)]
        baselines = sorted({b for b in (processing_baseline(f) for f in (contributors or choice.features)) if b})
        baseline = ",".join(baselines) or None
        if not contributors:
            return no_tile_result("nodata", f"{self.collection} {' + '.join(item_ids)} over {site.site_id} on "
                                  f"{day.isoformat()}: every AOI pixel is nodata", window=window,
                                  collection=self.collection, source=self.name, raw_objects=raw, item_ids=item_ids,
                                  baseline=baseline, acquired_at=acquired_at)
        sun_elev = (first.get("properties") or {}).get("view:sun_elevation")
        sza = 90.0 - float(sun_elev) if sun_elev is not None else sun_zenith_fallback(site.lat, site.lon, acquired_at)
        cloud = None
        valid = np.all(np.isfinite(rho), axis=0)
        if have_scl[valid].all():
            cloud = np.isin(scl, SCL_CLOUD_CLASSES)
        elif have_scl.any():
            cloud = np.isin(scl, SCL_CLOUD_CLASSES) & have_scl
            notes.append("SCL missing for part of the AOI (no cloud mask there)")
        return finish_tile(rho, cloud, window, site=site, day=day, acquired_at=acquired_at, sun_zenith_deg=sza,
                           collection=self.collection, source=self.name, item_ids=item_ids, baseline=baseline,
                           raw_objects=raw, notes=notes, spacecraft=spacecraft_of([first]))

    def _window(self, raw: dict, item: dict, asset_key: str, window: SiteWindow, download: bool) -> np.ndarray | None:
        """The asset's window resampled onto the site grid (native dtype), or None if it misses the AOI."""

        name = f"windows/{item['id']}/{asset_key}.tif"
        if name not in raw:
            if not download:
                raise ValueError(f"raw objects lack {name}: cannot rebuild without downloading")
            asset = (item.get("assets") or {}).get(asset_key)
            if not asset or not asset.get("href"):
                raise http.PermanentSourceError(f"{PROVIDER}: item {item['id']} has no {asset_key!r} asset",
                                                provider=PROVIDER)
            data = self._read_window(asset["href"], window)
            raw[name] = (data, "image/tiff") if data is not None else (b"", "application/octet-stream")
        payload = raw[name][0]
        if not payload:  # the asset's raster does not reach the AOI
            return None
        arr, transform, crs, nodata, _ = decode_band_window(payload)
        return reproject_to_window(arr, transform, crs, window, src_nodata=0 if nodata is None else nodata)

    def _read_window(self, href: str, window: SiteWindow) -> bytes | None:
        """The AOI window (+ margin) of a COG, as read (native values, grid and CRS), or None if disjoint."""
        import math

        import rasterio
        from rasterio.errors import RasterioIOError
        from rasterio.warp import transform_bounds
        from rasterio.windows import Window


        try:
            with rasterio.Env(**self.gdal_env), rasterio.open(_gdal_path(href)) as src:
                left, bottom, right, top = transform_bounds(rasterio.crs.CRS.from_epsg(window.crs_epsg), src.crs,
                                                            *window.bounds, densify_pts=21)
                inv = ~src.transform
                corners = ((left, top), (right, top), (left, bottom), (right, bottom))
                cols, rows = zip(*(inv @ corner for corner in corners))
                c0 = max(math.floor(min(cols)) - WINDOW_MARGIN_PX, 0)
                r0 = max(math.floor(min(rows)) - WINDOW_MARGIN_PX, 0)
                c1 = min(math.ceil(max(cols)) + WINDOW_MARGIN_PX, src.width)
                r1 = min(math.ceil(max(rows)) + WINDOW_MARGIN_PX, src.height)
                if c1 <= c0 or r1 <= r0:
                    return None
                win = Window(c0, r0, c1 - c0, r1 - r0)
                data = src.read(1, window=win)
                return encode_band_window(data, src.window_transform(win), src.crs, nodata=src.nodata,
                                          tags={"HREF": href, "WINDOW": f"{c0},{r0},{c1 - c0},{r1 - r0}"})
        except RasterioIOError as exc:
            raise _gdal_error(exc, href) from exc


class _PageStacIO(StacApiIO):
    """pystac-client's HTTP layer sending through ``http.request`` on the project's session (its
    retries, Retry-After, timeout and ``SourceError`` taxonomy instead of ``APIError``), keeping
    every answer unchanged in ``raw`` as ``search/page-NNN.json``."""

    def __init__(self, session, raw: dict):
        super().__init__(max_retries=None)
        self.session = session
        self.raw = raw
        self.pages = 0

    def request(self, href: str, method: str | None = None, headers: dict | None = None,
                parameters: dict | None = None) -> str:
        method = (method or "GET").upper()
        kw = {"headers": {"Accept": "application/geo+json", **(headers or {})}}
        kw["json" if method in ("POST", "PUT", "PATCH") else "params"] = parameters
        resp = http.request(self.session, method, href, provider=PROVIDER, **kw)
        self.pages += 1
        self.raw[f"search/page-{self.pages:03d}.json"] = (resp.content,
                                                          resp.headers.get("Content-Type", "application/geo+json"))
        _json(resp.content, href)  # not a JSON object: PermanentSourceError, not pystac's decode error
        return resp.content.decode("utf-8")


def _json(data: bytes, where: str) -> dict:
    return http.json_object(data, where, provider=PROVIDER)


def _asset_scaling(item: dict, asset_key: str, baseline: str | None) -> tuple[float, float, float]:
    """(scale, offset, nodata) of an asset from its ``raster:bands`` (the baseline decides a missing offset)."""
    asset = (item.get("assets") or {}).get(asset_key) or {}
    rb = (asset.get("raster:bands") or [{}])[0]
    scale = float(rb["scale"]) if rb.get("scale") is not None else 0.0001
    if rb.get("offset") is not None:
        offset = float(rb["offset"])
    else:
        offset = -0.1 if baseline_has_offset(baseline) else 0.0
    nodata = float(rb["nodata"]) if rb.get("nodata") is not None else 0.0
    return scale, offset, nodata
