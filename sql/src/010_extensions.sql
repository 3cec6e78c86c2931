-- ============================================================================
-- Extensions and the install lock
-- ============================================================================

-- Serialise concurrent installs: the second one waits here, then finds
-- everything in place and changes nothing.
do $$
begin
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('jobqueue'), 0);
end;
$$;

-- A reinstall finds most objects in place: keep its output to what matters.
set local client_min_messages = warning;

create extension if not exists pgmq;

create schema if not exists jobqueue;
comment on schema jobqueue is
'jobqueue private helpers: not part of the API, do not call them directly.';
