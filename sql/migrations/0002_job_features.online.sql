-- ============================================================================
-- Migration 0002, the steps that must not block public.jobs
-- ============================================================================
-- Run outside any transaction, on every install; each is idempotent.

-- Deduplication: one unfinished job per type and key. Jobs without a key,
-- and finished ones, are not in the index, so it costs them nothing.
-- A build that failed half-way leaves an invalid index behind: it is
-- dropped, to be built again. On a small table the build takes less than a
-- moment and runs here, in a transaction: CREATE INDEX CONCURRENTLY waits
-- for every transaction of the database with an older snapshot, a second
-- install waiting for the install lock among them, which would deadlock.
do $$
begin
    if exists (
        select from pg_catalog.pg_index as i
        where i.indexrelid = pg_catalog.to_regclass('public.jobs_dedup_key_idx') and not i.indisvalid
    ) then
        drop index public.jobs_dedup_key_idx;
    end if;
    if pg_catalog.pg_relation_size('public.jobs') < 64 * 1024 * 1024 then
        create unique index if not exists jobs_dedup_key_idx
        on public.jobs (job_type, dedup_key)
        where dedup_key is not null and status in ('pending', 'processing');
    end if;
end;
$$;

create unique index concurrently if not exists jobs_dedup_key_idx
on public.jobs (job_type, dedup_key)
where dedup_key is not null and status in ('pending', 'processing');

alter table public.jobs validate constraint jobs_priority_check;
