-- ============================================================================
-- Reading and cancelling a job
-- ============================================================================

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

-- cancel_job
-- A pending or processing job becomes failed with error_type 'Cancelled'
-- and its message is deleted: true. A running attempt's later result is then
-- refused as lease_lost (and dropped by the runner), and NOTIFY
-- jobqueue_cancel carries the job id to whoever listens, so that a running
-- handler can be told to stop early. A finished job: false, nothing changed. P0002 for an unknown job, or another user's
-- (the same answer).
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
    if v_job.status not in ('pending', 'processing') then
        return false;
    end if;
    -- tg_jobs__sync_queue deletes the job's message: the one this call holds,
    -- or one that a retry sent while it waited (unless a dequeuer holds that
    -- one: it then finds the job failed and deletes it itself).
    update public.jobs as j
    set status = 'failed', error_type = 'Cancelled', error_message = 'cancelled by cancel_job()'
    where j.id = v_job.id;
    if v_job.status = 'processing' then
        perform pg_catalog.pg_notify('jobqueue_cancel', v_job.id::text);
    end if;
    return true;
end;
$$;

-- retry_job
-- Submits a failed job again, as a new job: the same type, parameters, user
-- and priority, to run now, without a dedup key, and with retry_of set to
-- the failed job's id (which stays as it was: the state machine never moves
-- a finished job). Returns the new job's id. 55000 for a job that is not
-- failed; P0002 for an unknown job, or another user's (the same answer);
-- 22023 when its parameters no longer pass its type's schema.
-- Locks: the failed job (FOR SHARE), so that two retries of it do not race
-- a purge.
create or replace function public.retry_job(job_id uuid)
returns uuid
language plpgsql
security definer
-- Definer: callers may not write jobs or the queue; it checks ownership itself.
set search_path = pg_catalog, pg_temp
as $$
declare
    v_job public.jobs;
    v_new_id uuid;
begin
    select j.* into v_job from public.jobs as j where j.id = retry_job.job_id for share;
    if not found or not jobqueue.caller_may_see(v_job.user_id) then
        perform jobqueue.raise_no_such_job(retry_job.job_id);
    end if;
    if v_job.status <> 'failed' then
        raise exception 'job %: status is %, not failed', v_job.id, v_job.status
            using errcode = '55000', hint = 'Only a failed job can be retried; cancel a pending or processing one first.';
    end if;
    insert into public.jobs (job_type, user_id, job_parameters, priority, retry_of)
    values (v_job.job_type, v_job.user_id, v_job.job_parameters, v_job.priority, v_job.id)
    returning id into v_new_id;
    return v_new_id;
end;
$$;
