-- The SQL API's drain in batches: dequeue_jobs(:batch), then one transaction
-- that calls complete_job for each job taken.
select array_agg(job_id) as job_ids, array_agg(msg_id) as msg_ids
from public.dequeue_jobs(:batch::integer, 30) \gset
select count(*)
from unnest(:job_ids::uuid [], :msg_ids::bigint []) as d (job_id, msg_id)
cross join lateral public.complete_job(d.job_id, null, d.msg_id) as c;
