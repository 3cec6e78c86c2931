-- ============================================================================
-- The PGMQ queue
-- ============================================================================
-- Every unfinished job has exactly one message in the queue, a finished job
-- none. The message is {job_id, job_type, user_id, job_parameters}.
--
-- Besides the queue itself, install creates:
--   * an index on the queue table's message->>'job_id', so that a job's
--     message is found without scanning the queue;
--   * jobqueue.queue_name(), the configured name as a constant;
--   * the view jobqueue.queue_messages over the queue table, so that the
--     package's functions look messages up and lock them with static,
--     plan-cached SQL whatever the queue is called. New jobs' messages are
--     inserted through it too (pgmq.send's own INSERT, on columns present
--     since PGMQ 1.0: tg_jobs__enqueue says why); everything else goes
--     through PGMQ's functions (send, read, set_vt, delete, archive), all
--     present since PGMQ 1.4.

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
    if to_regclass(format('pgmq.%I', 'q_' || v_queue)) is null then
        perform pgmq.create(v_queue);
    end if;

    execute format(
        'create index if not exists %I on pgmq.%I ((message ->> %L))',
        'q_' || v_queue || '_job_id_idx', 'q_' || v_queue, 'job_id'
    );

    -- Every message is inserted, updated by each read and deleted: vacuum
    -- the queue table after a fixed number of dead rows rather than a share
    -- of its size, or reads wade through dead rows in busy periods.
    execute format(
        'alter table pgmq.%I set (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,'
        ' autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.05)',
        'q_' || v_queue
    );

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
