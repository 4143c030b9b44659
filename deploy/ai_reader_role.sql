-- The AI reader role (README "Production"): the PostgreSQL role AI questions run as, which may read
-- only the provider-bound views that migration auditing 0002 makes. Run once per PostgreSQL cluster
-- (roles are cluster-wide), by a superuser, before the first `manage.py migrate`:
--
--   psql "postgres://postgres@db-host/postgres" -v ON_ERROR_STOP=1 \
--       -v role=billing_ai_reader -v password="$AI_QUERY_DB_PASSWORD" -f deploy/ai_reader_role.sql
--
-- role is AI_QUERY_DB_USER and password AI_QUERY_DB_PASSWORD of the env file. The attributes and
-- defaults are the ones the migration checks (auditing/migrations/0002_ai_reader.py): it stops when
-- one differs and the migrating role may not change roles. PostgreSQL 14 or later.

CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS
    CONNECTION LIMIT 20 PASSWORD :'password';
ALTER ROLE :"role" SET search_path = ai_views;
ALTER ROLE :"role" SET default_transaction_read_only = on;
ALTER ROLE :"role" SET statement_timeout = '5s';
ALTER ROLE :"role" SET lock_timeout = '1s';
ALTER ROLE :"role" SET idle_in_transaction_session_timeout = '10s';
ALTER ROLE :"role" SET idle_session_timeout = '60s';
-- A superuser's alone: its sessions do not see each other's queries, and its temporary files are capped.
ALTER ROLE :"role" SET track_activities = off;
ALTER ROLE :"role" SET temp_file_limit = '256MB';
