"""A long-running `jobqueue run`: wake-ups, signals, leases, lost connections."""

from __future__ import annotations

import signal

from support.jobs import add_job_type, job, message_count, status, submit
from support.waiting import wait_for

from .helpers import cli_env

HANDLERS = ("--handlers", "jq_test_handlers")


def runner_backends(db) -> dict[str, str]:
    """application_name -> last query of this database's runner connections."""
    rows = db.execute(
        "select application_name, query from pg_stat_activity"
        " where datname = current_database() and application_name like 'jobqueue-runner%%'"
    ).fetchall()
    return dict(rows)


def test_an_idle_runner_is_woken_by_notify_long_before_its_next_poll(db, start_runner):
    runner = start_runner("--poll-interval", "60")

    # Once it listens and has made its first poll, only a NOTIFY can wake it.
    def idle() -> bool:
        backends = runner_backends(db)
        return "listen" in backends.get("jobqueue-runner-listen", "") and (
            "dequeue_jobs" in backends.get("jobqueue-runner", "")
        )

    wait_for(idle, what="the runner to listen and poll once")
    job_id = submit(db, "sample_task", {"message": "wake up"})

    wait_for(lambda: status(db, job_id) == "completed", timeout=15, what="the job to complete")
    runner.signal(signal.SIGTERM)
    assert runner.wait() == 0


def test_without_listen_the_runner_polls(db, start_runner):
    runner = start_runner("--no-listen", "--poll-interval", "0.1")
    runner.wait_for_log("started")
    job_id = submit(db, "sample_task")

    wait_for(lambda: status(db, job_id) == "completed", what="the job to complete")
    runner.signal(signal.SIGINT)
    assert runner.wait() == 0


def test_sigterm_mid_job_lets_the_running_job_finish_and_exits_zero(db, start_runner, tmp_path):
    add_job_type(db, "test_sleep")
    started = tmp_path / "started"
    job_id = submit(db, "test_sleep", {"seconds": 1.5, "started_file": str(started)})
    waiting = submit(db, "sample_task")
    runner = start_runner("--concurrency", "1", *HANDLERS)
    wait_for(started.exists, what="the handler to start")

    runner.signal(signal.SIGTERM)

    assert runner.wait(timeout=30) == 0
    assert status(db, job_id) == "completed"
    # No new work after the signal: the second job is still waiting.
    assert status(db, waiting) == "pending"
    assert "SIGTERM: taking no new jobs" in runner.log()


def test_a_job_still_running_after_the_shutdown_grace_is_left_to_recovery(
    db, start_runner, tmp_path
):
    add_job_type(db, "test_sleep")
    started = tmp_path / "started"
    job_id = submit(db, "test_sleep", {"seconds": 30, "started_file": str(started)})
    runner = start_runner("--shutdown-grace", "0.5", *HANDLERS)
    wait_for(started.exists, what="the handler to start")

    runner.signal(signal.SIGTERM)

    assert runner.wait(timeout=15) == 0
    assert status(db, job_id) == "processing"
    assert "shutdown grace over" in runner.log()


def test_lease_extension_keeps_a_long_job_alive_past_the_visibility_timeout(
    db, start_runner, tmp_path
):
    add_job_type(db, "test_sleep", timeout_seconds=60)
    started = tmp_path / "started"
    job_id = submit(db, "test_sleep", {"seconds": 4.5, "started_file": str(started)})
    # Extended every second, each time for 2 s: a slow turn of the loop
    # on a busy machine still leaves a second to spare.
    runner = start_runner("--visibility-timeout", "2", *HANDLERS)
    wait_for(started.exists, what="the handler to start")

    # A competing dequeuer: had the lease lapsed, it would time the attempt out.
    def finished() -> bool:
        assert db.execute("select count(*) from dequeue_jobs(1, 2)").fetchone() == (0,)
        return status(db, job_id) != "processing"

    wait_for(finished, timeout=20, what="the job to finish")
    row = job(db, job_id)
    assert (row["status"], row["retry_count"], row["error_type"]) == ("completed", 0, None)
    assert message_count(db) == 0
    runner.signal(signal.SIGTERM)
    assert runner.wait() == 0


def test_a_handler_outliving_its_timeout_loses_the_lease_and_its_result_is_dropped(
    db, start_runner, tmp_path
):
    add_job_type(db, "test_sleep", timeout_seconds=1)
    started = tmp_path / "started"
    job_id = submit(db, "test_sleep", {"seconds": 3, "started_file": str(started)})
    runner = start_runner("--visibility-timeout", "1", "--concurrency", "1", *HANDLERS)
    wait_for(started.exists, what="the handler to start")

    runner.wait_for_log("lease lost")
    # The lease ran out at the type's timeout: the sweep times the attempt out.
    wait_for(
        lambda: db.execute("select recover_orphans()") and status(db, job_id) == "failed",
        what="recovery to time the job out",
    )
    runner.wait_for_log("result dropped")
    row = job(db, job_id)
    assert (row["status"], row["error_type"]) == ("failed", "JobTimeout")
    assert "slot stays taken until the handler returns" in runner.log()
    # The slot is free again: the runner takes new work.
    next_job = submit(db, "sample_task")
    wait_for(lambda: status(db, next_job) == "completed", what="the next job")
    runner.signal(signal.SIGTERM)
    assert runner.wait() == 0


def test_a_job_deleted_under_the_runner_has_its_result_dropped(db, start_runner, tmp_path):
    add_job_type(db, "test_sleep")
    started = tmp_path / "started"
    job_id = submit(db, "test_sleep", {"seconds": 0.5, "started_file": str(started)})
    runner = start_runner(*HANDLERS)
    wait_for(started.exists, what="the handler to start")

    db.execute("delete from jobs where id = %s", (job_id,))

    runner.wait_for_log("attempt gone, result dropped")
    assert "[P0002]" in runner.log() or "[55000]" in runner.log()
    runner.signal(signal.SIGTERM)
    assert runner.wait() == 0


def test_the_runner_reconnects_after_its_connections_are_terminated(db, new_db, start_runner):
    runner = start_runner("--poll-interval", "0.2")
    first = submit(db, "sample_task")
    wait_for(lambda: status(db, first) == "completed", what="the first job")

    terminated = db.execute(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity"
        " where datname = current_database() and application_name like 'jobqueue-runner%%'"
    ).fetchone()
    assert terminated is not None and terminated[0] >= 1
    second = submit(db, "sample_task")

    wait_for(lambda: status(db, second) == "completed", what="the job after the outage")
    assert runner.proc.poll() is None
    runner.signal(signal.SIGTERM)
    assert runner.wait() == 0
    log = runner.log()
    assert log.count("database unreachable") == 1
    assert "reachable again" in log


def test_handler_modules_load_from_the_environment(db, new_db, start_runner):
    add_job_type(db, "test_base_exception")
    job_id = submit(db, "test_base_exception", {"kind": "other"})
    runner = start_runner("--burst", env=cli_env(JOBQUEUE_HANDLERS="json, jq_test_handlers"))

    assert runner.wait() == 0
    assert job(db, job_id)["error_type"] == "NotAnException"


def test_an_unknown_handler_module_is_a_clear_error(new_db, start_runner):
    runner = start_runner("--burst", "--handlers", "no_such_module_here")

    assert runner.wait() == 1
    assert "cannot import handler module 'no_such_module_here'" in runner.log()


def test_a_result_held_during_an_outage_is_recorded_after_reconnecting(db, start_runner, tmp_path):
    add_job_type(db, "test_sleep")
    started = tmp_path / "started"
    job_id = submit(db, "test_sleep", {"seconds": 1, "started_file": str(started)})
    runner = start_runner("--concurrency", "1", *HANDLERS)
    wait_for(started.exists, what="the handler to start")

    db.execute(
        "select pg_terminate_backend(pid) from pg_stat_activity"
        " where datname = current_database() and application_name like 'jobqueue-runner%%'"
    )

    wait_for(lambda: status(db, job_id) == "completed", what="the job to be recorded")
    row = job(db, job_id)
    assert (row["retry_count"], row["error_type"]) == (0, None)
    assert message_count(db) == 0
    runner.signal(signal.SIGTERM)
    assert runner.wait() == 0


def test_the_runner_never_holds_more_jobs_than_its_concurrency(db, start_runner):
    add_job_type(db, "test_sleep")
    ids = [submit(db, "test_sleep", {"seconds": 0.3}) for _ in range(6)]
    runner = start_runner("--burst", "--concurrency", "2", "--batch-size", "10", *HANDLERS)

    most = 0
    while runner.proc.poll() is None:
        row = db.execute("select count(*) from jobs where status = 'processing'").fetchone()
        assert row is not None
        most = max(most, row[0])

    assert runner.wait() == 0
    assert most == 2
    assert {status(db, job_id) for job_id in ids} == {"completed"}
