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
    -- What pgmq.read(queue, p_vt_seconds, p_qty) does, in priority order:
    -- locks up to p_qty visible messages, skipping locked ones, the highest
    -- priority first and, within a priority, the one visible longest first
    -- (for new jobs: submit order); hides each for p_vt_seconds and counts
    -- the read; returns their msg_id and message. Sets last_read_at where
    -- the queue table has it (PGMQ 1.5 and later), as pgmq.read does.
    -- It reads one priority at a time, each a range of the priority index
    -- (migration 0002) that holds only visible messages, so that messages
    -- not yet visible (delayed, in flight, parked) are never walked over,
    -- however many there are: a read costs what it takes, plus one probe
    -- per priority it looks at.
    execute format(
        $fn$
        create or replace function jobqueue.read_messages(p_qty integer, p_vt_seconds integer)
        returns table (read_msg_id bigint, read_message jsonb)
        language plpgsql
        set search_path = pg_catalog, pg_temp
        -- One plan per statement, kept for the session: a custom plan per
        -- call took more time to make than the statements take to run.
        -- Without seq scans and sorts that one plan walks the priority
        -- index on a queue of any size, whatever the statistics said when
        -- it was made.
        set plan_cache_mode = force_generic_plan
        set enable_seqscan = off
        set enable_sort = off
        as $body$
        declare
            -- A value, not clock_timestamp() in the statements: a volatile
            -- call cannot bound an index scan, and the scan would then walk
            -- every message not yet visible of a priority.
            v_now timestamptz := pg_catalog.clock_timestamp();
            v_priority integer;
            v_left integer := p_qty;
            v_read integer;
        begin
            select %3$s into v_priority from pgmq.%1$I as v order by %3$s desc limit 1;
            while v_priority is not null loop
                return query
                update pgmq.%1$I as q
                set %2$s
                    vt = pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_vt_seconds),
                    read_ct = q.read_ct + 1
                where q.msg_id = any(array(
                    select v.msg_id
                    from pgmq.%1$I as v
                    where %3$s = v_priority and v.vt <= v_now
                    order by %3$s desc, v.vt, v.msg_id
                    limit v_left
                    for update skip locked
                ))
                returning q.msg_id, q.message;
                get diagnostics v_read = row_count;
                v_left := v_left - v_read;
                exit when v_left <= 0;
                select %3$s into v_priority
                from pgmq.%1$I as v
                where %3$s < v_priority
                order by %3$s desc
                limit 1;
            end loop;
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
        end,
        -- A message's priority as the priority index of migration 0002
        -- computes it (the two expressions must stay the same for the index
        -- to serve): its "priority" key, 0 when absent or not a number.
        'case when pg_catalog.jsonb_typeof(v.message -> ''priority'') = ''number'''
        ' then least(greatest((v.message ->> ''priority'')::numeric, -100), 100)::integer else 0 end'
    );

    -- jobqueue.wake_parked
    -- Makes up to p_count parked messages of p_job_type visible again, the
    -- oldest first; returns how many. A message is parked (its vt set to
    -- 'infinity') while its job waits for a slot of its type (dequeue_jobs),
    -- and found through the parked index of migration 0002, which holds
    -- only those messages.
    execute format(
        $fn$
        create or replace function jobqueue.wake_parked(p_job_type text, p_count integer)
        returns integer
        language plpgsql
        set search_path = pg_catalog, pg_temp
        as $body$
        declare
            v_woken integer;
        begin
            update pgmq.%1$I as q
            set vt = pg_catalog.clock_timestamp()
            where q.msg_id = any(array(
                select v.msg_id
                from pgmq.%1$I as v
                where v.message ->> 'job_type' = p_job_type and v.vt = 'infinity'
                order by v.message ->> 'job_type', v.msg_id
                limit p_count
                for update skip locked
            ));
            get diagnostics v_woken = row_count;
            return v_woken;
        end;
        $body$
        $fn$,
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
-- The queue message of a job: {job_id, job_type, user_id, job_parameters},
-- and its priority under the key "priority" when it is not 0 (read_messages
-- reads messages in priority order).
create or replace function jobqueue.job_message(
    p_job_id uuid, p_job_type text, p_user_id uuid, p_job_parameters jsonb, p_priority integer
)
returns jsonb
language sql
-- Stable like jsonb_build_object(): declared immutable, it would not be inlined.
stable
parallel safe
as $$
    select case when p_priority = 0 then m.message else m.message || pg_catalog.jsonb_build_object('priority', p_priority) end
    from (
        select pg_catalog.jsonb_build_object(
            'job_id', p_job_id,
            'job_type', p_job_type,
            'user_id', p_user_id,
            'job_parameters', p_job_parameters
        ) as message
    ) as m
$$;

-- jobqueue.send_job_message
-- Sends p_job's queue message, visible once the job is due (its run_at; at
-- once when it has none or it has passed): the INSERT that pgmq.send runs,
-- as static SQL through jobqueue.queue_messages, for the one-job paths (a
-- retry, an orphan's re-send); tg_jobs__enqueue sends new jobs' messages a
-- statement at a time.
create or replace function jobqueue.send_job_message(p_job public.jobs)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    insert into jobqueue.queue_messages (vt, message)
    values (
        greatest(pg_catalog.clock_timestamp(), p_job.run_at),
        jobqueue.job_message(p_job.id, p_job.job_type, p_job.user_id, p_job.job_parameters, p_job.priority)
    );
end;
$$;
