-- Scenario 2's floor: the rows of a submit_jobs call of :batch jobs, as in
-- floor_one.sql (no trigger, no foreign key check, no validation).
with j as (
    insert into public.jobs (job_type, user_id, job_parameters)
    select 'sample_task', :user_id, p.parameters
    from unnest(array_fill('{}'::jsonb, array[:batch::integer])) as p (parameters)
    returning id, job_type, user_id, job_parameters
)

insert into jobqueue.queue_messages (vt, message)
select clock_timestamp(), jobqueue.job_message(j.id, j.job_type, j.user_id, j.job_parameters)
from j;
