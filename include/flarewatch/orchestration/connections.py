"""Clients for tasks, from Airflow connections: settings, the S3 client, the results database.

``results_db(cfg)`` is the one way a task opens the results database: a context manager over the
postgres provider's ``PostgresHook`` that always closes the connection.
"""

from __future__ import annotations

from flarewatch.config import Settings


def settings() -> Settings:
    return Settings.from_env()


def s3_client(cfg: Settings):
    """boto3 S3 client for the ``FLAREWATCH_S3_CONN_ID`` Airflow connection (endpoint from its extra)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=cfg.s3_conn_id).get_conn()


def db_connection(cfg: Settings):
    """psycopg2 connection for the ``FLAREWATCH_DB_CONN_ID`` Airflow connection (host may be a socket dir)."""
    from airflow.sdk import BaseHook

    from flarewatch.store import db

    c = BaseHook.get_connection(cfg.db_conn_id)
    extra = c.extra_dejson or {}
    return db.connect(
        host=c.host, port=c.port, user=c.login, password=c.password, dbname=c.schema,
        sslmode=extra.get("sslmode"), application_name="flarewatch",
    )
