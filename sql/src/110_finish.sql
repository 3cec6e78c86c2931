-- ============================================================================
-- Finishing attempts and keeping their leases
-- ============================================================================
-- The runner's calls: record an attempt's result (the batch forms first, the
-- single ones are thin calls of them) and extend a long attempt's lease.

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
