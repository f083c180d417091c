"""Synthetic monitored sites for scale tests: N sites around the demo sites' flaring regions.

``synthetic_sites(n)`` returns ``syn-0001`` .. ``syn-<n>``, ``Site`` records the demo simulator
(``simulation.scene.simulate_scene``, the ``demo`` scene source) simulates like any other site. The
demo itself keeps its 6 seed sites (``data/demo_sites.csv``); nothing here is seeded.

Layout (deterministic, no randomness from Python's salted ``hash()``):

* Regions: the demo sites (Rumaila, Ahvaz, Hassi Messaoud, Ebocha, Parshall, Cantarell), taken in
  turn: site ``i`` (1-based) belongs to region ``(i - 1) % 6``, so every region gets N/6 sites and
  ``synthetic_sites(6)`` has one per region.
* Position: each region is cut into ``CELL_KM`` x ``CELL_KM`` cells around the demo site; the k-th
  site of a region takes the k-th cell nearest the centre (ties in a fixed, hashed order), jittered
  by up to ``JITTER_KM`` in each direction. Cells are 10 km and AOIs 5 km, so AOIs never overlap
  and sites stay as close to the real field as N allows (100 sites per region lie within ~60 km).
* Groups: a field is a block of ``FIELD_BLOCK`` x ``FIELD_BLOCK`` cells (up to 9 sites) named after
  the region's field (``Rumaila B+01-02``); each field is run by one of the region's
  ``OPERATORS_PER_REGION`` operators (the demo site's operator or ``<country> operator 2`` / ``3``,
  picked by hashing the field name); the country is the region's. So fields, operators and
  countries all group several sites once N exceeds a few dozen.
* Land cover, AOI size: the region's (offshore Cantarell stays ``water``).

Prefix-stable: site ``i`` does not depend on N, so ``synthetic_sites(60)[:6] == synthetic_sites(6)``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from flarewatch.sites import Site, load_sites

CELL_KM = 10.0  # grid spacing of the synthetic sites around a region's centre
JITTER_KM = 2.0  # each site moves up to this far from its cell centre, in x and in y
FIELD_BLOCK = 3  # a field is FIELD_BLOCK x FIELD_BLOCK cells
OPERATORS_PER_REGION = 3
KM_PER_DEG_LAT = 111.32
ID_PREFIX = "syn"


def _unit(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts`` (SHA-256; the same on every machine and process)."""
    key = "|".join(str(p) for p in ("flarewatch-many-sites", *parts))
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") / 2.0**64


def _cells_nearest_first(region: str, count: int) -> list[tuple[int, int]]:
    """The ``count`` grid cells (i east, j north) nearest cell (0, 0), nearest first; ties in a hashed order.

    Every cell within radius ``r`` is enumerated, and ``r`` is large enough that at least ``count``
    cells lie within it, so the k-th cell does not depend on ``count``.
    """
    r = int(math.ceil(math.sqrt(count / math.pi))) + 2
    while sum(1 for i in range(-r, r + 1) for j in range(-r, r + 1) if i * i + j * j <= r * r) < count:
        r += 1
    cells = [(i, j) for i in range(-r, r + 1) for j in range(-r, r + 1) if i * i + j * j <= r * r]
    cells.sort(key=lambda c: (c[0] * c[0] + c[1] * c[1], _unit("cell", region, *c)))
    return cells[:count]


def _offset(lat: float, lon: float, east_km: float, north_km: float) -> tuple[float, float]:
    """lat/lon moved by (east_km, north_km) on a sphere (flat-earth scale, as ``Site.bbox``); lon wrapped."""
    new_lat = max(-89.0, min(89.0, lat + north_km / KM_PER_DEG_LAT))
    new_lon = lon + east_km / (KM_PER_DEG_LAT * max(math.cos(math.radians(new_lat)), 1e-6))
    new_lon = (new_lon + 180.0) % 360.0 - 180.0
    return round(new_lat, 5), round(new_lon, 5)


def _block_label(i: int, j: int) -> str:
    bi, bj = math.floor(i / FIELD_BLOCK), math.floor(j / FIELD_BLOCK)
    return f"B{bi:+03d}{bj:+03d}"


def synthetic_site_id(i: int) -> str:
    """``syn-0001`` for ``i = 1`` (four digits at least; ``syn-10000`` after ``syn-9999``)."""
    return f"{ID_PREFIX}-{i:04d}"


def synthetic_sites(n: int, regions: Sequence[Site] | None = None) -> list[Site]:
    """``n`` synthetic sites spread over ``regions`` (default: the 6 demo sites); see the module doc."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    regions = list(regions) if regions is not None else load_sites()
    if not regions:
        raise ValueError("at least one region (a Site to place synthetic sites around) is needed")
    per_region = [len(range(r, n, len(regions))) for r in range(len(regions))]
    cells = {reg.site_id: _cells_nearest_first(reg.site_id, k) for reg, k in zip(regions, per_region)}
    sites = []
    for idx in range(n):
        i = idx + 1
        reg = regions[idx % len(regions)]
        ci, cj = cells[reg.site_id][idx // len(regions)]
        sid = synthetic_site_id(i)
        east = ci * CELL_KM + (2.0 * _unit("jitter-x", sid) - 1.0) * JITTER_KM
        north = cj * CELL_KM + (2.0 * _unit("jitter-y", sid) - 1.0) * JITTER_KM
        lat, lon = _offset(reg.lat, reg.lon, east, north)
        field = f"{reg.field} {_block_label(ci, cj)}"
        k_op = int(_unit("operator", reg.site_id, field) * OPERATORS_PER_REGION)
        operator = reg.operator if k_op == 0 else f"{reg.country} operator {k_op + 1}"
        sites.append(Site(
            site_id=sid, name=f"Synthetic site {i} ({reg.name})", field=field, operator=operator,
            country=reg.country, lat=lat, lon=lon, aoi_km=reg.aoi_km, land_cover=reg.land_cover,
            notes=f"synthetic (flarewatch.simulation.many_sites) near {reg.site_id}, cell ({ci}, {cj})",
        ))
    return sites
