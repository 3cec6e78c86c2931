-- jobqueue: install or upgrade the SQL package.
--
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f sql/install.sql
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -v queue_name=my_jobs -f sql/install.sql
--
-- Optional psql variables, fixed at the first install: queue_name (default
-- job_queue), app_role, runner_role, service_role (default jobqueue_app,
-- jobqueue_runner, jobqueue_service).
--
-- Idempotent: running it again changes nothing and raises nothing, and it is
-- the upgrade path too. It runs in three steps under one advisory lock, so
-- that concurrent installs queue up instead of interleaving:
--   1. one transaction: the numbered migrations not yet applied (data:
--      tables, columns, indexes, constraints, data fixes), each recorded in
--      jobqueue.schema_versions;
--   2. outside a transaction: the steps that must not block public.jobs on
--      a large table (CREATE INDEX CONCURRENTLY, VALIDATE CONSTRAINT), each
--      idempotent;
--   3. one transaction: the code (functions, triggers, views, grants),
--      created or replaced, what the release no longer has dropped, and
--      the package version recorded.
-- A failure in step 3 leaves the migrations of step 1 applied: each
-- migration keeps the previous release's code working, so that databases
-- are upgraded before their runners (docs/install.md).
-- `jobqueue migrate` applies the same files in the same steps.

\set ON_ERROR_STOP 1
\if :{?queue_name}
select set_config('jobqueue.queue_name', :'queue_name', false);
\endif
\if :{?app_role}
select set_config('jobqueue.app_role', :'app_role', false);
\endif
\if :{?runner_role}
select set_config('jobqueue.runner_role', :'runner_role', false);
\endif
\if :{?service_role}
select set_config('jobqueue.service_role', :'service_role', false);
\endif

\ir version.sql
\ir prepare.sql

begin;
\ir migrations/0001_initial.sql
\ir migrations/0002_job_features.sql
commit;

\ir migrations/0002_job_features.online.sql

begin;
\ir src/010_settings.sql
\ir src/020_registry.sql
\ir src/030_replaced.sql
\ir src/040_identity.sql
\ir src/050_queue.sql
\ir src/060_validation.sql
\ir src/070_attempts.sql
\ir src/080_triggers.sql
\ir src/090_submit.sql
\ir src/100_dequeue.sql
\ir src/110_finish.sql
\ir src/120_read_cancel.sql
\ir src/130_recovery.sql
\ir src/140_schedule.sql
\ir src/150_stale.sql
\ir src/160_security.sql
\ir src/170_comments.sql
\ir src/180_version.sql
commit;

\ir finish.sql
