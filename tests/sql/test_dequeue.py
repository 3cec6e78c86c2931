"""dequeue_jobs(): hands out pending jobs, and cleans what it meets on the way."""

from __future__ import annotations

import pytest
from support.jobs import (
    ARCHIVE_TABLE,
    USER,
    add_job_type,
    counts,
    job,
    messages,
    raises,
    submit,
    value,
)

from .support import (
    check_invariant,
    dequeue,
    make_visible,
    msg_ids,
    now,
    send_raw,
    submit_many,
    take,
)

POISON = [[1, 2], "text", 42, {}, {"job_id": "not-a-uuid"}, {"job_id": 17}, {"job_id": None}]


def test_an_empty_queue_gives_no_rows(tx):
    assert dequeue(tx, 10) == []


def test_dequeue_hands_out_a_pending_job_as_processing(tx):
    job_id = submit(tx, params={"message": "m"})
    (msg_id,) = msg_ids(tx, job_id)

    (row,) = dequeue(tx)

    assert row == {
        "job_id": job_id,
        "msg_id": msg_id,
        "job_type": "sample_task",
        "user_id": USER,
        "job_parameters": {"message": "m"},
        "retry_count": 0,
    }
    taken = job(tx, job_id)
    assert taken["status"] == "processing"
    assert taken["started_at"] is not None
    assert taken["completed_at"] is None
    check_invariant(tx)


def test_a_dequeued_message_stays_hidden_for_the_visibility_timeout(tx):
    job_id = submit(tx)
    before = now(tx)

    dequeue(tx, 1, 120)

    (msg,) = messages(tx, job_id)
    assert msg["read_ct"] == 1
    assert value(tx, "select %s >= %s + interval '120 seconds'", (msg["vt"], before))
    assert dequeue(tx, 10) == []


def test_dequeue_hands_out_jobs_oldest_first_up_to_batch_size(tx):
    ids = submit_many(tx, 7)

    first = dequeue(tx, 3)
    rest = dequeue(tx, 10)

    assert [r["job_id"] for r in first] == ids[:3]
    assert [r["job_id"] for r in rest] == ids[3:]
    assert dequeue(tx, 10) == []
    assert value(tx, "select count(*) from jobs where status = 'processing'") == 7


def test_dequeue_with_defaults_takes_one_job(tx):
    submit_many(tx, 3)

    assert len(tx.execute("select * from dequeue_jobs()").fetchall()) == 1


def test_dequeue_accepts_named_arguments(tx):
    submit_many(tx, 3)

    taken = tx.execute(
        "select * from dequeue_jobs(visibility_timeout_seconds => 5, batch_size => 2)"
    ).fetchall()

    assert len(taken) == 2


def test_a_delayed_message_is_not_handed_out(tx):
    job_id = submit(tx)
    tx.execute("select pgmq.set_vt('job_queue', %s, 60)", (msg_ids(tx, job_id)[0],))

    assert dequeue(tx, 10) == []
    assert job(tx, job_id)["status"] == "pending"


@pytest.mark.parametrize(
    ("batch_size", "vt", "field"),
    [
        (0, 30, "batch_size"),
        (-1, 30, "batch_size"),
        (10001, 30, "batch_size"),
        (None, 30, "batch_size"),
        (1, 0, "visibility_timeout_seconds"),
        (1, -5, "visibility_timeout_seconds"),
        (1, 86401, "visibility_timeout_seconds"),
        (1, None, "visibility_timeout_seconds"),
    ],
)
def test_bad_arguments_are_refused(tx, batch_size, vt, field):
    submit(tx)

    with raises(tx, "22023", field):
        dequeue(tx, batch_size, vt)

    assert value(tx, "select status from jobs") == "pending"
    assert messages(tx)[0]["read_ct"] == 0


def test_the_argument_bounds_are_accepted(tx):
    submit_many(tx, 2)

    assert len(dequeue(tx, 10000, 1)) == 2
    make_visible(tx)
    dequeue(tx, 1, 86400)


def test_messages_of_deleted_jobs_are_deleted_and_skipped(tx):
    gone = submit(tx)
    kept = submit(tx)
    tx.execute("delete from jobs where id = %s", (gone,))

    taken = dequeue(tx, 10)

    assert [r["job_id"] for r in taken] == [kept]
    assert messages(tx, gone) == []
    check_invariant(tx)


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_messages_of_finished_jobs_are_deleted_and_skipped(tx, status):
    finished = submit(tx)
    kept = submit(tx)
    # A hand-written finish is legal but leaves the message behind.
    tx.execute("update jobs set status = 'processing' where id = %s", (finished,))
    tx.execute("update jobs set status = %s where id = %s", (status, finished))

    taken = dequeue(tx, 10)

    assert [r["job_id"] for r in taken] == [kept]
    assert messages(tx, finished) == []
    assert job(tx, finished)["status"] == status


@pytest.mark.parametrize("poison", POISON, ids=repr)
def test_poison_messages_are_archived_and_skipped(tx, poison):
    poison_id = send_raw(tx, poison)
    kept = submit(tx)

    taken = dequeue(tx, 10)

    assert [r["job_id"] for r in taken] == [kept]
    assert value(tx, "select count(*) from pgmq.q_job_queue where msg_id = %s", (poison_id,)) == 0
    assert value(tx, f"select count(*) from {ARCHIVE_TABLE} where msg_id = %s", (poison_id,)) == 1


def test_a_full_batch_comes_back_past_stale_poison_and_abandoned_messages(tx):
    # Oldest first: junk of every kind ahead of the pending jobs.
    abandoned = submit(tx)
    take(tx, abandoned)
    make_visible(tx, msg_ids(tx, abandoned)[0])
    deleted = submit_many(tx, 3)
    tx.execute("delete from jobs where id = any(%s)", (deleted,))
    for poison in POISON:
        send_raw(tx, poison)
    pending = submit_many(tx, 8)
    assert value(tx, "select count(*) from pgmq.q_job_queue where vt <= clock_timestamp()") == 19

    taken = dequeue(tx, 5)

    assert [r["job_id"] for r in taken] == pending[:5]
    assert job(tx, abandoned)["status"] == "failed"
    assert job(tx, abandoned)["error_type"] == "JobTimeout"
    assert counts(tx) == (9, 8)  # the abandoned job and 8 others, of which 5 processing
    assert value(tx, "select count(*) from pgmq.a_job_queue") == len(POISON)
    check_invariant(tx)


def test_fewer_rows_come_back_only_when_nothing_visible_is_left(tx):
    deleted = submit_many(tx, 6)
    tx.execute("delete from jobs where id = any(%s)", (deleted,))
    pending = submit_many(tx, 2)
    hidden = submit(tx)
    tx.execute("select pgmq.set_vt('job_queue', %s, 60)", (msg_ids(tx, hidden)[0],))

    taken = dequeue(tx, 4)

    assert sorted(r["job_id"] for r in taken) == sorted(pending)
    visible = value(tx, "select count(*) from pgmq.q_job_queue where vt <= clock_timestamp()")
    assert visible == 0
    assert job(tx, hidden)["status"] == "pending"


def test_an_abandoned_attempt_without_retries_fails_as_job_timeout(tx):
    job_id = submit(tx)
    msg_id = take(tx, job_id)
    make_visible(tx, msg_id)

    assert dequeue(tx, 10) == []

    row = job(tx, job_id)
    assert row["status"] == "failed"
    assert row["error_type"] == "JobTimeout"
    assert row["error_context"]["msg_id"] == msg_id
    assert row["completed_at"] is not None
    assert messages(tx, job_id) == []


def test_an_abandoned_attempt_with_retries_left_goes_back_to_pending(tx):
    add_job_type(tx, "x", max_retries=2)
    job_id = submit(tx, "x")
    msg_id = take(tx, job_id)
    make_visible(tx, msg_id)
    before = now(tx)

    assert dequeue(tx, 10) == []

    row = job(tx, job_id)
    assert row["status"] == "pending"
    assert row["retry_count"] == 1
    assert row["error_type"] == "JobTimeout"
    (retry,) = messages(tx, job_id)
    assert retry["msg_id"] != msg_id
    assert value(tx, "select %s >= %s + interval '1 second'", (retry["vt"], before))

    make_visible(tx, retry["msg_id"])
    (again,) = dequeue(tx)
    assert (again["job_id"], again["msg_id"], again["retry_count"]) == (job_id, retry["msg_id"], 1)


def test_each_row_of_a_batch_carries_its_own_msg_id(tx):
    ids = submit_many(tx, 4)

    taken = dequeue(tx, 4)

    assert {r["job_id"]: r["msg_id"] for r in taken} == {i: msg_ids(tx, i)[0] for i in ids}
