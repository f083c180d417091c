-- Privileges of the read-only roles (created by 011_analyst_role.sql; see there). Not a numbered
-- migration: `flarewatch migrate` (db.migrate) applies this file after the migrations on every
-- run, in the same transaction, so that
--   - tables and views created by any later migration are readable by flarewatch_analyst without
--     that migration having to remember a GRANT (ALTER DEFAULT PRIVILEGES below covers objects
--     the owner creates outside migrations too);
--   - roles an administrator creates after 011 ran (owner without CREATEROLE) get their
--     privileges at the next `flarewatch migrate`.
-- A role that does not exist is skipped. Each GRANT runs only when something is missing, so a
-- migrate with nothing to do rewrites no catalog row. Grant nothing else here: the analyst gets
-- SELECT only, and flarewatch_api UPDATE on the alert columns that store.alerts.acknowledge writes.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flarewatch_analyst') THEN
        IF NOT has_schema_privilege('flarewatch_analyst', 'public', 'USAGE') THEN
            GRANT USAGE ON SCHEMA public TO flarewatch_analyst;
        END IF;
        -- tables, views, materialized views (not sequences: SELECT on a table needs none)
        IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                     AND NOT has_table_privilege('flarewatch_analyst', c.oid, 'SELECT')) THEN
            GRANT SELECT ON ALL TABLES IN SCHEMA public TO flarewatch_analyst;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace,
                              aclexplode(d.defaclacl) a
                       WHERE n.nspname = 'public' AND d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)
                         AND d.defaclobjtype = 'r' AND a.privilege_type = 'SELECT'
                         AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = 'flarewatch_analyst')) THEN
            ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO flarewatch_analyst;
        END IF;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'flarewatch_api')
       AND EXISTS (SELECT 1 FROM unnest(ARRAY['status', 'acknowledged_by', 'acknowledged_at', 'resolved_by',
                                              'resolved_at', 'updated_at']) AS col
                   WHERE NOT has_column_privilege('flarewatch_api', 'public.alerts', col, 'UPDATE')) THEN
        GRANT UPDATE (status, acknowledged_by, acknowledged_at, resolved_by, resolved_at, updated_at)
            ON alerts TO flarewatch_api;
    END IF;
END
$$;
