-- ============================================================================
-- The public API
-- ============================================================================
-- Lock order, everywhere: a job's queue message first, then the job row.
-- dequeue_jobs() locks messages before it can see their jobs, so
-- every other function follows it; concurrent calls then never deadlock.
-- (recover_orphans() also visits jobs first, but only ever takes a message
-- lock with SKIP LOCKED there, so it never waits in the wrong order.)

-- jobqueue.api_functions
-- The signatures of the public API, by role that may call them. Install
-- uses it to drop replaced signatures (below) and to grant EXECUTE
-- (090_security.sql).
create or replace function jobqueue.api_functions()
returns table (signature text, granted_to text)
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
    values
    ('submit_job(text, jsonb, uuid)', 'app'),
    ('submit_jobs(text, jsonb[], uuid)', 'app'),
    ('validate_job_parameters(text, jsonb)', 'app'),
    ('get_job(uuid)', 'app'),
    ('cancel_job(uuid)', 'app'),
    ('dequeue_jobs(integer, integer)', 'runner'),
    ('complete_job(uuid, jsonb, bigint)', 'runner'),
    ('complete_jobs(uuid[], jsonb[], bigint[])', 'runner'),
    ('fail_job(uuid, text, text, jsonb, bigint)', 'runner'),
    ('fail_jobs(uuid[], text[], text[], jsonb[], bigint[])', 'runner'),
    ('extend_job_lease(uuid, bigint, integer)', 'runner'),
    ('recover_orphans()', 'runner')
$$;

-- extend_job_lease returned void before it returned the lease's end.
do $$
begin
    if (
        select p.prorettype from pg_catalog.pg_proc as p
        where p.oid = pg_catalog.to_regprocedure('public.extend_job_lease(uuid, bigint, integer)')
    ) = 'void'::regtype then
        drop function public.extend_job_lease(uuid, bigint, integer);
    end if;
end;
$$;

-- Drop API functions whose signature is no longer the current one, so that
-- no call becomes ambiguous after an upgrade.
do $$
declare
    v_old regprocedure;
begin
    for v_old in
        select p.oid::regprocedure
        from pg_catalog.pg_proc as p
        where p.pronamespace = 'public'::regnamespace
            and p.proname in (select pg_catalog.split_part(a.signature, '(', 1) from jobqueue.api_functions() as a)
            and pg_catalog.format('%s(%s)', p.proname, pg_catalog.oidvectortypes(p.proargtypes))
            not in (select a.signature from jobqueue.api_functions() as a)
    loop
        raise notice 'dropping %, replaced by a new signature', v_old;
        execute pg_catalog.format('drop function %s', v_old);
    end loop;
end;
$$;

-- jobqueue.lock_attempt
-- Locks the job's current queue message and returns its msg_id. With
-- p_msg_id given, that message must still carry the job: otherwise P0002
-- when the job does not exist, 55000 when the attempt is gone. Without it,
-- locks the job's message if it has one, else returns NULL.
create or replace function jobqueue.lock_attempt(p_job_id uuid, p_msg_id bigint)
returns bigint
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_msg_id bigint;
begin
    if p_job_id is null then
        raise exception 'job_id must not be null' using errcode = '22023';
    end if;
    if p_msg_id is not null then
        select m.msg_id into v_msg_id
        from jobqueue.queue_messages as m
        where m.msg_id = p_msg_id and m.message ->> 'job_id' = p_job_id::text
        for update;
        if not found then
            if not exists (select from public.jobs as j where j.id = p_job_id) then
                perform jobqueue.raise_no_such_job(p_job_id);
            end if;
            perform jobqueue.raise_lease_lost(p_job_id, p_msg_id, 'its message is gone');
        end if;
    else
        select m.msg_id into v_msg_id
        from jobqueue.queue_messages as m
        where m.message ->> 'job_id' = p_job_id::text
        order by m.msg_id
        limit 1
        for update;
    end if;
    return v_msg_id;
end;
$$;

-- jobqueue.lock_job
-- Locks and returns a job row; P0002 when there is none. With p_status,
-- raises 55000 when the job is in another status.
create or replace function jobqueue.lock_job(p_job_id uuid, p_status text, p_msg_id bigint)
returns public.jobs
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_job public.jobs;
begin
    select j.* into v_job from public.jobs as j where j.id = p_job_id for update;
    if not found then
        perform jobqueue.raise_no_such_job(p_job_id);
    end if;
    if p_status is not null and v_job.status <> p_status then
        if p_msg_id is not null then
            perform jobqueue.raise_lease_lost(p_job_id, p_msg_id, 'the job is ' || v_job.status);
        end if;
        raise exception 'job %: status is %, not %', p_job_id, v_job.status, p_status
            using errcode = '55000';
    end if;
    return v_job;
end;
$$;

-- validate_job_parameters
-- Checks job parameters for a job type, as submit_job() does: raises 22023
-- naming the field (unknown or NULL job_type; parameters that are not a JSON
-- object, larger than 64 KiB as JSON text, or break the type's
-- parameters_schema).
-- NULL parameters mean {}. Writes nothing.
create or replace function public.validate_job_parameters(job_type text, job_parameters jsonb)
returns void
language plpgsql
stable
security definer
-- Definer: the schema checker is a private helper callers may not execute.
set search_path = pg_catalog, pg_temp
as $$
begin
    perform jobqueue.check_job_parameters(
        jobqueue.job_type_schema(validate_job_parameters.job_type), validate_job_parameters.job_parameters
    );
end;
$$;

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

-- dequeue_jobs
-- Takes up to batch_size jobs: reads visible messages (hiding them for
-- visibility_timeout_seconds) and turns each pending job into processing.
-- Returns fewer rows only when no visible message is left. Along the way,
-- as recover_orphans() would: deletes messages of missing or finished jobs
-- (and duplicates), archives poison messages, and ends attempts whose
-- message came back while the job was still processing (JobTimeout, or a
-- retry per its type).
-- Locks: each message (as pgmq.read: SKIP LOCKED), then its job. Concurrent
-- callers never receive the same job. Raises 22023 for bad arguments.
create or replace function public.dequeue_jobs(batch_size integer default 1, visibility_timeout_seconds integer default 30)
returns table (
    job_id uuid, msg_id bigint, job_type text, user_id uuid, job_parameters jsonb, retry_count integer
)
language plpgsql
security definer
-- Definer: the runner role holds no rights on the jobs table or the queue.
set search_path = pg_catalog, pg_temp
as $$
declare
    v_wanted integer := dequeue_jobs.batch_size;
    v_msg_ids bigint [];
    v_messages jsonb [];
    v_asked integer;
    v_read integer;
    v_claimed_jobs uuid [] := '{}'::uuid [];
    v_message_job_id uuid;
    v_job public.jobs;
begin
    if dequeue_jobs.batch_size is null or dequeue_jobs.batch_size not between 1 and 10000 then
        raise exception 'batch_size must be between 1 and 10000, not %', dequeue_jobs.batch_size
            using errcode = '22023';
    end if;
    if dequeue_jobs.visibility_timeout_seconds is null
        or dequeue_jobs.visibility_timeout_seconds not between 1 and 86400 then
        raise exception 'visibility_timeout_seconds must be between 1 and 86400, not %',
            dequeue_jobs.visibility_timeout_seconds
            using errcode = '22023';
    end if;

    loop
        v_asked := v_wanted;
        select
            coalesce(pg_catalog.array_agg(r.read_msg_id order by r.read_msg_id), '{}'),
            pg_catalog.array_agg(r.read_message order by r.read_msg_id)
        into v_msg_ids, v_messages
        from jobqueue.read_messages(v_wanted, dequeue_jobs.visibility_timeout_seconds) as r;
        v_read := pg_catalog.cardinality(v_msg_ids);
        exit when v_read = 0;

        -- One job at a time, by primary key: a statement joining the batch
        -- to the table would be planned anew on every call (docs/performance.md).
        for v_i in 1 .. v_read loop
            v_message_job_id := jobqueue.message_job_id(v_messages[v_i]);
            -- The common case: the message's job is pending, and is claimed.
            -- A job locked meanwhile (cancel_job) is waited for and checked again.
            -- "is true" keeps jobs_status_idx out of the plan: with statistics
            -- older than a backlog of pending jobs, the planner would walk all
            -- of them through it instead of looking the job up by id.
            update public.jobs as j set status = 'processing'
            where j.id = v_message_job_id and (j.status = 'pending') is true
            returning j.* into v_job;
            if found then
                job_id := v_job.id;
                msg_id := v_msg_ids[v_i];
                job_type := v_job.job_type;
                user_id := v_job.user_id;
                job_parameters := v_job.job_parameters;
                retry_count := v_job.retry_count;
                return next;
                v_claimed_jobs := v_claimed_jobs || v_job.id;
                v_wanted := v_wanted - 1;
                continue;
            end if;

            -- The rest: messages that do not lead to a pending job.
            if v_message_job_id is null then
                raise warning 'jobqueue: archived poison message % (not a job message): %',
                    v_msg_ids[v_i], pg_catalog.left(v_messages[v_i]::text, 200);
                perform pgmq.archive(jobqueue.queue_name(), v_msg_ids[v_i]);
                continue;
            end if;
            select j.* into v_job from public.jobs as j where j.id = v_message_job_id for update;
            if not found or v_job.status in ('completed', 'failed') or v_job.id = any(v_claimed_jobs) then
                -- Stale, or a second message of a job claimed just now.
                delete from jobqueue.queue_messages as m where m.msg_id = v_msg_ids[v_i];
            elsif v_job.status = 'processing' then
                perform jobqueue.end_attempt(
                    v_job,
                    'attempt abandoned: its lease expired while the job was processing',
                    'JobTimeout',
                    pg_catalog.jsonb_build_object('msg_id', v_msg_ids[v_i], 'started_at', v_job.started_at)
                );
            end if;
        end loop;

        -- A short read means no visible message is left.
        exit when v_wanted = 0 or v_read < v_asked;
    end loop;
end;
$$;

-- Its earlier form, take_attempts, returned a set and deleted the messages.
drop function if exists jobqueue.take_attempts(uuid[], bigint[]);

-- jobqueue.lock_attempts
-- For the batch forms below: locks the messages of the given attempts (the
-- message p_msg_ids[i] of job p_job_ids[i]; with no msg_id, the job's
-- messages) in msg_id order, then the jobs in id order. Returns, per element
-- and in order, why its attempt may not record a result: 'not_found',
-- 'lease_lost' (msg_id given, and no longer the job's message or the job no
-- longer processing) or 'not_processing'; NULL when it may. The callers'
-- updates then end the attempts, and tg_jobs__sync_queue deletes their
-- messages, which this transaction already holds. 22023 when p_job_ids is
-- NULL or holds a NULL.
-- Each lock is one primary-key lookup in a loop: statements that join the
-- arrays to the tables are planned anew on every call (the arrays' sizes
-- change their custom plans), which cost more than the loops for the
-- batches a runner sends; the statements over the arrays alone plan fast.
create or replace function jobqueue.lock_attempts(p_job_ids uuid[], p_msg_ids bigint[])
returns text[]
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_lock_msgs bigint [];
    v_lock_jobs uuid [];
    v_held_msgs bigint [] := '{}'::bigint [];
    v_held_jobs uuid [] := '{}'::uuid [];
    v_job_ids uuid [];
    v_statuses text [] := '{}'::text [];
    v_status text;
begin
    if p_job_ids is null or pg_catalog.array_position(p_job_ids, null) is not null then
        raise exception 'job_ids must be an array of job ids without NULLs' using errcode = '22023';
    end if;
    -- unnest() over several arrays is FROM-clause syntax, not a function: it
    -- takes no schema.
    if pg_catalog.cardinality(p_msg_ids) >= pg_catalog.cardinality(p_job_ids)
        and pg_catalog.array_position(p_msg_ids, null) is null then
        -- The runner's case: every attempt names its message.
        select pg_catalog.array_agg(a.msg_id order by a.msg_id), pg_catalog.array_agg(a.job_id order by a.msg_id)
        into v_lock_msgs, v_lock_jobs
        from unnest(p_job_ids, p_msg_ids) as a (job_id, msg_id);
    else
        -- Attempts without a msg_id stand for their job's messages.
        select pg_catalog.array_agg(w.msg_id order by w.msg_id), pg_catalog.array_agg(w.job_id order by w.msg_id)
        into v_lock_msgs, v_lock_jobs
        from (
            select a.msg_id, a.job_id
            from unnest(p_job_ids, p_msg_ids) as a (job_id, msg_id)
            where a.msg_id is not null
            union all
            select m.msg_id, a.job_id
            from unnest(p_job_ids, p_msg_ids) as a (job_id, msg_id)
            inner join jobqueue.queue_messages as m on m.message ->> 'job_id' = a.job_id::text
            where a.msg_id is null
        ) as w;
    end if;

    for v_i in 1 .. coalesce(pg_catalog.cardinality(v_lock_msgs), 0) loop
        perform
        from jobqueue.queue_messages as m
        where m.msg_id = v_lock_msgs[v_i] and m.message ->> 'job_id' = v_lock_jobs[v_i]::text
        for update;
        if found then
            v_held_msgs := v_held_msgs || v_lock_msgs[v_i];
            v_held_jobs := v_held_jobs || v_lock_jobs[v_i];
        end if;
    end loop;

    v_job_ids := array(select distinct a.job_id from pg_catalog.unnest(p_job_ids) as a (job_id) order by a.job_id);
    for v_i in 1 .. pg_catalog.cardinality(v_job_ids) loop
        -- NULL when there is no such job (SELECT INTO sets it so).
        select j.status into v_status from public.jobs as j where j.id = v_job_ids[v_i] for update;
        v_statuses := v_statuses || v_status;
    end loop;

    return array(
        select
            case
                when s.status is null then 'not_found'
                -- The msg_id must be held for this very job: another job's
                -- message in the same batch is no lease on this one.
                when a.msg_id is not null and (
                    s.status <> 'processing'
                    or not exists (
                        select from unnest(v_held_msgs, v_held_jobs) as h (msg_id, job_id)
                        where h.msg_id = a.msg_id and h.job_id = a.job_id
                    )
                ) then 'lease_lost'
                when s.status <> 'processing' then 'not_processing'
            end
        from unnest(p_job_ids, p_msg_ids) with ordinality as a (job_id, msg_id, position)
        left join unnest(v_job_ids, v_statuses) as s (job_id, status) on a.job_id = s.job_id
        order by a.position
    );
end;
$$;

-- complete_jobs
-- The batch form of complete_job(), for runners recording many results at
-- once: element i of the arrays is one attempt (data_references and
-- msg_ids may be NULL or shorter: missing elements are NULL). Returns one
-- row per element, in order: its job_id and 'completed', or why nothing
-- changed for it: 'not_found', 'lease_lost' (msg_id no longer the job's
-- current message, or the job no longer processing), 'not_processing' (no
-- msg_id given). A lost attempt never aborts the others. 22023 when job_ids
-- is NULL or holds a NULL. Locks: the messages in msg_id order, then the
-- jobs in id order.
create or replace function public.complete_jobs(
    job_ids uuid[], data_references jsonb[] default null, msg_ids bigint[] default null
)
returns table (job_id uuid, outcome text)
language plpgsql
security definer
-- Definer: the runner role holds no rights on the jobs table or the queue.
set search_path = pg_catalog, pg_temp
as $$
declare
    v_refusals text [] := jobqueue.lock_attempts(complete_jobs.job_ids, complete_jobs.msg_ids);
begin
    update public.jobs as j
    set status = 'completed', data_references = a.data_references
    from unnest(complete_jobs.job_ids, complete_jobs.data_references) with ordinality
        as a (job_id, data_references, position)
    where j.id = a.job_id and v_refusals[a.position::integer] is null;

    return query
    select a.job_id, coalesce(v_refusals[a.position::integer], 'completed')
    from pg_catalog.unnest(complete_jobs.job_ids) with ordinality as a (job_id, position)
    order by a.position;
end;
$$;

-- fail_jobs
-- The batch form of fail_job(): element i of the arrays is one attempt
-- (error_types, error_contexts and msg_ids may be NULL or shorter). Each
-- attempt that may record its result ends as fail_job() ends it: 'pending'
-- (retried after the type's backoff) or 'failed'. Other elements get
-- 'not_found', 'lease_lost' or 'not_processing', as in complete_jobs(),
-- and change nothing. 22023 when job_ids is NULL or holds a NULL, or an
-- error_message is NULL. Locks: the messages in msg_id order, then the jobs
-- in id order.
create or replace function public.fail_jobs(
    job_ids uuid[],
    error_messages text[],
    error_types text[] default null,
    error_contexts jsonb[] default null,
    msg_ids bigint[] default null
)
returns table (job_id uuid, outcome text)
language plpgsql
security definer
-- Definer: the runner role holds no rights on the jobs table or the queue.
set search_path = pg_catalog, pg_temp
as $$
declare
    v_refusals text [];
begin
    if fail_jobs.error_messages is null
        or pg_catalog.cardinality(fail_jobs.error_messages) < pg_catalog.cardinality(fail_jobs.job_ids)
        or pg_catalog.array_position(fail_jobs.error_messages, null) is not null then
        raise exception 'error_message must not be null (error_messages needs one per job)' using errcode = '22023';
    end if;
    v_refusals := jobqueue.lock_attempts(fail_jobs.job_ids, fail_jobs.msg_ids);

    -- A retry goes back to pending (tg_jobs__sync_queue sends its next
    -- message); the last attempt fails.
    return query
    with ended as (
        update public.jobs as j
        set status = case when j.retry_count < t.max_retries then 'pending' else 'failed' end,
            retry_count = j.retry_count + case when j.retry_count < t.max_retries then 1 else 0 end,
            error_message = a.error_message,
            error_type = a.error_type,
            error_context = a.error_context
        from unnest(
            fail_jobs.job_ids, fail_jobs.error_messages, fail_jobs.error_types, fail_jobs.error_contexts
        ) with ordinality as a (job_id, error_message, error_type, error_context, position),
            public.job_types as t
        where j.id = a.job_id and t.name = j.job_type and v_refusals[a.position::integer] is null
        returning j.id, j.status
    )

    select a.job_id, coalesce(v_refusals[a.position::integer], e.status)
    from pg_catalog.unnest(fail_jobs.job_ids) with ordinality as a (job_id, position)
    left join ended as e on a.job_id = e.id
    order by a.position;
end;
$$;

-- complete_job
-- processing -> completed: records data_references and completed_at, and
-- deletes the attempt's message. msg_id is the attempt's lease, as
-- dequeue_jobs() returned it: when it is no longer the job's current
-- message, 55000 and nothing changes. P0002 for an unknown job, 55000 for a
-- job that is not processing. A thin call of complete_jobs().
create or replace function public.complete_job(job_id uuid, data_references jsonb default null, msg_id bigint default null)
returns void
language plpgsql
security definer
-- Definer: the runner role holds no rights on the jobs table or the queue.
set search_path = pg_catalog, pg_temp
as $$
begin
    if complete_job.job_id is null then
        raise exception 'job_id must not be null' using errcode = '22023';
    end if;
    perform jobqueue.raise_refusal(
        complete_job.job_id,
        complete_job.msg_id,
        (
            select c.outcome
            from public.complete_jobs(
                array[complete_job.job_id], array[complete_job.data_references], array[complete_job.msg_id]
            ) as c
        )
    );
end;
$$;

-- fail_job
-- Ends a processing job's attempt with an error. When the job's type allows
-- another retry (retry_count < max_retries), the job goes back to pending
-- with retry_count + 1 and a new message delayed by exponential backoff,
-- and 'pending' is returned; otherwise processing -> failed, 'failed'.
-- Either way the error fields are recorded and the attempt's message is
-- deleted. msg_id, P0002 and 55000 as for complete_job(); 22023 for a NULL
-- error_message. A thin call of fail_jobs().
create or replace function public.fail_job(
    job_id uuid,
    error_message text,
    error_type text default null,
    error_context jsonb default null,
    msg_id bigint default null
)
returns text
language plpgsql
security definer
-- Definer: the runner role holds no rights on the jobs table or the queue.
set search_path = pg_catalog, pg_temp
as $$
declare
    v_outcome text;
begin
    if fail_job.job_id is null then
        raise exception 'job_id must not be null' using errcode = '22023';
    end if;
    select f.outcome into v_outcome
    from public.fail_jobs(
        array[fail_job.job_id], array[fail_job.error_message], array[fail_job.error_type],
        array[fail_job.error_context], array[fail_job.msg_id]
    ) as f;
    perform jobqueue.raise_refusal(fail_job.job_id, fail_job.msg_id, v_outcome);
    return v_outcome;
end;
$$;

-- jobqueue.raise_refusal
-- Turns a batch outcome into complete_job()'s and fail_job()'s errors:
-- P0002 for 'not_found', 55000 for 'lease_lost' and 'not_processing'.
-- Any other outcome (the job was finished) passes.
create or replace function jobqueue.raise_refusal(p_job_id uuid, p_msg_id bigint, p_outcome text)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_status text := (select j.status from public.jobs as j where j.id = p_job_id);
begin
    if p_outcome = 'not_found' then
        perform jobqueue.raise_no_such_job(p_job_id);
    elsif p_outcome = 'lease_lost' then
        perform jobqueue.raise_lease_lost(
            p_job_id, p_msg_id,
            case when v_status = 'processing' then 'its message is gone' else 'the job is ' || v_status end
        );
    elsif p_outcome = 'not_processing' then
        raise exception 'job %: status is %, not processing', p_job_id, v_status using errcode = '55000';
    end if;
end;
$$;

-- extend_job_lease
-- The runner's heartbeat for a long job: hides the attempt's message for
-- `seconds` more, but never past started_at + the type's timeout_seconds.
-- Returns the lease's new end (the message's visibility time), which may be
-- sooner than asked: the runner keeps the lease by what was granted.
-- 22023 for seconds outside 1..86400 or a NULL msg_id; P0002 for an unknown
-- job; 55000 when the lease is gone (no message msg_id for this job, or the
-- job is not processing) or the attempt has outlived timeout_seconds: the
-- runner must give the job up. Locks: the message, then the job.
create or replace function public.extend_job_lease(job_id uuid, msg_id bigint, seconds integer)
returns timestamptz
language plpgsql
security definer
-- Definer: the runner role holds no rights on the jobs table or the queue.
set search_path = pg_catalog, pg_temp
as $$
declare
    v_job public.jobs;
    v_deadline timestamptz;
    v_left integer;
begin
    if extend_job_lease.seconds is null or extend_job_lease.seconds not between 1 and 86400 then
        raise exception 'seconds must be between 1 and 86400, not %', extend_job_lease.seconds
            using errcode = '22023';
    end if;
    if extend_job_lease.msg_id is null then
        raise exception 'msg_id must not be null' using errcode = '22023',
            hint = 'Pass the msg_id that dequeue_jobs() returned with the job.';
    end if;
    perform jobqueue.lock_attempt(extend_job_lease.job_id, extend_job_lease.msg_id);
    v_job := jobqueue.lock_job(extend_job_lease.job_id, 'processing', extend_job_lease.msg_id);

    select v_job.started_at + pg_catalog.make_interval(secs => t.timeout_seconds) into v_deadline
    from public.job_types as t
    where t.name = v_job.job_type;
    v_left := pg_catalog.ceil(extract(epoch from v_deadline - pg_catalog.clock_timestamp()))::integer;
    if v_left <= 0 then
        perform jobqueue.raise_lease_lost(
            v_job.id, extend_job_lease.msg_id, 'the attempt outlived its type''s timeout_seconds'
        );
    end if;
    return (
        select s.vt
        from pgmq.set_vt(jobqueue.queue_name(), extend_job_lease.msg_id, least(extend_job_lease.seconds, v_left)) as s
    );
end;
$$;

-- cancel_job
-- A pending job becomes failed with error_type 'Cancelled' and its message
-- is deleted: true. A job in any other status: false, nothing changed.
-- P0002 for an unknown job, or another user's (the same answer).
-- Locks: the message, then the job (then, SKIP LOCKED, a message that a
-- retry sent while it waited).
create or replace function public.cancel_job(job_id uuid)
returns boolean
language plpgsql
security definer
-- Definer: callers may not write jobs or the queue; it checks ownership itself.
set search_path = pg_catalog, pg_temp
as $$
declare
    v_job public.jobs;
begin
    -- Somebody else's job gets the answer of an unknown one, before any lock.
    if not jobqueue.caller_may_see((select j.user_id from public.jobs as j where j.id = cancel_job.job_id)) then
        perform jobqueue.raise_no_such_job(cancel_job.job_id);
    end if;
    perform jobqueue.lock_attempt(cancel_job.job_id, null);
    v_job := jobqueue.lock_job(cancel_job.job_id, null, null);
    if v_job.status <> 'pending' then
        return false;
    end if;
    -- tg_jobs__sync_queue deletes the job's message: the one this call holds,
    -- or one that a retry sent while it waited (unless a dequeuer holds that
    -- one: it then finds the job failed and deletes it itself).
    update public.jobs as j
    set status = 'failed', error_type = 'Cancelled', error_message = 'cancelled by cancel_job()'
    where j.id = v_job.id;
    return true;
end;
$$;

-- get_job
-- One job by id; P0002 when there is no such job, or when it belongs to
-- another user and the caller may not act for anyone (the same answer).
create or replace function public.get_job(job_id uuid)
returns public.jobs
language plpgsql
stable
security definer
-- Definer: it applies the visibility rule itself, as RLS would.
set search_path = pg_catalog, pg_temp
as $$
declare
    v_job public.jobs;
begin
    select j.* into v_job from public.jobs as j where j.id = get_job.job_id;
    if not found or not jobqueue.caller_may_see(v_job.user_id) then
        perform jobqueue.raise_no_such_job(get_job.job_id);
    end if;
    return v_job;
end;
$$;
