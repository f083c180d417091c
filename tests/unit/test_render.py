"""The annotated PNG and the GeoJSON of detections."""

from __future__ import annotations

import io
import json
from datetime import datetime

import numpy as np
import pytest
from affine import Affine
from PIL import Image

from flarewatch.detect.threshold import Detection
from flarewatch.process.render import (
    BOX_COLOUR,
    TITLE_BAND_PX,
    annotated_png,
    detections_geojson,
    false_colour,
    flare_layers,
    footprints_geojson,
    viirs_point,
)
from flarewatch.tiles import Tile

# A 40 x 60 tile in UTM 38N whose upper-left corner is near Rumaila, Iraq (30.6 N, 47.3 E).
UL_X, UL_Y = 720000.0, 3387000.0


def make_tile(h=40, w=60, cloud=None) -> Tile:
    rho = np.stack([np.full((h, w), v) for v in (0.30, 0.35, 0.30)])
    rho[:, 10, 20] = (0.35, 0.9, 2.0)
    dn = np.round((rho + 0.1) / 1e-4).astype(np.uint16)
    dn[:, 35:, :5] = 0  # nodata corner
    return Tile(
        dn=dn, transform=Affine(20.0, 0.0, UL_X, 0.0, -20.0, UL_Y), crs_epsg=32638,
        acquired_at=datetime(2024, 6, 21, 7, 30), sun_zenith_deg=30.0, cloud_mask=cloud,
    )  # fmt: skip


def det(r0, c0, r1, c1, **kw) -> Detection:
    return Detection(
        row=(r0 + r1) / 2, col=(c0 + c1) / 2, peak_row=r0, peak_col=c0, bbox=(r0, c0, r1, c1),
        n_pixels=(r1 - r0) * (c1 - c0), confidence=0.9, saturated=False, cloud_flag=False, **kw,
    )  # fmt: skip


def decode(png: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.mode == "RGB"
    return np.asarray(img)


def test_false_colour_stretch():
    rgb = false_colour(make_tile())
    assert rgb.shape == (40, 60, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == pytest.approx([127.5, 148.75, 127.5], abs=1)  # B12 0.30, B11 0.35, B8A 0.30 of 0.6
    assert rgb[10, 20].tolist() == pytest.approx([255, 255, 149], abs=1)  # B12 2.0 clipped
    assert tuple(rgb[39, 0]) == (0, 0, 0)  # nodata black


def test_png_size_and_boxes():
    tile = make_tile()
    img = decode(annotated_png(tile, [det(10, 20, 11, 21)]))
    assert img.shape == (80, 120, 3)
    # box outline one pixel outside the upscaled bbox (rows 20-21, cols 40-41)
    assert tuple(img[18, 41]) == BOX_COLOUR and tuple(img[20, 38]) == BOX_COLOUR
    assert img[20, 40].tolist() == pytest.approx([255, 255, 149], abs=1)  # the hot pixel itself is not painted over


def test_png_with_title_and_cloud_tint():
    cloud = np.zeros((40, 60), dtype=bool)
    cloud[30:, 40:] = True
    tile = make_tile(cloud=cloud)
    plain = decode(annotated_png(tile, []))
    titled = decode(annotated_png(tile, [det(2, 2, 4, 5)], title="rumaila-n 2024-06-21"))
    assert titled.shape == (80 + TITLE_BAND_PX, 120, 3)
    assert titled[:TITLE_BAND_PX].max() > 200  # white (antialiased) title text on black
    assert plain[70, 100, 2] > plain[10, 10, 2] + 40  # cloud tinted cyan (blue up, red down)
    assert plain[70, 100, 0] < plain[10, 10, 0]


def test_geojson_points_and_bbox_polygons_in_lon_lat():
    tile = make_tile()
    dets = [det(10, 20, 11, 21), det(30, 40, 33, 44, detector="yolo")]
    props = [{"volume_kscm_d": 12.5, "temperature_k": float("nan")}, {"confidence": 0.42, "tags": ("a", np.int64(3))}]
    fc = detections_geojson(tile, dets, props)
    text = json.dumps(fc, allow_nan=False)  # strict JSON: no NaN
    assert json.loads(text)["type"] == "FeatureCollection"
    assert len(fc["features"]) == 2
    f0, f1 = fc["features"]
    lon, lat = f0["geometry"]["coordinates"]
    assert f0["geometry"]["type"] == "Point"
    assert 47.0 < lon < 47.6 and 30.3 < lat < 30.8  # [lon, lat] near the tile, not [lat, lon]
    exp_lon, exp_lat = tile.pixel_to_lonlat(10.5, 20.5)
    assert (lon, lat) == pytest.approx((exp_lon, exp_lat), abs=1e-6)
    p0 = f0["properties"]
    assert p0["volume_kscm_d"] == 12.5 and p0["temperature_k"] is None
    assert p0["peak_row"] == 10 and p0["detector"] == "threshold-tai-nhi"
    assert f1["properties"]["confidence"] == 0.42 and f1["properties"]["tags"] == ["a", 3]
    assert f1["properties"]["detector"] == "yolo"
    assert "bbox_polygon" not in f1["properties"]  # the polygon is a feature of its own layer
    polys = footprints_geojson(tile, dets, props, {"site_id": "x"})
    assert [f["geometry"]["type"] for f in polys["features"]] == ["Polygon", "Polygon"]
    assert polys["features"][1]["properties"]["site_id"] == "x"
    assert polys["features"][1]["properties"]["confidence"] == 0.42
    ring = polys["features"][1]["geometry"]["coordinates"][0]
    assert len(ring) == 5 and ring[0] == ring[-1]
    area2 = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:]))
    assert area2 > 0  # counter-clockwise exterior ring (RFC 7946 3.1.6)
    west, south, east, north = f1["bbox"]
    assert west < east and south < north
    # 4 columns x 20 m wide, 3 rows x 20 m tall
    assert (east - west) * 111_195 * np.cos(np.radians(lat)) == pytest.approx(80, rel=0.05)
    assert (north - south) * 111_195 == pytest.approx(60, rel=0.05)
    assert west <= f1["geometry"]["coordinates"][0] <= east


def test_geojson_edge_cases():
    tile = make_tile()
    assert detections_geojson(tile, []) == {"type": "FeatureCollection", "features": []}
    assert len(detections_geojson(tile, [det(1, 1, 2, 2)])["features"]) == 1
    with pytest.raises(ValueError, match="2 property dicts for 1 detections"):
        detections_geojson(tile, [det(1, 1, 2, 2)], [{}, {}])


def test_viirs_only_features_have_a_750_m_extent_and_common_properties():
    point = viirs_point(47.3, 30.5, {"detection_key": "viirs:30.5:47.3"}, {"site_id": "s", "units": "u"})
    assert point["geometry"] == {"type": "Point", "coordinates": [47.3, 30.5]}
    west, south, east, north = point["bbox"]
    assert (north - south) * 111_320 == pytest.approx(750, rel=0.01)
    assert (east - west) * 111_320 * np.cos(np.radians(30.5)) == pytest.approx(750, rel=0.01)
    assert point["properties"] == {"site_id": "s", "units": "u", "detection_key": "viirs:30.5:47.3"}
    fc = footprints_geojson(None, [], None, {"site_id": "s"}, [(47.3, 30.5, {"detection_key": "k"})])
    assert fc["features"][0]["geometry"]["type"] == "Polygon"


def test_the_picture_has_a_legend_scale_north_arrow_labels_and_viirs_marks():
    tile = make_tile()
    plain = decode(annotated_png(tile, [det(10, 20, 11, 21)], title="t"))
    full = decode(annotated_png(tile, [det(10, 20, 11, 21)], title="Site, 3 June 2025", subtitle="1 flare",
                                labels=["1. 57 [40-80]"], viirs=[(30.0, 40.0, "V1. 12")], legend=True))
    assert full.shape[0] > plain.shape[0] + 60  # the legend band and the subtitle
    assert full.shape[1] == plain.shape[1]
    magenta = (full[..., 0] > 200) & (full[..., 1] < 120) & (full[..., 2] > 200)
    assert magenta.sum() > 50  # the VIIRS circle and its label


def test_flare_layers_builds_points_and_footprints_in_one_pass():
    tile = make_tile()
    dets = [det(10, 20, 11, 21), det(30, 40, 33, 44)]
    props = [{"detection_key": "a"}, {"detection_key": "b"}]
    viirs = [(47.3, 30.5, {"detection_key": "v"})]
    points, polys = flare_layers(tile, dets, props, {"site_id": "s"}, viirs)
    assert points["features"] == detections_geojson(tile, dets, props, {"site_id": "s"})["features"] + [
        viirs_point(47.3, 30.5, {"detection_key": "v"}, {"site_id": "s"})]
    assert polys == footprints_geojson(tile, dets, props, {"site_id": "s"}, viirs)
    assert flare_layers(None, [], None, None, viirs)[0]["features"][0]["properties"]["detection_key"] == "v"
