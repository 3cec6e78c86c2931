-- ============================================================================
-- Orphan recovery (pg_cron runs it every minute)
-- ============================================================================

-- recover_orphans
-- The sweep. Returns the counts of what it did:
--   stale_messages_deleted  visible messages of missing or finished jobs;
--   poison_messages_archived visible messages that carry no job id;
--   timed_out_failed, timed_out_retried  processing jobs whose lease expired
--       (message visible again), whose message is gone, or that outlived
--       their type's timeout_seconds: JobTimeout, or a retry per the type;
--   orphans_requeued  pending jobs with no message: message re-sent,
--       retry_count + 1;
--   orphans_failed  the same, once retry_count has reached
--       settings.orphan_max_requeues: failed with error_type 'OrphanedJob';
--   parked_woken  messages of jobs waiting for a slot of their type, made
--       visible again because the type has free slots (after its limit was
--       raised, for example: a finishing job wakes the next one itself).
-- One sweep at a time (a transaction-level advisory lock): a concurrent call
-- returns {"skipped": true} at once. Rows another transaction holds are
-- skipped and left for the next sweep. Locks: messages then jobs in part 1;
-- parts 2 and 3 lock jobs first but take message locks only with SKIP
-- LOCKED, so they never wait in the other order.
create or replace function public.recover_orphans()
returns jsonb
language plpgsql
security definer
-- Definer: the runner role (and pg_cron's job owner) need no table rights.
set search_path = pg_catalog, pg_temp
as $$
declare
    v_max_requeues integer := (select s.orphan_max_requeues from jobqueue.settings as s);
    v_stale integer := 0;
    v_poison integer := 0;
    v_failed integer := 0;
    v_retried integer := 0;
    v_requeued integer := 0;
    v_orphans_failed integer := 0;
    v_woken integer := 0;
    v_type text;
    v_message record;
    v_job public.jobs;
    v_msg_id bigint;
begin
    if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('jobqueue'), 1) then
        -- 4. Types with parked messages and free slots.
    for v_type in
        select distinct m.message ->> 'job_type' from jobqueue.queue_messages as m where m.vt = 'infinity'
    loop
        v_woken := v_woken + jobqueue.release_slots(v_type);
    end loop;

    return pg_catalog.jsonb_build_object('skipped', true);
    end if;

    -- 1. Visible messages that do not belong to a pending job.
    for v_message in
        select m.msg_id, m.message, jobqueue.message_job_id(m.message) as job_id
        from jobqueue.queue_messages as m
        where m.vt <= pg_catalog.clock_timestamp()
            and not exists (
                select from public.jobs as j
                where j.id = jobqueue.message_job_id(m.message) and j.status = 'pending'
            )
        order by m.msg_id
        for update of m skip locked
    loop
        if v_message.job_id is null then
            raise warning 'jobqueue: archived poison message % (not a job message): %',
                v_message.msg_id, pg_catalog.left(v_message.message::text, 200);
            perform pgmq.archive(jobqueue.queue_name(), v_message.msg_id);
            v_poison := v_poison + 1;
            continue;
        end if;
        select j.* into v_job from public.jobs as j where j.id = v_message.job_id for update;
        if not found or v_job.status in ('completed', 'failed') then
            delete from jobqueue.queue_messages as m where m.msg_id = v_message.msg_id;
            v_stale := v_stale + 1;
        elsif v_job.status = 'processing' then
            if jobqueue.end_attempt(
                v_job,
                'attempt abandoned: its lease expired while the job was processing',
                'JobTimeout',
                pg_catalog.jsonb_build_object('msg_id', v_message.msg_id, 'started_at', v_job.started_at)
            ) = 'pending' then
                v_retried := v_retried + 1;
            else
                v_failed := v_failed + 1;
            end if;
        end if;
    end loop;

    -- 2. Processing jobs whose message is gone or whose attempt outlived
    --    its type's timeout_seconds.
    for v_job in
        select j.*
        from public.jobs as j
        inner join public.job_types as t on j.job_type = t.name
        where j.status = 'processing'
            and (
                j.started_at + pg_catalog.make_interval(secs => t.timeout_seconds) < pg_catalog.clock_timestamp()
                or not exists (
                    select from jobqueue.queue_messages as m where m.message ->> 'job_id' = j.id::text
                )
            )
        for update of j skip locked
    loop
        select m.msg_id into v_msg_id
        from jobqueue.queue_messages as m
        where m.message ->> 'job_id' = v_job.id::text
        order by m.msg_id
        limit 1
        for update skip locked;
        if v_msg_id is null and exists (
            select from jobqueue.queue_messages as m where m.message ->> 'job_id' = v_job.id::text
        ) then
            continue; -- its message is busy (a runner is finishing it): next sweep
        end if;
        if jobqueue.end_attempt(
            v_job,
            case when v_msg_id is null
                then 'attempt lost: its queue message is gone'
                else 'attempt timed out: it outlived its job type''s timeout_seconds'
            end,
            'JobTimeout',
            pg_catalog.jsonb_build_object('msg_id', v_msg_id, 'started_at', v_job.started_at)
        ) = 'pending' then
            v_retried := v_retried + 1;
        else
            v_failed := v_failed + 1;
        end if;
    end loop;

    -- 3. Pending jobs with no message: lost or purged.
    for v_job in
        select j.*
        from public.jobs as j
        where j.status = 'pending'
            and not exists (
                select from jobqueue.queue_messages as m where m.message ->> 'job_id' = j.id::text
            )
        for update of j skip locked
    loop
        -- Look again now that the job is locked: a retry that committed
        -- after the scan began has sent its message meanwhile.
        continue when exists (
            select from jobqueue.queue_messages as m where m.message ->> 'job_id' = v_job.id::text
        );
        if v_job.retry_count >= v_max_requeues then
            update public.jobs as j
            set status = 'failed',
                error_type = 'OrphanedJob',
                error_message = pg_catalog.format(
                    'its queue message was lost after %s re-sends', v_job.retry_count
                )
            where j.id = v_job.id;
            v_orphans_failed := v_orphans_failed + 1;
        else
            update public.jobs as j set retry_count = j.retry_count + 1 where j.id = v_job.id;
            perform jobqueue.send_job_message(v_job);
            v_requeued := v_requeued + 1;
        end if;
    end loop;

    -- 4. Types with parked messages and free slots.
    for v_type in
        select distinct m.message ->> 'job_type' from jobqueue.queue_messages as m where m.vt = 'infinity'
    loop
        v_woken := v_woken + jobqueue.release_slots(v_type);
    end loop;

    return pg_catalog.jsonb_build_object(
        'stale_messages_deleted', v_stale,
        'poison_messages_archived', v_poison,
        'timed_out_failed', v_failed,
        'timed_out_retried', v_retried,
        'orphans_requeued', v_requeued,
        'orphans_failed', v_orphans_failed,
        'parked_woken', v_woken
    );
end;
$$;
