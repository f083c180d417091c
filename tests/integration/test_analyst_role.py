"""Read-only roles (sql/011_analyst_role.sql, sql/grants.sql) against a real PostgreSQL.

flarewatch_analyst logs in over the test server's trust authentication and may read every table
and view and write nothing; flarewatch_api (the web API's SET ROLE) may acknowledge and resolve
alerts and nothing else. Roles are server-wide: the session's databases share them, so the role
creation paths (no CREATEROLE, a non-superuser owner, two databases at once) run 011 under
throwaway role names.
"""

from __future__ import annotations

import subprocess
import threading
import uuid
from datetime import date

import psycopg2
import pytest
from psycopg2 import errors, sql
from psycopg2.extensions import make_dsn, parse_dsn

from flarewatch.store import db
from flarewatch.store.alerts import acknowledge

pytestmark = pytest.mark.integration

ALERT_COLUMNS = {"status", "acknowledged_by", "acknowledged_at", "resolved_by", "resolved_at", "updated_at"}


@pytest.fixture(scope="module")
def fresh_dsn(pg_server_dsn):
    """A database of its own, migrated and seeded (the role tests write an alert)."""
    from flarewatch.dev import servers
    from flarewatch.store.seed import migrate_and_seed

    with servers.temporary_database(pg_server_dsn, "fw_roles") as dsn:
        conn = db.connect(dsn)
        migrate_and_seed(conn, site_map=False)
        conn.close()
        yield dsn


def _as_user(dsn: str, user: str) -> str:
    return make_dsn(**{**{k: v for k, v in parse_dsn(dsn).items() if k != "password"}, "user": user})


@pytest.fixture
def owner(fresh_dsn):
    c = db.connect(fresh_dsn)
    c.autocommit = True
    yield c
    c.close()


@pytest.fixture
def analyst(fresh_dsn):
    c = psycopg2.connect(_as_user(fresh_dsn, db.ANALYST_ROLE))  # a real login, not SET ROLE
    c.autocommit = True
    yield c
    c.close()


def _relations(conn, kinds: str) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'public' AND c.relkind = ANY(%s) ORDER BY 1", (list(kinds),))
        return [r[0] for r in cur.fetchall()]


def _denied(conn, statement, args=None) -> None:
    with pytest.raises(errors.InsufficientPrivilege), conn.cursor() as cur:
        cur.execute(statement, args)


def test_roles_exist_as_documented(owner):
    with owner.cursor() as cur:
        cur.execute("SELECT rolname, rolcanlogin, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles"
                    " WHERE rolname IN (%s, %s) ORDER BY 1", (db.ANALYST_ROLE, db.API_ROLE))
        roles = {r[0]: r[1:] for r in cur.fetchall()}
        assert roles == {db.ANALYST_ROLE: (True, False, False, False), db.API_ROLE: (False, False, False, False)}
        cur.execute("SELECT pg_has_role(%s, %s, 'USAGE')", (db.API_ROLE, db.ANALYST_ROLE))
        assert cur.fetchone()[0]  # the API reads what an analyst reads, without SET ROLE analyst


def test_analyst_logs_in_and_selects_every_table_and_view(owner, analyst):
    relations = _relations(owner, "rvmpf")
    assert {"sites", "alerts", "v_flares", "v_site_summary", "schema_migrations"} <= set(relations)
    with analyst.cursor() as cur:
        cur.execute("SELECT current_user")
        assert cur.fetchone()[0] == db.ANALYST_ROLE
        for rel in relations:
            cur.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(rel)))
        cur.execute("SELECT count(*) FROM sites")
        assert cur.fetchone()[0] > 0
        cur.execute("SELECT * FROM site_summary('2025-06-01', '2025-06-07')")  # EXECUTE is PUBLIC's


def test_analyst_writes_nothing(owner, analyst):
    tables = _relations(owner, "rp")
    assert "schema_migrations" in tables  # the migration bookkeeping is read-only for the analyst too
    for t in tables:
        ident = sql.Identifier(t)
        with owner.cursor() as cur:  # a real column to name in the UPDATE
            cur.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum = 1", (t,))
            col = sql.Identifier(cur.fetchone()[0])
        _denied(analyst, sql.SQL("INSERT INTO {} DEFAULT VALUES").format(ident))
        _denied(analyst, sql.SQL("UPDATE {} SET {} = {} WHERE false").format(ident, col, col))
        _denied(analyst, sql.SQL("DELETE FROM {} WHERE false").format(ident))
        _denied(analyst, sql.SQL("TRUNCATE {}").format(ident))
        _denied(analyst, sql.SQL("DROP TABLE {}").format(ident))
        _denied(analyst, sql.SQL("ALTER TABLE {} ADD COLUMN x integer").format(ident))
    _denied(analyst, "CREATE TABLE analyst_scratch (i integer)")
    _denied(analyst, "CREATE VIEW analyst_scratch AS SELECT 1 AS i")
    _denied(analyst, "CREATE FUNCTION analyst_scratch() RETURNS integer LANGUAGE sql AS 'SELECT 1'")
    for seq in _relations(owner, "S"):
        _denied(analyst, "SELECT nextval(%s)", (seq,))
    with analyst.cursor() as cur:  # without the grant option PostgreSQL only warns, and grants nothing
        cur.execute("GRANT SELECT ON sites TO PUBLIC")
    assert any("no privileges were granted" in n for n in analyst.notices), analyst.notices
    with owner.cursor() as cur:
        cur.execute("SELECT has_table_privilege('public', 'sites', 'SELECT')")
        assert cur.fetchone()[0] is False
    _denied(analyst, "COMMENT ON TABLE sites IS 'x'")


def test_grants_reach_tables_of_later_migrations(owner, analyst, fresh_dsn, tmp_path):
    """A table a later migration adds is readable after migrate, without a GRANT of its own."""
    for _, path in db.migrations():
        (tmp_path / path.name).symlink_to(path)
    (tmp_path / db.GRANTS_FILE).symlink_to(db.sql_dir() / db.GRANTS_FILE)
    (tmp_path / "999_later.sql").write_text("CREATE TABLE later_results (x integer); COMMENT ON TABLE later_results IS 'x';")
    conn = db.connect(fresh_dsn)
    try:
        assert db.migrate(conn, tmp_path) == ["999"]
        with analyst.cursor() as cur:
            cur.execute("SELECT count(*) FROM later_results")
        _denied(analyst, "INSERT INTO later_results VALUES (1)")
        # a table the owner creates outside the migrations: the default privileges cover it
        with owner.cursor() as cur:
            cur.execute("CREATE TABLE later_by_hand (x integer)")
        with analyst.cursor() as cur:
            cur.execute("SELECT count(*) FROM later_by_hand")
    finally:
        with owner.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS later_results, later_by_hand")
            cur.execute("DELETE FROM schema_migrations WHERE version = '999'")
        conn.close()


def test_migrate_re_grants_what_was_revoked(owner, analyst, fresh_dsn):
    """grants.sql runs on every migrate: privileges lost (or roles made after 011) come back."""
    with owner.cursor() as cur:
        cur.execute(sql.SQL("REVOKE SELECT ON kpi_monthly FROM {}").format(sql.Identifier(db.ANALYST_ROLE)))
        cur.execute(sql.SQL("REVOKE UPDATE (status) ON alerts FROM {}").format(sql.Identifier(db.API_ROLE)))
    _denied(analyst, "SELECT count(*) FROM kpi_monthly")
    conn = db.connect(fresh_dsn)
    try:
        assert db.migrate(conn) == []
    finally:
        conn.close()
    with analyst.cursor() as cur:
        cur.execute("SELECT count(*) FROM kpi_monthly")
        cur.execute("SELECT has_column_privilege(%s, 'alerts', 'status', 'UPDATE')", (db.API_ROLE,))
        assert cur.fetchone()[0]


@pytest.fixture
def alert_id(owner):
    with owner.cursor() as cur:
        cur.execute("SELECT site_id FROM sites ORDER BY site_id LIMIT 1")
        site = cur.fetchone()[0]
        cur.execute("INSERT INTO alerts (kind, severity, site_id, period_start, period_end, metric, value, message)"
                    " VALUES ('threshold', 'warning', %s, %s, %s, 'volume_kscm_d', 1500, 'test alert')"
                    " RETURNING alert_id", (site, date(2025, 6, 3), date(2025, 6, 3)))
        aid = cur.fetchone()[0]
    yield aid
    with owner.cursor() as cur:
        cur.execute("DELETE FROM alerts WHERE alert_id = %s", (aid,))


def test_api_role_acknowledges_and_resolves_alerts_only(fresh_dsn, owner, alert_id):
    api = db.connect(fresh_dsn)  # the owner's connection, as the web API opens it
    try:
        with api.cursor() as cur:
            cur.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(db.API_ROLE)))
        api.commit()
        assert acknowledge(api, alert_id, "analyst-a") == {"alert_id": alert_id, "status": "acknowledged", "changed": True}
        assert acknowledge(api, alert_id, "analyst-b", resolve=True)["status"] == "resolved"
        with owner.cursor() as cur:
            cur.execute("SELECT status, acknowledged_by, resolved_by FROM alerts WHERE alert_id = %s", (alert_id,))
            assert cur.fetchone() == ("resolved", "analyst-a", "analyst-b")
        api.autocommit = True
        with api.cursor() as cur:
            cur.execute("SELECT current_user")
            assert cur.fetchone()[0] == db.API_ROLE
            cur.execute("SELECT count(*) FROM v_flares")  # reads what an analyst reads
        with owner.cursor() as cur:
            cur.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'alerts'::regclass AND attnum > 0"
                        " AND NOT attisdropped")
            others = sorted({r[0] for r in cur.fetchall()} - ALERT_COLUMNS)
        assert "message" in others and "severity" in others
        for col in others:
            _denied(api, sql.SQL("UPDATE alerts SET {} = {} WHERE alert_id = %s").format(
                sql.Identifier(col), sql.Identifier(col)), (alert_id,))
        _denied(api, "INSERT INTO alerts (kind, severity, site_id, period_start, period_end, metric, message)"
                     " SELECT kind, severity, site_id, period_start, period_end, 'other', message FROM alerts"
                     " WHERE alert_id = %s", (alert_id,))
        _denied(api, "DELETE FROM alerts WHERE alert_id = %s", (alert_id,))
        _denied(api, "TRUNCATE alerts")
        _denied(api, "UPDATE sites SET notes = notes WHERE false")
        _denied(api, "UPDATE emissions_daily SET volume_kscm = 0 WHERE false")
        _denied(api, "SELECT nextval('alerts_alert_id_seq')")
        _denied(api, "CREATE TABLE api_scratch (i integer)")
    finally:
        api.close()


def test_psql_analyst_logs_in_as_the_analyst(fresh_dsn, monkeypatch):
    from flarewatch.dev import localstack

    monkeypatch.setenv("FLAREWATCH_DB_URL", fresh_dsn)
    argv = localstack.psql_argv(stdin_is_tty=False, analyst=True, extra=["-At"])
    assert parse_dsn(argv[1])["user"] == db.ANALYST_ROLE and "password" not in parse_dsn(argv[1])
    res = subprocess.run(argv, input="SELECT current_user;\n", capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == db.ANALYST_ROLE
    res = subprocess.run(argv, input="DELETE FROM sites;\n", capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "permission denied" in res.stderr
    owner_argv = localstack.psql_argv(stdin_is_tty=False, extra=["-At"])
    assert owner_argv[1] == fresh_dsn


def test_analyst_dsn_keeps_host_and_database_drops_the_password():
    from flarewatch.dev.localstack import analyst_dsn

    got = parse_dsn(analyst_dsn("postgresql://owner:secret@db.example:6543/flarewatch?sslmode=require"))
    assert got == {"user": "flarewatch_analyst", "host": "db.example", "port": "6543", "dbname": "flarewatch",
                   "sslmode": "require"}
    got = parse_dsn(analyst_dsn("postgresql://postgres@/flarewatch?host=/tmp/fw/pg"))
    assert got == {"user": "flarewatch_analyst", "host": "/tmp/fw/pg", "dbname": "flarewatch"}


# --------------------------------------------------------------------------------------------
# Role creation paths of 011, under throwaway role names (the real ones are server-wide).
# --------------------------------------------------------------------------------------------
@pytest.fixture
def throwaway(owner):
    """(011's text with role names of this test, those names); drops the roles afterwards."""
    tag = f"fwt_{uuid.uuid4().hex[:8]}"
    names = {"analyst": f"{tag}_analyst", "api": f"{tag}_api", "owner": f"{tag}_owner"}
    text = (db.sql_dir() / "011_analyst_role.sql").read_text()
    text = text.replace(db.ANALYST_ROLE, names["analyst"]).replace(db.API_ROLE, names["api"])
    yield text, names
    with owner.cursor() as cur:
        for role in (names["api"], names["analyst"], names["owner"]):  # the grantees before the grantor
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _roles(conn, names) -> set[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", ([names["analyst"], names["api"]],))
        return {r[0] for r in cur.fetchall()}


def test_without_createrole_the_migration_succeeds_and_says_how(owner, fresh_dsn, throwaway):
    text, names = throwaway
    with owner.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN NOCREATEROLE").format(sql.Identifier(names["owner"])))
    conn = psycopg2.connect(_as_user(fresh_dsn, names["owner"]))
    try:
        with conn.cursor() as cur:
            cur.execute(text)
        conn.commit()
        said = " ".join(conn.notices)
    finally:
        conn.close()
    assert _roles(owner, names) == set()
    assert f"roles {names['analyst']} and {names['api']} were not created" in said
    assert f"CREATE ROLE {names['analyst']} LOGIN" in said and f"GRANT {names['api']} TO {names['owner']}" in said


def test_a_createrole_owner_creates_the_roles_and_may_set_role_api(owner, fresh_dsn, throwaway):
    text, names = throwaway
    with owner.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(names["owner"])))
    conn = psycopg2.connect(_as_user(fresh_dsn, names["owner"]))
    try:
        for _ in range(2):  # safe to re-run: the roles exist the second time
            with conn.cursor() as cur:
                cur.execute(text)
            conn.commit()
        assert not [n for n in conn.notices if "were not created" in n or "may not" in n], conn.notices
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(names["api"])))
            cur.execute("SELECT current_user")
            assert cur.fetchone()[0] == names["api"]
        conn.rollback()
    finally:
        conn.close()
    assert _roles(owner, names) == {names["analyst"], names["api"]}
    with owner.cursor() as cur:
        cur.execute("SELECT pg_has_role(%s, %s, 'USAGE')", (names["api"], names["analyst"]))
        assert cur.fetchone()[0]


def test_two_databases_creating_the_roles_at_once(fresh_dsn, pg_dsn, owner, throwaway):
    """The session's database and this module's migrate at the same moment: the second waits for
    the first's new role, then takes the existing one instead of failing."""
    text, names = throwaway
    first, second = db.connect(fresh_dsn), db.connect(pg_dsn)
    outcome: dict = {}

    def run_second():
        try:
            with second.cursor() as cur:
                cur.execute(text)
            second.commit()
            outcome["ok"] = True
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    try:
        with first.cursor() as cur:
            cur.execute(text)  # roles created, not committed yet
        t = threading.Thread(target=run_second)
        t.start()
        t.join(2.0)
        assert t.is_alive(), f"the second migration should wait for the first's roles: {outcome}"
        first.commit()
        t.join(60)
        assert outcome == {"ok": True}
    finally:
        first.close()
        second.close()
    assert _roles(owner, names) == {names["analyst"], names["api"]}


def test_public_create_on_an_old_database_is_revoked(owner, throwaway):
    """A database from before PostgreSQL 15 lets PUBLIC create in public: 011 revokes that."""
    text, _ = throwaway
    with owner.cursor() as cur:
        cur.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        cur.execute(text)
        cur.execute("SELECT has_schema_privilege('public', 'public', 'CREATE')")
        assert cur.fetchone()[0] is False


def test_migrate_logs_what_a_migration_could_not_do(pg_server_dsn, tmp_path, caplog):
    """A ``flarewatch:`` NOTICE (011 without CREATEROLE) reaches the log as a warning."""
    from flarewatch.dev import servers

    (tmp_path / "001_notice.sql").write_text(
        "DO $$ BEGIN RAISE NOTICE 'flarewatch: roles were not created; an administrator runs ...'; END $$;"
        " CREATE TABLE t (i integer);")
    with servers.temporary_database(pg_server_dsn, "fw_notice") as dsn:
        conn = db.connect(dsn)
        try:
            with caplog.at_level("WARNING", logger="flarewatch.store.db"):
                assert db.migrate(conn, tmp_path) == ["001"]
        finally:
            conn.close()
    assert [r.getMessage() for r in caplog.records] == ["roles were not created; an administrator runs ..."]
