-- ============================================================================
-- Dropping what this install no longer creates
-- ============================================================================
-- Every function of schema jobqueue that this install did not create or
-- replace (a helper of an older release) is dropped, with the triggers that
-- still call it. A function of the package whose pg_proc row this
-- transaction wrote was created by it; so this runs before the grants
-- (160_security.sql), which write every function's row.

do $$
declare
    v_function regprocedure;
    v_trigger record;
    v_dependents text;
begin
    for v_function in
        select p.oid::regprocedure
        from pg_catalog.pg_proc as p
        where p.pronamespace = 'jobqueue'::regnamespace and p.xmin <> pg_catalog.pg_current_xact_id()::xid
    loop
        for v_trigger in
            select t.tgname, t.tgrelid::regclass as tgtable
            from pg_catalog.pg_trigger as t
            where t.tgfoid = v_function and not t.tgisinternal
        loop
            execute pg_catalog.format('drop trigger %I on %s', v_trigger.tgname, v_trigger.tgtable);
        end loop;
        begin
            execute pg_catalog.format('drop function %s', v_function);
        exception when dependent_objects_still_exist then
            get stacked diagnostics v_dependents = pg_exception_detail;
            raise exception 'cannot drop %, which this release no longer has: %', v_function, sqlerrm
                using errcode = '2BP01',
                detail = v_dependents,
                hint = 'Objects of yours depend on it: drop them, install, then create them again.';
        end;
    end loop;
end;
$$;
