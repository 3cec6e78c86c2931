-- ============================================================================
-- Submitting jobs
-- ============================================================================

-- submit_jobs
-- Submits one job per element of job_parameters, all of job_type, for
-- user_id (NULL: the request's auth context). 42501 when an application
-- role submits for a user_id other than its own identity (service roles may
-- submit for anyone: docs/security.md). Validates every element and
-- writes nothing if any is invalid (22023, as submit_job). Inserts pending
-- jobs and sends their messages in the caller's transaction. Returns the
-- jobs' ids in the order of the array.
-- run_at: when the jobs may run (NULL or past: at once; more than a year
-- ahead: 22023). priority: -100 to 100, higher first (NULL: 0; else 22023).
-- dedup_keys: one key or NULL per element (22023 for another length). An
-- element whose key a pending or processing job of the same type holds
-- (submitted earlier, or by an earlier element) is not inserted: its id is
-- that job's; 42501, and nothing written, when that job is another user's
-- and the caller may act only for its own identity.
-- Locks: with keys, waits for a concurrent submit of the same key to end.
create or replace function public.submit_jobs(
    job_type text,
    job_parameters jsonb[],
    user_id uuid default null,
    run_at timestamptz default null,
    priority integer default 0,
    dedup_keys text[] default null
)
returns setof uuid
language plpgsql
security definer
-- Definer: callers may not write jobs or the queue; it checks user_id itself.
set search_path = pg_catalog, pg_temp
as $$
declare
    v_user_id uuid := coalesce(submit_jobs.user_id, jobqueue.current_user_id());
    v_run_at timestamptz := case when submit_jobs.run_at > pg_catalog.clock_timestamp() then submit_jobs.run_at end;
    v_priority integer := coalesce(submit_jobs.priority, 0);
    v_schema jsonb;
    v_parameters jsonb;
    v_ids uuid [];
begin
    if submit_jobs.job_parameters is null then
        raise exception 'job_parameters must be an array of JSON objects, not NULL' using errcode = '22023';
    end if;
    if v_user_id is null then
        raise exception 'user_id is required'
            using errcode = '22023',
            hint = 'Pass user_id, or call with a request.jwt.claims sub (PostgREST, Supabase).';
    end if;
    if v_user_id is distinct from jobqueue.current_user_id() and not jobqueue.caller_acts_for_anyone() then
        raise exception 'user_id: role % may submit jobs only for its own identity', jobqueue.caller_role()
            using errcode = '42501',
            hint = 'Submitting for other users needs the service role.';
    end if;
    if v_run_at > pg_catalog.now() + interval '1 year' then
        raise exception 'run_at must be at most a year ahead, not %', v_run_at
            using errcode = '22023', hint = 'Schedule jobs that far ahead with schedule_job().';
    end if;
    if v_priority not between -100 and 100 then
        raise exception 'priority must be between -100 and 100, not %', v_priority using errcode = '22023';
    end if;
    if pg_catalog.cardinality(submit_jobs.dedup_keys) <> pg_catalog.cardinality(submit_jobs.job_parameters) then
        raise exception 'dedup_keys has % elements, job_parameters %: one key (or NULL) per job',
            pg_catalog.cardinality(submit_jobs.dedup_keys), pg_catalog.cardinality(submit_jobs.job_parameters)
            using errcode = '22023';
    end if;
    -- Validate each distinct value once, in the order of the array: a batch
    -- often repeats its parameters, and the per-row trigger, told by the
    -- flag below, then skips these rows.
    v_schema := jobqueue.job_type_schema(submit_jobs.job_type);
    if pg_catalog.cardinality(submit_jobs.job_parameters) = 1 then
        -- submit_job's case: no query needed.
        perform jobqueue.check_job_parameters(v_schema, submit_jobs.job_parameters[1]);
    else
        for v_parameters in
            select p.parameters
            from pg_catalog.unnest(submit_jobs.job_parameters) with ordinality as p (parameters, position)
            group by p.parameters
            order by pg_catalog.min(p.position)
        loop
            perform jobqueue.check_job_parameters(v_schema, v_parameters);
        end loop;
    end if;

    -- Transaction-local, and only ever 'on' during these INSERTs: it spares
    -- jobs_100_validate rows validated above. Only roles that may write
    -- public.jobs could set it themselves, and they can skip triggers anyway.
    perform pg_catalog.set_config('jobqueue.validated_insert', 'on', true);
    if submit_jobs.dedup_keys is null then
        return query
        insert into public.jobs (job_type, user_id, job_parameters, run_at, priority)
        select submit_jobs.job_type, v_user_id, p.parameters, v_run_at, v_priority
        from pg_catalog.unnest(submit_jobs.job_parameters) with ordinality as p (parameters, position)
        order by p.position
        returning id;
    else
        v_ids := jobqueue.insert_deduplicated(
            submit_jobs.job_type, submit_jobs.job_parameters, v_user_id, v_run_at, v_priority,
            submit_jobs.dedup_keys
        );
        return query select i.id from pg_catalog.unnest(v_ids) with ordinality as i (id, position) order by i.position;
    end if;
    perform pg_catalog.set_config('jobqueue.validated_insert', 'off', true);
end;
$$;

-- jobqueue.insert_deduplicated
-- submit_jobs() with dedup_keys, past its checks: inserts each element
-- whose key no pending or processing job of the type holds (INSERT ... ON
-- CONFLICT on jobs_dedup_key_idx: concurrent submits of one key make one
-- job), and returns, per element, its new job's id or the id of the job
-- holding its key. 42501 when that job is another user's and the caller may
-- act only for its own identity. A holder that finishes between the INSERT
-- and the look-up is no holder: the element is inserted again.
create or replace function jobqueue.insert_deduplicated(
    p_job_type text,
    p_parameters jsonb[],
    p_user_id uuid,
    p_run_at timestamptz,
    p_priority integer,
    p_keys text[]
)
returns uuid[]
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_ids uuid [] := array(
        select pg_catalog.gen_random_uuid() from pg_catalog.generate_series(1, pg_catalog.cardinality(p_parameters))
    );
    v_inserted uuid [];
    v_holder record;
    v_i integer;
begin
    with inserted as (
        insert into public.jobs (id, job_type, user_id, job_parameters, run_at, priority, dedup_key)
        select v_ids[p.position], p_job_type, p_user_id, p.parameters, p_run_at, p_priority, p_keys[p.position]
        from pg_catalog.unnest(p_parameters) with ordinality as p (parameters, position)
        order by p.position
        on conflict (job_type, dedup_key) where dedup_key is not null and status in ('pending', 'processing')
        do nothing
        returning id
    )

    select pg_catalog.array_agg(i.id) into v_inserted from inserted as i;
    if pg_catalog.cardinality(v_inserted) = pg_catalog.cardinality(v_ids) then
        return v_ids;
    end if;

    -- The elements not inserted: their key has a holder.
    for v_i in
        select a.position::integer
        from pg_catalog.unnest(v_ids) with ordinality as a (id, position)
        where not exists (select from pg_catalog.unnest(v_inserted) as i (id) where i.id = a.id)
        order by a.position
    loop
        for v_try in 1 .. 3 loop
            select j.id, j.user_id into v_holder
            from public.jobs as j
            where j.job_type = p_job_type and j.dedup_key = p_keys[v_i] and j.status in ('pending', 'processing');
            if found then
                if v_holder.user_id is distinct from p_user_id and not jobqueue.caller_acts_for_anyone() then
                    raise exception 'dedup_key: "%" belongs to a job of another user', p_keys[v_i]
                        using errcode = '42501',
                        hint = 'Keys are global per job type: choose keys that include the user, or submit as the service role.';
                end if;
                v_ids[v_i] := v_holder.id;
                exit;
            end if;
            insert into public.jobs (id, job_type, user_id, job_parameters, run_at, priority, dedup_key)
            values (v_ids[v_i], p_job_type, p_user_id, p_parameters[v_i], p_run_at, p_priority, p_keys[v_i])
            on conflict (job_type, dedup_key) where dedup_key is not null and status in ('pending', 'processing')
            do nothing;
            exit when found;
            if v_try = 3 then
                raise exception 'dedup_key: "%" is taken and released too fast to resolve', p_keys[v_i]
                    using errcode = '40001', hint = 'Try the call again.';
            end if;
        end loop;
    end loop;
    return v_ids;
end;
$$;

-- submit_job
-- Submits one job: validates it (22023), inserts it as pending and sends
-- its PGMQ message in the caller's transaction. user_id NULL: taken from
-- the request's auth context, 22023 when there is none. run_at, priority
-- and dedup_key as for submit_jobs(): with a dedup_key that a pending or
-- processing job of the type holds, returns that job's id and writes
-- nothing. Returns the job id. A thin call of submit_jobs().
create or replace function public.submit_job(
    job_type text,
    job_parameters jsonb default null,
    user_id uuid default null,
    run_at timestamptz default null,
    priority integer default 0,
    dedup_key text default null
)
returns uuid
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    return (
        select s.id
        from public.submit_jobs(
            submit_job.job_type, array[submit_job.job_parameters], submit_job.user_id,
            submit_job.run_at, submit_job.priority,
            case when submit_job.dedup_key is not null then array[submit_job.dedup_key] end
        ) as s (id)
    );
end;
$$;
