-- ============================================================================
-- The registry of the public API
-- ============================================================================
-- Lock order, everywhere: a job's queue message first, then the job row.
-- dequeue_jobs() locks messages before it can see their jobs, so every other
-- function follows it; concurrent calls then never deadlock. (recover_orphans()
-- also visits jobs first, but only ever takes a message lock with SKIP LOCKED
-- there, so it never waits in the wrong order.)

-- jobqueue.api_functions
-- The signatures of the public API, by role that may call them. Install
-- uses it to drop replaced signatures (030_replaced.sql) and to grant
-- EXECUTE (160_security.sql).
create or replace function jobqueue.api_functions()
returns table (signature text, granted_to text)
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
    values
    ('submit_job(text, jsonb, uuid, timestamp with time zone, integer, text)', 'app'),
    ('submit_jobs(text, jsonb[], uuid, timestamp with time zone, integer, text[])', 'app'),
    ('validate_job_parameters(text, jsonb)', 'app'),
    ('get_job(uuid)', 'app'),
    ('cancel_job(uuid)', 'app'),
    ('retry_job(uuid)', 'app'),
    ('dequeue_jobs(integer, integer)', 'runner'),
    ('complete_job(uuid, jsonb, bigint)', 'runner'),
    ('complete_jobs(uuid[], jsonb[], bigint[])', 'runner'),
    ('fail_job(uuid, text, text, jsonb, bigint)', 'runner'),
    ('fail_jobs(uuid[], text[], text[], jsonb[], bigint[])', 'runner'),
    ('extend_job_lease(uuid, bigint, integer)', 'runner'),
    ('recover_orphans()', 'runner')
$$;
