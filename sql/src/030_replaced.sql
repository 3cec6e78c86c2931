-- ============================================================================
-- Replacing the installed code
-- ============================================================================
-- Every file of src/ creates its functions, triggers and views with CREATE
-- OR REPLACE, which keeps each function's identity: a statement that a
-- caller planned before the install, and runs after it, still finds the
-- function it named. What CREATE OR REPLACE cannot change is dropped here
-- first: old signatures of the API's functions, and functions whose result
-- type changed. What the install no longer creates at all is dropped at its
-- end (150_stale.sql).
--
-- Replacing triggers and row-level security policies locks public.jobs and
-- the queue table. Runners lock the queue table before the jobs table,
-- submitters the other way round; so that neither waits on the install while
-- it waits on them (a deadlock, which would fail one of them), the install
-- takes both locks together, queue first, and gives them back after a short
-- wait to try again. Callers wait while the install runs; none fails.

do $$
declare
    v_tables text;
    v_lock_timeout text := pg_catalog.current_setting('lock_timeout');
begin
    select pg_catalog.string_agg(r.name, ', ' order by r.name)
    into v_tables
    from (
        select pg_catalog.format('pgmq.%I', 'q_' || s.queue_name) as name from jobqueue.settings as s
        union
        select 'public.jobs'
    ) as r;
    loop
        begin
            perform pg_catalog.set_config('lock_timeout', '200ms', true);
            execute pg_catalog.format('lock table %s in access exclusive mode', v_tables);
            exit;
        exception when lock_not_available then
            -- A caller holds one table while it waits for the other: let it
            -- finish (the block's rollback gave back what this one held).
            perform pg_catalog.pg_sleep(0.01 + pg_catalog.random() * 0.05);
        end;
    end loop;
    perform pg_catalog.set_config('lock_timeout', v_lock_timeout, true);
end;
$$;

-- API functions whose signature is no longer the current one, so that no
-- call becomes ambiguous after an upgrade.
do $$
declare
    v_old regprocedure;
begin
    for v_old in
        select p.oid::regprocedure
        from pg_catalog.pg_proc as p
        where p.pronamespace = 'public'::regnamespace
            and p.proname in (select pg_catalog.split_part(a.signature, '(', 1) from jobqueue.api_functions() as a)
            and pg_catalog.format('%s(%s)', p.proname, pg_catalog.oidvectortypes(p.proargtypes))
            not in (select a.signature from jobqueue.api_functions() as a)
    loop
        raise notice 'dropping %, replaced by a new signature', v_old;
        execute pg_catalog.format('drop function %s', v_old);
    end loop;
end;
$$;

-- Functions whose result type changed between releases, with the result
-- they have now: an installed one with another result is dropped, so that
-- it can be created anew. An entry costs nothing once every database has
-- the new form.
do $$
declare
    v_changed record;
begin
    for v_changed in
        select c.signature::regprocedure as oid, c.result
        from (
            values
            ('public.extend_job_lease(uuid, bigint, integer)', 'timestamp with time zone')
        ) as c (signature, result)
        where pg_catalog.to_regprocedure(c.signature) is not null
    loop
        if pg_catalog.pg_get_function_result(v_changed.oid) <> v_changed.result then
            execute pg_catalog.format('drop function %s', v_changed.oid);
        end if;
    end loop;
end;
$$;

-- The policies are created anew with the current role names (160_security.sql).
drop policy if exists jobs_select_own on public.jobs;
drop policy if exists jobs_select_all on public.jobs;
