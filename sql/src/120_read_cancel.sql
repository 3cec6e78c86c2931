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
