"""The triggers on public.jobs as hand-written SQL meets them: validation, enqueueing, states."""

from __future__ import annotations

import itertools

import pytest
from psycopg.types.json import Jsonb
from support.jobs import USER, add_job_type, counts, job, messages, raises, rows, submit, value

from .support import LEGAL_TRANSITIONS, OTHER_USER, STATUSES, take


def job_in(conn, status: str):
    """A job brought to `status` through the API (pending jobs made before it get dequeued)."""
    job_id = submit(conn)
    if status == "pending":
        return job_id
    msg_id = take(conn, job_id)
    if status == "completed":
        conn.execute("select complete_job(%s, null, %s)", (job_id, msg_id))
    elif status == "failed":
        conn.execute("select fail_job(%s, 'boom', msg_id => %s)", (job_id, msg_id))
    return job_id


def test_a_hand_written_insert_is_enqueued_like_submit_job(tx):
    (job_id,) = tx.execute(
        "insert into jobs (job_type, user_id, job_parameters)"
        " values ('sample_task', %s, %s) returning id",
        (USER, Jsonb({"message": "by hand"})),
    ).fetchone()

    assert job(tx, job_id)["status"] == "pending"
    assert [m["message"] for m in messages(tx)] == [
        {
            "job_id": str(job_id),
            "job_type": "sample_task",
            "user_id": str(USER),
            "job_parameters": {"message": "by hand"},
        }
    ]


def test_a_multi_row_insert_sends_one_message_per_row(tx):
    ids = [
        r[0]
        for r in tx.execute(
            "insert into jobs (job_type, user_id)"
            " select 'sample_task', %s from generate_series(1, 50) returning id",
            (USER,),
        )
    ]

    assert counts(tx) == (50, 50)
    assert sorted(m["message"]["job_id"] for m in messages(tx)) == sorted(str(i) for i in ids)


def test_a_hand_written_insert_may_say_pending(tx):
    tx.execute(
        "insert into jobs (job_type, user_id, status) values ('sample_task', %s, 'pending')",
        (USER,),
    )

    assert counts(tx) == (1, 1)


@pytest.mark.parametrize("status", ["processing", "completed", "failed", "bogus", None])
def test_a_new_row_in_another_status_is_refused(tx, status):
    with raises(tx, "55000", "status"):
        tx.execute(
            "insert into jobs (job_type, user_id, status) values ('sample_task', %s, %s)",
            (USER, status),
        )

    assert counts(tx) == (0, 0)


def test_a_hand_written_insert_is_validated(tx):
    with raises(tx, "22023", "duration_ms"):
        tx.execute(
            "insert into jobs (job_type, user_id, job_parameters) values ('sample_task', %s, %s)",
            (USER, Jsonb({"duration_ms": "soon"})),
        )
    with raises(tx, "22023", "job_type"):
        tx.execute("insert into jobs (job_type, user_id) values ('nope', %s)", (USER,))

    assert counts(tx) == (0, 0)


def test_one_bad_row_refuses_the_whole_insert(tx):
    with raises(tx, "22023", "fail"):
        tx.execute(
            "insert into jobs (job_type, user_id, job_parameters) values"
            " ('sample_task', %s, '{}'), ('sample_task', %s, '{\"fail\": 1}')",
            (USER, USER),
        )

    assert counts(tx) == (0, 0)


def test_a_hand_written_insert_takes_user_id_from_the_claims(tx):
    tx.execute("select set_config('request.jwt.claims', %s, true)", (f'{{"sub": "{OTHER_USER}"}}',))

    (job_id,) = tx.execute(
        "insert into jobs (job_type) values ('sample_task') returning id"
    ).fetchone()

    assert job(tx, job_id)["user_id"] == OTHER_USER
    assert messages(tx, job_id)[0]["message"]["user_id"] == str(OTHER_USER)


def test_a_hand_written_insert_without_user_id_is_refused(tx):
    with raises(tx, "22023", "user_id"):
        tx.execute("insert into jobs (job_type) values ('sample_task')")

    assert counts(tx) == (0, 0)


ILLEGAL = [
    (old, new)
    for old, new in itertools.product(STATUSES, [*STATUSES, "bogus", None])
    if old != new and (old, new) not in LEGAL_TRANSITIONS
]


@pytest.mark.parametrize(("old", "new"), ILLEGAL, ids=lambda s: str(s))
def test_an_illegal_status_update_raises_55000_and_changes_nothing(tx, old, new):
    job_id = job_in(tx, old)
    before = job(tx, job_id)
    queue_before = messages(tx)

    with raises(tx, "55000", "status"):
        tx.execute("update jobs set status = %s where id = %s", (new, job_id))

    assert job(tx, job_id) == before
    assert messages(tx) == queue_before


def test_processing_to_pending_without_a_higher_retry_count_is_refused(tx):
    job_id = job_in(tx, "processing")
    before = job(tx, job_id)

    with raises(tx, "55000", "retry_count"):
        tx.execute("update jobs set status = 'pending' where id = %s", (job_id,))
    with raises(tx, "55000", "retry_count"):
        tx.execute("update jobs set status = 'pending', retry_count = 0 where id = %s", (job_id,))

    assert job(tx, job_id) == before


def test_processing_to_pending_as_a_retry_is_allowed_by_hand(tx):
    job_id = job_in(tx, "processing")

    tx.execute(
        "update jobs set status = 'pending', retry_count = retry_count + 1 where id = %s", (job_id,)
    )

    assert job(tx, job_id)["status"] == "pending"
    assert job(tx, job_id)["retry_count"] == 1


def test_pending_to_processing_by_hand_sets_started_at(tx):
    job_id = job_in(tx, "pending")

    tx.execute("update jobs set status = 'processing' where id = %s", (job_id,))

    row = job(tx, job_id)
    assert row["status"] == "processing"
    assert row["started_at"] is not None
    assert row["completed_at"] is None


@pytest.mark.parametrize(
    ("old", "new"), [("processing", "completed"), ("processing", "failed"), ("pending", "failed")]
)
def test_finishing_by_hand_sets_completed_at(tx, old, new):
    job_id = job_in(tx, old)

    tx.execute("update jobs set status = %s where id = %s", (new, job_id))

    row = job(tx, job_id)
    assert row["status"] == new
    assert row["completed_at"] is not None


@pytest.mark.parametrize("status", STATUSES)
def test_an_update_that_keeps_the_status_is_allowed_and_moves_updated_at(tx, status):
    job_id = job_in(tx, status)
    before = job(tx, job_id)

    tx.execute(
        "update jobs set status = status, error_context = '{\"note\": 1}' where id = %s", (job_id,)
    )

    after = job(tx, job_id)
    assert after["status"] == status
    assert after["error_context"] == {"note": 1}
    assert after["updated_at"] > before["updated_at"]
    assert after["completed_at"] == before["completed_at"]
    assert after["started_at"] == before["started_at"]


def test_updated_at_moves_on_every_update(tx):
    job_id = submit(tx)
    seen = [job(tx, job_id)["updated_at"]]

    for _ in range(3):
        tx.execute("update jobs set error_message = 'x' where id = %s", (job_id,))
        seen.append(job(tx, job_id)["updated_at"])

    assert seen == sorted(set(seen))


def test_updated_at_cannot_be_set_by_hand(tx):
    job_id = submit(tx)

    tx.execute("update jobs set updated_at = '2000-01-01' where id = %s", (job_id,))

    assert value(tx, "select updated_at > '2001-01-01' from jobs where id = %s", (job_id,))


def test_a_hand_written_update_of_parameters_is_validated(tx):
    job_id = submit(tx, params={"message": "a"})

    with raises(tx, "22023", "duration_ms"):
        tx.execute(
            "update jobs set job_parameters = '{\"duration_ms\": 99999999}' where id = %s",
            (job_id,),
        )
    with raises(tx, "22023", "job_type"):
        tx.execute("update jobs set job_type = 'nope' where id = %s", (job_id,))

    assert job(tx, job_id)["job_parameters"] == {"message": "a"}


def test_changing_the_type_by_hand_validates_against_the_new_type(tx):
    add_job_type(tx, "strict", parameters_schema={"type": "object", "required": ["url"]})
    job_id = submit(tx, params={"message": "a"})

    with raises(tx, "22023", "url"):
        tx.execute("update jobs set job_type = 'strict' where id = %s", (job_id,))

    assert job(tx, job_id)["job_type"] == "sample_task"


def test_a_multi_row_update_with_one_illegal_row_changes_no_row(tx):
    completed = job_in(tx, "completed")
    pending = job_in(tx, "pending")

    with raises(tx, "55000"):
        tx.execute("update jobs set status = 'failed' where id in (%s, %s)", (pending, completed))

    assert {r["status"] for r in rows(tx, "select status from jobs")} == {"pending", "completed"}
