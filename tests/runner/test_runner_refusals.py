"""Refusals that say nothing about a result (a lock timeout, say) neither
fail its job nor drop it: the runner tries again while the lease lasts."""

from __future__ import annotations

import signal

import psycopg
from support.jobs import add_job_type, job, submit
from support.waiting import wait_for

HANDLERS = ("--handlers", "jq_test_handlers")


def test_a_result_refused_by_a_lock_timeout_is_recorded_once_the_lock_goes(
    db, new_db, start_runner, tmp_path
):
    add_job_type(db, "test_sleep")
    started = tmp_path / "started"
    job_id = submit(db, "test_sleep", {"seconds": 0.5, "started_file": str(started)})
    runner = start_runner(
        "--database-url",
        f"{new_db} options='-c lock_timeout=50'",
        "--concurrency",
        "1",
        "--visibility-timeout",
        "30",
        "--poll-interval",
        "0.2",
        *HANDLERS,
    )
    wait_for(started.exists, what="the handler to start")

    with psycopg.connect(new_db) as other, other.transaction():
        # Someone else holds the job's row, longer than the runner may wait.
        other.execute("select from jobs where id = %s for update", (job_id,))
        runner.wait_for_log("could not record its result")
        assert job(db, job_id)["status"] == "processing"

    wait_for(lambda: job(db, job_id)["status"] == "completed", what="the result")
    assert job(db, job_id)["data_references"]["slept"] == 0.5
    runner.signal(signal.SIGTERM)
    assert runner.wait() == 0
    assert "ResultRejected" not in runner.log()
