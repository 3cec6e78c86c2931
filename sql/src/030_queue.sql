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
--     inserted, deleted and read through it too, with the statements
--     pgmq.send, pgmq.delete and pgmq.read run, on columns present since
--     PGMQ 1.0 (tg_jobs__enqueue says why: PGMQ's functions build and plan
--     their SQL anew on every call); the rare paths go through PGMQ's
--     functions (set_vt, archive), present since PGMQ 1.4;
--   * jobqueue.read_messages(), pgmq.read's statement on the queue table.

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
