"""cancel_job() and get_job()."""

from __future__ import annotations

import uuid

import pytest
from support.jobs import USER, add_job_type, cancel, job, messages, raises, rows, submit, value

from .support import check_invariant, msg_ids, take


def test_cancel_job_fails_a_pending_job_as_cancelled(tx):
    job_id = submit(tx)
    kept = submit(tx)

    assert cancel(tx, job_id) is True

    row = job(tx, job_id)
    assert row["status"] == "failed"
    assert row["error_type"] == "Cancelled"
    assert row["error_message"]
    assert row["completed_at"] is not None
    assert messages(tx, job_id) == []
    assert len(messages(tx, kept)) == 1
    check_invariant(tx)


def test_cancel_job_accepts_a_named_argument(tx):
    job_id = submit(tx)

    assert value(tx, "select cancel_job(job_id => %s)", (job_id,)) is True


def test_cancel_job_cancels_a_job_waiting_for_its_retry(tx):
    add_job_type(tx, "flaky", max_retries=1)
    job_id = submit(tx, "flaky")
    tx.execute("select fail_job(%s, 'x', msg_id => %s)", (job_id, take(tx, job_id)))
    assert len(msg_ids(tx, job_id)) == 1

    assert cancel(tx, job_id) is True

    assert job(tx, job_id)["status"] == "failed"
    assert job(tx, job_id)["error_type"] == "Cancelled"
    assert messages(tx) == []


def test_a_cancelled_job_is_never_handed_out(tx):
    job_id = submit(tx)
    cancel(tx, job_id)

    assert value(tx, "select count(*) from dequeue_jobs(10)") == 0


def job_in(conn, status):
    job_id = submit(conn)
    if status == "pending":
        return job_id
    msg_id = take(conn, job_id)
    if status == "completed":
        conn.execute("select complete_job(%s, msg_id => %s)", (job_id, msg_id))
    elif status == "failed":
        conn.execute("select fail_job(%s, 'x', msg_id => %s)", (job_id, msg_id))
    return job_id


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_cancel_job_of_a_finished_job_is_false_and_changes_nothing(tx, status):
    job_id = job_in(tx, status)
    before, queue = job(tx, job_id), messages(tx)

    assert cancel(tx, job_id) is False

    assert job(tx, job_id) == before
    assert messages(tx) == queue


def test_cancel_job_of_a_processing_job_fails_it_and_ends_its_lease(db, connect):
    job_id = submit(db)
    msg_id = take(db, job_id)
    listener = connect()
    listener.execute("listen jobqueue_cancel")

    assert cancel(db, job_id) is True

    row = job(db, job_id)
    assert (row["status"], row["error_type"]) == ("failed", "Cancelled")
    assert messages(db, job_id) == []
    assert [n.payload for n in listener.notifies(timeout=10, stop_after=1)] == [str(job_id)]
    # The running attempt's result is refused: its lease is gone.
    with raises(db, "55000", "no longer current"):
        db.execute("select complete_job(%s, null, %s)", (job_id, msg_id))


def test_cancelling_twice_is_true_then_false(tx):
    job_id = submit(tx)

    assert [cancel(tx, job_id), cancel(tx, job_id)] == [True, False]


def test_cancel_job_of_an_unknown_job_is_p0002(tx):
    unknown = uuid.uuid4()

    with raises(tx, "P0002", "job_id", str(unknown)):
        cancel(tx, unknown)


def test_cancel_job_and_get_job_of_a_null_id_are_p0002(tx):
    # NULL names no job: the answer of an unknown one.
    with raises(tx, "P0002", "job_id"):
        cancel(tx, None)
    with raises(tx, "P0002", "job_id"):
        tx.execute("select get_job(null)")


def test_cancel_job_of_a_pending_job_whose_message_is_lost_still_cancels(tx):
    job_id = submit(tx)
    tx.execute("select pgmq.purge_queue('job_queue')")

    assert cancel(tx, job_id) is True
    assert job(tx, job_id)["status"] == "failed"


def test_get_job_returns_the_whole_row(tx):
    job_id = submit(tx, params={"message": "m"})

    got = rows(tx, "select * from get_job(%s)", (job_id,))

    assert got == [job(tx, job_id)]
    assert got[0]["user_id"] == USER


def test_get_job_follows_the_job_through_its_states(tx):
    job_id = submit(tx)
    seen = [value(tx, "select (get_job(%s)).status", (job_id,))]
    msg_id = take(tx, job_id)
    seen.append(value(tx, "select (get_job(%s)).status", (job_id,)))
    tx.execute("select complete_job(%s, '{\"k\": 1}', %s)", (job_id, msg_id))
    seen.append(value(tx, "select (get_job(job_id => %s)).status", (job_id,)))

    assert seen == ["pending", "processing", "completed"]
    assert value(tx, "select (get_job(%s)).data_references", (job_id,)) == {"k": 1}


def test_get_job_of_an_unknown_job_is_p0002(tx):
    unknown = uuid.uuid4()

    with raises(tx, "P0002", "job_id", str(unknown)):
        tx.execute("select get_job(%s)", (unknown,))


def test_get_job_writes_nothing(tx):
    job_id = submit(tx)
    before = job(tx, job_id)

    tx.execute("select get_job(%s)", (job_id,))

    assert job(tx, job_id) == before
