"""The simulated sites' flare stacks: where they are, when they are lit, how much gas they burn.

``stack_day_states`` is the only place the daily flare stream is drawn, so the scene
(``simulation.scene``), the VIIRS night (``simulation.viirs``) and the metered truth
(``site_day_flows``, ``simulation.meters``) cannot diverge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

import numpy as np

from flarewatch.config import (
    S2_PIXEL_M,
)
from flarewatch.simulation.common import KSCM_D_PER_MW, seeded_rng
from flarewatch.sites import Site
from flarewatch.tiles import (
    crs_transformer,
    site_centre_xy,
)


# --------------------------------------------------------------------------------------------
# Public records
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FlareStack:
    """One persistent flare stack of a site (same every day).

    ``lat``/``lon``: position (degrees WGS84); ``x_m``/``y_m``: the same in the site's UTM zone
    (``Site.utm_epsg``, metres); ``base_flow_kscm_d``: typical flared volume, thousand standard m3
    per day; ``temperature_k``: flame temperature (K); ``efficiency_factor``: per-stack radiant
    heat multiplier (dimensionless, simulator assumption); ``activity_probability``: chance the
    stack is lit on a given day.
    """

    flare_id: str
    lat: float
    lon: float
    x_m: float
    y_m: float
    base_flow_kscm_d: float
    temperature_k: float
    efficiency_factor: float
    activity_probability: float


@dataclass
class FlareTruth:
    """One flare stack's ground truth for one day.

    ``row``/``col``: fractional pixel position of the source centre in the tile grid (pixel
    (i, j) spans rows [i, i+1) and columns [j, j+1), so ``Tile.pixel_to_lonlat(row, col)`` gives
    back ``lon``/``lat``); ``flow_kscm_d``: flared volume, thousand standard m3/day (0 if unlit);
    ``temperature_k``: flame temperature (K); ``flame_area_m2``: effective emitting area (m2);
    ``radiant_heat_mw``: sigma T^4 S / 1e6 (MW); ``cloud_covered``: the source pixel is under the
    tile's cloud mask; ``saturated``: any B12 pixel of the flare hit sensor saturation;
    ``in_scene``: the source lies inside the tile and not in a nodata strip (extra field).
    """

    flare_id: str
    lat: float
    lon: float
    row: float
    col: float
    active: bool
    flow_kscm_d: float
    temperature_k: float
    flame_area_m2: float
    radiant_heat_mw: float
    cloud_covered: bool
    saturated: bool
    in_scene: bool = True


@lru_cache(maxsize=256)
def _site_flares_cached(site: Site) -> tuple[FlareStack, ...]:
    rng = seeded_rng("site-flares", site.site_id)
    xc, yc = site_centre_xy(site)
    half_extent = 0.35 * site.aoi_km * 1000.0  # stacks in the central 70 % of the AOI
    min_sep = 12.0 * S2_PIXEL_M  # >= ~10 px apart (assumption)
    n = int(rng.integers(2, 7))
    pos: list[tuple[float, float]] = []
    for _ in range(n):
        for _attempt in range(200):
            e, nn = rng.uniform(-half_extent, half_extent, size=2)
            if all(math.hypot(e - a, nn - b) >= min_sep for a, b in pos):
                pos.append((float(e), float(nn)))
                break
    if not pos:
        pos.append((0.0, 0.0))
    # Occasionally a second stack right next to another one (3-5 px apart): a hard case for
    # detectors (two sources, one blob) and always one VIIRS pixel.
    pair_u, pair_dist = rng.random(), rng.uniform(3.0, 5.0)
    pair_ang, pair_idx = rng.uniform(0, 2 * math.pi), rng.random()
    if pair_u < 0.35:
        a, b = pos[int(pair_idx * len(pos))]
        e, nn = a + pair_dist * S2_PIXEL_M * math.cos(pair_ang), b + pair_dist * S2_PIXEL_M * math.sin(pair_ang)
        if all(math.hypot(e - p, nn - q) >= min_sep for p, q in pos if (p, q) != (a, b)):
            pos.append((e, nn))
    inv = crs_transformer(site.utm_epsg, 4326)
    stacks = []
    for k, (e, nn) in enumerate(pos, start=1):
        flow = float(np.clip(rng.lognormal(math.log(50.0), 1.2), 2.0, 400.0))
        temp = float(rng.uniform(1600.0, 2000.0))
        eff = float(rng.lognormal(0.0, 0.25))
        p_act = float(rng.uniform(0.75, 0.95))
        x, y = xc + e, yc + nn
        lon, lat = inv.transform(x, y)
        stacks.append(
            FlareStack(
                flare_id=f"{site.site_id}-F{k:02d}",
                lat=round(float(lat), 7),
                lon=round(float(lon), 7),
                x_m=float(x),
                y_m=float(y),
                base_flow_kscm_d=round(flow, 3),
                temperature_k=round(temp, 1),
                efficiency_factor=round(eff, 4),
                activity_probability=round(p_act, 3),
            )
        )
    return tuple(stacks)


def site_flares(site: Site) -> list[FlareStack]:
    """The site's persistent flare stacks (positions, base flow, temperature): same every day."""
    return list(_site_flares_cached(site))


def stack_day_states(site: Site, day: date) -> list[tuple[FlareStack, bool, float, float]]:
    """Each stack's state on ``day``: (stack, lit, flow thousand m3/day, flame temperature K).

    The only place the ``day-flares`` random stream is drawn: ``simulate_scene`` and
    ``site_day_flows`` both call it, so the scene and the metered truth cannot diverge.
    """
    rng = seeded_rng("day-flares", site.site_id, day.isoformat())
    states = []
    for st in _site_flares_cached(site):
        u_act, flow_mult, dt = rng.random(), rng.lognormal(0.0, 0.3), rng.normal(0.0, 25.0)
        active = bool(u_act < st.activity_probability)
        temp = float(np.clip(st.temperature_k + dt, 1500.0, 2100.0))
        flow = float(st.base_flow_kscm_d * flow_mult) if active else 0.0
        states.append((st, active, flow, temp))
    return states


def site_day_flows(site: Site, day: date) -> dict[str, float]:
    """True flared volume of each of the site's stacks on ``day``, thousand standard m3/day.

    ``{flare_id: flow}`` with 0.0 for an unlit stack: exactly the flows ``simulate_scene`` uses
    for that site and day (its truth stores them rounded to 4 decimals), without simulating the
    tile. A ``datetime`` is reduced to its date.
    """
    if isinstance(day, datetime):
        day = day.date()
    return {st.flare_id: flow for st, _active, flow, _temp in stack_day_states(site, day)}


def radiant_heat_from_flow(flow_kscm_d, efficiency_factor=1.0):
    """Simulator truth: radiant heat (MW) of a flare burning ``flow_kscm_d`` thousand m3/day.

    RH = flow / 31.5 * efficiency_factor * (flow / 50) ** 0.1 -- SIMULATOR ASSUMPTION, loosely the
    Zhizhin et al. 2025 linear calibration (31.5 thousand m3/day per MW) with a mild nonlinearity.
    """
    flow = np.asarray(flow_kscm_d, dtype=np.float64)
    return flow / KSCM_D_PER_MW * efficiency_factor * np.power(np.maximum(flow, 0.0) / 50.0, 0.1)
