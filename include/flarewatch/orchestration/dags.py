"""Airflow glue shared by the DAG files: assets, default args, clients from connections, dates.

Imported at DAG parse time, so it imports only the Airflow SDK at module level; everything heavy
is imported inside the functions tasks call.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset

# Assets couple the DAGs: ingest -> process -> rollup -> analytics.
RAW_SCENES = Asset(name="flarewatch_raw_scenes")
FLARE_EMISSIONS = Asset(name="flarewatch_flare_emissions")
EMISSION_ROLLUPS = Asset(name="flarewatch_emission_rollups")
EMISSION_ANALYTICS = Asset(name="flarewatch_emission_analytics")

START_DATE = datetime(2025, 1, 1)

DEFAULT_ARGS = {
    "owner": "flarewatch",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}


