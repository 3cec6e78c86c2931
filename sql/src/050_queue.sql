-- ============================================================================
-- The PGMQ queue: names, messages, reads and wake-ups
-- ============================================================================
-- Every unfinished job has exactly one message in the queue (created by
-- migration 0001), a finished job none. The message is {job_id, job_type,
-- user_id, job_parameters}.
--
-- This file creates:
--   * jobqueue.queue_name(), the configured name as a constant;
--   * the view jobqueue.queue_messages over the queue table, so that the
--     package's functions look messages up and lock them with static,
--     plan-cached SQL whatever the queue is called. New jobs' messages are
--     inserted, deleted and read through it too, with the statements
--     pgmq.send, pgmq.delete and pgmq.read run, on columns present since
--     PGMQ 1.0 (tg_jobs__enqueue says why: PGMQ's functions build and plan
--     their SQL anew on every call); the rare paths go through PGMQ's
--     functions (set_vt, archive), present since PGMQ 1.4;
--   * jobqueue.read_messages(), pgmq.read's statement on the queue table;
--   * the NOTIFY trigger that wakes idle runners;
--   * the helpers that build, send and read job messages.

-- jobqueue.tg_queue__notify
-- AFTER INSERT on the queue table, once per statement: NOTIFY jobqueue with
-- the queue's name as payload, so that idle runners wake at once instead of
-- waiting for their next poll. PostgreSQL folds identical notifications of
-- one transaction into one.
create or replace function jobqueue.tg_queue__notify()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    perform pg_catalog.pg_notify('jobqueue', jobqueue.queue_name());
    return null;
end;
$$;

do $$
declare
    v_queue text := (select s.queue_name from jobqueue.settings as s);
begin
    -- jobqueue.queue_name
    -- The name of the PGMQ queue that carries the jobs (fixed at install).
    execute format(
        'create or replace function jobqueue.queue_name() returns text'
        ' language sql immutable parallel safe as %L',
        format('select %L::text', v_queue)
    );

    execute format(
        'create or replace view jobqueue.queue_messages as'
        ' select msg_id, read_ct, enqueued_at, vt, message from pgmq.%I',
        'q_' || v_queue
    );

    -- jobqueue.read_messages
    -- What pgmq.read(queue, p_vt_seconds, p_qty) does, as one static,
    -- plan-cached statement: locks up to p_qty visible messages, lowest
    -- msg_id first, skipping locked ones; hides each for p_vt_seconds and
    -- counts the read; returns their msg_id and message. Sets last_read_at
    -- where the queue table has it (PGMQ 1.5 and later), as pgmq.read does.
    execute format(
        $fn$
        create or replace function jobqueue.read_messages(p_qty integer, p_vt_seconds integer)
        returns table (read_msg_id bigint, read_message jsonb)
        language plpgsql
        set search_path = pg_catalog, pg_temp
        -- One plan, kept for the session: a custom plan per p_qty took more
        -- time to make than the statement takes to run. Without seq scans
        -- and sorts that one plan is the one pgmq.read gets on a queue of
        -- any size, whatever the statistics said when it was made: the
        -- primary key in msg_id order, then each message by its msg_id.
        set plan_cache_mode = force_generic_plan
        set enable_seqscan = off
        set enable_sort = off
        as $body$
        begin
            return query
            update pgmq.%1$I as q
            set %2$s
                vt = pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_vt_seconds),
                read_ct = q.read_ct + 1
            where q.msg_id = any(array(
                select v.msg_id
                from pgmq.%1$I as v
                where v.vt <= pg_catalog.clock_timestamp()
                order by v.msg_id
                limit p_qty
                for update skip locked
            ))
            returning q.msg_id, q.message;
        end;
        $body$
        $fn$,
        'q_' || v_queue,
        case
            when exists (
                select
                from pg_catalog.pg_attribute as a
                where a.attrelid = format('pgmq.%I', 'q_' || v_queue)::regclass
                    and a.attname = 'last_read_at' and not a.attisdropped
            ) then 'last_read_at = pg_catalog.clock_timestamp(),'
            else ''
        end
    );

    -- Wake idle runners (LISTEN jobqueue) whenever messages are sent.
    execute format(
        'create or replace trigger jobqueue_notify after insert on pgmq.%I'
        ' for each statement execute function jobqueue.tg_queue__notify()',
        'q_' || v_queue
    );
end;
$$;

comment on view jobqueue.queue_messages is
'The jobs'' PGMQ queue table, under a fixed name for the package''s own functions.';

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
