"""recover_orphans(): the sweep that puts the queue and the jobs back in step."""

from __future__ import annotations

import pytest
from support.jobs import ARCHIVE_TABLE, add_job_type, counts, job, messages, submit, value

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

NOTHING = {
    "stale_messages_deleted": 0,
    "poison_messages_archived": 0,
    "timed_out_failed": 0,
    "timed_out_retried": 0,
    "orphans_requeued": 0,
    "orphans_failed": 0,
    "parked_woken": 0,
}


def recover(conn) -> dict:
    return value(conn, "select recover_orphans()")


def did(**counts_) -> dict:
    return {**NOTHING, **counts_}


def delete_messages(conn, job_id) -> None:
    conn.execute("select pgmq.delete('job_queue', %s::bigint[])", (msg_ids(conn, job_id),))


def test_a_healthy_queue_is_left_alone(tx):
    pending = submit(tx)
    hidden = submit(tx)
    tx.execute("select pgmq.set_vt('job_queue', %s, 60)", (msg_ids(tx, hidden)[0],))
    running = submit(tx)
    tx.execute("update jobs set status = 'processing' where id = %s", (running,))
    tx.execute("select pgmq.set_vt('job_queue', %s, 60)", (msg_ids(tx, running)[0],))
    before = {"jobs": counts(tx), "queue": messages(tx)}

    assert recover(tx) == NOTHING

    assert {"jobs": counts(tx), "queue": messages(tx)} == before
    assert job(tx, pending)["status"] == "pending"
    assert job(tx, running)["status"] == "processing"


def test_an_empty_database_sweeps_to_zero_counts(tx):
    assert recover(tx) == NOTHING


def test_a_pending_job_whose_message_was_deleted_is_sent_again(tx):
    job_id = submit(tx, params={"message": "again"})
    (lost,) = msg_ids(tx, job_id)
    delete_messages(tx, job_id)

    assert recover(tx) == did(orphans_requeued=1)

    row = job(tx, job_id)
    assert (row["status"], row["retry_count"]) == ("pending", 1)
    (msg,) = messages(tx, job_id)
    assert msg["msg_id"] != lost
    assert msg["message"]["job_parameters"] == {"message": "again"}
    (taken,) = dequeue(tx)
    assert (taken["job_id"], taken["retry_count"]) == (job_id, 1)


def test_every_pending_job_of_a_purged_queue_is_sent_again(tx):
    ids = submit_many(tx, 5)
    tx.execute("select pgmq.purge_queue('job_queue')")

    assert recover(tx) == did(orphans_requeued=5)

    assert counts(tx) == (5, 5)
    assert value(
        tx, "select array_agg(distinct retry_count) from jobs where id = any(%s)", (ids,)
    ) == [1]
    check_invariant(tx)


def test_an_orphan_is_failed_after_three_re_sends(tx):
    job_id = submit(tx)
    results = []

    for _ in range(4):
        delete_messages(tx, job_id)
        results.append(recover(tx))

    assert results == [did(orphans_requeued=1)] * 3 + [did(orphans_failed=1)]
    row = job(tx, job_id)
    assert (row["status"], row["error_type"], row["retry_count"]) == ("failed", "OrphanedJob", 3)
    assert row["completed_at"] is not None
    assert messages(tx, job_id) == []


def test_the_re_send_limit_is_a_setting(tx):
    tx.execute("update jobqueue.settings set orphan_max_requeues = 0")
    job_id = submit(tx)
    delete_messages(tx, job_id)

    assert recover(tx) == did(orphans_failed=1)
    assert job(tx, job_id)["error_type"] == "OrphanedJob"


def test_retries_of_any_cause_count_towards_the_re_send_limit(tx):
    add_job_type(tx, "flaky", max_retries=5)
    job_id = submit(tx, "flaky")
    for _ in range(3):
        tx.execute("select fail_job(%s, 'x', msg_id => %s)", (job_id, take(tx, job_id)))
        make_visible(tx)
    delete_messages(tx, job_id)

    assert recover(tx) == did(orphans_failed=1)


def test_a_processing_job_whose_message_came_back_times_out(tx):
    job_id = submit(tx)
    msg_id = take(tx, job_id)
    make_visible(tx, msg_id)

    assert recover(tx) == did(timed_out_failed=1)

    row = job(tx, job_id)
    assert (row["status"], row["error_type"]) == ("failed", "JobTimeout")
    assert row["error_context"]["msg_id"] == msg_id
    assert row["completed_at"] is not None
    assert messages(tx) == []


def test_a_processing_job_whose_message_came_back_is_retried_per_its_type(tx):
    add_job_type(tx, "flaky", max_retries=1)
    job_id = submit(tx, "flaky")
    msg_id = take(tx, job_id)
    make_visible(tx, msg_id)
    before = now(tx)

    assert recover(tx) == did(timed_out_retried=1)

    row = job(tx, job_id)
    assert (row["status"], row["retry_count"], row["error_type"]) == ("pending", 1, "JobTimeout")
    (retry,) = messages(tx, job_id)
    assert retry["msg_id"] != msg_id
    assert value(tx, "select %s >= %s + interval '1 second'", (retry["vt"], before))

    # The retry used the type's last one: the next timeout fails the job.
    make_visible(tx)
    assert take(tx, job_id) == retry["msg_id"]
    make_visible(tx)
    assert recover(tx) == did(timed_out_failed=1)
    assert job(tx, job_id)["status"] == "failed"


def test_a_processing_job_with_no_message_times_out(tx):
    job_id = submit(tx)
    take(tx, job_id)
    delete_messages(tx, job_id)

    assert recover(tx) == did(timed_out_failed=1)

    row = job(tx, job_id)
    assert (row["status"], row["error_type"]) == ("failed", "JobTimeout")
    assert row["error_context"]["msg_id"] is None


def test_a_processing_job_with_no_message_is_retried_per_its_type(tx):
    add_job_type(tx, "flaky", max_retries=1)
    job_id = submit(tx, "flaky")
    take(tx, job_id)
    tx.execute("select pgmq.purge_queue('job_queue')")

    assert recover(tx) == did(timed_out_retried=1)

    assert job(tx, job_id)["status"] == "pending"
    assert len(messages(tx, job_id)) == 1


def test_an_attempt_that_outlived_its_timeout_times_out_while_hidden(tx):
    add_job_type(tx, "short", timeout_seconds=60)
    job_id = submit(tx, "short")
    msg_id = take(tx, job_id, vt=3600)
    tx.execute(
        "update jobs set started_at = started_at - interval '61 seconds' where id = %s", (job_id,)
    )

    assert recover(tx) == did(timed_out_failed=1)

    assert job(tx, job_id)["error_type"] == "JobTimeout"
    assert value(tx, "select count(*) from pgmq.q_job_queue where msg_id = %s", (msg_id,)) == 0


def test_the_message_of_a_deleted_job_is_deleted(tx):
    job_id = submit(tx)
    kept = submit(tx)
    tx.execute("delete from jobs where id = %s", (job_id,))

    assert recover(tx) == did(stale_messages_deleted=1)

    assert messages(tx, job_id) == []
    assert len(messages(tx, kept)) == 1


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_a_hand_written_finish_leaves_no_message(tx, status):
    job_id = submit(tx)
    tx.execute("update jobs set status = 'processing' where id = %s", (job_id,))
    tx.execute("update jobs set status = %s where id = %s", (status, job_id))

    assert messages(tx, job_id) == []


@pytest.mark.parametrize("status", ["completed", "failed"])
def test_the_leftover_message_of_a_finished_job_is_deleted(tx, status):
    job_id = submit(tx)
    tx.execute("update jobs set status = 'processing' where id = %s", (job_id,))
    tx.execute("update jobs set status = %s where id = %s", (status, job_id))
    send_raw(tx, {"job_id": str(job_id)})

    assert recover(tx) == did(stale_messages_deleted=1)

    assert job(tx, job_id)["status"] == status
    assert messages(tx) == []


def test_a_hidden_stale_message_waits_until_it_is_visible(tx):
    job_id = submit(tx)
    msg_id = take(tx, job_id)
    tx.execute("delete from jobs where id = %s", (job_id,))

    assert recover(tx) == NOTHING
    make_visible(tx, msg_id)
    assert recover(tx) == did(stale_messages_deleted=1)


def test_poison_messages_are_archived(tx):
    poison = [send_raw(tx, m) for m in ([1], "x", {}, {"job_id": "nope"})]
    kept = submit(tx)

    assert recover(tx) == did(poison_messages_archived=4)

    assert msg_ids(tx, kept) == [m["msg_id"] for m in messages(tx)]
    archived = value(tx, f"select array_agg(msg_id order by msg_id) from {ARCHIVE_TABLE}")
    assert archived == poison


def test_one_sweep_handles_every_case_and_reports_each_count(tx):
    add_job_type(tx, "flaky", max_retries=1)
    stale = submit(tx)
    timed_out = submit(tx)
    retried = submit(tx, "flaky")
    for job_id in (timed_out, retried):
        take(tx, job_id)
    make_visible(tx)
    tx.execute("delete from jobs where id = %s", (stale,))
    send_raw(tx, "poison")
    requeued = submit(tx)
    exhausted = submit(tx)
    tx.execute("update jobs set retry_count = 3 where id = %s", (exhausted,))
    delete_messages(tx, requeued)
    delete_messages(tx, exhausted)

    assert recover(tx) == {
        "stale_messages_deleted": 1,
        "poison_messages_archived": 1,
        "timed_out_failed": 1,
        "timed_out_retried": 1,
        "orphans_requeued": 1,
        "orphans_failed": 1,
        "parked_woken": 0,
    }
    check_invariant(tx)
    assert recover(tx) == NOTHING


def test_a_second_sweep_while_one_runs_is_skipped(db, connect):
    first = connect(autocommit=False)
    first.execute("select recover_orphans()")  # holds the sweep's lock until it commits

    assert value(db, "select recover_orphans()") == {"skipped": True}

    first.commit()
    assert value(db, "select recover_orphans()") == NOTHING
