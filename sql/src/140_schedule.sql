-- ============================================================================
-- The pg_cron schedule of recover_orphans()
-- ============================================================================
-- pg_cron's extension lives only in the database that cron.database_name
-- names. Installed there, this schedules the sweep every minute under one
-- job name (cron.schedule() replaces a job of the same name, so reinstalls
-- keep exactly one). Installed elsewhere, it prints the call to run in the
-- cron database, and succeeds.

set local client_min_messages = notice;

do $$
declare
    v_cron_database text := nullif(current_setting('cron.database_name', true), '');
    v_command text := 'select public.recover_orphans()';
    v_job_name text := 'jobqueue-recover-orphans';
begin
    if v_cron_database is null then
        raise notice 'pg_cron is not loaded (shared_preload_libraries): run select public.recover_orphans(); every minute from a scheduler of your own';
    elsif v_cron_database = current_database() then
        if not exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
            create extension pg_cron;
        end if;
        execute 'select cron.schedule($1, $2, $3)' using v_job_name, '* * * * *', v_command;
    else
        v_job_name := v_job_name || '@' || current_database();
        raise notice 'pg_cron lives in database %: to sweep this database every minute, run there: select cron.schedule_in_database(%, %, %, %);',
            v_cron_database, quote_literal(v_job_name), quote_literal('* * * * *'),
            quote_literal(v_command), quote_literal(current_database());
    end if;
end;
$$;

-- Back to quiet for the rest of the install.
set local client_min_messages = warning;
