-- The SQL API's drain: dequeue_jobs(1), then complete_job, each its own
-- transaction (the runner's calls, without the runner).
select job_id, msg_id from public.dequeue_jobs(1, 30) \gset
select public.complete_job(:job_id, null, :msg_id);
