-- ============================================================================
-- Private helpers (schema jobqueue): not part of the API
-- ============================================================================
-- Helpers pin search_path like every function, except the few small SQL
-- ones that PostgreSQL inlines into their callers (caller_role,
-- message_job_id, job_message, supabase_roles_exist, queue_name) and
-- check_json_schema (below): a SET
-- clause would stop the inlining and make PostgreSQL plan their body again
-- on every call. Inlined, they run under the caller's pinned search_path,
-- and every name in them is schema-qualified.

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

-- jobqueue.message_job_id
-- The job id carried by a queue message, or NULL for a poison message (not
-- a JSON object, no job_id, or a job_id that is not a uuid). Never raises.
create or replace function jobqueue.message_job_id(p_message jsonb)
returns uuid
language sql
immutable
parallel safe
as $$
    select case
        when pg_catalog.jsonb_typeof(p_message) = 'object'
            and (p_message ->> 'job_id')
            ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
            then (p_message ->> 'job_id')::uuid
    end
$$;

-- jobqueue.job_message
-- The queue message of a job: {job_id, job_type, user_id, job_parameters}.
create or replace function jobqueue.job_message(
    p_job_id uuid, p_job_type text, p_user_id uuid, p_job_parameters jsonb
)
returns jsonb
language sql
-- Stable like jsonb_build_object(): declared immutable, it would not be inlined.
stable
parallel safe
as $$
    select pg_catalog.jsonb_build_object(
        'job_id', p_job_id,
        'job_type', p_job_type,
        'user_id', p_user_id,
        'job_parameters', p_job_parameters
    )
$$;

-- jobqueue.send_job_message
-- Sends p_job's queue message, visible after p_delay_seconds: the INSERT
-- that pgmq.send runs, as static SQL through jobqueue.queue_messages
-- (030_queue.sql), for the one-job paths (a retry, an orphan's re-send);
-- tg_jobs__enqueue sends new jobs' messages a statement at a time.
create or replace function jobqueue.send_job_message(p_job public.jobs, p_delay_seconds integer)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into jobqueue.queue_messages (vt, message)
    values (
        pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_delay_seconds),
        jobqueue.job_message(p_job.id, p_job.job_type, p_job.user_id, p_job.job_parameters)
    );
end;
$$;

-- jobqueue.check_json_schema
-- Checks p_value against a JSON Schema subset and raises 22023 naming the
-- offending field (p_path) at the first violation. Keywords: type (one name
-- or a list: object, array, string, integer, number, boolean, null), enum,
-- minimum, maximum, minLength, maxLength, properties, required,
-- additionalProperties (false or a schema), items, minItems, maxItems.
-- Other keywords are ignored. A NULL schema accepts anything.
-- No search_path of its own: it runs once per key of every submitted job,
-- only under check_job_parameters()' pinned path, and a SET clause
-- costs more than the checks themselves.
create or replace function jobqueue.check_json_schema(p_schema jsonb, p_value jsonb, p_path text)
returns void
language plpgsql
immutable
as $$
declare
    v_kind text := pg_catalog.jsonb_typeof(p_value);
    v_types jsonb;
    v_number numeric;
    v_length integer;
    v_key text;
    v_item jsonb;
    v_index integer := 0;
begin
    if p_schema is null then
        return;
    end if;
    if v_kind = 'number' then
        v_number := (p_value #>> '{}')::numeric;
    end if;

    -- Containment matches one type name or a list of them, without a query:
    -- '["string", "null"]' @> '"string"' holds, and so does '"string"' @> '"string"'.
    if p_schema ? 'type'
        and not p_schema -> 'type' @> pg_catalog.to_jsonb(v_kind)
        and not (v_kind = 'number' and v_number = pg_catalog.trunc(v_number) and p_schema -> 'type' @> '"integer"')
        then
        v_types := case pg_catalog.jsonb_typeof(p_schema -> 'type')
            when 'array' then p_schema -> 'type'
            else pg_catalog.jsonb_build_array(p_schema -> 'type')
        end;
        raise exception '% must be of type %, not %', p_path,
            pg_catalog.array_to_string(array(select pg_catalog.jsonb_array_elements_text(v_types)), ' or '),
            v_kind
            using errcode = '22023';
    end if;

    if p_schema ? 'enum' and not exists (
        select from pg_catalog.jsonb_array_elements(p_schema -> 'enum') as e (value) where e.value = p_value
    ) then
        raise exception '% must be one of %', p_path, p_schema -> 'enum' using errcode = '22023';
    end if;

    if v_kind = 'number' then
        if p_schema ? 'minimum' and v_number < (p_schema ->> 'minimum')::numeric then
            raise exception '% must be at least %', p_path, p_schema ->> 'minimum' using errcode = '22023';
        end if;
        if p_schema ? 'maximum' and v_number > (p_schema ->> 'maximum')::numeric then
            raise exception '% must be at most %', p_path, p_schema ->> 'maximum' using errcode = '22023';
        end if;
    elsif v_kind = 'string' then
        v_length := pg_catalog.length(p_value #>> '{}');
        if p_schema ? 'minLength' and v_length < (p_schema ->> 'minLength')::integer then
            raise exception '% must be at least % characters long', p_path, p_schema ->> 'minLength'
                using errcode = '22023';
        end if;
        if p_schema ? 'maxLength' and v_length > (p_schema ->> 'maxLength')::integer then
            raise exception '% must be at most % characters long', p_path, p_schema ->> 'maxLength'
                using errcode = '22023';
        end if;
    elsif v_kind = 'object' then
        if p_schema ? 'required' and not p_value ?& array(
            select pg_catalog.jsonb_array_elements_text(p_schema -> 'required')
        ) then
            for v_key in select r.key from pg_catalog.jsonb_array_elements_text(p_schema -> 'required') as r (key) loop
                if not p_value ? v_key then
                    raise exception '%.% is required', p_path, v_key using errcode = '22023';
                end if;
            end loop;
        end if;
        -- The key loop is a query: an empty object, the common case, skips it.
        if p_value <> '{}'::jsonb then
            for v_key in select k.key from pg_catalog.jsonb_object_keys(p_value) as k (key) order by 1 loop
                if p_schema -> 'properties' ? v_key then
                    perform jobqueue.check_json_schema(
                        p_schema -> 'properties' -> v_key, p_value -> v_key, p_path || '.' || v_key
                    );
                elsif p_schema -> 'additionalProperties' = 'false'::jsonb then
                    raise exception '% has an unknown key "%"', p_path, v_key
                        using errcode = '22023',
                        hint = pg_catalog.format('Allowed keys: %s.', (
                            select pg_catalog.string_agg(k.key, ', ' order by k.key)
                            from pg_catalog.jsonb_object_keys(p_schema -> 'properties') as k (key)
                        ));
                elsif pg_catalog.jsonb_typeof(p_schema -> 'additionalProperties') = 'object' then
                    perform jobqueue.check_json_schema(
                        p_schema -> 'additionalProperties', p_value -> v_key, p_path || '.' || v_key
                    );
                end if;
            end loop;
        end if;
    elsif v_kind = 'array' then
        v_length := pg_catalog.jsonb_array_length(p_value);
        if p_schema ? 'minItems' and v_length < (p_schema ->> 'minItems')::integer then
            raise exception '% must have at least % items', p_path, p_schema ->> 'minItems' using errcode = '22023';
        end if;
        if p_schema ? 'maxItems' and v_length > (p_schema ->> 'maxItems')::integer then
            raise exception '% must have at most % items', p_path, p_schema ->> 'maxItems' using errcode = '22023';
        end if;
        if p_schema ? 'items' then
            for v_item in select e.value from pg_catalog.jsonb_array_elements(p_value) as e (value) loop
                perform jobqueue.check_json_schema(p_schema -> 'items', v_item, p_path || '[' || v_index || ']');
                v_index := v_index + 1;
            end loop;
        end if;
    end if;
end;
$$;

-- jobqueue.job_type_schema
-- The parameters_schema of a job type (NULL: any JSON object). Raises 22023
-- for a NULL or unknown job_type.
create or replace function jobqueue.job_type_schema(p_job_type text)
returns jsonb
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_schema jsonb;
begin
    if p_job_type is null then
        raise exception 'job_type must not be null' using errcode = '22023';
    end if;
    select t.parameters_schema into v_schema
    from public.job_types as t
    where t.name = p_job_type;
    if not found then
        raise exception 'job_type: unknown job type "%"', p_job_type
            using errcode = '22023',
            hint = 'Register it first: insert into job_types (name) values (...).';
    end if;
    return v_schema;
end;
$$;

-- jobqueue.check_job_parameters
-- Checks job parameters against their type's schema (job_type_schema()):
-- raises 22023 naming the field for parameters that are not a JSON object,
-- are larger than 64 KiB as JSON text, or break the schema. NULL
-- parameters mean {}.
create or replace function jobqueue.check_job_parameters(p_schema jsonb, p_parameters jsonb)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_parameters jsonb := coalesce(p_parameters, '{}'::jsonb);
    v_size integer;
begin
    if pg_catalog.jsonb_typeof(v_parameters) <> 'object' then
        raise exception 'job_parameters must be a JSON object, not %', pg_catalog.jsonb_typeof(v_parameters)
            using errcode = '22023';
    end if;
    -- The size of the JSON text, not pg_column_size(): a value read from a
    -- table may arrive compressed, and would pass at a fraction of its size.
    v_size := pg_catalog.octet_length(v_parameters::text);
    if v_size > 65536 then
        raise exception 'job_parameters is too large: % bytes, at most 65536', v_size
            using errcode = '22023', hint = 'Store large data elsewhere and pass a reference.';
    end if;
    perform jobqueue.check_json_schema(p_schema, v_parameters, 'job_parameters');
end;
$$;

-- jobqueue.retry_delay_seconds
-- The backoff before retry number p_retry (1 for the first retry):
-- p_base * 2^(p_retry - 1) seconds, capped by settings.max_backoff_seconds.
create or replace function jobqueue.retry_delay_seconds(p_base integer, p_retry integer)
returns integer
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select least(
        p_base::numeric * pg_catalog.power(2::numeric, least(p_retry - 1, 30)),
        (select s.max_backoff_seconds from jobqueue.settings as s)
    )::integer
$$;

-- Its earlier form also took the msg_id to delete: the trigger does that now.
drop function if exists jobqueue.end_attempt(public.jobs, bigint, text, text, jsonb);

-- jobqueue.end_attempt
-- Ends a processing job's attempt with an error: back to pending with
-- retry_count + 1 when the type allows another retry, else failed. The
-- error fields are recorded either way; tg_jobs__sync_queue then deletes
-- the attempt's message and, for a retry, sends the next one after the
-- type's backoff. Returns the new status. The caller holds the row locks,
-- the attempt's message (when it still exists) first, then the job.
create or replace function jobqueue.end_attempt(
    p_job public.jobs,
    p_error_message text,
    p_error_type text,
    p_error_context jsonb
)
returns text
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_retry boolean := p_job.retry_count < (
        select t.max_retries from public.job_types as t where t.name = p_job.job_type
    );
begin
    update public.jobs as j
    set status = case when v_retry then 'pending' else 'failed' end,
        retry_count = j.retry_count + case when v_retry then 1 else 0 end,
        error_message = p_error_message,
        error_type = p_error_type,
        error_context = p_error_context
    where j.id = p_job.id;
    return case when v_retry then 'pending' else 'failed' end;
end;
$$;

-- jobqueue.raise_no_such_job
-- Raises P0002 for a job id that does not exist (or that the caller may not
-- see: both give the same answer).
create or replace function jobqueue.raise_no_such_job(p_job_id uuid)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    raise exception 'job_id: no job %', p_job_id
        using errcode = 'P0002', hint = 'Check the id: jobs of other users answer as unknown ones.';
end;
$$;

-- jobqueue.raise_lease_lost
-- Raises 55000 for an attempt that is no longer the job's current one.
create or replace function jobqueue.raise_lease_lost(p_job_id uuid, p_msg_id bigint, p_why text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    raise exception 'job %: attempt msg_id % is no longer current: %', p_job_id, p_msg_id, p_why
        using errcode = '55000',
        hint = 'The attempt was timed out, retried, cancelled or recovered; drop its result.';
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
-- (090_security.sql), and service_role acts for any user.
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
