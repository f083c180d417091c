"""A site's daily series as the analytics read it (one ``SiteDay`` per calendar day with scenes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flarewatch.analytics.gapfill import DayVolume


@dataclass(frozen=True)
class SiteDay:
    """One row of ``emissions_daily`` with the day's flare features: ``observed`` = processed and
    seen by a sensor; numbers are None when not observed."""

    site_id: str
    day: date
    status: str
    observed: bool
    n_flares: int | None
    volume: float | None
    lo: float | None
    hi: float | None
    temperature_k: float | None = None  # mean colour temperature of the day's Sentinel-2 flares
    frp_mw: float | None = None  # sum of the day's SWIR FRP

    @property
    def flaring(self) -> bool:
        return bool(self.observed and (self.n_flares or 0) > 0)


def observed_volumes(series: list[SiteDay]) -> dict[date, DayVolume]:
    """Observed days -> DayVolume (a missing bound is the volume itself)."""
    return {d.day: DayVolume(d.volume or 0.0, d.lo if d.lo is not None else (d.volume or 0.0),
                             d.hi if d.hi is not None else (d.volume or 0.0))
            for d in series if d.observed and d.volume is not None}
