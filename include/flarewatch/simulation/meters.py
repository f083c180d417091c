"""The demo's simulated meter readings: daily flared volumes per site, with noise, gaps and bad rows.

The truth comes from ``simulation.scene.site_day_flows``; the readings are written in the native
calibration format (``meters.formats``) and uploaded where ``calibration_import`` looks.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from flarewatch.meters.formats import NATIVE_HEADER
from flarewatch.store import objects as storage

# --------------------------------------------------------------------------------------------
# Simulated meter (the demo's calibration data)
# --------------------------------------------------------------------------------------------
SIMULATED_SOURCE = "simulated-meter"


METER_GAP_PROBABILITY = 0.05  # simulator assumption: a meter misses ~1 day in 20


def _seeded(*parts: object):
    import numpy as np

    key = "|".join(str(p) for p in ("flarewatch-calibration", *parts))
    return np.random.default_rng(int.from_bytes(hashlib.sha256(key.encode()).digest()[:16], "little"))


def _meter_rows(site, start: date, end: date, *, noise_sd: float, seed_key: str, gap_probability: float,
                bad_rows: bool) -> list[list[str]]:
    from flarewatch.simulation.flares import site_day_flows

    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    meter = f"{site.site_id}-meter"
    rows: list[list[str]] = []
    readings: list[tuple[date, float]] = []
    day = start
    while day <= end:
        # one generator per site-day: the same day reads the same in any date range
        rng = _seeded(seed_key, "reading", site.site_id, day.isoformat())
        gap, noise = rng.random() < gap_probability, float(rng.lognormal(0.0, noise_sd))
        if not gap:
            value = round(sum(site_day_flows(site, day).values()) * noise, 3)
            readings.append((day, value))
            rows.append([site.site_id, day.isoformat(), day.isoformat(), f"{value:.3f}", "kscm",
                         SIMULATED_SOURCE, meter, site.operator])
        day += timedelta(days=1)
    if bad_rows and readings:
        # Deliberately bad rows, appended after the good ones so that the good ones are kept:
        # a negative value, an unknown unit, a duplicate and a period overlapping a reading.
        rng = _seeded(seed_key, "bad-rows", site.site_id, start.isoformat(), end.isoformat())
        pick = [readings[int(i)] for i in rng.integers(0, len(readings), size=4)]
        (d1, v1), (d2, v2), (d3, v3), (d4, v4) = pick
        rows.append([site.site_id, d1.isoformat(), d1.isoformat(), f"{-max(v1, 1.0):.3f}", "kscm",
                     SIMULATED_SOURCE, meter, site.operator])
        rows.append([site.site_id, d2.isoformat(), d2.isoformat(), f"{v2 * 6.29:.1f}", "bbl",
                     SIMULATED_SOURCE, meter, site.operator])
        rows.append([site.site_id, d3.isoformat(), d3.isoformat(), f"{v3:.3f}", "kscm",
                     SIMULATED_SOURCE, meter, site.operator])
        p0, p1 = (d4, d4 + timedelta(days=1)) if d4 < end else (d4 - timedelta(days=1), d4)
        rows.append([site.site_id, p0.isoformat(), p1.isoformat(), f"{2 * v4:.3f}", "kscm",
                     SIMULATED_SOURCE, meter, site.operator])
    return rows


def _native_csv(rows: Iterable[Sequence[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(NATIVE_HEADER)
    writer.writerows(rows)
    return buf.getvalue()


def simulated_meter_readings(
    site,
    start: date,
    end: date,
    *,
    noise_sd: float = 0.05,
    seed_key: str = "meter-v1",
    gap_probability: float = METER_GAP_PROBABILITY,
    bad_rows: bool = True,
) -> str:
    """A native-format calibration CSV of a simulated flow meter at ``site`` for ``start..end``.

    One row per day (period_start = period_end = the day, unit ``kscm``, source
    ``simulated-meter``, source_key ``<site_id>-meter``): the simulator's true site flow on that
    day (``simulation.flares.site_day_flows`` summed over the stacks) times lognormal(0, ``noise_sd``)
    meter noise, rounded to 1 m3. Days drawn as gaps (probability ``gap_probability``) have no
    row. With ``bad_rows``, four deliberately bad rows follow the readings: a negative value, an
    unknown unit (``bbl``), a duplicate of a reading and a two-day period overlapping a reading.
    Deterministic in (``seed_key``, site, day) for the readings and in the date range for the
    bad rows. Simulator assumptions, not literature.
    """
    return _native_csv(_meter_rows(site, start, end, noise_sd=noise_sd, seed_key=seed_key,
                                   gap_probability=gap_probability, bad_rows=bad_rows))


def demo_calibration_key(start: date, end: date) -> str:
    return f"calibration/{SIMULATED_SOURCE}/{start.isoformat()}_{end.isoformat()}.csv"


def upload_demo_calibration(s3, settings, sites, start: date, end: date) -> str:
    """Write the simulated meter readings of ``sites`` for ``start..end`` to one native CSV in the
    raw bucket (``calibration/simulated-meter/<start>_<end>.csv``); returns its ``s3://`` URI.

    The calibration_import DAG's daily run (or a manual run with ``s3_key``) imports it.
    """

    rows = [r for site in sites for r in _meter_rows(site, start, end, noise_sd=0.05, seed_key="meter-v1",
                                                     gap_probability=METER_GAP_PROBABILITY, bad_rows=True)]
    key = demo_calibration_key(start, end)
    storage.put_bytes(s3, settings.raw_bucket, key, _native_csv(rows).encode(), content_type="text/csv")
    return f"s3://{settings.raw_bucket}/{key}"
