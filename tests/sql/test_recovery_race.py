"""recover_orphans() against a runner that retries and takes a job again
while the sweep is running: the sweep must judge the job by its attempt of
now, not by the one its scan saw."""

from __future__ import annotations

import threading

from support.jobs import add_job_type, job, submit

from .support import dequeue, make_visible, msg_ids, wait_until_blocked

# Holds the sweep inside its second part for as long as the test holds the
# advisory lock: a stand-in for a sweep that takes long over many jobs.
STALL_SQL = """
create function public.tg_test_stall() returns trigger language plpgsql as $$
begin
    if new.job_parameters ? 'stall' and new.status is distinct from old.status then
        perform pg_advisory_xact_lock(4242);
    end if;
    return new;
end;
$$;
create trigger jobs_000_test_stall before update on public.jobs
for each row execute function public.tg_test_stall();
"""


def test_the_sweep_leaves_alone_an_attempt_that_began_after_its_scan(db, connect):
    add_job_type(db, "stalls", max_retries=0)
    add_job_type(db, "victim", max_retries=3, timeout_seconds=600)
    # Ten timed-out attempts fill the sweep's first fetch of rows; the
    # victim comes after them, so that the sweep locks it only later.
    stalls = [submit(db, "stalls", {"stall": True}) for _ in range(10)]
    victim = submit(db, "victim", {})
    assert len(dequeue(db, 11, 3600)) == 11
    for job_id in [*stalls, victim]:  # the victim last, also in the heap
        db.execute(
            "update jobs set started_at = now() - interval '1 hour' where id = %s", (job_id,)
        )
    db.execute(STALL_SQL)

    runner = connect()
    # Should the sweep hold the victim already, fail instead of waiting forever.
    runner.execute("set lock_timeout = '10s'")
    runner.execute("select pg_advisory_lock(4242)")
    sweeper = connect()
    swept: list[dict] = []
    sweep = threading.Thread(
        target=lambda: swept.append(sweeper.execute("select recover_orphans()").fetchone()[0])
    )
    sweep.start()
    try:
        wait_until_blocked(db, sweeper)
        # Meanwhile the victim's lease runs out: a runner's dequeue ends that
        # attempt with a retry, and once the backoff is over takes the job
        # again. The new attempt is healthy: it started now, and holds a
        # message that no one has read since.
        make_visible(runner, msg_ids(runner, victim)[0])
        assert dequeue(runner) == []
        assert job(runner, victim)["status"] == "pending"
        make_visible(runner, msg_ids(runner, victim)[0])
        (taken,) = dequeue(runner, 1, 3600)
        assert taken["job_id"] == victim
    finally:
        runner.execute("select pg_advisory_unlock(4242)")
        sweep.join(timeout=60)

    assert swept and swept[0]["timed_out_failed"] == 10
    after = job(db, victim)
    assert after["status"] == "processing", after["error_message"]
    assert after["retry_count"] == 1
    assert msg_ids(db, victim) == [taken["msg_id"]]
