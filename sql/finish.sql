-- ============================================================================
-- After the install: release the install lock
-- ============================================================================

do $$
begin
    perform pg_catalog.pg_advisory_unlock(pg_catalog.hashtext('jobqueue'), 0);
end;
$$;
