-- Scenario 1's floor: the two rows a submit_job writes (the job, its
-- message), in one statement, with no package logic. The benchmark runs it
-- with session_replication_role = replica, so that no trigger fires and no
-- foreign key is checked: what the data model costs before any validation.
with j as (
    insert into public.jobs (job_type, user_id, job_parameters)
    values ('sample_task', :user_id, '{}')
    returning id, job_type, user_id, job_parameters
)

insert into jobqueue.queue_messages (vt, message)
select clock_timestamp(), jobqueue.job_message(j.id, j.job_type, j.user_id, j.job_parameters)
from j;
