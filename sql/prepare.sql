-- ============================================================================
-- Before the install: the install lock, the version check, the schema
-- ============================================================================
-- Runs outside the install's transactions (install.sql says which steps
-- share one).

-- Serialise installs: a second one waits here until the first has finished,
-- then finds everything in place. A session lock, since an install spans
-- several transactions; it ends with the session if the install fails.
do $$
begin
    perform pg_catalog.pg_advisory_lock(pg_catalog.hashtext('jobqueue'), 0);
end;
$$;

set client_min_messages = warning;

create schema if not exists jobqueue;
comment on schema jobqueue is
'jobqueue private helpers: not part of the API, do not call them directly.';

-- jobqueue.schema_versions
-- What was applied here: each migration under its number ('0001'), and
-- each package version that installed or upgraded the database ('0.2.0').
create table if not exists jobqueue.schema_versions (
    version text primary key,
    installed_at timestamptz not null default now()
);

-- An install never takes a database back to an older version: the newer
-- code may rely on what the newer migrations made.
do $$
declare
    v_package text := pg_catalog.current_setting('jobqueue.package_version');
    v_installed text := (
        select v.version
        from jobqueue.schema_versions as v
        where v.version ~ '^[0-9]+\.[0-9]+\.[0-9]+$'
        order by pg_catalog.string_to_array(v.version, '.')::integer [] desc
        limit 1
    );
begin
    if pg_catalog.string_to_array(v_installed, '.')::integer []
        > pg_catalog.string_to_array(v_package, '.')::integer [] then
        raise exception 'this is jobqueue %, but the database has jobqueue % already', v_package, v_installed
            using errcode = '55000',
            hint = 'Install the newer package (or a later one); a database is never downgraded.';
    end if;
end;
$$;
