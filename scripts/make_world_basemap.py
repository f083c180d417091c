"""One-off: turn world-atlas's Natural Earth 110m countries TopoJSON into the web page's basemap.

    cd /tmp && npm pack world-atlas@2 && tar xzf world-atlas-2.0.2.tgz
    python scripts/make_world_basemap.py /tmp/package/countries-110m.json include/flarewatch/web/static/world-110m.json

Decodes the quantized, delta-encoded arcs (transform scale/translate), stitches each polygon's
rings from its arcs (a negative index ~i is arc i reversed; consecutive arcs share an end point)
and writes {"countries": [{"id", "name", "rings": [[[lon, lat], ...], ...]}]} rounded to 0.1 deg.
Holes are kept as further rings: the charts fill with fill-rule="evenodd". Rings that cross the
antimeridian (Russia, Fiji) are unwrapped and cut at +-180 deg into pieces inside the map; a ring
around a pole (Antarctica) is closed along the pole's edge of the map.
"""

from __future__ import annotations

import json
import sys


def decode_arcs(topo: dict) -> list[list[tuple[float, float]]]:
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring(arcs: list[list[tuple[float, float]]], indexes: list[int]) -> list[list[float]]:
    points: list[tuple[float, float]] = []
    for i in indexes:
        arc = arcs[i] if i >= 0 else arcs[~i][::-1]
        points.extend(arc if not points else arc[1:])
    out: list[list[float]] = []
    for lon, lat in points:
        p = [round(lon, 1), round(lat, 1)]
        if not out or out[-1] != p:
            out.append(p)
    return out


def _clip(points: list[list[float]], inside, edge: float) -> list[list[float]]:
    """Sutherland-Hodgman: the part of the open ring ``points`` where ``inside(lon)``, cut at lon == edge."""
    out = []
    for i, cur in enumerate(points):
        prev = points[i - 1]
        if inside(cur[0]) != inside(prev[0]):
            t = (edge - prev[0]) / (cur[0] - prev[0])
            out.append([edge, prev[1] + t * (cur[1] - prev[1])])
        if inside(cur[0]):
            out.append(cur)
    return out


def _close(points: list[list[float]], shift: float = 0.0) -> list[list[float]]:
    out: list[list[float]] = []
    for lon, lat in points:
        p = [round(lon + shift, 1) + 0.0, round(lat, 1) + 0.0]
        if not out or out[-1] != p:
            out.append(p)
    if out and out[0] != out[-1]:
        out.append(out[0])
    return out


def antimeridian(ring: list[list[float]]) -> list[list[list[float]]]:
    """``ring`` (closed) as rings that stay within lon -180..180 (see the module docstring)."""
    pts = ring[:-1] if ring[0] == ring[-1] else ring[:]
    jumps = [k for k in range(len(pts)) if abs(pts[k][0] - pts[k - 1][0]) > 180]
    if not jumps:
        return [ring]
    unwrapped = [pts[0]]
    for lon, lat in pts[1:]:
        prev = unwrapped[-1][0]
        while lon - prev > 180:
            lon -= 360
        while lon - prev < -180:
            lon += 360
        unwrapped.append([lon, lat])
    last, first = unwrapped[-1][0], unwrapped[0][0]
    if abs(last - first) > 180:  # winds around a pole: cut at the jump, close along the pole
        k = jumps[0]
        rot = pts[k:] + pts[:k]
        pole = -90.0 if sum(p[1] for p in rot) < 0 else 90.0
        return [_close(rot + [[rot[-1][0], pole], [rot[0][0], pole]])]
    pieces = [_clip(_clip(unwrapped, lambda x: x <= 180, 180), lambda x: x >= -180, -180),
              _clip(unwrapped, lambda x: x >= 180, 180), _clip(unwrapped, lambda x: x <= -180, -180)]
    shifts = [0.0, -360.0, 360.0]
    return [_close(p, s) for p, s in zip(pieces, shifts) if len(p) >= 3]


def main(src: str, dst: str) -> None:
    with open(src) as f:
        topo = json.load(f)
    arcs = decode_arcs(topo)
    countries = []
    for geom in topo["objects"]["countries"]["geometries"]:
        polygons = {"Polygon": [geom.get("arcs", [])], "MultiPolygon": geom.get("arcs", [])}.get(geom["type"], [])
        rings = [piece for polygon in polygons for r in (ring(arcs, idx) for idx in polygon)
                 for piece in antimeridian(r) if len(piece) >= 4]
        if rings:
            countries.append({"id": geom.get("id"), "name": geom["properties"]["name"], "rings": rings})
    countries.sort(key=lambda c: c["name"])
    with open(dst, "w") as f:
        json.dump({"source": "Natural Earth 110m countries via world-atlas 2.0.2 (countries-110m.json)",
                   "precision_deg": 0.1, "countries": countries}, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
