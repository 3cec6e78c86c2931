-- Scenario 1: submit_job, one job per transaction.
select public.submit_job('sample_task', '{}'::jsonb, :user_id);
