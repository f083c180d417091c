"""The demo scene source: the deterministic simulator behind the ``SceneSource`` interface."""

from __future__ import annotations

from datetime import date

from flarewatch.ingest.sources.base import SiteDayData
from flarewatch.sites import Site
from flarewatch.tiles import encode_tile


class DemoSource:
    name = "demo"

    def fetch(self, site: Site, day: date) -> SiteDayData:
        from flarewatch.simulation.scene import simulate_scene

        scene = simulate_scene(site, day)
        tile = scene.tile
        valid = tile.valid
        return SiteDayData(
            source=self.name,
            tile_geotiff=encode_tile(tile),
            viirs_csv=scene.viirs_csv,
            s2_meta={
                "acquired_at": tile.acquired_at,
                "crs_epsg": tile.crs_epsg,
                "height_px": tile.shape[0],
                "width_px": tile.shape[1],
                "cloud_fraction": round(float(scene.cloud_fraction), 4),
                "valid_fraction": round(float(valid.mean()), 4),
            },
            truth=scene.truth,
        )
