-- ============================================================================
-- Roles, grants and row-level security (docs/security.md)
-- ============================================================================
-- Runs on every install, so that an upgrade keeps every rule, and takes back
-- what default privileges handed out meanwhile (Supabase grants everything
-- created in public to anon, authenticated and service_role).
--
--   app role      submit_job(s), validate_job_parameters, get_job, cancel_job,
--                 for its own identity only; SELECT on its own jobs (RLS).
--   service role  the same for any user (trusted backends).
--   runner role   dequeue_jobs, complete_job(s), fail_job(s), extend_job_lease,
--                 recover_orphans; reads every job; nothing else.
--   owner         the installing role (DBAs): everything.
-- On Supabase, authenticated gets the app role's rights, service_role the
-- runner's and the service role's, anon nothing. Those roles are NOINHERIT,
-- so rights are granted to each directly rather than through membership.

-- The package's roles, created NOLOGIN when missing.
do $$
declare
    v_role text;
begin
    for v_role in
        select pg_catalog.unnest(array[s.app_role, s.runner_role, s.service_role]) from jobqueue.settings as s
    loop
        if pg_catalog.to_regrole(v_role) is null then
            execute pg_catalog.format('create role %I nologin', v_role);
        end if;
    end loop;
end;
$$;

do $$
declare
    v_settings jsonb := (select pg_catalog.to_jsonb(s.*) from jobqueue.settings as s);
    v_supabase boolean := jobqueue.supabase_roles_exist();
    v_queue text := jobqueue.queue_name();
    v_app text;
    v_runner text;
    v_service text;
    v_everyone text;
    v_object text;
begin
    -- Role lists, quoted for the statements below.
    v_app := pg_catalog.format('%I', v_settings ->> 'app_role')
        || case when v_supabase then ', authenticated' else '' end;
    v_runner := pg_catalog.format('%I', v_settings ->> 'runner_role')
        || case when v_supabase then ', service_role' else '' end;
    v_service := pg_catalog.format('%I', v_settings ->> 'service_role')
        || case when v_supabase then ', service_role' else '' end;
    v_everyone := pg_catalog.format(
        'public, %I, %I, %I', v_settings ->> 'app_role', v_settings ->> 'runner_role', v_settings ->> 'service_role'
    ) || case when v_supabase then ', anon, authenticated, service_role' else '' end;

    -- Take back everything first: every function of the package, its tables,
    -- the queue's tables.
    for v_object in
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc as p
        where p.pronamespace = 'jobqueue'::regnamespace
            or (
                p.pronamespace = 'public'::regnamespace
                and pg_catalog.format('%s(%s)', p.proname, pg_catalog.oidvectortypes(p.proargtypes))
                in (select a.signature from jobqueue.api_functions() as a)
            )
    loop
        execute pg_catalog.format('revoke all on function %s from %s', v_object, v_everyone);
    end loop;
    foreach v_object in array array[
        'public.jobs', 'public.job_types', 'jobqueue.settings', 'jobqueue.schema_versions',
        'jobqueue.queue_messages',
        pg_catalog.format('pgmq.%I', 'q_' || v_queue), pg_catalog.format('pgmq.%I', 'a_' || v_queue)
    ] loop
        execute pg_catalog.format('revoke all on table %s from %s', v_object, v_everyone);
    end loop;
    execute pg_catalog.format('revoke all on schema jobqueue from %s', v_everyone);

    -- Then grant what each role needs.
    for v_object in
        select pg_catalog.format('public.%s', a.signature) from jobqueue.api_functions() as a where a.granted_to = 'app'
    loop
        execute pg_catalog.format('grant execute on function %s to %s, %s', v_object, v_app, v_service);
    end loop;
    for v_object in
        select pg_catalog.format('public.%s', a.signature) from jobqueue.api_functions() as a where a.granted_to = 'runner'
    loop
        execute pg_catalog.format('grant execute on function %s to %s', v_object, v_runner);
    end loop;
    -- The RLS policy below calls jobqueue.current_user_id() as the caller.
    execute pg_catalog.format('grant usage on schema jobqueue to %s, %s', v_app, v_service);
    execute pg_catalog.format('grant execute on function jobqueue.current_user_id() to %s, %s', v_app, v_service);
    -- Runners check the database's version at start.
    execute pg_catalog.format('grant usage on schema jobqueue to %s', v_runner);
    execute pg_catalog.format('grant usage on schema jobqueue to %s', v_service);
    execute pg_catalog.format('grant execute on function jobqueue.installed_version() to %s, %s', v_runner, v_service);
    execute pg_catalog.format(
        'grant select on table public.jobs, public.job_types to %s, %s, %s', v_app, v_service, v_runner
    );

    -- Row-level security: callers read only their own jobs; service and
    -- runner roles read all. Recreated so that role changes take effect.
    alter table public.jobs enable row level security;
    drop policy if exists jobs_select_own on public.jobs;
    drop policy if exists jobs_select_all on public.jobs;
    execute pg_catalog.format(
        'create policy jobs_select_own on public.jobs for select to %s'
        ' using (user_id = jobqueue.current_user_id())',
        v_app
    );
    execute pg_catalog.format(
        'create policy jobs_select_all on public.jobs for select to %s, %s using (true)', v_service, v_runner
    );
end;
$$;
