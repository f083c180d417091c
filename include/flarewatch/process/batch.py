"""Batches of site-days for the ``flare_process`` mapped tasks.
"""

from __future__ import annotations


def batch_site_days(site_days, size: int) -> list[dict]:
    """(site_id, day) pairs -> mapped-task inputs: per acquisition day, batches of at most ``size``
    sites, sorted by day then site: ``{"acquisition_date": "YYYY-MM-DD", "site_ids": [...]}``."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    by_day: dict = {}
    for site_id, day in sorted(set(site_days), key=lambda x: (x[1], x[0])):
        by_day.setdefault(day, []).append(site_id)
    return [{"acquisition_date": day.isoformat(), "site_ids": ids[i:i + size]}
            for day, ids in by_day.items() for i in range(0, len(ids), size)]
