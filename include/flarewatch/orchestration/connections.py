"""Clients for tasks, from Airflow connections: settings, the S3 client, the results database.

``results_db(cfg)`` is the one way a task opens the results database: a context manager that
always closes the connection. The connection's settings are read through the postgres provider's
``PostgresHook`` (the ``FLAREWATCH_DB_CONN_ID`` connection); the connection itself is psycopg2,
which ``flarewatch.store`` is written for: with psycopg 3 and SQLAlchemy 2 installed (as they are
beside Airflow 3.3), ``PostgresHook.get_conn()`` would hand out a psycopg 3 connection instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flarewatch.config import Settings
from flarewatch.store import db


def settings() -> Settings:
    return Settings.from_env()


def s3_client(cfg: Settings):
    """boto3 S3 client for the ``FLAREWATCH_S3_CONN_ID`` Airflow connection (endpoint from its extra)."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id=cfg.s3_conn_id).get_conn()


def db_connection(cfg: Settings):
    """psycopg2 connection for the ``FLAREWATCH_DB_CONN_ID`` Airflow connection (host may be a socket
    dir); the caller closes it. Tasks use ``results_db`` instead."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook


    hook = PostgresHook(postgres_conn_id=cfg.db_conn_id)
    c = hook.get_connection(cfg.db_conn_id)
    extra = c.extra_dejson or {}
    return db.connect(
        host=c.host, port=c.port, user=c.login, password=c.password, dbname=c.schema,
        sslmode=extra.get("sslmode"), application_name="flarewatch",
    )


@contextmanager
def results_db(cfg: Settings | None = None) -> Iterator[object]:
    """The results database for the duration of a ``with`` block; closed on every path."""
    conn = db_connection(cfg or settings())
    try:
        yield conn
    finally:
        conn.close()
