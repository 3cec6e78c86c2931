"""complete_job() and fail_job(): ending an attempt, retries, and the msg_id lease."""

from __future__ import annotations

import uuid

import pytest
from psycopg.types.json import Jsonb
from support.jobs import add_job_type, counts, job, messages, raises, submit, value

from .support import check_invariant, dequeue, make_visible, msg_ids, now, take


def complete(conn, job_id, refs=None, msg_id=None) -> None:
    conn.execute(
        "select complete_job(%s, %s, %s)", (job_id, None if refs is None else Jsonb(refs), msg_id)
    )


def fail(conn, job_id, message="boom", error_type=None, context=None, msg_id=None) -> str:
    return value(
        conn,
        "select fail_job(%s, %s, %s, %s, %s)",
        (job_id, message, error_type, None if context is None else Jsonb(context), msg_id),
    )


def running(conn, job_type="sample_task"):
    """A job in processing and the msg_id of its attempt."""
    job_id = submit(conn, job_type)
    return job_id, take(conn, job_id)


# --- complete_job ----------------------------------------------------------


def test_complete_job_finishes_the_job_and_deletes_its_message(tx):
    job_id, msg_id = running(tx)

    complete(tx, job_id, {"echo": "hi"}, msg_id)

    row = job(tx, job_id)
    assert row["status"] == "completed"
    assert row["data_references"] == {"echo": "hi"}
    assert row["completed_at"] is not None
    assert row["completed_at"] >= row["started_at"]
    assert row["error_type"] is None
    assert messages(tx, job_id) == []
    check_invariant(tx)


def test_complete_job_returns_void(tx):
    job_id, msg_id = running(tx)

    assert value(tx, "select complete_job(%s, msg_id => %s)::text", (job_id, msg_id)) == ""


def test_complete_job_without_msg_id_completes_the_current_attempt(tx):
    job_id, _ = running(tx)

    complete(tx, job_id)

    assert job(tx, job_id)["status"] == "completed"
    assert job(tx, job_id)["data_references"] is None
    assert messages(tx, job_id) == []


def test_complete_job_accepts_named_arguments(tx):
    job_id, msg_id = running(tx)

    tx.execute(
        "select complete_job(msg_id => %s, job_id => %s, data_references => '[1]')",
        (msg_id, job_id),
    )

    assert job(tx, job_id)["data_references"] == [1]


def test_complete_job_of_an_unknown_job_is_p0002(tx):
    unknown = uuid.uuid4()

    with raises(tx, "P0002", "job_id", str(unknown)):
        complete(tx, unknown)
    with raises(tx, "P0002", "job_id"):
        complete(tx, unknown, msg_id=1)


def test_complete_job_of_a_null_id_is_22023(tx):
    with raises(tx, "22023", "job_id"):
        complete(tx, None)


@pytest.mark.parametrize("status", ["pending", "completed", "failed"])
def test_complete_job_of_a_job_not_processing_is_55000_and_changes_nothing(tx, status):
    job_id, msg_id = running(tx)
    if status == "completed":
        complete(tx, job_id, msg_id=msg_id)
    elif status == "failed":
        fail(tx, job_id, msg_id=msg_id)
    else:
        tx.execute("update jobs set status = 'pending', retry_count = 1 where id = %s", (job_id,))
    before, queue = job(tx, job_id), messages(tx)

    with raises(tx, "55000", str(job_id)):
        complete(tx, job_id)
    with raises(tx, "55000", str(job_id)):
        complete(tx, job_id, msg_id=msg_id)

    assert job(tx, job_id) == before
    assert messages(tx) == queue


def test_complete_job_with_a_msg_id_of_another_job_is_55000(tx):
    job_id, _ = running(tx)
    _, other_msg = running(tx)
    before = job(tx, job_id)

    with raises(tx, "55000", "msg_id"):
        complete(tx, job_id, msg_id=other_msg)

    assert job(tx, job_id) == before
    assert counts(tx) == (2, 2)


def test_complete_job_with_a_msg_id_that_never_existed_is_55000(tx):
    job_id, msg_id = running(tx)

    with raises(tx, "55000", "msg_id"):
        complete(tx, job_id, msg_id=msg_id + 10_000)

    assert job(tx, job_id)["status"] == "processing"


# --- fail_job ----------------------------------------------------------------


def test_fail_job_without_retries_fails_the_job(tx):
    job_id, msg_id = running(tx)

    status = fail(tx, job_id, "it broke", "ValueError", {"line": 3}, msg_id)

    assert status == "failed"
    row = job(tx, job_id)
    assert row["status"] == "failed"
    assert row["error_message"] == "it broke"
    assert row["error_type"] == "ValueError"
    assert row["error_context"] == {"line": 3}
    assert row["completed_at"] is not None
    assert row["retry_count"] == 0
    assert messages(tx, job_id) == []
    check_invariant(tx)


def test_fail_job_with_only_a_message(tx):
    job_id, _ = running(tx)

    assert value(tx, "select fail_job(%s, 'plain')", (job_id,)) == "failed"
    assert job(tx, job_id)["error_type"] is None


def test_fail_job_accepts_named_arguments(tx):
    job_id, msg_id = running(tx)

    status = value(
        tx,
        "select fail_job(msg_id => %s, error_type => 'E', job_id => %s, error_message => 'm')",
        (msg_id, job_id),
    )

    assert status == "failed"
    assert job(tx, job_id)["error_type"] == "E"


def test_fail_job_with_a_null_message_is_22023(tx):
    job_id, msg_id = running(tx)

    with raises(tx, "22023", "error_message"):
        fail(tx, job_id, None, msg_id=msg_id)

    assert job(tx, job_id)["status"] == "processing"
    assert msg_ids(tx, job_id) == [msg_id]


def test_fail_job_of_an_unknown_job_is_p0002(tx):
    with raises(tx, "P0002", "job_id"):
        fail(tx, uuid.uuid4())
    with raises(tx, "P0002", "job_id"):
        fail(tx, uuid.uuid4(), msg_id=1)


def test_fail_job_of_a_null_id_is_22023(tx):
    with raises(tx, "22023", "job_id"):
        fail(tx, None)


@pytest.mark.parametrize("status", ["pending", "completed", "failed"])
def test_fail_job_of_a_job_not_processing_is_55000_and_changes_nothing(tx, status):
    job_id = submit(tx)
    if status != "pending":
        msg_id = take(tx, job_id)
        (complete if status == "completed" else fail)(tx, job_id, msg_id=msg_id)
    before, queue = job(tx, job_id), messages(tx)

    with raises(tx, "55000", str(job_id)):
        fail(tx, job_id)

    assert job(tx, job_id) == before
    assert messages(tx) == queue


def test_fail_job_retries_a_type_with_max_retries(tx):
    add_job_type(tx, "flaky", max_retries=2)
    job_id, msg_id = running(tx, "flaky")
    before = now(tx)

    status = fail(tx, job_id, "try again", "IOError", {"n": 1}, msg_id)

    assert status == "pending"
    row = job(tx, job_id)
    assert row["status"] == "pending"
    assert row["retry_count"] == 1
    assert (row["error_message"], row["error_type"], row["error_context"]) == (
        "try again",
        "IOError",
        {"n": 1},
    )
    assert row["completed_at"] is None
    (retry,) = messages(tx, job_id)
    assert retry["msg_id"] != msg_id
    assert retry["message"]["job_id"] == str(job_id)
    assert value(tx, "select %s >= %s + interval '1 second'", (retry["vt"], before))
    check_invariant(tx)


def test_retries_back_off_exponentially_then_fail(tx):
    add_job_type(tx, "flaky", max_retries=3, retry_backoff_seconds=2)
    job_id = submit(tx, "flaky")
    outcomes = []

    for attempt in range(4):
        msg_id = take(tx, job_id)
        assert job(tx, job_id)["retry_count"] == attempt
        before = now(tx)
        outcomes.append(fail(tx, job_id, f"attempt {attempt}", msg_id=msg_id))
        if outcomes[-1] == "pending":
            (retry,) = messages(tx, job_id)
            delay = 2 * 2**attempt
            assert value(
                tx, "select %s >= %s + make_interval(secs => %s)", (retry["vt"], before, delay)
            )
            make_visible(tx, retry["msg_id"])

    assert outcomes == ["pending", "pending", "pending", "failed"]
    row = job(tx, job_id)
    assert (row["status"], row["retry_count"], row["error_message"]) == ("failed", 3, "attempt 3")
    assert messages(tx, job_id) == []


def test_the_backoff_is_capped_by_max_backoff_seconds(tx):
    tx.execute("update jobqueue.settings set max_backoff_seconds = 5")
    add_job_type(tx, "slow_retry", max_retries=1, retry_backoff_seconds=3600)
    job_id, msg_id = running(tx, "slow_retry")

    fail(tx, job_id, msg_id=msg_id)
    after = now(tx)

    (retry,) = messages(tx, job_id)
    assert value(tx, "select %s <= %s + interval '5 seconds'", (retry["vt"], after))


def test_a_retried_job_is_handed_out_again_with_its_retry_count(tx):
    add_job_type(tx, "flaky", max_retries=1)
    job_id, msg_id = running(tx, "flaky")
    fail(tx, job_id, msg_id=msg_id)
    make_visible(tx)

    (again,) = dequeue(tx)

    assert again["job_id"] == job_id
    assert again["retry_count"] == 1
    assert again["msg_id"] != msg_id
    assert job(tx, job_id)["status"] == "processing"


# --- the msg_id lease ------------------------------------------------------------


def test_a_stale_msg_id_cannot_finish_the_retried_job(tx):
    add_job_type(tx, "flaky", max_retries=2)
    job_id, first = running(tx, "flaky")
    fail(tx, job_id, "first", msg_id=first)
    before, queue = job(tx, job_id), messages(tx)

    with raises(tx, "55000", "msg_id"):
        complete(tx, job_id, msg_id=first)
    with raises(tx, "55000", "msg_id"):
        fail(tx, job_id, "again", msg_id=first)

    assert job(tx, job_id) == before
    assert messages(tx) == queue


def test_a_stale_msg_id_cannot_finish_the_next_attempt(tx):
    add_job_type(tx, "flaky", max_retries=2)
    job_id, first = running(tx, "flaky")
    fail(tx, job_id, "first", msg_id=first)
    make_visible(tx)
    second = take(tx, job_id)
    before = job(tx, job_id)

    with raises(tx, "55000", "msg_id"):
        complete(tx, job_id, {"late": True}, msg_id=first)
    with raises(tx, "55000", "msg_id"):
        fail(tx, job_id, "late", msg_id=first)
    assert job(tx, job_id) == before
    assert msg_ids(tx, job_id) == [second]

    complete(tx, job_id, {"ok": True}, msg_id=second)
    assert job(tx, job_id)["data_references"] == {"ok": True}


def test_an_attempt_timed_out_by_dequeue_has_lost_its_lease(tx):
    add_job_type(tx, "flaky", max_retries=1)
    job_id, first = running(tx, "flaky")
    make_visible(tx, first)
    assert dequeue(tx) == []  # the abandoned attempt is retried
    assert job(tx, job_id)["status"] == "pending"

    with raises(tx, "55000", "msg_id"):
        complete(tx, job_id, msg_id=first)

    assert job(tx, job_id)["retry_count"] == 1
    check_invariant(tx)


def test_a_lease_past_its_visibility_timeout_still_counts_until_someone_takes_it(tx):
    job_id, msg_id = running(tx)
    make_visible(tx, msg_id)

    complete(tx, job_id, msg_id=msg_id)

    assert job(tx, job_id)["status"] == "completed"
    assert messages(tx) == []


def test_a_finished_job_cannot_use_another_jobs_lease(tx):
    job_id, msg_id = running(tx)
    fail(tx, job_id, msg_id=msg_id)
    other_id, other_msg = running(tx)

    with raises(tx, "55000"):
        complete(tx, job_id, msg_id=other_msg)

    assert job(tx, other_id)["status"] == "processing"


# -- the batch forms: complete_jobs() and fail_jobs() ----------------------------


def outcomes(conn, query, params) -> list[tuple]:
    return [tuple(r) for r in conn.execute(query, params).fetchall()]


def test_complete_jobs_reports_each_attempt_and_a_lost_one_aborts_none(tx):
    done, lost, finished = (submit(tx) for _ in range(3))
    done_msg, lost_msg, finished_msg = (take(tx, j) for j in (done, lost, finished))
    complete(tx, finished, msg_id=finished_msg)
    unknown = uuid.uuid4()

    got = outcomes(
        tx,
        "select * from complete_jobs(%s, %s, %s)",
        (
            [done, lost, finished, unknown],
            [Jsonb({"n": 1}), None, None, None],
            [done_msg, lost_msg + 1000, finished_msg, 1],
        ),
    )

    assert got == [
        (done, "completed"),
        (lost, "lease_lost"),
        (finished, "lease_lost"),
        (unknown, "not_found"),
    ]
    assert job(tx, done)["status"] == "completed"
    assert job(tx, done)["data_references"] == {"n": 1}
    assert job(tx, lost)["status"] == "processing"
    assert msg_ids(tx, done) == []
    assert msg_ids(tx, lost) == [lost_msg]
    check_invariant(tx)


def test_complete_jobs_without_msg_ids_completes_processing_jobs_only(tx):
    running, waiting = submit(tx), submit(tx)
    take(tx, running)

    got = outcomes(tx, "select * from complete_jobs(%s)", ([running, waiting],))

    assert got == [(running, "completed"), (waiting, "not_processing")]
    assert job(tx, waiting)["status"] == "pending"
    assert len(msg_ids(tx, waiting)) == 1


def test_fail_jobs_retries_or_fails_each_job_per_its_type(tx):
    add_job_type(tx, "retrying", max_retries=1)
    retried, failed = submit(tx, "retrying"), submit(tx)
    retried_msg, failed_msg = take(tx, retried), take(tx, failed)

    got = outcomes(
        tx,
        "select * from fail_jobs(%s, %s, %s, null, %s)",
        ([retried, failed], ["a", "b"], ["E1", "E2"], [retried_msg, failed_msg]),
    )

    assert got == [(retried, "pending"), (failed, "failed")]
    assert job(tx, retried)["retry_count"] == 1
    assert job(tx, failed)["error_type"] == "E2"
    [new_msg] = msg_ids(tx, retried)
    assert new_msg != retried_msg
    assert msg_ids(tx, failed) == []
    check_invariant(tx)


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("select * from complete_jobs(%s)", (None,)),
        ("select * from complete_jobs(%s)", ([None],)),
        ("select * from fail_jobs(%s, %s)", ([uuid.uuid4()], None)),
        ("select * from fail_jobs(%s, %s)", ([uuid.uuid4()], [None])),
    ],
)
def test_the_batch_forms_refuse_null_elements_with_22023(tx, query, params):
    before = counts(tx)

    with raises(tx, "22023"):
        tx.execute(query, params)

    assert counts(tx) == before
