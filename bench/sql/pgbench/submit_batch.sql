-- Scenario 2: submit_jobs, :batch jobs per transaction.
select count(*) from public.submit_jobs('sample_task', array_fill('{}'::jsonb, array[:batch::integer]), :user_id);
