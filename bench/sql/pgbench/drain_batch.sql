-- The SQL API's drain in batches, as the runner records them: dequeue_jobs(:batch),
-- then one complete_jobs() call for the jobs taken.
select array_agg(job_id) as job_ids, array_agg(msg_id) as msg_ids
from public.dequeue_jobs(:batch::integer, 30) \gset
select count(*) from public.complete_jobs(:job_ids::uuid [], null, :msg_ids::bigint []) as c;
