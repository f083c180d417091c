"""Airflow pools, one per provider, so that rate limits hold however many sites run.
"""

from __future__ import annotations


def pools_spec() -> dict:
    """``airflow pools import`` JSON for the per-provider pools (``ingest.sources.PROVIDER_POOLS``)."""
    from flarewatch.ingest.sources import PROVIDER_POOLS

    return {name: {"slots": slots, "description": desc, "include_deferred": False}
            for name, slots, desc in PROVIDER_POOLS.values()}
