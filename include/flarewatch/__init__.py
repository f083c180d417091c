"""FlareWatch: gas flaring volumes and CO2 from Sentinel-2 and VIIRS.

The package holds the domain logic (scene sources, detection, features, volume and CO2
estimation, storage layout, database writes); the Airflow DAGs in ``dags/`` stay thin and call it.
"""

__version__ = "0.1.0"
