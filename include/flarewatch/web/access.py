"""How the web app reaches the results database and the ``processed`` bucket.

Connections come from the same Airflow connections the tasks use (``FLAREWATCH_DB_CONN_ID``,
``FLAREWATCH_S3_CONN_ID``: the api-server has them as every Airflow component does), are kept in a
small pool, and act as the ``flarewatch_api`` role (``SET ROLE``; migration 011): SELECT on the
results schema and UPDATE of the alerts' acknowledgement columns, nothing else. Reads also run in
read-only transactions, so the page cannot write even where the role is missing (a managed Postgres
whose owner could not create roles: a warning says so once).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

DB_ROLE_ENV = "FLAREWATCH_WEB_DB_ROLE"
DEFAULT_DB_ROLE = "flarewatch_api"
POOL_SIZE = 4


class Access:
    """Pooled results-DB connections (as ``role``) and one S3 client, made on first use."""

    def __init__(self, connect: Callable[[], object], s3: Callable[[], object], processed_bucket: str,
                 role: str | None = None):
        self._connect, self._make_s3 = connect, s3
        self.processed_bucket = processed_bucket
        self.role = os.environ.get(DB_ROLE_ENV, DEFAULT_DB_ROLE) if role is None else role
        self._idle: list = []
        self._lock = threading.Lock()
        self._s3 = None
        self._role_warned = False

    @classmethod
    def from_airflow(cls) -> Access:
        """Clients from the Airflow connections (the api-server's environment)."""
        from flarewatch.orchestration import connections

        cfg = connections.settings()
        return cls(lambda: connections.db_connection(cfg), lambda: connections.s3_client(cfg), cfg.processed_bucket)

    def _new_connection(self):
        conn = self._connect()
        if self.role:
            from psycopg2 import sql

            try:
                with conn.cursor() as cur:
                    cur.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.role)))
                conn.commit()
            except Exception as exc:  # noqa: BLE001 - a missing role degrades to read-only, loudly
                conn.rollback()
                if not self._role_warned:
                    log.warning("FlareWatch web: cannot SET ROLE %s (%s); reading as the connection's own user in"
                                " read-only transactions; acknowledging alerts writes as that user. Create the"
                                " roles with migration 011 as a user with CREATEROLE.", self.role,
                                str(exc).strip())
                    self._role_warned = True
        return conn

    @contextmanager
    def db(self, *, write: bool = False) -> Iterator[object]:
        """A pooled connection; read-only transactions unless ``write``. Broken ones are dropped."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            conn = self._new_connection()
        ok = False
        try:
            conn.set_session(readonly=not write)
            yield conn
            ok = True
        finally:
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001 - the connection is gone; do not pool it
                ok = False
            if ok and not conn.closed:
                with self._lock:
                    if len(self._idle) < POOL_SIZE:
                        self._idle.append(conn)
                        conn = None
            if conn is not None and not conn.closed:
                conn.close()

    def s3(self):
        if self._s3 is None:
            self._s3 = self._make_s3()
        return self._s3

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
