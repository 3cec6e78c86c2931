-- ============================================================================
-- Taking jobs
-- ============================================================================

-- dequeue_jobs
-- Takes up to batch_size jobs: reads visible messages (hiding them for
-- visibility_timeout_seconds), the highest priority first, and turns each
-- pending job into processing. Returns fewer rows only when no visible
-- message is left. A job of a type with max_concurrency is taken only
-- while fewer than that many of its type are processing; otherwise its
-- message is parked (vt 'infinity': never read again) until a job of the
-- type leaves processing and frees a slot (jobqueue.release_slots), so that
-- no call reads it in vain meanwhile. A job whose run_at is still to come
-- is not taken: its message is invisible until then. Along the way,
-- as recover_orphans() would: deletes messages of missing or finished jobs
-- (and duplicates), archives poison messages, and ends attempts whose
-- message came back while the job was still processing (JobTimeout, or a
-- retry per its type).
-- Locks: each message (as pgmq.read: SKIP LOCKED), then the limited types of
-- the batch in name order (jobqueue.lock_job_type: two concurrent calls never
-- take the same last slot), then each job. Concurrent callers never receive
-- the same job. Raises 22023 for bad arguments.
create or replace function public.dequeue_jobs(batch_size integer default 1, visibility_timeout_seconds integer default 30)
returns table (
    job_id uuid, msg_id bigint, job_type text, user_id uuid, job_parameters jsonb, retry_count integer
)
language plpgsql
security definer
-- Definer: the runner role holds no rights on the jobs table or the queue.
set search_path = pg_catalog, pg_temp
as $$
declare
    v_wanted integer := dequeue_jobs.batch_size;
    v_msg_ids bigint [];
    v_messages jsonb [];
    v_asked integer;
    v_read integer;
    v_claimed_jobs uuid [] := '{}'::uuid [];
    v_message_job_id uuid;
    v_job public.jobs;
    -- Types with max_concurrency, in name order, and their limits.
    v_limited text [];
    v_limits integer [];
    -- The limited types this call has locked, and their free slots.
    v_slot_types text [] := '{}'::text [];
    v_slot_free integer [] := '{}'::integer [];
    v_type text;
    v_slot integer;
begin
    if dequeue_jobs.batch_size is null or dequeue_jobs.batch_size not between 1 and 10000 then
        raise exception 'batch_size must be between 1 and 10000, not %', dequeue_jobs.batch_size
            using errcode = '22023';
    end if;
    if dequeue_jobs.visibility_timeout_seconds is null
        or dequeue_jobs.visibility_timeout_seconds not between 1 and 86400 then
        raise exception 'visibility_timeout_seconds must be between 1 and 86400, not %',
            dequeue_jobs.visibility_timeout_seconds
            using errcode = '22023';
    end if;

    select
        coalesce(pg_catalog.array_agg(t.name order by t.name), '{}'),
        pg_catalog.array_agg(t.max_concurrency order by t.name)
    into v_limited, v_limits
    from public.job_types as t
    where t.max_concurrency is not null;

    loop
        v_asked := v_wanted;
        select
            coalesce(pg_catalog.array_agg(r.read_msg_id order by r.read_msg_id), '{}'),
            pg_catalog.array_agg(r.read_message order by r.read_msg_id)
        into v_msg_ids, v_messages
        from jobqueue.read_messages(v_wanted, dequeue_jobs.visibility_timeout_seconds) as r;
        v_read := pg_catalog.cardinality(v_msg_ids);
        exit when v_read = 0;

        if v_limited <> '{}' then
            for v_type in
                select distinct m.message ->> 'job_type'
                from pg_catalog.unnest(v_messages) as m (message)
                where m.message ->> 'job_type' = any(v_limited) and not m.message ->> 'job_type' = any(v_slot_types)
                order by 1
            loop
                perform jobqueue.lock_job_type(v_type);
                v_slot_types := v_slot_types || v_type;
                v_slot_free := v_slot_free
                    || v_limits[pg_catalog.array_position(v_limited, v_type)] - jobqueue.processing_count(v_type);
            end loop;
        end if;

        -- One job at a time, by primary key: a statement joining the batch
        -- to the table would be planned anew on every call (docs/performance.md).
        for v_i in 1 .. v_read loop
            v_message_job_id := jobqueue.message_job_id(v_messages[v_i]);
            v_slot := pg_catalog.array_position(v_slot_types, v_messages[v_i] ->> 'job_type');
            if v_slot is not null and v_slot_free[v_slot] <= 0 then
                -- Its type is at its limit: park a pending job's message.
                update jobqueue.queue_messages as m set vt = 'infinity'
                where m.msg_id = v_msg_ids[v_i]
                    and exists (
                        select from public.jobs as j
                        where j.id = v_message_job_id and (j.status = 'pending') is true
                    );
                continue when found;
            else
                -- The common case: the message's job is pending, and is
                -- claimed. A job locked meanwhile (cancel_job) is waited
                -- for and checked again. "is true" keeps jobs_status_idx out
                -- of the plan: with statistics older than a backlog of pending
                -- jobs, the planner would walk all of them through it instead
                -- of looking the job up by id.
                update public.jobs as j set status = 'processing'
                where j.id = v_message_job_id and (j.status = 'pending') is true
                returning j.* into v_job;
            end if;
            if found then
                if v_slot is not null then
                    v_slot_free[v_slot] := v_slot_free[v_slot] - 1;
                end if;
                job_id := v_job.id;
                msg_id := v_msg_ids[v_i];
                job_type := v_job.job_type;
                user_id := v_job.user_id;
                job_parameters := v_job.job_parameters;
                retry_count := v_job.retry_count;
                return next;
                v_claimed_jobs := v_claimed_jobs || v_job.id;
                v_wanted := v_wanted - 1;
                continue;
            end if;

            -- The rest: messages that do not lead to a pending job.
            if v_message_job_id is null then
                raise warning 'jobqueue: archived poison message % (not a job message): %',
                    v_msg_ids[v_i], pg_catalog.left(v_messages[v_i]::text, 200);
                perform pgmq.archive(jobqueue.queue_name(), v_msg_ids[v_i]);
                continue;
            end if;
            select j.* into v_job from public.jobs as j where j.id = v_message_job_id for update;
            if not found or v_job.status in ('completed', 'failed') or v_job.id = any(v_claimed_jobs) then
                -- Stale, or a second message of a job claimed just now.
                delete from jobqueue.queue_messages as m where m.msg_id = v_msg_ids[v_i];
            elsif v_job.status = 'processing' then
                perform jobqueue.end_attempt(
                    v_job,
                    'attempt abandoned: its lease expired while the job was processing',
                    'JobTimeout',
                    pg_catalog.jsonb_build_object('msg_id', v_msg_ids[v_i], 'started_at', v_job.started_at)
                );
            end if;
        end loop;

        -- A short read means no visible message is left.
        exit when v_wanted = 0 or v_read < v_asked;
    end loop;
end;
$$;
