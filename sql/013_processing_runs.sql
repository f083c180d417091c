-- Migration 013: which Airflow run produced a site-day's numbers, so the FlareWatch page can link
-- a day to its DAG run. Set from the task's Airflow context (AIRFLOW_CTX_DAG_ID / _DAG_RUN_ID,
-- which Airflow's task runner exports); NULL when processing ran outside Airflow (the CLI, tests).
-- Safe to re-run.
ALTER TABLE site_day_processing ADD COLUMN IF NOT EXISTS dag_id text;
ALTER TABLE site_day_processing ADD COLUMN IF NOT EXISTS dag_run_id text;
COMMENT ON COLUMN site_day_processing.dag_id IS 'The Airflow DAG whose run last processed the site-day successfully (flare_process); NULL outside Airflow.';
COMMENT ON COLUMN site_day_processing.dag_run_id IS 'The Airflow run id that last processed the site-day successfully; the page links to /dags/<dag_id>/runs/<dag_run_id>. NULL outside Airflow.';
