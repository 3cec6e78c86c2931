-- ============================================================================
-- Migration 0002: run later, priorities, deduplication, limits, retries
-- ============================================================================
-- New columns extend the data model; none of its columns changes. Existing
-- jobs read as priority 0, with no run_at, no dedup_key and no retry_of.
-- Adding a column with a constant default or none is a catalog change, with
-- no rewrite of public.jobs. The priority CHECK is added NOT VALID here and
-- validated outside the transaction (0002_job_features.online.sql), and the
-- deduplication index is built there concurrently: public.jobs is never
-- blocked for longer than a moment, whatever its size.

do $migration$
declare
    v_queue text := (select s.queue_name from jobqueue.settings as s);
begin
    if exists (select from jobqueue.schema_versions as v where v.version = '0002') then
        return;
    end if;

    alter table public.jobs
    -- When the job may run: its message is invisible until then. NULL: at
    -- once. A retry sets it to the end of its backoff.
    add column run_at timestamptz,
    -- Higher first, from -100 to 100; within a priority, in the order the
    -- jobs became due.
    add column priority integer not null default 0,
    -- While a job of the same type and key is pending or processing, a
    -- submit with this key returns that job instead of a new one.
    add column dedup_key text,
    -- The failed job that retry_job() submitted this one again for (no
    -- foreign key, so that old jobs can be purged).
    add column retry_of uuid,
    add constraint jobs_priority_check check (priority between -100 and 100) not valid;

    -- At most this many jobs of the type are processing at once (NULL: no limit).
    alter table public.job_types
    add column max_concurrency integer,
    add constraint job_types_max_concurrency_check check (max_concurrency is null or max_concurrency >= 1);

    -- The queue table's read order: priority (carried in the message, 0 when
    -- absent or not a number), then the time each message became visible.
    -- Built in this transaction: the queue holds only unfinished jobs.
    execute format(
        'create index if not exists %I on pgmq.%I ((%s) desc, vt, msg_id)',
        'q_' || v_queue || '_priority_idx', 'q_' || v_queue,
        'case when jsonb_typeof(message -> ''priority'') = ''number'''
        ' then least(greatest((message ->> ''priority'')::numeric, -100), 100)::integer else 0 end'
    );
    -- Messages parked while their type is at its concurrency limit (vt is
    -- 'infinity' for them, and for no other message), by type.
    execute format(
        'create index if not exists %I on pgmq.%I ((message ->> ''job_type''), msg_id)'
        ' where vt = ''infinity''',
        'q_' || v_queue || '_parked_idx', 'q_' || v_queue
    );

    insert into jobqueue.schema_versions (version) values ('0002');
end;
$migration$;
