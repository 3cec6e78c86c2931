-- ============================================================================
-- Settings given to this install
-- ============================================================================
-- The package's code (this file and the rest of src/) is created anew by
-- every install, in one transaction, and what a release no longer has is
-- dropped (030_replaced.sql, 150_stale.sql): no stale function, trigger or
-- view survives an upgrade. Data lives in migrations/.

set local client_min_messages = warning;

-- A queue or role name given to a later install must match the first one:
-- moving the queue would strand the messages of unfinished jobs, and
-- renaming roles would leave the old ones with their grants.
do $$
declare
    v_settings jsonb := (select pg_catalog.to_jsonb(s.*) from jobqueue.settings as s);
    v_name text;
    v_asked text;
begin
    foreach v_name in array array['queue_name', 'app_role', 'runner_role', 'service_role'] loop
        v_asked := nullif(current_setting('jobqueue.' || v_name, true), '');
        if v_asked is not null and v_asked <> v_settings ->> v_name then
            raise exception '% "%" differs from the installed "%"', v_name, v_asked, v_settings ->> v_name
                using errcode = '55000',
                hint = 'It is fixed at the first install: omit it, or pass the installed value.';
        end if;
    end loop;
end;
$$;
