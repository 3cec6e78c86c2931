-- ============================================================================
-- Taking jobs
-- ============================================================================

-- dequeue_jobs
-- Takes up to batch_size jobs: reads visible messages (hiding them for
-- visibility_timeout_seconds) and turns each pending job into processing.
-- Returns fewer rows only when no visible message is left. Along the way,
-- as recover_orphans() would: deletes messages of missing or finished jobs
-- (and duplicates), archives poison messages, and ends attempts whose
-- message came back while the job was still processing (JobTimeout, or a
-- retry per its type).
-- Locks: each message (as pgmq.read: SKIP LOCKED), then its job. Concurrent
-- callers never receive the same job. Raises 22023 for bad arguments.
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

    loop
        v_asked := v_wanted;
        select
            coalesce(pg_catalog.array_agg(r.read_msg_id order by r.read_msg_id), '{}'),
            pg_catalog.array_agg(r.read_message order by r.read_msg_id)
        into v_msg_ids, v_messages
        from jobqueue.read_messages(v_wanted, dequeue_jobs.visibility_timeout_seconds) as r;
        v_read := pg_catalog.cardinality(v_msg_ids);
        exit when v_read = 0;

        -- One job at a time, by primary key: a statement joining the batch
        -- to the table would be planned anew on every call (docs/performance.md).
        for v_i in 1 .. v_read loop
            v_message_job_id := jobqueue.message_job_id(v_messages[v_i]);
            -- The common case: the message's job is pending, and is claimed.
            -- A job locked meanwhile (cancel_job) is waited for and checked again.
            -- "is true" keeps jobs_status_idx out of the plan: with statistics
            -- older than a backlog of pending jobs, the planner would walk all
            -- of them through it instead of looking the job up by id.
            update public.jobs as j set status = 'processing'
            where j.id = v_message_job_id and (j.status = 'pending') is true
            returning j.* into v_job;
            if found then
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
