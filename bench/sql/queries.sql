-- The benchmark's own statements, each under a `-- name: <name>` header.
-- bench.queries loads this file (with jobqueue.queries.parse); Python code
-- refers to the names. The calls the runner and the client make come from
-- jobqueue's queries.sql instead, so that the benchmark measures those.
-- Parameters are psycopg named placeholders.

-- ---------------------------------------------------------------------------
-- Server and databases
-- ---------------------------------------------------------------------------

-- name: server_settings
select s.name, s.setting, s.unit
from pg_catalog.pg_settings as s
where s.name in (
    'server_version', 'fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method',
    'shared_buffers', 'max_connections', 'shared_preload_libraries'
)
order by s.name;

-- The two statements below take a database name as an identifier (psycopg.sql).
-- name: database_drop
drop database if exists {name} with (force);

-- name: database_create
create database {name};

-- name: pgss_create
create extension if not exists pg_stat_statements with schema public;

-- ---------------------------------------------------------------------------
-- Baselines: tables of their own, in schema bench
-- ---------------------------------------------------------------------------

-- name: baseline_schema
create schema if not exists bench;

-- Baseline (a): a one-row INSERT per transaction.
-- name: baseline_insert_table
create table if not exists bench.insert_one (
    id bigint generated always as identity primary key,
    payload jsonb not null
);

-- Baseline (b): the minimal claim-and-finish queue. The partial index is
-- what any hand-written SKIP LOCKED queue would have.
-- name: baseline_claim_table
create table if not exists bench.claim (
    id bigint generated always as identity primary key,
    status text not null default 'pending',
    payload jsonb not null default '{}',
    claimed_at timestamptz,
    finished_at timestamptz
);

-- name: baseline_claim_index
create index if not exists claim_pending_idx on bench.claim (id) where status = 'pending';

-- name: baseline_insert
insert into bench.insert_one (payload) values ('{}');

-- name: baseline_claim
update bench.claim set status = 'running', claimed_at = now()
where id = (
    select c.id from bench.claim as c
    where c.status = 'pending'
    order by c.id
    limit 1
    for update skip locked
)
returning id;

-- name: baseline_finish
update bench.claim set status = 'done', finished_at = now() where id = %(id)s;

-- name: baseline_insert_reset
truncate bench.insert_one;

-- name: baseline_claim_reset
truncate bench.claim;

-- name: baseline_claim_fill
insert into bench.claim (payload)
select '{}'::jsonb from pg_catalog.generate_series(1, %(n)s::integer);

-- name: vacuum_claim
vacuum analyze bench.claim;

-- ---------------------------------------------------------------------------
-- Jobs
-- ---------------------------------------------------------------------------

-- A job type whose parameters may be any JSON object (the documented one
-- statement); its handler is bench.handlers.bench_noop.
-- name: bench_job_type
insert into public.job_types (name, description)
values ('bench_noop', 'Benchmark: records when its handler starts, does nothing else.')
on conflict (name) do nothing;

-- name: jobs_reset
truncate public.jobs;

-- name: queue_purge
select pgmq.purge_queue(jobqueue.queue_name());

-- name: vacuum_jobs
vacuum analyze public.jobs;

-- name: vacuum_queue
vacuum analyze pgmq.q_job_queue;

-- `n` jobs with the same parameters in one submit_jobs() call, the array
-- built by the server: loading, and the batch workloads.
-- name: jobs_submit_many
select count(*) from public.submit_jobs(
    %(job_type)s::text,
    pg_catalog.array_fill(%(parameters)s::jsonb, array[%(n)s::integer]),
    %(user_id)s::uuid
);

-- The sweep pg_cron runs every minute.
-- name: jobs_recover
select public.recover_orphans();

-- name: job_started_at
select j.id, extract(epoch from j.started_at)::float8
from public.jobs as j
where j.id = any(%(ids)s::uuid []);

-- name: table_update_stats
select t.relid::regclass::text, t.n_tup_upd, t.n_tup_hot_upd
from pg_catalog.pg_stat_user_tables as t
where t.relid in ('public.jobs'::regclass, 'pgmq.q_job_queue'::regclass);

-- name: backend_pid
select pg_catalog.pg_backend_pid();

-- name: runner_backends
select a.pid
from pg_catalog.pg_stat_activity as a
where a.datname = pg_catalog.current_database()
    and a.application_name like 'jobqueue-runner%%'
    and a.pid <> pg_catalog.pg_backend_pid();

-- ---------------------------------------------------------------------------
-- Scale: finished jobs loaded set-based
-- ---------------------------------------------------------------------------

-- Finished jobs have no queue message, so skipping the triggers (validation,
-- state machine, enqueue) for them keeps the data consistent; the CHECK
-- constraints still hold every row. session_replication_role is per session.
-- name: replica_role_on
set session_replication_role = replica;

-- name: replica_role_off
set session_replication_role = origin;

-- Nine in ten completed, one in ten failed; a thousand users; created over
-- the last thirty days, oldest first.
-- name: scale_finished_insert
insert into public.jobs (
    job_type, status, user_id, job_parameters, data_references, error_message, error_type,
    created_at, updated_at, started_at, completed_at
)
select
    'sample_task',
    case when g.n %% 10 = 0 then 'failed' else 'completed' end,
    ('00000000-0000-4000-8000-' || pg_catalog.lpad(pg_catalog.to_hex(g.n %% 1000), 12, '0'))::uuid,
    '{}'::jsonb,
    case when g.n %% 10 = 0 then null else '{"echo": null}'::jsonb end,
    case when g.n %% 10 = 0 then 'sample_task failed as asked' end,
    case when g.n %% 10 = 0 then 'SampleTaskFailed' end,
    t.at, t.at + interval '2 ms', t.at + interval '1 ms', t.at + interval '2 ms'
from pg_catalog.generate_series(%(first)s::bigint, %(last)s::bigint) as g (n)
cross join lateral (
    select now() - interval '30 days' + (g.n * interval '1 ms') as at
) as t;

-- The scale scenario times each call by the server: EXPLAIN ANALYZE runs
-- the call for real and reports its execution time (triggers and nested
-- statements included; planning, commit and network excluded) and the
-- shared buffers it touched. TIMING OFF: no per-node clock reads. Not a
-- statement of its own: bench/scale.py puts it before the call it times.
-- name: explain_analyze
explain (analyze, buffers, timing off, format json)

-- Stale statistics on purpose: no autovacuum (nor auto-analyze) on the jobs
-- table of a scale database while its statistics must predate the pending
-- jobs; a per-table setting of the benchmark's own database.
-- name: jobs_autovacuum_off
alter table public.jobs set (autovacuum_enabled = off);

-- name: jobs_autovacuum_reset
alter table public.jobs reset (autovacuum_enabled);

-- name: vacuum_jobs_only
vacuum public.jobs;

-- name: scale_processing
select j.id, m.msg_id
from public.jobs as j
inner join jobqueue.queue_messages as m on m.message ->> 'job_id' = j.id::text
where j.status = 'processing';

-- ---------------------------------------------------------------------------
-- Profiles: pg_stat_statements and auto_explain, this database only
-- ---------------------------------------------------------------------------

-- name: pgss_reset
select public.pg_stat_statements_reset(
    0::oid,
    (select d.oid from pg_catalog.pg_database as d where d.datname = pg_catalog.current_database()),
    0::bigint
);

-- name: pgss_read
select
    s.toplevel,
    s.calls,
    s.total_exec_time,
    s.shared_blks_hit + s.shared_blks_read as blocks,
    s.rows,
    s.query
from public.pg_stat_statements as s
where s.dbid = (select d.oid from pg_catalog.pg_database as d where d.datname = pg_catalog.current_database())
order by s.total_exec_time desc;

-- name: auto_explain_load
load 'auto_explain';

-- Plans come back as NOTICEs (log_level notice), so that nothing reaches the
-- server log of a shared cluster.
-- name: auto_explain_on
select
    pg_catalog.set_config('auto_explain.log_min_duration', %(min_ms)s::text, false),
    pg_catalog.set_config('auto_explain.log_analyze', 'on', false),
    pg_catalog.set_config('auto_explain.log_buffers', 'on', false),
    -- No clock reads per node and row: rows and buffers tell which index
    -- is used, and each statement's duration is still logged.
    pg_catalog.set_config('auto_explain.log_timing', 'off', false),
    pg_catalog.set_config('auto_explain.log_nested_statements', 'on', false),
    pg_catalog.set_config('auto_explain.log_level', 'notice', false),
    pg_catalog.set_config('auto_explain.log_format', 'text', false);

-- name: auto_explain_off
select pg_catalog.set_config('auto_explain.log_min_duration', '-1', false);
