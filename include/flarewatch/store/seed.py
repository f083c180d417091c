"""The results database made ready: migrations applied, sites and calibration site map seeded.

One function, ``migrate_and_seed``, for every place that prepares a results database:
``flarewatch migrate`` (also the Docker image's ``airflow-init``), the local stack (``make up``),
the test session's database and the benchmark's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from flarewatch.meters.importer import load_site_map, seed_site_map
from flarewatch.sites import load_sites
from flarewatch.store import db


@dataclass(frozen=True)
class Seeded:
    """What ``migrate_and_seed`` did: migration versions applied now, rows upserted (None: not seeded)."""

    migrations: list[str]
    sites: int | None = None
    site_map: int | None = None


def migrate_and_seed(conn, *, seed: bool | Literal["if_empty"] = True, sites_file: str | Path | None = None,
                     site_map: bool = True) -> Seeded:
    """Apply the pending numbered migrations, then seed the sites and the calibration site map.

    ``seed``: True upserts the sites of ``sites_file`` (default: the packaged demo sites); False
    seeds nothing; ``"if_empty"`` seeds only while ``sites`` has no row (a first start: sites
    edited later are left alone). ``site_map``: with the sites, also upsert the packaged,
    illustrative calibration site map (reported wells / leases -> sites).
    """
    applied = db.migrate(conn)
    if seed == "if_empty":
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM sites")
            seed = cur.fetchone()[0] == 0
        conn.commit()
    elif not isinstance(seed, bool):
        raise ValueError(f"seed must be True, False or 'if_empty', not {seed!r}")
    if not seed:
        return Seeded(applied)
    n_sites = db.upsert_sites(conn, load_sites(sites_file or None))
    n_map = seed_site_map(conn, load_site_map()) if site_map else None
    return Seeded(applied, n_sites, n_map)
