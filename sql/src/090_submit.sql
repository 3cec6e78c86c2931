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
-- new ids in the order of the array.
create or replace function public.submit_jobs(job_type text, job_parameters jsonb[], user_id uuid default null)
returns setof uuid
language plpgsql
security definer
-- Definer: callers may not write jobs or the queue; it checks user_id itself.
set search_path = pg_catalog, pg_temp
as $$
declare
    v_user_id uuid := coalesce(submit_jobs.user_id, jobqueue.current_user_id());
    v_schema jsonb;
    v_parameters jsonb;
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

    -- Transaction-local, and only ever 'on' during this INSERT: it spares
    -- jobs_100_validate rows validated above. Only roles that may write
    -- public.jobs could set it themselves, and they can skip triggers anyway.
    perform pg_catalog.set_config('jobqueue.validated_insert', 'on', true);
    return query
    insert into public.jobs (job_type, user_id, job_parameters)
    select submit_jobs.job_type, v_user_id, p.parameters
    from pg_catalog.unnest(submit_jobs.job_parameters) with ordinality as p (parameters, position)
    order by p.position
    returning id;
    perform pg_catalog.set_config('jobqueue.validated_insert', 'off', true);
end;
$$;

-- submit_job
-- Submits one job: validates it (22023), inserts it as pending and sends
-- its PGMQ message in the caller's transaction. user_id NULL: taken from
-- the request's auth context, 22023 when there is none. Returns the job id.
create or replace function public.submit_job(job_type text, job_parameters jsonb default null, user_id uuid default null)
returns uuid
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    return (
        select s.id
        from public.submit_jobs(submit_job.job_type, array[submit_job.job_parameters], submit_job.user_id) as s (id)
    );
end;
$$;
