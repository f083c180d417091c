"""Stand-ins for Earth Search and Sentinel Hub on the local test server (``http_server`` fixture).

- ``EarthSearchStub``: ``POST /v1/search`` over the real fixture items (``tests/fixtures/earth-search``,
  asset hrefs rewritten to the local server), paginated with ``links[rel=next]`` as stac-server
  does (POST, full body with a ``next`` token, ``merge: false``; or, with ``next_method="GET"``,
  a GET link carrying the parameters in its query string); COGs at the asset hrefs, written
  from the demo simulator in the item's UTM zone at 20 m as uint16 with the item's
  ``raster:bands`` scale/offset (served with HTTP Range support, read by GDAL ``/vsicurl/``).
- ``SentinelHubStub``: the OAuth token endpoint (client-credentials form, 401 ``invalid_client``
  for a wrong secret), the Catalog API search (paginated with ``context.next``) and the Process
  API (a 6-band uint16 TIFF, as the FlareWatch evalscript returns, built from the simulator).
- ``live``: marks a test ``live`` and skips it unless ``FLAREWATCH_LIVE_TESTS=1``.

Imported by the Sentinel-2 test modules (this directory's conftest belongs to the VIIRS sources).
"""

from __future__ import annotations

import base64
import copy
import json
import os
from datetime import date, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "earth-search"
T38XNF = "S2B_T38XNF_20250422T091553_L2A"  # UTM 38N, 2025-04-22, eo:cloud_cover 91.1 %
T01WCR = "S2B_T01WCR_20250427T000611_L2A"  # UTM 1N at the antimeridian, 2025-04-27, 26.7 %
BAND_ASSETS = {"nir08": 0, "swir16": 1, "swir22": 2}  # asset -> index in the tile's (B8A, B11, B12)

live = pytest.mark.skipif(os.environ.get("FLAREWATCH_LIVE_TESTS") != "1",
                          reason="live test against the real service: set FLAREWATCH_LIVE_TESTS=1")


def load_item(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def item_day(item: dict) -> date:
    return datetime.fromisoformat(item["properties"]["datetime"].replace("Z", "+00:00")).date()


def item_grid(item: dict, asset: str = "swir16"):
    """(Affine, epsg) of an asset's full granule grid from ``proj:transform`` / ``proj:epsg``."""
    from affine import Affine

    a, b, c, d, e, f = item["assets"][asset]["proj:transform"][:6]
    return Affine(a, b, c, d, e, f), int(item["properties"]["proj:epsg"])


# ------------------------------------------------------------------------------------------
# Rasters
# ------------------------------------------------------------------------------------------
def write_cog(data: np.ndarray, transform, epsg: int, nodata=0) -> bytes:
    """A single-band Cloud-Optimized GeoTIFF (256 px blocks, deflate, overviews) of ``data``."""
    import rasterio
    from rasterio.io import MemoryFile

    h, w = data.shape
    with MemoryFile() as mem:
        with mem.open(driver="COG", height=h, width=w, count=1, dtype=str(data.dtype),
                      crs=rasterio.crs.CRS.from_epsg(epsg), transform=transform, nodata=nodata,
                      blocksize=256, compress="deflate", overview_resampling="nearest") as dst:
            dst.write(data, 1)
        return mem.read()


def scene_reflectance(site, day):
    """The simulator's scene for the site-day: (reflectance float32 (3, H, W) NaN = nodata, cloud bool, tile)."""
    from flarewatch.simulation.scene import simulate_scene

    tile = simulate_scene(site, day).tile
    rho = np.stack([tile.reflectance(b) for b in ("B8A", "B11", "B12")])
    return rho, tile.cloud_mask.copy(), tile


def cogs_for_item(item: dict, site, day, *, margin_px: int = 30, offset: float | None = None,
                  keep=None, cloud: np.ndarray | None = None, scl_clear: int = 5) -> dict[str, bytes]:
    """COGs of the simulated site-day in the item's grid (its UTM zone, 20 m), as Earth Search stores them.

    The raster covers the site's window (reprojected into the item's grid) plus ``margin_px``,
    not the whole granule. DN = rint((rho - offset) / scale) with the asset's raster:bands scale
    and ``offset`` (default: the item's raster:bands offset), 0 = nodata. ``keep``: optional
    callable (x, y arrays of pixel centres in the item CRS) -> bool array: pixels outside are
    nodata (a footprint or granule edge). ``cloud``: override of the simulator's cloud mask (site
    grid); SCL is 9 (cloud high probability) there, ``scl_clear`` (5 = not vegetated) elsewhere.
    """
    import rasterio
    from affine import Affine
    from rasterio.warp import Resampling, reproject, transform_bounds

    from flarewatch.ingest.sources.s2common import site_window

    rho, sim_cloud, tile = scene_reflectance(site, day)
    if cloud is None:
        cloud = sim_cloud
    win = site_window(site)
    full, epsg = item_grid(item)
    left, bottom, right, top = transform_bounds(rasterio.crs.CRS.from_epsg(win.crs_epsg),
                                                rasterio.crs.CRS.from_epsg(epsg), *win.bounds, densify_pts=21)
    c0 = int(np.floor((left - full.c) / full.a)) - margin_px
    c1 = int(np.ceil((right - full.c) / full.a)) + margin_px
    r0 = int(np.floor((top - full.f) / full.e)) - margin_px
    r1 = int(np.ceil((bottom - full.f) / full.e)) + margin_px
    transform = Affine(full.a, 0.0, full.c + c0 * full.a, 0.0, full.e, full.f + r0 * full.e)
    shape = (r1 - r0, c1 - c0)
    src_crs, dst_crs = rasterio.crs.CRS.from_epsg(win.crs_epsg), rasterio.crs.CRS.from_epsg(epsg)

    def warp(arr, nodata):
        out = np.full(shape, nodata, dtype=arr.dtype)
        reproject(arr, out, src_transform=win.transform, src_crs=src_crs, src_nodata=nodata,
                  dst_transform=transform, dst_crs=dst_crs, dst_nodata=nodata, resampling=Resampling.nearest)
        return out

    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    xs, ys = transform @ (cols + 0.5, rows + 0.5)
    inside = np.ones(shape, dtype=bool) if keep is None else np.asarray(keep(xs, ys), dtype=bool)
    out: dict[str, bytes] = {}
    valid = None
    for asset, i in BAND_ASSETS.items():
        rb = item["assets"][asset]["raster:bands"][0]
        scale = float(rb["scale"])
        off = float(rb["offset"]) if offset is None else offset
        band = warp(np.where(np.isfinite(rho[i]), rho[i], np.nan).astype(np.float32), np.nan)
        ok = np.isfinite(band) & inside
        dn = np.zeros(shape, dtype=np.uint16)
        dn[ok] = np.clip(np.rint((band[ok] - off) / scale), 1, 65535).astype(np.uint16)
        valid = ok if valid is None else (valid & ok)
        out[asset] = dn
    for asset in BAND_ASSETS:
        out[asset][~valid] = 0
    scl = warp(np.where(cloud, 9, scl_clear).astype(np.uint8) * tile.valid.astype(np.uint8), 0)
    scl[~valid] = 0
    out["scl"] = scl
    return {asset: write_cog(arr, transform, epsg) for asset, arr in out.items()}


# ------------------------------------------------------------------------------------------
# Earth Search
# ------------------------------------------------------------------------------------------
def _overlaps_day(interval: str, when: str) -> bool:
    start, _, end = interval.partition("/")
    t = datetime.fromisoformat(when.replace("Z", "+00:00"))
    lo = datetime.fromisoformat(start.replace("Z", "+00:00")) if start not in ("", "..") else None
    hi = datetime.fromisoformat(end.replace("Z", "+00:00")) if end not in ("", "..") else None
    return (lo is None or t >= lo) and (hi is None or t <= hi)


class EarthSearchStub:
    """``POST`` (and ``GET``) ``{url}/v1/search`` over the items added with ``add``; COGs at their rewritten hrefs."""

    def __init__(self, server, *, page_size: int | None = None, next_method: str = "POST"):
        self.server = server
        self.items: list[dict] = []
        self.page_size = page_size
        self.next_method = next_method
        self.search_bodies: list[dict] = []
        self.stac_url = server.url + "/v1"
        server.routes["/v1/search"] = self.search

    def add(self, item: dict, cogs: dict[str, bytes] | None = None, *, item_id: str | None = None) -> dict:
        """Serve ``item`` (a copy; hrefs rewritten to this server, ``item_id`` renames it) and its ``cogs``."""
        item = copy.deepcopy(item)
        if item_id:
            item["id"] = item_id
        for key, asset in item["assets"].items():
            ext = Path(asset["href"]).suffix or ".bin"
            asset["href"] = f"{self.server.url}/data/{item['id']}/{key}{ext}"
        for key, data in (cogs or {}).items():
            self.server.routes[f"/data/{item['id']}/{key}.tif"] = self.server.static(data, "image/tiff")
        self.items.append(item)
        return item

    def search(self, req):
        if req.method == "GET":  # STAC API GET search: the same parameters in the query string
            body = {k: v[0] for k, v in req.query.items()}
            body["collections"] = body["collections"].split(",") if "collections" in body else None
            body["intersects"] = json.loads(body["intersects"]) if "intersects" in body else None
            body = {k: v for k, v in body.items() if v is not None}
        else:
            body = req.json() or {}
        self.search_bodies.append(body)
        hits = [it for it in self.items
                if it["collection"] in body.get("collections", [it["collection"]])
                and _overlaps_day(body.get("datetime", "../.."), it["properties"]["datetime"])]
        limit = int(self.page_size or body.get("limit") or 10)
        start = int(body.get("next") or 0)
        page = hits[start:start + limit]
        links = [{"rel": "self", "href": self.stac_url + "/search", "type": "application/geo+json"}]
        if start + limit < len(hits) and self.next_method == "POST":
            links.append({"rel": "next", "title": "Next page of Items", "method": "POST",
                          "type": "application/geo+json", "href": self.stac_url + "/search", "merge": False,
                          "body": {**body, "next": str(start + limit)}})
        elif start + limit < len(hits):
            query = {**body, "collections": ",".join(body.get("collections") or []),
                     "intersects": json.dumps(body.get("intersects")), "next": str(start + limit)}
            links.append({"rel": "next", "title": "Next page of Items", "type": "application/geo+json",
                          "href": self.stac_url + "/search?" + urlencode(query)})
        doc = {"type": "FeatureCollection", "features": page, "links": links,
               "numberReturned": len(page), "context": {"limit": limit, "returned": len(page)}}
        return self.server.Reply(200, json.dumps(doc), {"Content-Type": "application/geo+json"})


# ------------------------------------------------------------------------------------------
# Sentinel Hub
# ------------------------------------------------------------------------------------------
def sh_feature(item: dict, *, cloud_cover: float | None = None) -> dict:
    """A Sentinel Hub Catalog feature for the granule of an Earth Search item (id = product name)."""
    props = item["properties"]
    return {
        "type": "Feature", "stac_version": "1.0.0",
        "id": props["s2:product_uri"].removesuffix(".SAFE"),
        "geometry": item["geometry"], "bbox": item["bbox"],
        "properties": {"datetime": props["datetime"], "platform": props["platform"],
                       "instruments": ["msi"], "constellation": "sentinel-2", "gsd": 10,
                       "eo:cloud_cover": props["eo:cloud_cover"] if cloud_cover is None else cloud_cover,
                       "proj:epsg": props["proj:epsg"]},
        "assets": {}, "links": [],
    }


def process_tiff(site, day, *, cloud_band: str = "SCL", drop=None, cloud: np.ndarray | None = None,
                 nodata_all: bool = False) -> bytes:
    """The 6-band uint16 TIFF the FlareWatch evalscript returns, from the simulated scene on the site grid.

    Bands: B8A, B11, B12 DN (pipeline convention), cloud (SCL 9/5 or CLM 1/0), dataMask, SZA x 100.
    ``drop``: bool (H, W) of pixels without data (dataMask 0); ``nodata_all``: no data at all.
    """
    import rasterio
    from rasterio.io import MemoryFile

    from flarewatch.ingest.sources.s2common import site_window
    from flarewatch.simulation.scene import simulate_scene

    tile = simulate_scene(site, day).tile
    win = site_window(site)
    cl = tile.cloud_mask if cloud is None else cloud
    data_mask = tile.valid.copy()
    if drop is not None:
        data_mask &= ~drop
    if nodata_all:
        data_mask[:] = False
    code = np.where(cl, 9, 5) if cloud_band == "SCL" else (np.where(cl, 1, 0) if cloud_band == "CLM" else 0)
    bands = np.zeros((6, win.height, win.width), dtype=np.uint16)
    bands[:3] = tile.dn
    bands[3] = code
    bands[4] = 1
    bands[5] = int(round(tile.sun_zenith_deg * 100))
    bands[:, ~data_mask] = 0
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", height=win.height, width=win.width, count=6, dtype="uint16",
                      crs=rasterio.crs.CRS.from_epsg(win.crs_epsg), transform=win.transform) as dst:
            dst.write(bands)
        return mem.read()


def _jwt(claims: dict) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")  # noqa: E731
    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc(claims)}.sig"


class SentinelHubStub:
    """OAuth token, Catalog search and Process API of a Sentinel Hub deployment at ``server.url``."""

    CATALOG = "/api/v1/catalog/1.0.0/search"
    PROCESS = "/api/v1/process"
    TOKEN = "/oauth/token"

    def __init__(self, server, *, client_id: str = "fw-client", client_secret: str = "fw-secret",
                 page_size: int | None = None):
        self.server = server
        self.client_id, self.client_secret = client_id, client_secret
        self.features: list[dict] = []
        self.page_size = page_size
        self.process_tiff: bytes | None = None
        self.tokens_issued = 0
        self.catalog_bodies: list[dict] = []
        self.process_bodies: list[dict] = []
        self.base_url = server.url
        self.token_url = server.url + self.TOKEN
        server.routes[self.TOKEN] = self.token
        server.routes[self.CATALOG] = self.catalog
        server.routes[self.PROCESS] = self.process

    def _authorized(self, req) -> bool:
        return req.headers.get("Authorization") == f"Bearer {self._token}"

    @property
    def _token(self) -> str:
        return _jwt({"azp": self.client_id, "sub": "flarewatch-tests"})

    def token(self, req):
        form = {k: v[0] for k, v in parse_qs(req.body.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return self.server.Reply(400, json.dumps({"error": "unsupported_grant_type"}),
                                     {"Content-Type": "application/json"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return self.server.Reply(401, json.dumps({"error": "invalid_client",
                                                      "error_description": "Invalid client or Invalid client credentials"}),
                                     {"Content-Type": "application/json"})
        self.tokens_issued += 1
        return self.server.Reply(200, json.dumps({"access_token": self._token, "expires_in": 600,
                                                  "token_type": "Bearer", "scope": "profile email"}),
                                 {"Content-Type": "application/json"})

    def catalog(self, req):
        if not self._authorized(req):
            return self.server.Reply(401, json.dumps({"error": {"status": 401, "reason": "Unauthorized",
                                                                "message": "Not authenticated"}}),
                                     {"Content-Type": "application/json"})
        body = req.json() or {}
        self.catalog_bodies.append(body)
        hits = [f for f in self.features if _overlaps_day(body.get("datetime", "../.."), f["properties"]["datetime"])]
        limit = int(self.page_size or body.get("limit") or 10)
        start = int(body.get("next") or 0)
        page = hits[start:start + limit]
        context = {"limit": limit, "returned": len(page)}
        if start + limit < len(hits):
            context["next"] = start + limit
        doc = {"type": "FeatureCollection", "features": page, "links": [], "context": context}
        return self.server.Reply(200, json.dumps(doc), {"Content-Type": "application/geo+json"})

    def process(self, req):
        if not self._authorized(req):
            return self.server.Reply(401, json.dumps({"error": {"status": 401, "reason": "Unauthorized",
                                                                "message": "Not authenticated"}}),
                                     {"Content-Type": "application/json"})
        self.process_bodies.append(req.json())
        if self.process_tiff is None:
            return self.server.Reply(500, "no process answer configured in the test")
        return self.server.Reply(200, self.process_tiff, {"Content-Type": "image/tiff"})
