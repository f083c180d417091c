-- Migration 011: read-only access for analysts, and the role the web API acknowledges alerts with.
--
--   flarewatch_analyst  LOGIN. SELECT on every table and view of the results schema (public), and
--                       nothing else: no INSERT / UPDATE / DELETE / TRUNCATE, no CREATE in public,
--                       no sequence. `make psql ANALYST=1` (`flarewatch psql --analyst`) logs in
--                       as it. It has no password: set one (ALTER ROLE ... PASSWORD) where the
--                       server asks for one.
--   flarewatch_api      NOLOGIN, member of flarewatch_analyst (INHERIT): reads what an analyst
--                       reads, and may UPDATE only the columns of `alerts` that acknowledging or
--                       resolving an alert writes (store.alerts.acknowledge). The web API connects
--                       as the database owner and runs `SET ROLE flarewatch_api` on its
--                       connections, so a bug or an injected statement there cannot write anything
--                       else. The owner must be a member of flarewatch_api to SET ROLE to it: a
--                       superuser is; otherwise this migration grants it, when it may.
--
-- This file only creates the roles: the privileges are in sql/grants.sql, which `flarewatch
-- migrate` applies after every run (db.migrate), so tables and views of later migrations, and
-- roles an administrator creates after this migration ran, get them without a new migration.
--
-- Roles belong to the whole server, not to one database: several FlareWatch databases on one
-- server (the tests' databases, staging next to production) share them. Hence an existing role is
-- used as it is (its attributes, e.g. a password an administrator set, are left alone), and a
-- role that another database's migration creates at the same moment is no error.
--
-- On a managed Postgres the owner may lack CREATEROLE: then nothing is created, a NOTICE says
-- so, and the migration still succeeds. An administrator then runs, once per server:
--   CREATE ROLE flarewatch_analyst LOGIN PASSWORD '...';
--   CREATE ROLE flarewatch_api NOLOGIN IN ROLE flarewatch_analyst;
--   GRANT flarewatch_api TO <the owner that runs flarewatch migrate and the web API>;
-- and the owner runs `flarewatch migrate` again (it applies sql/grants.sql).
-- Statements are safe to re-run.

DO $$
DECLARE
    how_to text := 'an administrator creates them: CREATE ROLE flarewatch_analyst LOGIN PASSWORD ''...'';'
                   ' CREATE ROLE flarewatch_api NOLOGIN IN ROLE flarewatch_analyst;'
                   ' GRANT flarewatch_api TO ' || quote_ident(current_user) || ';'
                   ' then run `flarewatch migrate` again (README, "Analyst access")';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flarewatch_analyst') THEN
        BEGIN
            CREATE ROLE flarewatch_analyst LOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's migration created it in the meantime
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'flarewatch: roles flarewatch_analyst and flarewatch_api were not created (% lacks CREATEROLE); %',
                    current_user, how_to;
                RETURN;
        END;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flarewatch_api') THEN
        BEGIN
            CREATE ROLE flarewatch_api NOLOGIN IN ROLE flarewatch_analyst;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'flarewatch: role flarewatch_api was not created (% lacks CREATEROLE, or ADMIN on flarewatch_analyst); %',
                    current_user, how_to;
                RETURN;
        END;
    END IF;

    -- flarewatch_api reads what an analyst reads (the role may have been made by hand without it).
    IF NOT pg_has_role('flarewatch_api', 'flarewatch_analyst', 'USAGE') THEN
        BEGIN
            GRANT flarewatch_analyst TO flarewatch_api;
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'flarewatch: flarewatch_api is not a member of flarewatch_analyst and % may not grant it;'
                    ' an administrator runs: GRANT flarewatch_analyst TO flarewatch_api', current_user;
            WHEN unique_violation THEN
                NULL;  -- granted by another database's migration in the meantime
        END;
    END IF;

    -- The owner runs the web API: it must be allowed to SET ROLE flarewatch_api (PostgreSQL 16
    -- separates that SET option from membership; a superuser may always).
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'flarewatch_api',
                           CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'SET' ELSE 'MEMBER' END) THEN
        BEGIN
            EXECUTE format('GRANT flarewatch_api TO %I', current_user);
        EXCEPTION
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'flarewatch: % may not SET ROLE flarewatch_api (the web API needs it);'
                    ' an administrator runs: GRANT flarewatch_api TO %', current_user, quote_ident(current_user);
            WHEN unique_violation THEN
                NULL;
        END;
    END IF;
END
$$;

-- Nobody but the owner creates objects in public (so an analyst cannot either): PostgreSQL 15
-- made that the default; a database created by an older server may still let PUBLIC create.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(n.nspacl) a
               WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE') THEN
        IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
           OR pg_has_role(current_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'public'), 'USAGE') THEN
            REVOKE CREATE ON SCHEMA public FROM PUBLIC;
        ELSE
            RAISE NOTICE 'flarewatch: PUBLIC may create objects in schema public (so may flarewatch_analyst) and % does'
                ' not own the schema; its owner runs: REVOKE CREATE ON SCHEMA public FROM PUBLIC', current_user;
        END IF;
    END IF;
END
$$;
