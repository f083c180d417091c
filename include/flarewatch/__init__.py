"""FlareWatch: gas flaring volumes and CO2 from Sentinel-2 and VIIRS.

The package holds the domain logic (scene sources, detection, features, volume and CO2
estimation, storage layout, database writes); the Airflow DAGs in ``dags/`` stay thin and call it.
One sub-package per pipeline stage (README, "Architecture"); no import cycle (tests/architecture).

Imports inside functions are kept for one reason only: DAG files are parsed often, so what they
import at module level (``orchestration.dags``, ``orchestration.retrain``, ``ingest.sources``) must
not pull in torch, ultralytics, rasterio, pandas, scikit-learn, boto3 or psycopg2; heavy libraries
and the stage a task needs are imported when a task (or a function that needs them) runs.
"""

__version__ = "0.1.0"
