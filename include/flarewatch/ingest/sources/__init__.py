"""Scene sources: where Sentinel-2 tiles and VIIRS night detections come from.

A source returns a ``SiteDayData`` for a (site, acquisition date). Providers, per sensor:

- Sentinel-2: ``demo`` (the simulator), ``earth-search`` (Element 84 STAC + COGs),
  ``sentinel-hub`` (Sentinel Hub / CDSE Process API);
- VIIRS: ``demo``, ``firms`` (NASA FIRMS area API, VIIRS active fires), ``nightfire`` (VIIRS
  Nightfire nightly CSV files).

The deployment default is ``FLAREWATCH_S2_SOURCE`` / ``FLAREWATCH_VIIRS_SOURCE`` (both ``demo``
unless set; ``FLAREWATCH_SCENE_SOURCE=demo`` keeps meaning both demo); a site's
``s2_source`` / ``viirs_source`` (sites CSV / table) overrides it. ``CompositeSource`` puts the two
together. Provider classes are imported lazily, when a site uses them, and read their
credentials (Airflow connections) only then.

This module is imported at DAG parse time: it imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flarewatch.config import S2_SOURCES, VIIRS_SOURCES, Settings
from flarewatch.ingest.sources.base import (
    OUTCOMES,
    SENSORS,
    SceneSource,
    SiteDayData,
    ViirsResult,
)
from flarewatch.sites import Site

__all__ = ["OUTCOMES", "SENSORS", "SceneSource", "SiteDayData", "ViirsResult"]


# ------------------------------------------------------------------------------------------
# Airflow pools: one per rate-limited provider (created by localstack and docker-compose's
# airflow-init; `airflow pools set <name> <slots> <description>`). The demo uses default_pool.
# ------------------------------------------------------------------------------------------
PROVIDER_POOLS: dict[str, tuple[str, int, str]] = {
    "earth-search": ("flarewatch_earth_search", 4, "Earth Search STAC + COG reads (public; be gentle)"),
    "sentinel-hub": ("flarewatch_sentinel_hub", 2, "Sentinel Hub / CDSE Process API: processing units and request rate"),
    "firms": ("flarewatch_firms", 2, "NASA FIRMS area API: 5000 transactions per 10 minutes per MAP_KEY"),
    "nightfire": ("flarewatch_nightfire", 1, "VIIRS Nightfire nightly files: one download per night, shared by all sites"),
}
DEFAULT_POOL = "default_pool"


def pool_for(provider: str) -> str:
    """The Airflow pool the ingest tasks of ``provider`` run in (``default_pool`` for the demo)."""
    return PROVIDER_POOLS[provider][0] if provider in PROVIDER_POOLS else DEFAULT_POOL


@dataclass(frozen=True)
class IngestLane:
    """One ingest task of flare_ingest: the sensors it fetches with one provider, in its pool."""

    lane: str  # "demo" (both sensors from the simulator), "s2_<provider>", "viirs_<provider>"
    sensors: tuple[str, ...]
    provider: str
    pool: str

    @property
    def task_id(self) -> str:
        return "ingest" if self.lane == "demo" else f"ingest_{self.lane}"


def _slug(provider: str) -> str:
    return provider.replace("-", "_")


INGEST_LANES: tuple[IngestLane, ...] = (
    IngestLane("demo", SENSORS, "demo", DEFAULT_POOL),
    *(IngestLane(f"s2_{_slug(p)}", ("sentinel2",), p, pool_for(p)) for p in S2_SOURCES),
    *(IngestLane(f"viirs_{_slug(p)}", ("viirs",), p, pool_for(p)) for p in VIIRS_SOURCES),
)


def site_providers(site: Site, settings: Settings) -> tuple[str, str]:
    """(Sentinel-2 provider, VIIRS provider) for ``site``: its overrides, else the deployment's."""
    return (site.s2_source or settings.s2_source, site.viirs_source or settings.viirs_source)


def plan_lanes(sites, settings: Settings) -> dict[str, list[str]]:
    """Site ids per ingest lane (every lane present, possibly empty).

    A site whose two sensors both come from the demo goes to the ``demo`` lane (one simulation
    for both); otherwise its Sentinel-2 and VIIRS fetches go to the lanes of their providers,
    so each provider's pool limits its own requests.
    """
    out: dict[str, list[str]] = {lane.lane: [] for lane in INGEST_LANES}
    for site in sites:
        s2, vi = site_providers(site, settings)
        if s2 == "demo" and vi == "demo":
            out["demo"].append(site.site_id)
        else:
            out[f"s2_{_slug(s2)}"].append(site.site_id)
            out[f"viirs_{_slug(vi)}"].append(site.site_id)
    return out


# ------------------------------------------------------------------------------------------
# Composition
# ------------------------------------------------------------------------------------------
def _earth_search(settings: Settings):
    from flarewatch.ingest.sources.earth_search import EarthSearchS2
    from flarewatch.ingest.sources.http import make_session

    src = settings.sources
    kwargs: dict = {"session": make_session(retries=src.http_retries, backoff_s=src.http_backoff_s,
                                            timeout_s=src.http_timeout_s, user_agent="flarewatch (Earth Search)")}
    if src.earth_search_url:
        kwargs["stac_url"] = src.earth_search_url
    if src.earth_search_collection:
        kwargs["collection"] = src.earth_search_collection
    if src.s2_max_cloud is not None:
        kwargs["max_cloud"] = src.s2_max_cloud
    return EarthSearchS2(**kwargs)


def _sentinel_hub(settings: Settings):
    from flarewatch.ingest.sources.sentinel_hub import SentinelHubS2

    src = settings.sources
    overrides = {} if src.s2_max_cloud is None else {"max_cloud": src.s2_max_cloud}
    return SentinelHubS2.from_airflow_connection(src.sentinel_hub_conn_id, **overrides)


class CompositeSource:
    """Sentinel-2 from one provider, VIIRS from another, per site (see the module docstring).

    ``providers``: provider name -> object, to inject stubs (tests) or shared clients; the others
    are built lazily from ``settings``. ``raw_store`` (``store.objects.RawStore``): lets providers reuse
    what is already in rawdata (the Nightfire per-night cache).
    """

    name = "composite"

    def __init__(self, settings: Settings | None = None, *, raw_store=None, providers: dict | None = None):
        self.settings = settings or Settings.from_env()
        self.raw_store = raw_store
        self._providers: dict = dict(providers or {})
        self._demo_cache: dict = {}

    def provider(self, name: str):
        if name not in self._providers:
            if name == "demo":
                from flarewatch.ingest.sources.demo import DemoSource

                obj = DemoSource()
            elif name == "earth-search":
                obj = _earth_search(self.settings)
            elif name == "sentinel-hub":
                obj = _sentinel_hub(self.settings)  # reads its Airflow connection now, on first use
            elif name == "firms":
                from flarewatch.ingest.sources.firms import FirmsSource

                obj = FirmsSource(self.settings, raw_store=self.raw_store)
            elif name == "nightfire":
                from flarewatch.ingest.sources.nightfire import NightfireSource

                obj = NightfireSource(self.settings, raw_store=self.raw_store)
            else:
                raise ValueError(f"unknown provider {name!r}; known: {sorted(set(S2_SOURCES) | set(VIIRS_SOURCES))}")
            self._providers[name] = obj
        return self._providers[name]

    def _demo(self, site: Site, day: date) -> SiteDayData:
        key = (site.site_id, day)
        if key not in self._demo_cache:
            self._demo_cache = {key: self.provider("demo").fetch(site, day)}  # keep one site-day
        return self._demo_cache[key]

    def fetch(self, site: Site, day: date, sensors: tuple[str, ...] = SENSORS) -> SiteDayData:
        unknown = [s for s in sensors if s not in SENSORS]
        if unknown:
            raise ValueError(f"unknown sensors {unknown}; known: {list(SENSORS)}")
        s2, vi = site_providers(site, self.settings)
        if s2 == "demo" and vi == "demo" and tuple(sensors) == SENSORS:
            return self._demo(site, day)  # exactly the demo source's answer

        data = SiteDayData(source=s2 if s2 == vi else f"{s2}+{vi}", tile_geotiff=None, viirs_csv=None,
                           s2_source=s2, viirs_source=vi)
        if "sentinel2" in sensors:
            try:
                self._fill_s2(data, s2, site, day)
            except Exception as exc:  # noqa: BLE001 - recorded as failed by ingest_site_day, then re-raised
                data.errors["sentinel2"] = exc
        if "viirs" in sensors:
            try:
                self._fill_viirs(data, vi, site, day)
            except Exception as exc:  # noqa: BLE001 - as for Sentinel-2 above
                data.errors["viirs"] = exc
        return data

    def _fill_s2(self, data: SiteDayData, provider: str, site: Site, day: date) -> None:
        if provider == "demo":
            demo = self._demo(site, day)
            data.tile_geotiff, data.s2_meta, data.s2_detail = demo.tile_geotiff, dict(demo.s2_meta), demo.s2_detail
            data.truth = demo.truth
            return
        from flarewatch.store import objects as storage

        res = self.provider(provider).fetch_s2(site, day)  # an s2common.S2Result
        meta = dict(res.meta or {})
        data.tile_geotiff = res.tile_geotiff
        data.s2_meta = meta
        data.s2_detail = res.detail or ""
        data.s2_status = res.status
        data.s2_outcome = res.outcome
        # S2Result.raw_objects are named relative to the site-day: file them under
        # raw/source=<provider>/collection=<collection>/baseline=<processing baseline>/date=/site=/.
        for name, obj in (res.raw_objects or {}).items():
            key = name if name.startswith("raw/") else storage.raw_object_key(
                provider, meta.get("collection"), meta.get("processing_baseline"), day, site.site_id, name)
            data.raw_objects[key] = obj

    def _fill_viirs(self, data: SiteDayData, provider: str, site: Site, day: date) -> None:
        if provider == "demo":
            demo = self._demo(site, day)
            data.viirs_csv, data.viirs_detail = demo.viirs_csv, demo.viirs_detail
            return
        res = self.provider(provider).fetch_viirs(site, day)
        data.viirs_csv = res.viirs_csv
        data.viirs_detail = res.detail or ""
        data.viirs_status = res.status
        data.viirs_outcome = res.outcome
        data.viirs_meta = dict(res.meta or {})
        data.raw_objects.update(res.raw_objects or {})
        data.raw_keys.extend(res.raw_keys or [])


def build_source(settings: Settings | None = None, *, raw_store=None, providers: dict | None = None) -> CompositeSource:
    """The source flare_ingest uses: providers per site and sensor from ``settings``."""
    return CompositeSource(settings, raw_store=raw_store, providers=providers)


def get_source(name: str) -> SceneSource:
    """The scene source registered under ``name``; ValueError lists the known ones.

    ``demo``: the simulator for both sensors. ``composite``: ``build_source()`` from the
    environment (per-site providers).
    """
    if name == "demo":
        from flarewatch.ingest.sources.demo import DemoSource

        return DemoSource()
    if name == "composite":
        return build_source()
    raise ValueError(f"unknown scene source {name!r}; known sources: ['composite', 'demo']")
