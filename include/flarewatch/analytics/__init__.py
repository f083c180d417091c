"""Step 4b: what people read, on top of the rollups: gap-aware monthly estimates with intervals and
CO2e scenarios (``gapfill``, ``scenarios``), KPIs (``kpis``), anomalies and alert rules
(``anomalies``, ``alerts``), the reconciliation of reported with observed volumes
(``reconciliation``). Pure functions; ``refresh`` reads the rollups and writes the analytics
tables (the ``emissions_analytics`` DAG).
"""
