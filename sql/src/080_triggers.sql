-- ============================================================================
-- Triggers on public.jobs: validation, the state machine, the queue
-- ============================================================================
-- They fire for the package's functions and for hand-written SQL alike, in
-- the order their names give (_100 before _500 before _900).

-- jobqueue.tg_jobs__validate
-- BEFORE INSERT, and UPDATE of job_type or job_parameters: a new job starts
-- as pending (55000 otherwise), takes its user_id from the request's auth
-- context when none is given (22023 when there is none), and its parameters
-- must pass the checks of validate_job_parameters() (22023).
create or replace function jobqueue.tg_jobs__validate()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if tg_op = 'INSERT' then
        if new.status is distinct from 'pending' then
            raise exception 'status: a new job starts as pending, not %', coalesce(new.status, 'NULL')
                using errcode = '55000';
        end if;
        new.user_id := coalesce(new.user_id, jobqueue.current_user_id());
        if new.user_id is null then
            raise exception 'user_id is required'
                using errcode = '22023',
                hint = 'Pass user_id, or call with a request.jwt.claims sub (PostgREST, Supabase).';
        end if;
    elsif new.job_type is not distinct from old.job_type
        and new.job_parameters is not distinct from old.job_parameters then
        return new;
    end if;
    perform jobqueue.check_job_parameters(jobqueue.job_type_schema(new.job_type), new.job_parameters);
    return new;
end;
$$;

-- jobqueue.tg_jobs__transition
-- BEFORE UPDATE: the state machine. Legal changes of status:
--   pending -> processing, processing -> completed, processing -> failed,
--   pending -> failed, processing -> pending (a retry: retry_count rises).
-- Anything else raises 55000. Keeping the status is always allowed.
-- Fills started_at (-> processing) and completed_at (-> completed, failed);
-- a retry (processing -> pending) sets run_at to the end of its backoff,
-- the type's retry_backoff_seconds * 2^(retry_count - 1), capped by
-- settings.max_backoff_seconds. Moves updated_at on every update.
create or replace function jobqueue.tg_jobs__transition()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if new.status is distinct from old.status then
        -- A NULL status makes NOT IN yield NULL: refuse it here, as 55000.
        if new.status is null or (old.status, new.status) not in (
            ('pending', 'processing'),
            ('processing', 'completed'),
            ('processing', 'failed'),
            ('pending', 'failed'),
            ('processing', 'pending')
        ) then
            raise exception 'status: illegal transition % -> % for job %', old.status, new.status, old.id
                using errcode = '55000',
                hint = 'Legal: pending -> processing -> completed | failed | pending (retry), pending -> failed.';
        end if;
        if old.status = 'processing' and new.status = 'pending' and new.retry_count <= old.retry_count then
            raise exception 'status: processing -> pending is a retry, and must raise retry_count (job %)', old.id
                using errcode = '55000';
        end if;
        if new.status = 'processing' then
            new.started_at := now();
        elsif new.status in ('completed', 'failed') then
            new.completed_at := coalesce(new.completed_at, now());
        elsif old.status = 'processing' then
            new.run_at := pg_catalog.clock_timestamp() + pg_catalog.make_interval(
                secs => jobqueue.retry_delay_seconds(
                    (select t.retry_backoff_seconds from public.job_types as t where t.name = new.job_type),
                    new.retry_count
                )
            );
        end if;
    end if;
    new.updated_at := pg_catalog.clock_timestamp();
    return new;
end;
$$;

-- jobqueue.tg_jobs__enqueue
-- AFTER INSERT, once per statement: sends one PGMQ message per new job, in
-- the inserting transaction (a rollback leaves neither row nor message),
-- invisible until the job's run_at when that is still to come.
-- It runs the INSERT that pgmq.send() runs, on the queue table through
-- jobqueue.queue_messages: that one static statement keeps its plan, while
-- pgmq.send_batch() builds and plans its SQL anew on every call, which
-- made it most of the cost of a submit (docs/performance.md).
create or replace function jobqueue.tg_jobs__enqueue()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into jobqueue.queue_messages (vt, message)
    select
        greatest(pg_catalog.clock_timestamp(), n.run_at),
        jobqueue.job_message(n.id, n.job_type, n.user_id, n.job_parameters, n.priority)
    from new_jobs as n;
    return null;
end;
$$;

-- jobqueue.tg_jobs__sync_queue
-- AFTER UPDATE OF status, per row, when a job finishes or is retried. Keeps
-- the invariant (an unfinished job has exactly one message, a finished job
-- none) for the package's functions and hand-written SQL alike:
--   -> completed, failed: deletes the job's messages;
--   processing -> pending (a retry): deletes the old attempt's message, so
--     that its msg_id lease ends, and sends the next one, invisible until
--     run_at (the end of the backoff, set by tg_jobs__transition);
--   from processing, for a type with max_concurrency: frees the slot
--     (jobqueue.release_slots), waking a job that waits for one.
-- Locks: the package's functions already hold the job's message when they
-- update the job. A hand-written update holds the job first: finishing then
-- skips a message another transaction holds (the dequeuer holding it finds
-- the job finished and deletes it), while a retry waits for it, since the
-- old lease must end (at worst a deadlock error for the hand-written update).
create or replace function jobqueue.tg_jobs__sync_queue()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    -- Static statements on the queue table, as pgmq.delete and pgmq.send
    -- run them: this trigger fires for every finished job.
    if new.status = 'pending' then
        delete from jobqueue.queue_messages as m
        where m.msg_id in (
            select q.msg_id from jobqueue.queue_messages as q
            where q.message ->> 'job_id' = new.id::text
            for update
        );
        perform jobqueue.send_job_message(new);
    else
        delete from jobqueue.queue_messages as m
        where m.msg_id in (
            select q.msg_id from jobqueue.queue_messages as q
            where q.message ->> 'job_id' = new.id::text
            for update skip locked
        );
    end if;
    if old.status = 'processing'
        and (select t.max_concurrency from public.job_types as t where t.name = new.job_type) is not null then
        perform jobqueue.release_slots(new.job_type);
    end if;
    return null;
end;
$$;

-- jobqueue.tg_job_types__release_slots
-- AFTER UPDATE OF max_concurrency on public.job_types: a limit raised or
-- removed lets waiting jobs of the type run at once.
create or replace function jobqueue.tg_job_types__release_slots()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    perform jobqueue.release_slots(new.name);
    return null;
end;
$$;

-- submit_jobs() validates its rows itself, once per distinct parameters,
-- and says so with jobqueue.validated_insert: its rows, which always carry a
-- user_id and start as pending, then skip this trigger without a call.
create or replace trigger jobs_100_validate
before insert or update of job_type, job_parameters on public.jobs
for each row
when (
    new.user_id is null
    or new.status is distinct from 'pending'
    or pg_catalog.current_setting('jobqueue.validated_insert', true) is distinct from 'on'
)
execute function jobqueue.tg_jobs__validate();

create or replace trigger jobs_500_transition
before update on public.jobs
for each row execute function jobqueue.tg_jobs__transition();

create or replace trigger jobs_900_enqueue
after insert on public.jobs
referencing new table as new_jobs
for each statement execute function jobqueue.tg_jobs__enqueue();

create or replace trigger jobs_900_sync_queue
after update of status on public.jobs
for each row
when (
    old.status is distinct from new.status
    and (new.status in ('completed', 'failed') or (old.status = 'processing' and new.status = 'pending'))
)
execute function jobqueue.tg_jobs__sync_queue();

create or replace trigger job_types_900_release_slots
after update of max_concurrency on public.job_types
for each row
when (old.max_concurrency is distinct from new.max_concurrency)
execute function jobqueue.tg_job_types__release_slots();
