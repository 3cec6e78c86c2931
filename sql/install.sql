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
-- the upgrade path too. Everything runs in one transaction under an advisory
-- lock, so concurrent installs queue up instead of interleaving.
-- `jobqueue migrate` applies the same files, in the order of the \ir lines.

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

begin;

\ir src/010_extensions.sql
\ir src/020_schema.sql
\ir src/030_queue.sql
\ir src/040_helpers.sql
\ir src/050_triggers.sql
\ir src/060_api.sql
\ir src/070_recovery.sql
\ir src/080_schedule.sql
\ir src/090_security.sql

commit;
