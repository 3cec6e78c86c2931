-- ============================================================================
-- Who calls: identity and roles
-- ============================================================================
-- Helpers pin search_path like every function, except the few small SQL ones
-- that PostgreSQL inlines into their callers (caller_role,
-- supabase_roles_exist here; message_job_id, job_message, queue_name in
-- 050_queue.sql) and check_json_schema (060_validation.sql): a SET clause
-- would stop the inlining and make PostgreSQL plan their body again on every
-- call. Inlined, they run under the caller's pinned search_path, and every
-- name in them is schema-qualified.

-- jobqueue.current_user_id
-- The caller's identity from the request's auth context, or NULL: the `sub`
-- claim that PostgREST (and so Supabase's auth.uid()) reads from
-- request.jwt.claims, or the older request.jwt.claim.sub setting. Reads the
-- settings directly so that it works with or without Supabase's auth schema.
-- Raises 22023 when the claim is not a uuid.
create or replace function jobqueue.current_user_id()
returns uuid
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_claims text := nullif(pg_catalog.current_setting('request.jwt.claims', true), '');
    v_sub text := nullif(pg_catalog.current_setting('request.jwt.claim.sub', true), '');
begin
    if v_sub is null and v_claims is not null then
        v_sub := v_claims::jsonb ->> 'sub';
    end if;
    if v_sub is null then
        return null;
    end if;
    if v_sub !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
        raise exception 'user_id: the request''s sub claim "%" is not a uuid', v_sub
            using errcode = '22023';
    end if;
    return v_sub::uuid;
end;
$$;

-- jobqueue.caller_role
-- The role the caller acts as, also inside SECURITY DEFINER functions: the
-- role of SET ROLE (as PostgREST sets it), else the session's login role.
-- Nobody can claim a role they are not a member of, so it can be trusted.
create or replace function jobqueue.caller_role()
returns text
language sql
stable
as $$
    select coalesce(nullif(pg_catalog.current_setting('role'), 'none'), session_user::text)
$$;

-- jobqueue.supabase_roles_exist
-- True in a Supabase database: its API roles exist (anon, authenticated,
-- service_role; roles are cluster-wide) and so does its auth schema (per
-- database). Install then grants to those roles directly
-- (160_security.sql), and service_role acts for any user.
create or replace function jobqueue.supabase_roles_exist()
returns boolean
language sql
stable
as $$
    select pg_catalog.to_regrole('anon') is not null
        and pg_catalog.to_regrole('authenticated') is not null
        and pg_catalog.to_regrole('service_role') is not null
        and pg_catalog.to_regnamespace('auth') is not null
$$;

-- jobqueue.caller_acts_for_anyone
-- True when the caller may act on any user's jobs: a superuser, the owner of
-- public.jobs, a member of the service or runner role, or on Supabase a
-- member of service_role, which holds those roles' rights directly rather
-- than through membership (docs/security.md). Application roles may act
-- only for their own identity. Never NULL.
create or replace function jobqueue.caller_acts_for_anyone()
returns boolean
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_role text := jobqueue.caller_role();
begin
    return pg_catalog.pg_has_role(v_role, (select c.relowner from pg_catalog.pg_class as c where c.oid = 'public.jobs'::regclass), 'MEMBER')
        or exists (
            select
            from jobqueue.settings as s
            where pg_catalog.pg_has_role(v_role, s.service_role, 'MEMBER')
                or pg_catalog.pg_has_role(v_role, s.runner_role, 'MEMBER')
        )
        -- to_regrole(): NULL, not an error, where service_role is missing.
        or coalesce(
            jobqueue.supabase_roles_exist()
            and pg_catalog.pg_has_role(v_role, pg_catalog.to_regrole('service_role'), 'MEMBER'),
            false
        );
end;
$$;

-- jobqueue.caller_may_see
-- Whether the caller may see and act on a job of p_user_id: its own
-- identity's jobs, or any job for roles that act for anyone. False for NULL
-- (no such job). Never NULL: callers test `not caller_may_see(...)`, and
-- NOT NULL would let a caller without identity through.
create or replace function jobqueue.caller_may_see(p_user_id uuid)
returns boolean
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
begin
    return p_user_id is not null
        and (p_user_id is not distinct from jobqueue.current_user_id() or jobqueue.caller_acts_for_anyone());
end;
$$;

-- jobqueue.installed_version
-- The package version this database was last upgraded to: the highest
-- version recorded in jobqueue.schema_versions. Runners compare it with
-- their own at start (docs/install.md: upgrade the database first).
create or replace function jobqueue.installed_version()
returns text
language sql
stable
security definer
-- Definer: callers hold no rights on jobqueue.schema_versions.
set search_path = pg_catalog, pg_temp
as $$
    select v.version
    from jobqueue.schema_versions as v
    where v.version ~ '^[0-9]+\.[0-9]+\.[0-9]+$'
    order by pg_catalog.string_to_array(v.version, '.')::integer [] desc
    limit 1
$$;
