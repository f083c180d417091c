"""How many mapped tasks ``flare_ingest`` and ``flare_process`` run, sized from measured costs.

A mapped task pays a fixed price before its first site-day: Airflow starts a task process (the
supervisor, the task runner, the package imports: ~2-3 s on 2 cores), and ``flare_process`` then
loads the detector and the regressor (~5 s of CPU). One task per site-day (or per day) spends most
of a backfill on that. So the site-days of a run are split into batches:

- **as few as the work allows**: ``ceil(work / overhead)``, so that each batch does at least as
  much work as it costs to start (a daily run of 6 sites is one task);
- **no more than can run at once** (``slots``): ``[core] parallelism`` and ``[core]
  max_active_tasks_per_dag`` (4 and 4 on the local stack), and for an ingest lane its provider's
  pool slots; ``FLAREWATCH_TASK_SLOTS`` overrides (e.g. Celery workers x concurrency). A long
  range therefore becomes about ``slots`` batches of many site-days each;
- **no bigger than a cap**, if set: ``FLAREWATCH_INGEST_BATCH`` / ``FLAREWATCH_PROCESS_BATCH``
  (site-days per task; 0 or unset = no cap), still never more than ``[core] max_map_length``
  batches (1024): the cap grows rather than fail the run.

Batches are contiguous in (day, site) order and made of whole days where there are at least as
many days as batches, so a batch reads as a date range: the grid shows ``2025-06-01..2025-06-15
6 sites`` (or the sites themselves when there are few, e.g. ``2025-06-01 a,b,c``).

A batch is ``{"days": {"YYYY-MM-DD": [site_id, ...], ...}}`` (small enough for an XCom); the
former one-day form ``{"acquisition_date": ..., "site_ids": [...]}`` is still read.

Pure functions (no Airflow import) but for ``airflow_slots``, which reads Airflow's config.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from flarewatch.orchestration.dates import parse_day

# a label lists the sites when there are at most this many (one day; a range of days), else counts them
SITES_IN_LABEL = (6, 3)


@dataclass(frozen=True)
class TaskCosts:
    """What one mapped task costs before its first site-day (``overhead_s``: process start-up,
    imports, clients, models) and per site-day (``site_day_s``), in seconds on one core."""

    overhead_s: float
    site_day_s: float


# Measured on the 2-core development machine, nearly idle (README, "Backfill throughput"): a task's
# start-up through LocalExecutor ~2.5 s; flare_process loads the detector (OpenVINO, after importing
# torch / ultralytics) and the regressor in ~5 s, then takes ~0.2 s per site-day (in-process: 83 s for
# 360 site-days, models included); a demo ingest (simulated scene, S3 writes, scenes rows) ~0.06 s.
PROCESS_COSTS = TaskCosts(overhead_s=7.5, site_day_s=0.2)
INGEST_COSTS = TaskCosts(overhead_s=2.5, site_day_s=0.06)
# a real provider's site-day is network-bound (a STAC search, COG windows or an API call: seconds):
# batches then fill the provider's pool slots, which is what limits it anyway
PROVIDER_INGEST_COSTS = TaskCosts(overhead_s=2.5, site_day_s=5.0)


def env_int(name: str, default: int = 0, env: dict | None = None) -> int:
    """A non-negative integer setting; ``ValueError`` naming it otherwise."""
    raw = (os.environ if env is None else env).get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def batch_count(n_items: int, costs: TaskCosts, slots: int, *, max_size: int = 0, max_batches: int = 1024) -> int:
    """How many batches ``n_items`` site-days make: ``ceil(work / overhead)``, at most ``slots``, at
    least ``ceil(n_items / max_size)`` when ``max_size`` caps a batch, never more than
    ``max_batches`` or ``n_items``; 0 for no item."""
    if n_items <= 0:
        return 0
    n = min(max(1, math.ceil(n_items * costs.site_day_s / costs.overhead_s)), max(1, slots))
    if max_size > 0:
        n = max(n, math.ceil(n_items / max_size))
    return max(1, min(n, n_items, max_batches))


def split_site_days(site_days: Iterable[tuple[str, date]], n: int) -> list[dict]:
    """(site_id, day) pairs -> ``n`` batches (fewer if there are fewer site-days), contiguous in
    (day, site) order: whole days when there are at least ``n`` days (balanced by site-days),
    else runs of equal length that cut days."""
    by_day: dict[date, list[str]] = {}
    for site_id, day in sorted(set(site_days), key=lambda x: (x[1], x[0])):
        by_day.setdefault(day, []).append(site_id)
    total = sum(len(ids) for ids in by_day.values())
    if not total or n < 1:
        return []
    n = min(n, total)
    days = list(by_day)
    if n <= len(days):
        groups: list[list[date]] = [[]]
        done = 0
        for i, day in enumerate(days):
            groups[-1].append(day)
            done += len(by_day[day])
            left_days, left_groups = len(days) - i - 1, n - len(groups)
            # close the group at its share of the site-days, or when each later group needs a day
            if left_groups and (done >= total * len(groups) / n or left_days == left_groups):
                groups.append([])
        return [{"days": {d.isoformat(): by_day[d] for d in g}} for g in groups if g]
    flat = [(day, site_id) for day in days for site_id in by_day[day]]
    out = []
    for k in range(n):
        chunk = flat[k * total // n:(k + 1) * total // n]
        batch: dict[str, list[str]] = {}
        for day, site_id in chunk:
            batch.setdefault(day.isoformat(), []).append(site_id)
        out.append({"days": batch})
    return out


def plan_batches(site_days, costs: TaskCosts, slots: int, *, max_size: int = 0, max_batches: int = 1024) -> list[dict]:
    """The batches of ``site_days`` (``batch_count`` of them, ``split_site_days``)."""
    site_days = set(site_days)
    return split_site_days(site_days, batch_count(len(site_days), costs, slots, max_size=max_size,
                                                  max_batches=max_batches))


def batch_days(batch: dict) -> dict[date, list[str]]:
    """A batch as {day: [site_id, ...]} (either form)."""
    if "days" in batch:
        return {parse_day(d): list(ids) for d, ids in sorted(batch["days"].items())}
    return {parse_day(batch["acquisition_date"]): list(batch["site_ids"])}


def batch_size(batch: dict) -> int:
    return sum(len(ids) for ids in batch_days(batch).values())


def batch_label(batch: dict) -> str:
    """How the grid labels a mapped ingest or process task: the day or ``first..last`` day, then the
    sites (``a,b,c``: up to six on one day, three over a range; else ``40 sites``), then the
    site-days when they are not every site on every day: ``2025-06-01 a,b``,
    ``2025-06-01..2025-06-30 6 sites``, ``2025-06-01..2025-06-03 8 sites (20 site-days)``."""
    days = batch_days(batch)
    if not days:
        return "nothing"
    first, last = min(days), max(days)
    span = f"{first}" if first == last else f"{first}..{last}"
    sites = sorted({s for ids in days.values() for s in ids})
    who = ",".join(sites) if len(sites) <= SITES_IN_LABEL[first != last] else f"{len(sites)} sites"
    n = sum(len(ids) for ids in days.values())
    return f"{span} {who}" + ("" if n == len(days) * len(sites) else f" ({n} site-days)")


def airflow_slots(pool_slots: int | None = None) -> int:
    """Task instances that can run at once for one DAG run: ``FLAREWATCH_TASK_SLOTS`` when set, else
    the smaller of ``[core] parallelism`` and ``[core] max_active_tasks_per_dag``, and of
    ``pool_slots`` (an ingest lane's provider pool)."""
    override = env_int("FLAREWATCH_TASK_SLOTS")
    if override:
        slots = override
    else:
        from airflow.sdk import conf

        slots = min(conf.getint("core", "parallelism", fallback=32),
                    conf.getint("core", "max_active_tasks_per_dag", fallback=16))
    return max(1, min(slots, pool_slots) if pool_slots else slots)


def pool_slots(provider: str) -> int | None:
    """The slots of ``provider``'s Airflow pool (``ingest.sources.PROVIDER_POOLS``); None for the demo."""
    from flarewatch.ingest.sources import PROVIDER_POOLS

    return PROVIDER_POOLS[provider][1] if provider in PROVIDER_POOLS else None


def max_map_length() -> int:
    from airflow.sdk import conf

    return conf.getint("core", "max_map_length", fallback=1024)
