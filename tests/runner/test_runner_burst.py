"""`jobqueue run --burst`: drains the queue, records every outcome, exits 0."""

from __future__ import annotations

from support.jobs import add_job_type, job, message_count, submit

from .helpers import run_cli

HANDLERS = ("--handlers", "jq_test_handlers")


def test_burst_completes_every_job_and_exits_zero(db, new_db):
    ids = [submit(db, "sample_task", {"message": f"m{i}"}) for i in range(12)]

    result = run_cli(new_db, "run", "--burst", "--concurrency", "3")

    assert result.returncode == 0, result.stderr
    rows = [job(db, job_id) for job_id in ids]
    assert {row["status"] for row in rows} == {"completed"}
    assert [row["data_references"] for row in rows] == [{"echo": f"m{i}"} for i in range(12)]
    assert all(row["completed_at"] is not None for row in rows)
    assert message_count(db) == 0
    assert result.stderr.count("completed in") == 12


def test_burst_on_an_empty_queue_exits_zero_at_once(new_db):
    result = run_cli(new_db, "run", "--burst", timeout=20)

    assert result.returncode == 0, result.stderr
    assert "burst: no job left" in result.stderr


def test_a_failing_handler_fails_the_job_with_message_type_and_traceback(db, new_db):
    job_id = submit(db, "sample_task", {"fail": True})

    result = run_cli(new_db, "run", "--burst")

    assert result.returncode == 0, result.stderr
    row = job(db, job_id)
    assert row["status"] == "failed"
    assert row["error_type"] == "SampleTaskFailed"
    assert "fail=true" in row["error_message"]
    context = row["error_context"]
    assert context["exception"] == "jobqueue.handlers.SampleTaskFailed"
    assert "Traceback" in context["traceback"] and "sample_task" in context["traceback"]
    assert context["attempt"] == 1
    assert f"job {job_id} (sample_task): failed" in result.stderr
    assert message_count(db) == 0


def test_a_job_type_without_handler_fails_with_handler_not_found(db, new_db):
    add_job_type(db, "nobody_handles_this")
    job_id = submit(db, "nobody_handles_this", {"x": 1})

    result = run_cli(new_db, "run", "--burst")

    assert result.returncode == 0, result.stderr
    row = job(db, job_id)
    assert row["status"] == "failed"
    assert row["error_type"] == "HandlerNotFound"
    assert "nobody_handles_this" in row["error_message"]
    assert "sample_task" in row["error_context"]["handlers"]


def test_failed_attempts_are_retried_per_job_type_and_burst_leaves_waiting_retries(db, new_db):
    add_job_type(db, "test_flaky", max_retries=1, retry_backoff_seconds=1)
    job_id = submit(db, "test_flaky")

    first = run_cli(new_db, "run", "--burst", "--handlers", "jq_test_handlers")

    assert first.returncode == 0, first.stderr
    row = job(db, job_id)
    assert (row["status"], row["retry_count"]) == ("pending", 1)
    assert row["error_type"] == "ConnectionResetError"
    assert "retry scheduled" in first.stderr
    # The retry becomes visible after its backoff; a later burst takes it.
    db.execute(
        "select pg_sleep(greatest(0, extract(epoch from max(vt) - clock_timestamp())))"
        " from jobqueue.queue_messages"
    )

    second = run_cli(new_db, "run", "--burst", "--handlers", "jq_test_handlers")

    assert second.returncode == 0, second.stderr
    row = job(db, job_id)
    assert row["status"] == "completed"
    assert row["data_references"] == {"attempt": 2}
    assert message_count(db) == 0


def test_base_exceptions_from_handlers_fail_the_job_and_the_runner_carries_on(db, new_db):
    add_job_type(db, "test_base_exception")
    failing = {
        kind: submit(db, "test_base_exception", {"kind": kind})
        for kind in ("system_exit", "keyboard_interrupt", "other")
    }
    after = [submit(db, "sample_task", {"message": "still running"}) for _ in range(3)]

    result = run_cli(new_db, "run", "--burst", "--concurrency", "1", *HANDLERS)

    assert result.returncode == 0, result.stderr
    types = {kind: job(db, job_id)["error_type"] for kind, job_id in failing.items()}
    assert types == {
        "system_exit": "SystemExit",
        "keyboard_interrupt": "KeyboardInterrupt",
        "other": "NotAnException",
    }
    assert {job(db, job_id)["status"] for job_id in after} == {"completed"}


def test_a_result_that_is_not_json_fails_the_job(db, new_db):
    add_job_type(db, "test_unserializable")
    job_id = submit(db, "test_unserializable")

    result = run_cli(new_db, "run", "--burst", "--handlers", "jq_test_handlers")

    assert result.returncode == 0, result.stderr
    row = job(db, job_id)
    assert (row["status"], row["error_type"]) == ("failed", "TypeError")


def test_a_result_the_database_refuses_fails_the_job_as_result_rejected(db, new_db):
    # jsonb cannot hold \u0000: complete_job refuses it, so the job fails instead.
    add_job_type(db, "test_nul_result")
    job_id = submit(db, "test_nul_result")

    result = run_cli(new_db, "run", "--burst", "--handlers", "jq_test_handlers")

    assert result.returncode == 0, result.stderr
    row = job(db, job_id)
    assert (row["status"], row["error_type"]) == ("failed", "ResultRejected")
