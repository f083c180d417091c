"""Pictures and maps of detections: an annotated false-colour PNG and GeoJSON layers.

GeoJSON (RFC 7946, WGS84 lon/lat): ``detections.geojson`` holds one Point per flare (the centroid)
and ``footprints.geojson`` one Polygon per flare with the same properties (a Sentinel-2 detection's
pixel box; a VIIRS-only detection's ~750 m pixel), so a GIS opens either without unpacking
anything. Each feature is self-contained: site, date, sensor, detection key, the estimate with its
interval and units, and the detector and volume-model versions (``common`` properties).
"""

from __future__ import annotations

import functools
import io
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from flarewatch.config import S2_PIXEL_M
from flarewatch.detect.threshold import Detection
from flarewatch.tiles import Tile, crs_transformer
from flarewatch.values import json_value

# False colour R, G, B = B12, B11, B8A reflectance: flames are red-to-yellow, vegetation blue-green,
# bare soil grey. Fixed linear stretch 0..0.6 so images of different dates compare.
RGB_BANDS = ("B12", "B11", "B8A")
STRETCH_MAX_REFLECTANCE = 0.6
UPSCALE = 2
TITLE_BAND_PX = 16  # added above the image when a title is given
LEGEND_BAND_PX = 72  # added below the image with legend=True
VIIRS_COLOUR = (255, 64, 255)  # magenta
BOX_COLOUR = (0, 255, 0)  # bright green: stands out against the red/yellow flames and grey desert
CLOUD_TINT = np.array([0, 255, 255], dtype=np.float32)  # cyan
CLOUD_TINT_ALPHA = 0.4
PNG_COMPRESS_LEVEL = 1  # zlib level: 8.6 ms vs 38 ms at the default 6 for a 500 px tile, ~13 % larger (make bench)
FAST_PNG = True  # png_bytes rather than PIL's encoder: the same pixels in about half the time (False: PIL's bytes)
COORD_DECIMALS = 7  # ~1 cm; RFC 7946 section 11.2 suggests trimming precision
VIIRS_PIXEL_M = 750.0  # VIIRS M-band pixel at nadir (domain.md): the footprint of a VIIRS-only flare
UNITS = ("volume_kscm_d, volume_lo_kscm_d, volume_hi_kscm_d: thousand m3/day (90 % interval); co2_t, co2e_t: "
         "t/day; temperature_k: K; swir_frp_mw, viirs_rh_mw: MW; lat, lon: degrees WGS84; row, col: pixels of the "
         "site's 20 m tile")


def false_colour(tile: Tile) -> np.ndarray:
    """uint8 (H, W, 3) image of B12, B11, B8A reflectance stretched 0..0.6; nodata black."""
    rgb = np.stack([tile.reflectance(b) for b in RGB_BANDS], axis=-1)
    rgb = np.nan_to_num(rgb / STRETCH_MAX_REFLECTANCE, nan=0.0)
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def annotated_png(tile: Tile, detections: list[Detection], title: str = "", *, labels: list[str] | None = None,
                  viirs: list[tuple[float, float, str]] = (), subtitle: str = "", legend: bool = False) -> bytes:
    """PNG (bytes) of the tile in false colour with a box around each detection.

    Size: width 2W, height 2H for an H x W tile, plus a title band when ``title`` is given and a
    legend band when ``legend`` is set. Cloud pixels are tinted cyan, nodata is black. Each box
    carries ``labels[i]`` (default: its index). ``viirs``: VIIRS-only flares as (row, col, label) in
    the tile's pixels, drawn as magenta circles of the VIIRS pixel (~750 m). With ``legend``: a 1 km
    scale bar, a north arrow (the tile is north-up), and a legend of the colours and marks. Text in
    PIL's bundled font (nothing is downloaded).
    """
    rgb = false_colour(tile).astype(np.float32)
    if tile.cloud_mask is not None and tile.cloud_mask.any():
        m = tile.cloud_mask
        rgb[m] = (1.0 - CLOUD_TINT_ALPHA) * rgb[m] + CLOUD_TINT_ALPHA * CLOUD_TINT
    img = _upscale(rgb.round().astype(np.uint8))
    font = ImageFont.load_default(size=12) if legend else ImageFont.load_default()
    top = (TITLE_BAND_PX + (14 if subtitle else 0) + (4 if legend else 0)) if title else 0
    bottom = LEGEND_BAND_PX if legend else 0
    h, w = img.shape[:2]
    canvas = Image.new("RGB", (w, h + top + bottom), (0, 0, 0) if not legend else (24, 24, 24))
    canvas.paste(Image.fromarray(img), (0, top))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((3, 2), title, fill=(255, 255, 255), font=font)
        if subtitle:
            draw.text((3, 17), subtitle, fill=(200, 200, 200), font=font)
    for i, det in enumerate(detections):
        r0, c0, r1, c1 = det.bbox
        x0, y0 = c0 * UPSCALE - 2, r0 * UPSCALE + top - 2
        x1, y1 = c1 * UPSCALE + 1, r1 * UPSCALE + top + 1
        draw.rectangle((x0, y0, x1, y1), outline=BOX_COLOUR, width=1)
        text = labels[i] if labels else str(i)
        tx = x1 + 2 if x1 + 2 + draw.textlength(text, font=font) < w else max(0, x0 - 2 - draw.textlength(text, font=font))
        _label(draw, (tx, max(y0 - 2, top)), text, BOX_COLOUR, font, legend)
    radius = VIIRS_PIXEL_M / 2 / S2_PIXEL_M * UPSCALE
    for row, col, text in viirs:
        cx, cy = col * UPSCALE, row * UPSCALE + top
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), outline=VIIRS_COLOUR, width=2)
        tx = cx + radius + 2 if cx + radius + 2 + draw.textlength(text, font=font) < w else \
            max(0, cx - radius - 2 - draw.textlength(text, font=font))
        _label(draw, (tx, cy - 6), text, VIIRS_COLOUR, font, legend)
    if legend:  # the same on every picture of this size: drawn once, then pasted
        _paste_or_draw(canvas, draw, _scale_and_north_overlay(canvas.size, w, h, top) if STATIC_OVERLAYS else None,
                       (0, 0), None, lambda d: _scale_and_north(d, w, h, top, font))
        _paste_or_draw(canvas, draw, _legend_overlay(w, bottom) if STATIC_OVERLAYS else None, (0, h + top),
                       (0, h + top, w, h + top + bottom), lambda d: _legend(d, w, h + top, font))
    if not FAST_PNG:
        buf = io.BytesIO()
        canvas.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        return buf.getvalue()
    return png_bytes(np.asarray(canvas))


def png_bytes(rgb: np.ndarray, level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """An (H, W, 3) uint8 image as a PNG (8-bit RGB, one IDAT chunk), about twice as fast as PIL's
    encoder on these pictures, pixel for pixel the same image (tests/unit/test_site_day_speedups.py).

    PIL tries every PNG filter on every row; here the choice is fixed by what the pictures are: a row
    that repeats the one above (every other row of the 2x upscaled tile) takes the Up filter and
    becomes zeros, any other row the Sub filter (its horizontally doubled pixels half zeros). Then
    zlib at ``level`` (which, like numpy, releases the GIL: the PNG renders in a background thread).
    """
    h, w, c = rgb.shape
    if rgb.dtype != np.uint8 or c != 3:
        raise ValueError(f"png_bytes takes an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}")
    rows = np.ascontiguousarray(rgb).reshape(h, w * 3)
    out = np.zeros((h, 1 + w * 3), dtype=np.uint8)
    same = np.zeros(h, dtype=bool)
    same[1:] = (rows[1:] == rows[:-1]).all(axis=1)
    out[same, 0] = 2  # Up (the filtered row stays zeros)
    other = ~same
    out[other, 0] = 1  # Sub
    sub = rows[other]
    out[other, 1:4] = sub[:, :3]
    out[other, 4:] = sub[:, 3:] - sub[:, :-3]  # modulo 256, as the filter is defined
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(out, level)) + _png_chunk(b"IEND", b""))


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(tag)))


def _upscale(img: np.ndarray) -> np.ndarray:
    """Each pixel as an UPSCALE x UPSCALE block (what two ``np.repeat`` give, in one copy)."""
    h, w, c = img.shape
    return np.ascontiguousarray(np.broadcast_to(img[:, None, :, None, :], (h, UPSCALE, w, UPSCALE, c))
                                .reshape(h * UPSCALE, w * UPSCALE, c))


# The scale bar, north arrow and legend are the same on every picture of a size: drawn once per size
# and then pasted (``_paste_or_draw``), pixel for pixel what drawing them gives (False: drawn on
# every picture; tests/unit/test_render_overlays.py compares both).
STATIC_OVERLAYS = True
_SENTINEL = (1, 2, 3)  # a ground colour no drawing op of the overlays uses
_LEGEND_BG = (24, 24, 24)


def _paste_or_draw(canvas, draw, overlay, offset: tuple[int, int], plain: tuple | None, draw_it) -> None:
    """Paste ``overlay`` ([(box, patch)], ``box`` shifted by ``offset``) onto ``canvas``; or call
    ``draw_it(draw)`` when there is no overlay, or when the box ``plain`` (the ground the overlay was
    drawn on, if not any) is not that plain background here (a label reaching into the legend band)."""
    if overlay is not None and plain is not None:
        colours = canvas.crop(plain).getcolors(1)
        if not colours or colours[0][1] != _LEGEND_BG:
            overlay = None
    if overlay is None:
        draw_it(draw)
        return
    dx, dy = offset
    for box, patch in overlay:
        canvas.paste(patch, (box[0] + dx, box[1] + dy))


@functools.lru_cache(maxsize=16)
def _scale_and_north_overlay(size: tuple[int, int], w: int, h: int, top: int):
    """[(box, patch)] of ``_scale_and_north`` on a ``size`` canvas: the pixels of its two black boxes,
    which it fills before drawing anything in them, so they are the same on any picture. None (then
    it is drawn each time) if its boxes overlap or leave the canvas, or any drawing leaves them."""
    bar = int(round(1000.0 / S2_PIXEL_M * UPSCALE))
    x0, y0 = 8, top + h - 14
    ax, ay = w - 16, top + 10
    boxes = [(x0 - 3, y0 - 14, x0 + bar + 4, y0 + 7), (ax - 10, ay - 4, ax + 11, ay + 35)]  # as drawn, end exclusive
    (a0, b0, a1, b1), (c0, d0, c1, d1) = boxes
    if a1 > c0 and c1 > a0 and b1 > d0 and d1 > b0:
        return None
    if any(x0 < 0 or y0 < 0 or x1 > size[0] or y1 > size[1] for x0, y0, x1, y1 in boxes):
        return None
    img = Image.new("RGB", size, _SENTINEL)
    _scale_and_north(ImageDraw.Draw(img), w, h, top, ImageFont.load_default(size=12))
    return _overlay(img, boxes)


@functools.lru_cache(maxsize=16)
def _legend_overlay(w: int, bottom: int):
    """[(box, patch)] of ``_legend`` drawn on a plain ``w`` x ``bottom`` legend band, box relative to
    the band's top left; None if it draws outside the band."""
    pad = LEGEND_BAND_PX  # sentinel ground above and below the band, to see drawing leave it
    img = Image.new("RGB", (w, bottom + 2 * pad), _SENTINEL)
    img.paste(_LEGEND_BG, (0, pad, w, pad + bottom))
    _legend(ImageDraw.Draw(img), w, pad, ImageFont.load_default(size=12))
    overlay = _overlay(img, [(0, pad, w, pad + bottom)])
    return None if overlay is None else [((0, 0, w, bottom), overlay[0][1])]


def _overlay(img, boxes):
    """[(box, img.crop(box))] if every pixel of ``img`` outside ``boxes`` is still ``_SENTINEL``."""
    outside = np.asarray(img).copy()
    for x0, y0, x1, y1 in boxes:
        outside[y0:y1, x0:x1] = _SENTINEL
    if (outside != np.array(_SENTINEL, dtype=np.uint8)).any():
        return None
    return [(box, img.crop(box)) for box in boxes]


def _label(draw, xy, text: str, colour, font, boxed: bool) -> None:
    """Text, on a dark box when ``boxed`` so it reads over bright ground."""
    if boxed:
        x0, y0, x1, y1 = draw.textbbox(xy, text, font=font)
        draw.rectangle((x0 - 2, y0 - 1, x1 + 2, y1 + 1), fill=(0, 0, 0))
    draw.text(xy, text, fill=colour, font=font)


def _scale_and_north(draw, w: int, h: int, top: int, font) -> None:
    bar = int(round(1000.0 / S2_PIXEL_M * UPSCALE))  # 1 km
    x0, y0 = 8, top + h - 14
    draw.rectangle((x0 - 3, y0 - 14, x0 + bar + 3, y0 + 6), fill=(0, 0, 0))
    draw.line((x0, y0, x0 + bar, y0), fill=(255, 255, 255), width=3)
    for x in (x0, x0 + bar):
        draw.line((x, y0 - 4, x, y0 + 4), fill=(255, 255, 255), width=1)
    draw.text((x0 + bar // 2 - 10, y0 - 14), "1 km", fill=(255, 255, 255), font=font)
    ax, ay = w - 16, top + 10
    draw.rectangle((ax - 10, ay - 4, ax + 10, ay + 34), fill=(0, 0, 0))
    draw.polygon([(ax, ay), (ax - 6, ay + 12), (ax + 6, ay + 12)], fill=(255, 255, 255))
    draw.line((ax, ay + 12, ax, ay + 18), fill=(255, 255, 255), width=2)
    draw.text((ax - 4, ay + 19), "N", fill=(255, 255, 255), font=font)


def _legend(draw, w: int, y: int, font) -> None:
    y += 4
    draw.rectangle((6, y + 3, 16, y + 12), outline=BOX_COLOUR, width=2)
    draw.text((22, y), "flare in Sentinel-2: n. volume, thousand m3/day [90 % interval]", fill=(230, 230, 230),
              font=font)
    y += 16
    draw.ellipse((5, y + 2, 17, y + 14), outline=VIIRS_COLOUR, width=2)
    draw.text((22, y), "flare seen only by VIIRS at night (its ~750 m pixel)", fill=(230, 230, 230), font=font)
    y += 16
    draw.rectangle((6, y + 3, 16, y + 12), fill=tuple(int(v) for v in CLOUD_TINT))
    draw.text((22, y), "cloud", fill=(230, 230, 230), font=font)
    draw.rectangle((70, y + 3, 80, y + 12), fill=(0, 0, 0), outline=(120, 120, 120))
    draw.text((86, y), "no data", fill=(230, 230, 230), font=font)
    y += 16
    draw.text((6, y), "false colour: red = B12, green = B11, blue = B8A (flames red-yellow, bare soil grey)",
              fill=(170, 170, 170), font=font)


def _ring_area2(ring: list[list[float]]) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:]))


def detections_geojson(tile: Tile, detections: list[Detection], properties: list[dict] | None = None,
                       common: dict | None = None) -> dict:
    """GeoJSON (RFC 7946) FeatureCollection with one Point Feature per Sentinel-2 detection.

    Geometry: the centroid, ``[lon, lat]`` WGS84; the RFC 7946 ``bbox`` member is the detection's
    pixel box ``[west, south, east, north]`` (its Polygon is in ``footprints_geojson``). Properties:
    ``common`` (site, date, versions, units), then the detection's fields (``peak_row``,
    ``peak_col``, ``row``, ``col``, ``n_pixels``, ``confidence``, ``saturated``, ``cloud_flag``,
    ``detector``), updated with ``properties[i]`` (NaN becomes null).
    """
    return {"type": "FeatureCollection",
            "features": [f for f, _ in _s2_features(tile, detections, properties, common)]}


def footprints_geojson(tile: Tile | None, detections: list[Detection], properties: list[dict] | None = None,
                       common: dict | None = None, viirs: list[tuple[float, float, dict]] = ()) -> dict:
    """Polygon Features with the same properties as the points: each Sentinel-2 detection's pixel
    box (counter-clockwise ring, RFC 7946 3.1.6) and each VIIRS-only detection's ~750 m square
    (``viirs``: (lon, lat, properties))."""
    return flare_layers(tile, detections, properties, common, viirs)[1]


def flare_layers(tile: Tile | None, detections: list[Detection], properties: list[dict] | None = None,
                 common: dict | None = None, viirs: list[tuple[float, float, dict]] = ()) -> tuple[dict, dict]:
    """(points, footprints) of a site-day in one pass: ``detections_geojson`` with the VIIRS-only
    detections (``viirs_point``) appended, and ``footprints_geojson``. ``tile`` None: VIIRS only."""
    pairs = _s2_features(tile, detections, properties, common) if tile is not None else []
    points = [p for p, _ in pairs] + [viirs_point(lon, lat, props, common) for lon, lat, props in viirs]
    polys = [poly for _, poly in pairs] + [
        _feature({"type": "Polygon", "coordinates": [viirs_square(lon, lat)]}, {**(common or {}), **props})
        for lon, lat, props in viirs]
    return {"type": "FeatureCollection", "features": points}, {"type": "FeatureCollection", "features": polys}


def viirs_point(lon: float, lat: float, props: dict, common: dict | None = None) -> dict:
    """A VIIRS-only detection as a Point Feature with its ~750 m footprint as ``bbox``."""
    ring = viirs_square(lon, lat)
    feat = _feature({"type": "Point", "coordinates": [round(lon, COORD_DECIMALS), round(lat, COORD_DECIMALS)]},
                    {**(common or {}), **props})
    feat["bbox"] = [ring[0][0], ring[0][1], ring[2][0], ring[2][1]]
    return feat


def viirs_square(lon: float, lat: float) -> list[list[float]]:
    """Counter-clockwise ring of a VIIRS_PIXEL_M square centred on lon/lat (spherical approximation)."""
    dlat = VIIRS_PIXEL_M / 2 / 111_320.0
    dlon = dlat / max(np.cos(np.radians(lat)), 1e-6)
    w, e, s_, n = lon - dlon, lon + dlon, lat - dlat, lat + dlat
    return [[round(x, COORD_DECIMALS), round(y, COORD_DECIMALS)] for x, y in ((w, s_), (e, s_), (e, n), (w, n), (w, s_))]


def _feature(geometry: dict, props: dict) -> dict:
    return {"type": "Feature", "geometry": geometry, "properties": json_value(props)}


def _s2_features(tile: Tile, detections: list[Detection], properties: list[dict] | None,
                 common: dict | None) -> list[tuple[dict, dict]]:
    if properties is None:
        properties = [{} for _ in detections]
    if len(properties) != len(detections):
        raise ValueError(f"got {len(properties)} property dicts for {len(detections)} detections")
    if not detections:
        return []
    to_lonlat = crs_transformer(tile.crs_epsg, 4326)  # cached: building one costs ~1 ms

    def lonlat(points: list[tuple[float, float]]) -> list[list[float]]:
        xy = [tile.pixel_to_xy(r, c) for r, c in points]
        lons, lats = to_lonlat.transform([p[0] for p in xy], [p[1] for p in xy])
        return [[round(float(lo), COORD_DECIMALS), round(float(la), COORD_DECIMALS)] for lo, la in zip(lons, lats)]

    out = []
    for det, extra in zip(detections, properties):
        r0, c0, r1, c1 = det.bbox
        centre, *corners = lonlat([(det.row, det.col), (r1, c0), (r1, c1), (r0, c1), (r0, c0)])
        ring = corners + [corners[0]]
        if _ring_area2(ring) < 0:  # RFC 7946 3.1.6: exterior rings counter-clockwise
            ring.reverse()
        lons = [p[0] for p in corners]
        lats = [p[1] for p in corners]
        props = dict(common or {})
        props.update({
            "peak_row": det.peak_row,
            "peak_col": det.peak_col,
            "row": det.row,
            "col": det.col,
            "n_pixels": det.n_pixels,
            "confidence": det.confidence,
            "saturated": det.saturated,
            "cloud_flag": det.cloud_flag,
            "detector": det.detector,
        })
        props.update(extra or {})
        point = _feature({"type": "Point", "coordinates": centre}, props)
        point["bbox"] = [min(lons), min(lats), max(lons), max(lats)]
        out.append((point, _feature({"type": "Polygon", "coordinates": [ring]}, props)))
    return out
