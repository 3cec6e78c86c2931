-- ============================================================================
-- Migration 0001: the data model of the first release
-- ============================================================================
-- Tables, indexes, constraints, the PGMQ queue and the rows every install
-- starts with. It applies to an empty database and to one installed before
-- migrations existed (release 0.1.0), where every object is already there:
-- each step therefore creates only what is missing.
--
-- Like every migration: applied once, in the install's first transaction,
-- and recorded in jobqueue.schema_versions under its number.

do $migration$
declare
    v_queue text;
begin
    if exists (select from jobqueue.schema_versions as v where v.version = '0001') then
        return;
    end if;

    create extension if not exists pgmq;

    -- jobqueue.settings
    -- One row of package-wide settings. The queue and role names are fixed by
    -- the first install (psql -v queue_name=..., or `jobqueue migrate --queue-name`).
    create table if not exists jobqueue.settings (
        singleton boolean primary key default true check (singleton),
        queue_name text not null default 'job_queue'
        check (queue_name ~ '^[a-z_][a-z0-9_]{0,46}$'),
        -- recover_orphans() re-sends a lost message this many times, then fails
        -- the job with error_type 'OrphanedJob'.
        orphan_max_requeues integer not null default 3
        check (orphan_max_requeues >= 0),
        -- Upper bound of one retry's backoff delay.
        max_backoff_seconds integer not null default 3600
        check (max_backoff_seconds >= 1),
        -- The package's roles (docs/security.md), created NOLOGIN if missing.
        app_role text not null default 'jobqueue_app',
        runner_role text not null default 'jobqueue_runner',
        service_role text not null default 'jobqueue_service'
    );

    insert into jobqueue.settings (queue_name, app_role, runner_role, service_role)
    values (
        coalesce(nullif(current_setting('jobqueue.queue_name', true), ''), 'job_queue'),
        coalesce(nullif(current_setting('jobqueue.app_role', true), ''), 'jobqueue_app'),
        coalesce(nullif(current_setting('jobqueue.runner_role', true), ''), 'jobqueue_runner'),
        coalesce(nullif(current_setting('jobqueue.service_role', true), ''), 'jobqueue_service')
    )
    on conflict (singleton) do nothing;

    -- public.job_types
    -- The registry of job types and their per-type settings. Adding a type is
    -- one INSERT (see docs/job-types.md) plus a Python handler.
    create table if not exists public.job_types (
        name text primary key check (name ~ '^[A-Za-z_][A-Za-z0-9_.:-]{0,99}$'),
        -- How many times a failed attempt is retried (fail_job, JobTimeout).
        max_retries integer not null default 0 check (max_retries >= 0),
        -- How long one attempt may run, lease extensions included.
        timeout_seconds integer not null default 300 check (timeout_seconds between 1 and 86400),
        -- Backoff of the n-th retry: retry_backoff_seconds * 2^(n-1) seconds.
        retry_backoff_seconds integer not null default 1 check (retry_backoff_seconds >= 1),
        -- A JSON Schema subset the job's parameters must satisfy (docs/job-types.md);
        -- NULL accepts any JSON object.
        parameters_schema jsonb check (parameters_schema is null or jsonb_typeof(parameters_schema) = 'object'),
        description text,
        created_at timestamptz not null default now()
    );

    insert into public.job_types (name, max_retries, parameters_schema, description)
    values (
        'sample_task',
        0,
        '{
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "message": {"type": "string", "maxLength": 1000},
                "duration_ms": {"type": "integer", "minimum": 0, "maximum": 60000},
                "fail": {"type": "boolean"}
            }
        }',
        'Sleeps duration_ms, fails when fail is true, else returns {"echo": message}.'
    )
    on conflict (name) do nothing;

    -- public.jobs
    -- One row per job. Status transitions (enforced by tg_jobs__transition):
    create table if not exists public.jobs (
        id uuid primary key default gen_random_uuid(),
        job_type text not null references public.job_types (name),
        status text not null default 'pending'
        check (status in (
            'pending',    -- new; or processing -> pending (a retry)
            'processing', -- pending -> processing (dequeue_jobs)
            'completed',  -- processing -> completed (complete_job)
            'failed'      -- processing -> failed (fail_job, timeout); pending -> failed (cancel, orphan)
        )),
        user_id uuid not null,
        job_parameters jsonb,
        error_message text,
        error_type text,
        error_context jsonb,
        data_references jsonb,
        retry_count integer not null default 0 check (retry_count >= 0),
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        started_at timestamptz,
        completed_at timestamptz,
        -- A finished job has completed_at; an unfinished one does not.
        constraint jobs_completed_at_check
        check ((completed_at is not null) = (status in ('completed', 'failed'))),
        -- A running attempt knows when it started.
        constraint jobs_started_at_check
        check (status <> 'processing' or started_at is not null)
    );

    create index if not exists jobs_status_idx on public.jobs (status);
    create index if not exists jobs_user_id_idx on public.jobs (user_id);
    create index if not exists jobs_created_at_idx on public.jobs (created_at);

    -- On Supabase, jobs belong to auth.users; elsewhere there is no such table.
    if to_regclass('auth.users') is not null
        and not exists (
            select from pg_catalog.pg_constraint
            where conname = 'jobs_user_id_fkey' and conrelid = 'public.jobs'::regclass
        ) then
        alter table public.jobs
        add constraint jobs_user_id_fkey foreign key (user_id)
        references auth.users (id) on delete cascade;
    end if;

    -- The PGMQ queue: every unfinished job has exactly one message in it, a
    -- finished job none. The message is {job_id, job_type, user_id, job_parameters}.
    v_queue := (select s.queue_name from jobqueue.settings as s);
    if to_regclass(format('pgmq.%I', 'q_' || v_queue)) is null then
        perform pgmq.create(v_queue);
    end if;

    -- A job's message is found without scanning the queue.
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

    insert into jobqueue.schema_versions (version) values ('0001');
end;
$migration$;
