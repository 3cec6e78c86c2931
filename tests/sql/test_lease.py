"""extend_job_lease(): the runner's heartbeat, bounded by the type's timeout_seconds."""

from __future__ import annotations

import uuid

import pytest
from support.jobs import add_job_type, job, messages, raises, submit, value

from .support import msg_ids, now, take


def extend(conn, job_id, msg_id, seconds) -> None:
    conn.execute("select extend_job_lease(%s, %s, %s)", (job_id, msg_id, seconds))


def vt_of(conn, msg_id):
    return value(conn, "select vt from pgmq.q_job_queue where msg_id = %s", (msg_id,))


def running(conn, job_type="sample_task"):
    job_id = submit(conn, job_type)
    return job_id, take(conn, job_id, vt=5)


def test_extend_job_lease_pushes_the_message_out_of_sight(tx):
    job_id, msg_id = running(tx)
    before = now(tx)

    extend(tx, job_id, msg_id, 120)

    assert value(tx, "select %s >= %s + interval '120 seconds'", (vt_of(tx, msg_id), before))
    assert job(tx, job_id)["status"] == "processing"
    assert msg_ids(tx, job_id) == [msg_id]


def test_extend_job_lease_can_also_shorten_it(tx):
    job_id, msg_id = running(tx)
    tx.execute("select pgmq.set_vt('job_queue', %s, 200)", (msg_id,))

    extend(tx, job_id, msg_id, 1)
    after = now(tx)

    assert value(tx, "select %s <= %s + interval '1 second'", (vt_of(tx, msg_id), after))


def test_extend_job_lease_accepts_named_arguments(tx):
    job_id, msg_id = running(tx)

    tx.execute(
        "select extend_job_lease(seconds => 60, msg_id => %s, job_id => %s)", (msg_id, job_id)
    )

    assert value(tx, "select %s > clock_timestamp() + interval '30 seconds'", (vt_of(tx, msg_id),))


def test_the_lease_never_reaches_past_the_types_timeout(tx):
    add_job_type(tx, "short", timeout_seconds=60)
    job_id, msg_id = running(tx, "short")
    started_at = job(tx, job_id)["started_at"]

    extend(tx, job_id, msg_id, 86400)

    # ceil() of the time left may add up to a second, plus the call's own duration.
    assert value(tx, "select %s <= %s + interval '62 seconds'", (vt_of(tx, msg_id), started_at))


def test_an_attempt_past_its_timeout_is_refused_and_keeps_its_vt(tx):
    add_job_type(tx, "short", timeout_seconds=60)
    job_id, msg_id = running(tx, "short")
    tx.execute(
        "update jobs set started_at = started_at - interval '61 seconds' where id = %s", (job_id,)
    )
    vt = vt_of(tx, msg_id)

    with raises(tx, "55000", "timeout_seconds"):
        extend(tx, job_id, msg_id, 30)

    assert vt_of(tx, msg_id) == vt
    assert job(tx, job_id)["status"] == "processing"


@pytest.mark.parametrize("seconds", [0, -1, 86401, None])
def test_bad_seconds_are_22023(tx, seconds):
    job_id, msg_id = running(tx)
    vt = vt_of(tx, msg_id)

    with raises(tx, "22023", "seconds"):
        extend(tx, job_id, msg_id, seconds)

    assert vt_of(tx, msg_id) == vt


def test_a_null_msg_id_is_22023(tx):
    job_id, _ = running(tx)

    with raises(tx, "22023", "msg_id"):
        extend(tx, job_id, None, 30)


def test_a_null_job_id_is_22023(tx):
    _, msg_id = running(tx)

    with raises(tx, "22023", "job_id"):
        extend(tx, None, msg_id, 30)


def test_an_unknown_job_is_p0002(tx):
    _, msg_id = running(tx)

    with raises(tx, "P0002", "job_id"):
        extend(tx, uuid.uuid4(), msg_id, 30)


def test_a_pending_job_has_no_lease_to_extend(tx):
    job_id = submit(tx)
    (msg_id,) = msg_ids(tx, job_id)
    vt = vt_of(tx, msg_id)

    with raises(tx, "55000", "pending"):
        extend(tx, job_id, msg_id, 30)

    assert vt_of(tx, msg_id) == vt
    assert job(tx, job_id)["status"] == "pending"


@pytest.mark.parametrize("outcome", ["complete_job(%s)", "fail_job(%s, 'x')"])
def test_a_finished_job_has_no_lease_to_extend(tx, outcome):
    job_id, msg_id = running(tx)
    tx.execute(f"select {outcome}", (job_id,))

    with raises(tx, "55000", "msg_id"):
        extend(tx, job_id, msg_id, 30)


def test_the_lease_of_a_retried_attempt_is_gone(tx):
    add_job_type(tx, "flaky", max_retries=1)
    job_id, first = running(tx, "flaky")
    tx.execute("select fail_job(%s, 'x', msg_id => %s)", (job_id, first))
    (retry,) = messages(tx, job_id)

    with raises(tx, "55000", "msg_id"):
        extend(tx, job_id, first, 30)

    assert vt_of(tx, retry["msg_id"]) == retry["vt"]


def test_another_jobs_msg_id_is_no_lease(tx):
    job_id, msg_id = running(tx)
    other_id, other_msg = running(tx)
    vt = vt_of(tx, other_msg)

    with raises(tx, "55000", "msg_id"):
        extend(tx, job_id, other_msg, 30)

    assert vt_of(tx, other_msg) == vt
    assert vt_of(tx, msg_id) is not None
    assert job(tx, other_id)["status"] == "processing"


def test_a_retried_attempt_gets_a_fresh_start_and_so_a_fresh_timeout(tx):
    add_job_type(tx, "flaky", max_retries=1, timeout_seconds=60)
    job_id, first = running(tx, "flaky")
    tx.execute(
        "update jobs set started_at = started_at - interval '1 hour' where id = %s", (job_id,)
    )
    tx.execute("select fail_job(%s, 'x', msg_id => %s)", (job_id, first))
    tx.execute("update pgmq.q_job_queue set vt = clock_timestamp() - interval '1 second'")

    second = take(tx, job_id)
    extend(tx, job_id, second, 30)

    assert value(
        tx, "select started_at > now() - interval '1 minute' from jobs where id = %s", (job_id,)
    )


def test_a_hand_written_retry_ends_the_old_lease(tx):
    job_id, msg_id = running(tx)

    tx.execute(
        "update jobs set status = 'pending', retry_count = retry_count + 1 where id = %s", (job_id,)
    )

    [new_msg_id] = msg_ids(tx, job_id)
    assert new_msg_id != msg_id
    assert value(
        tx, "select vt > clock_timestamp() from pgmq.q_job_queue where msg_id = %s", (new_msg_id,)
    )
    with raises(tx, "55000"):
        tx.execute("select complete_job(%s, null, %s)", (job_id, msg_id))


def test_extend_job_lease_returns_the_lease_end_it_granted(tx):
    add_job_type(tx, "short_lease", timeout_seconds=20)
    job_id, msg_id = running(tx, "short_lease")

    end = value(tx, "select extend_job_lease(%s, %s, 3600)", (job_id, msg_id))

    # Capped at started_at + timeout_seconds (rounded up to a whole second),
    # and the message hides until then.
    assert end == vt_of(tx, msg_id)
    assert 0 < value(tx, "select extract(epoch from %s - now())", (end,)) <= 21
