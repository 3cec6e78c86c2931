-- Every query the Python side runs, each under a `-- name: <name>` header.
-- jobqueue.queries loads this file once; Python code refers to the names.
-- Parameters are psycopg named placeholders; the casts make each call
-- resolve to exactly one function whatever Python type is passed.

-- ---------------------------------------------------------------------------
-- Application client (JobQueueService)
-- ---------------------------------------------------------------------------

-- name: job_submit
select public.submit_job(
    %(job_type)s::text, %(job_parameters)s::jsonb, %(user_id)s::uuid,
    %(run_at)s::timestamptz, %(priority)s::integer, %(dedup_key)s::text
) as job_id;

-- name: job_submit_many
select s.job_id
from public.submit_jobs(
    %(job_type)s::text, %(job_parameters)s::jsonb [], %(user_id)s::uuid,
    %(run_at)s::timestamptz, %(priority)s::integer, %(dedup_keys)s::text []
) as s (job_id);

-- name: job_validate_parameters
select public.validate_job_parameters(%(job_type)s::text, %(job_parameters)s::jsonb);

-- name: job_get
select
    j.id, j.job_type, j.status, j.user_id, j.job_parameters,
    j.error_message, j.error_type, j.error_context, j.data_references,
    j.retry_count, j.created_at, j.updated_at, j.started_at, j.completed_at,
    j.run_at, j.priority, j.dedup_key, j.retry_of
from public.get_job(%(job_id)s::uuid) as j;

-- name: job_cancel
select public.cancel_job(%(job_id)s::uuid) as cancelled;

-- name: job_retry
select public.retry_job(%(job_id)s::uuid) as job_id;

-- Acting for a user: the claims PostgREST would set, for this transaction
-- only. Returns the claims they replace (NULL: none were set), read before
-- they are replaced, so that the call can put them back when it ends.
-- name: request_set_claims
with previous as materialized (
    select pg_catalog.current_setting('request.jwt.claims', true) as claims
)
select p.claims as previous, pg_catalog.set_config('request.jwt.claims', %(claims)s::text, true)
from previous as p;

-- The claims a call replaced, back for the rest of the caller's transaction
-- ('' where there were none: current_user_id() reads both as no claims).
-- name: request_restore_claims
select pg_catalog.set_config('request.jwt.claims', coalesce(%(claims)s::text, ''), true);

-- ---------------------------------------------------------------------------
-- Runner
-- ---------------------------------------------------------------------------

-- The package version the database was last upgraded to.
-- name: package_installed_version
select jobqueue.installed_version() as version;

-- name: runner_listen
listen jobqueue;

-- name: job_dequeue
select d.job_id, d.msg_id, d.job_type, d.user_id, d.job_parameters, d.retry_count
from public.dequeue_jobs(%(batch_size)s::integer, %(visibility_timeout)s::integer) as d;

-- name: job_complete
select public.complete_job(%(job_id)s::uuid, %(data_references)s::jsonb, %(msg_id)s::bigint);

-- name: job_fail
select public.fail_job(
    %(job_id)s::uuid,
    %(error_message)s::text,
    %(error_type)s::text,
    %(error_context)s::jsonb,
    %(msg_id)s::bigint
) as status;

-- The results of a batch, one statement each for its completions and its
-- failures: the runner sends them with the next dequeue_jobs call in one
-- implicit transaction (one commit). Each returns one row per job: its
-- outcome ('completed'; 'failed' or 'pending' for a retry), or why the
-- attempt could not record it ('lease_lost', 'not_processing', 'not_found').
-- name: job_complete_many
select c.job_id, c.outcome
from public.complete_jobs(%(job_ids)s::uuid [], %(data_references)s::jsonb [], %(msg_ids)s::bigint []) as c;

-- name: job_fail_many
select f.job_id, f.outcome
from public.fail_jobs(
    %(job_ids)s::uuid [],
    %(error_messages)s::text [],
    %(error_types)s::text [],
    %(error_contexts)s::jsonb [],
    %(msg_ids)s::bigint []
) as f;

-- How many seconds the lease now lasts, by the database's clock: it may
-- grant less than asked (never past the type's timeout_seconds).
-- name: job_extend_lease
select extract(
    epoch from public.extend_job_lease(%(job_id)s::uuid, %(msg_id)s::bigint, %(seconds)s::integer)
    - clock_timestamp()
)::float8 as granted_seconds;

-- ---------------------------------------------------------------------------
-- Command line: status and demo
-- ---------------------------------------------------------------------------

-- name: job_count_by_status
select s.status, count(j.id) as jobs
from unnest(array['pending', 'processing', 'completed', 'failed']) as s (status)
left join public.jobs as j on j.status = s.status
group by s.status
order by array_position(array['pending', 'processing', 'completed', 'failed'], s.status);

-- name: queue_metrics
select m.queue_name, m.queue_length, m.oldest_msg_age_sec, m.total_messages
from pgmq.metrics((select s.queue_name from jobqueue.settings as s)) as m;

-- name: job_count_by_status_among
select j.status, count(*) as jobs
from public.jobs as j
where j.id = any(%(job_ids)s::uuid [])
group by j.status
order by j.status;

-- name: job_examples_among
select e.status, e.id, e.job_parameters, e.error_type, e.error_message, e.data_references
from (
    select
        j.status, j.id, j.job_parameters, j.error_type, j.error_message, j.data_references,
        row_number() over (partition by j.status order by j.created_at, j.id) as n
    from public.jobs as j
    where j.id = any(%(job_ids)s::uuid [])
) as e
where e.n <= %(per_status)s::integer
order by e.status, e.n;

-- ---------------------------------------------------------------------------
-- Migrations
-- ---------------------------------------------------------------------------

-- What psql -v <variable>=... does in install.sql; the setting's name comes
-- from install.sql itself, never from input.
-- name: migrate_set_setting
select pg_catalog.set_config(%(setting)s::text, %(value)s::text, false);

-- name: migrate_installed_versions
select v.version, v.installed_at from jobqueue.schema_versions as v order by v.installed_at, v.version;
