-- ============================================================================
-- Attempts: their errors, locks and ends
-- ============================================================================
-- The private helpers the API's functions share to find, lock and end a job's
-- current attempt (its queue message, the lease a runner holds).

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

-- jobqueue.lock_job_type
-- Serialises, until the end of the transaction, everything that counts or
-- changes the processing jobs of one type with max_concurrency: dequeue_jobs
-- taking a slot, and release_slots giving one back. Callers that need several
-- types lock them in name order.
create or replace function jobqueue.lock_job_type(p_job_type text)
returns void
language sql
set search_path = pg_catalog, pg_temp
as $$
    select pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('jobqueue.job_type'), pg_catalog.hashtext(p_job_type))
$$;

-- jobqueue.processing_count
-- How many jobs of p_job_type are processing, as this transaction sees them.
-- Reads only processing rows (jobs_status_idx): at most what the runners
-- have taken.
create or replace function jobqueue.processing_count(p_job_type text)
returns integer
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select pg_catalog.count(*)::integer
    from public.jobs as j
    where j.status = 'processing' and j.job_type = p_job_type
$$;

-- jobqueue.release_slots
-- After a job of p_job_type left processing (or its type's limit changed):
-- wakes as many of the type's parked messages as it has free slots now (all
-- of them when it has no limit any more). Returns how many it woke. Takes the
-- type's lock, so that it cannot miss a message that a concurrent
-- dequeue_jobs parks: that one commits first, or counts this job as finished.
create or replace function jobqueue.release_slots(p_job_type text)
returns integer
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
    v_limit integer := (select t.max_concurrency from public.job_types as t where t.name = p_job_type);
begin
    perform jobqueue.lock_job_type(p_job_type);
    return jobqueue.wake_parked(
        p_job_type,
        case
            when v_limit is null then 2147483647
            else greatest(v_limit - jobqueue.processing_count(p_job_type), 0)
        end
    );
end;
$$;
