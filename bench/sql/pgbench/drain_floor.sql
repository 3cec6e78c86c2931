-- Scenario 3's floor: the writes of a drain in batches of :batch, by plain
-- SQL, run with session_replication_role = replica so that no trigger fires:
-- a claim (the read's UPDATE of the visible messages, the jobs' UPDATE to
-- processing), then, in a transaction of its own, the finish (the messages'
-- DELETE, the jobs' UPDATE to completed). What the data model's writes cost
-- before any check, lock order or runner.
with m as (
    update jobqueue.queue_messages as q
    set vt = clock_timestamp() + interval '30 seconds', read_ct = q.read_ct + 1
    where q.msg_id = any(array(
        select v.msg_id
        from jobqueue.queue_messages as v
        where v.vt <= clock_timestamp()
        order by v.msg_id
        limit :batch
        for update skip locked
    ))
    returning q.msg_id, q.message
),

j as (
    update public.jobs as j
    set status = 'processing', started_at = now(), updated_at = clock_timestamp()
    from m
    where j.id = (m.message ->> 'job_id')::uuid and j.status = 'pending'
    returning j.id, m.msg_id
)

select coalesce(array_agg(j.id), '{}') as job_ids, coalesce(array_agg(j.msg_id), '{}') as msg_ids
from j \gset
with d as (
    delete from jobqueue.queue_messages as q where q.msg_id = any(:msg_ids::bigint[])
)

update public.jobs as j
set status = 'completed', completed_at = now(), updated_at = clock_timestamp()
where j.id = any(:job_ids::uuid[]);
