"""The synthetic site generator for scale benchmarks (flarewatch.simulation.many_sites)."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date

import pytest

from flarewatch.simulation.landscape import LAND_COVER_REFLECTANCE
from flarewatch.simulation.many_sites import CELL_KM, JITTER_KM, synthetic_sites
from flarewatch.sites import load_sites, parse_sites_csv


def _km(a, b) -> float:
    dy = (a.lat - b.lat) * 111.32
    dx = (a.lon - b.lon) * 111.32 * math.cos(math.radians((a.lat + b.lat) / 2))
    return math.hypot(dx, dy)


def test_deterministic_and_prefix_stable():
    a, b = synthetic_sites(60), synthetic_sites(60)
    assert a == b
    assert synthetic_sites(600)[:60] == a  # site i does not depend on N
    assert synthetic_sites(6) == a[:6]
    assert synthetic_sites(0) == []
    with pytest.raises(ValueError):
        synthetic_sites(-1)


@pytest.mark.parametrize("n", [1, 6, 7, 60, 600])
def test_n_sites_unique_ids_valid_coordinates(n):
    sites = synthetic_sites(n)
    assert len(sites) == n
    ids = [s.site_id for s in sites]
    assert len(set(ids)) == n
    assert ids[0] == "syn-0001" and ids[-1] == f"syn-{n:04d}"
    for s in sites:  # Site validates lat/lon/aoi itself; check the values are sensible too
        assert -90 <= s.lat <= 90 and -180 <= s.lon <= 180
        assert s.land_cover in LAND_COVER_REFLECTANCE
        assert s.field and s.operator and s.country


def test_spread_over_the_demo_regions_without_overlapping_aois():
    demo = load_sites()
    sites = synthetic_sites(600)
    assert Counter(s.country for s in sites) == Counter({d.country: 100 for d in demo})
    by_country = {d.country: d for d in demo}
    for s in sites:
        region = by_country[s.country]
        assert s.land_cover == region.land_cover
        assert _km(s, region) < 80.0  # 100 sites per region stay near the real field
    # cells are CELL_KM apart and jitter at most JITTER_KM each way: AOIs (5 km squares) never overlap
    min_gap = CELL_KM - 2 * JITTER_KM
    for i, a in enumerate(sites):
        for b in sites[i + 1:]:
            if a.country == b.country:
                assert max(abs(a.lat - b.lat) * 111.32,
                           abs(a.lon - b.lon) * 111.32 * math.cos(math.radians(a.lat))) >= min_gap - 0.01


def test_groups_hold_several_sites():
    sites = synthetic_sites(600)
    fields = Counter(s.field for s in sites)
    operators = Counter(s.operator for s in sites)
    assert len(fields) < len(sites) / 4 and max(fields.values()) >= 5
    assert len(operators) >= 12 and min(operators.values()) >= 5
    # a field is run by one operator
    assert all(len({s.operator for s in sites if s.field == f}) == 1 for f in fields)


def test_round_trips_through_the_sites_csv():
    sites = synthetic_sites(12)
    header = "site_id,name,field,operator,country,lat,lon,aoi_km,land_cover,notes"
    rows = [",".join(f'"{v}"' for v in (s.site_id, s.name, s.field, s.operator, s.country, s.lat, s.lon, s.aoi_km,
                                          s.land_cover, s.notes)) for s in sites]
    assert parse_sites_csv("\n".join([header, *rows])) == sites


def test_the_demo_simulator_simulates_a_synthetic_site():
    from flarewatch.simulation.scene import simulate_scene

    site = synthetic_sites(12)[-1]  # syn-0012: offshore, near Cantarell
    scene = simulate_scene(site, date(2025, 6, 1))
    assert scene.site_id == "syn-0012" and scene.truth["land_cover"] == "water"
    assert scene.tile.dn.shape == (3, 250, 250)
    assert simulate_scene(site, date(2025, 6, 1)).tile.dn.tobytes() == scene.tile.dn.tobytes()
