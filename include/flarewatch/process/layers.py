"""One merged GeoJSON layer of flares per acquisition day and per month, for GIS users.

``s3://processed/layers/date=YYYY-MM-DD/flares.geojson`` and
``s3://processed/layers/month=YYYY-MM/flares.geojson``: every flare of every site that day (month),
as a Point with the same self-contained properties as the per-site ``detections.geojson`` (site,
field, operator, country, date, sensor, the estimate with its 90 % interval, CO2, CO2e, units,
detector and volume-model versions). Built from the database after the rollup (``emissions_rollup``)
so a layer holds exactly the published, audited rows; sorted and serialised deterministically, so
a rerun writes the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date

from flarewatch.config import Settings
from flarewatch.process.render import COORD_DECIMALS, UNITS
from flarewatch.store import objects as storage

_SQL = """
SELECT f.site_id, f.site_name, f.field, f.operator, f.country, f.acquisition_date, f.detection_key, f.sensor,
       f.lat, f.lon, f.confidence, f.temperature_k, f.swir_frp_mw, f.viirs_rh_mw, f.volume_kscm_d,
       f.volume_lo_kscm_d, f.volume_hi_kscm_d, f.co2_t, f.co2e_t, f.rh_source, f.model_version AS volume_model_version,
       f.detector_version
FROM v_flares f
JOIN emissions_daily d ON d.site_id = f.site_id AND d.day = f.acquisition_date AND d.status = 'processed'
WHERE f.acquisition_date BETWEEN %s AND %s
ORDER BY f.acquisition_date, f.site_id, f.detection_key
"""


def layer(rows: Iterable[dict], name: str) -> dict:
    """A FeatureCollection of flare rows (``_SQL``'s columns)."""
    features = []
    for r in rows:
        props = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in r.items() if k not in ("lat", "lon")}
        props["units"] = UNITS
        features.append({"type": "Feature",
                         "geometry": {"type": "Point", "coordinates": [round(r["lon"], COORD_DECIMALS),
                                                                       round(r["lat"], COORD_DECIMALS)]},
                         "properties": props})
    return {"type": "FeatureCollection", "name": name, "features": features}


def layer_keys(day: date) -> tuple[str, str]:
    return f"layers/date={day.isoformat()}/flares.geojson", f"layers/month={day:%Y-%m}/flares.geojson"


def publish_layers(conn, s3, settings: Settings, days: Iterable[date]) -> dict:
    """Write the day layers of ``days`` and the month layers of their months; returns the keys."""
    days = sorted(set(days))
    written = []
    months = sorted({d.replace(day=1) for d in days})
    for m in months:
        last = date.fromordinal(date(m.year + (m.month == 12), m.month % 12 + 1, 1).toordinal() - 1)
        with conn.cursor() as cur:
            cur.execute(_SQL, (m, last))
            cols = [c.name for c in cur.description]
            rows = [dict(zip(cols, r)) for r in cur.fetchall()]
        conn.commit()
        month_key = layer_keys(m)[1]
        storage.put_bytes(s3, settings.processed_bucket, month_key, _dumps(layer(rows, f"flares {m:%Y-%m}")),
                          "application/geo+json")
        written.append(month_key)
        for d in (x for x in days if x.replace(day=1) == m):
            key = layer_keys(d)[0]
            storage.put_bytes(s3, settings.processed_bucket, key,
                              _dumps(layer([r for r in rows if r["acquisition_date"] == d], f"flares {d}")),
                              "application/geo+json")
            written.append(key)
    return {"layers": written}


def _dumps(fc: dict) -> bytes:
    return json.dumps(fc, sort_keys=True, allow_nan=False, default=str).encode()
