-- What-if variants: prototypes of changes to the SQL package, applied on top
-- of a fresh install in the benchmark's own database only (`python -m bench
-- --whatif`), so that each proposed change comes with a measured effect.
-- They copy parts of sql/src/*.sql as of this writing: when those change,
-- a variant may fail to apply, and the benchmark reports that instead.
-- A variant is a list of these blocks (bench/whatif.py).

-- name: drop_notify
drop trigger if exists jobqueue_notify on pgmq.q_job_queue;

-- name: drop_status_idx
drop index if exists public.jobs_status_idx;

-- name: jobs_fillfactor
alter table public.jobs set (fillfactor = 80);

-- The package's helpers without a SET clause: no GUC save/restore per call,
-- and the one-line SQL helpers (job_message, message_job_id, queue_name,
-- caller_role) inline into the queries that call them. SECURITY DEFINER
-- functions keep their SET, as they must; the helpers they call then run
-- under that same search_path. Every name in the bodies is schema-qualified.
-- name: reset_search_path
do $$
declare
    v_fn regprocedure;
begin
    for v_fn in
        select p.oid::regprocedure
        from pg_catalog.pg_proc as p
        where p.proconfig is not null
            and not p.prosecdef
            and (
                p.pronamespace = 'jobqueue'::regnamespace
                or (p.pronamespace = 'public'::regnamespace and p.proname in (
                    'submit_job', 'submit_jobs', 'validate_job_parameters', 'dequeue_jobs',
                    'complete_job', 'fail_job', 'extend_job_lease', 'cancel_job', 'get_job',
                    'recover_orphans'
                ))
            )
    loop
        execute pg_catalog.format('alter function %s reset all', v_fn);
    end loop;
end;
$$;

-- complete_job on its own rather than a call of complete_jobs(), in two
-- statements when all is well: delete the attempt's message with static SQL
-- (that locks it: message first, as everywhere), then update the job WHERE
-- status = 'processing' (tg_jobs__sync_queue then finds no message left).
-- Anything else goes through lock_attempt and lock_job for the errors the
-- contract names, and a raise rolls the delete back.
-- name: complete_job_direct
create or replace function public.complete_job(job_id uuid, data_references jsonb default null, msg_id bigint default null)
returns void
language plpgsql
security definer
-- Definer, as installed: the runner role holds no rights on the tables.
set search_path = pg_catalog, pg_temp
as $$
declare
    v_msg_id bigint;
    v_job public.jobs;
begin
    if complete_job.job_id is not null and complete_job.msg_id is not null then
        delete from pgmq.q_job_queue as m
        where m.msg_id = complete_job.msg_id and m.message ->> 'job_id' = complete_job.job_id::text
        returning m.msg_id into v_msg_id;
        if v_msg_id is not null then
            update public.jobs as j
            set status = 'completed', data_references = complete_job.data_references
            where j.id = complete_job.job_id and j.status = 'processing';
            if found then
                return;
            end if;
            perform jobqueue.lock_job(complete_job.job_id, 'processing', complete_job.msg_id);
        end if;
    end if;
    perform jobqueue.lock_attempt(complete_job.job_id, complete_job.msg_id);
    v_job := jobqueue.lock_job(complete_job.job_id, 'processing', complete_job.msg_id);
    update public.jobs as j
    set status = 'completed', data_references = complete_job.data_references
    where j.id = v_job.id;
end;
$$;

-- submit_job as one INSERT, not a call of submit_jobs() over a one-element
-- array (RETURN QUERY, unnest WITH ORDINALITY, ORDER BY); the same checks.
-- name: submit_job_direct
create or replace function public.submit_job(job_type text, job_parameters jsonb default null, user_id uuid default null)
returns uuid
language plpgsql
security definer
-- Definer, as installed for submit_jobs: callers may not write jobs or the queue.
set search_path = pg_catalog, pg_temp
as $$
declare
    v_user_id uuid := coalesce(submit_job.user_id, jobqueue.current_user_id());
    v_id uuid;
begin
    if v_user_id is null then
        raise exception 'user_id is required'
            using errcode = '22023',
            hint = 'Pass user_id, or call with a request.jwt.claims sub (PostgREST, Supabase).';
    end if;
    if v_user_id is distinct from jobqueue.current_user_id() and not jobqueue.caller_acts_for_anyone() then
        raise exception 'user_id: role % may submit jobs only for its own identity', jobqueue.caller_role()
            using errcode = '42501',
            hint = 'Submitting for other users needs the service role.';
    end if;
    insert into public.jobs (job_type, user_id, job_parameters)
    values (submit_job.job_type, v_user_id, submit_job.job_parameters)
    returning id into v_id;
    return v_id;
end;
$$;
