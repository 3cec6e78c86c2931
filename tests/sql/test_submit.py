"""submit_job() and submit_jobs(): a pending row and its message, written together."""

from __future__ import annotations

import uuid

import psycopg
from psycopg.types.json import Jsonb
from support.jobs import (
    QUEUE,
    USER,
    add_job_type,
    counts,
    job,
    messages,
    raises,
    rows,
    submit,
    value,
)

from .support import OTHER_USER


def test_submit_job_inserts_a_pending_job_and_sends_its_message(tx):
    job_id = submit(tx, "sample_task", {"message": "hi", "duration_ms": 5})

    row = job(tx, job_id)
    assert row["status"] == "pending"
    assert row["job_type"] == "sample_task"
    assert row["user_id"] == USER
    assert row["job_parameters"] == {"message": "hi", "duration_ms": 5}
    assert row["retry_count"] == 0
    assert row["started_at"] is None
    assert row["completed_at"] is None
    assert row["error_message"] is None
    assert row["error_type"] is None
    assert row["data_references"] is None

    (msg,) = messages(tx, job_id)
    assert msg["message"] == {
        "job_id": str(job_id),
        "job_type": "sample_task",
        "user_id": str(USER),
        "job_parameters": {"message": "hi", "duration_ms": 5},
    }
    assert msg["read_ct"] == 0
    assert value(tx, "select %s <= clock_timestamp()", (msg["vt"],)), "visible at once"


def test_submit_job_with_null_parameters_keeps_null_and_sends_it(tx):
    job_id = submit(tx, "sample_task", None)

    assert job(tx, job_id)["job_parameters"] is None
    assert messages(tx, job_id)[0]["message"]["job_parameters"] is None


def test_submit_job_accepts_named_arguments(tx):
    # PostgREST and supabase-js call the API by argument name.
    job_id = value(
        tx,
        "select submit_job(user_id => %s, job_parameters => %s, job_type => 'sample_task')",
        (USER, Jsonb({"fail": True})),
    )

    assert job(tx, job_id)["job_parameters"] == {"fail": True}


def test_submit_job_returns_a_new_id_each_time(tx):
    ids = {submit(tx) for _ in range(5)}

    assert len(ids) == 5
    assert counts(tx) == (5, 5)


def test_submit_job_takes_user_id_from_the_request_jwt_claims(tx):
    tx.execute(
        "select set_config('request.jwt.claims', %s, true)",
        (f'{{"sub": "{OTHER_USER}", "role": "authenticated"}}',),
    )

    job_id = submit(tx, user_id=None)

    assert job(tx, job_id)["user_id"] == OTHER_USER


def test_submit_job_takes_user_id_from_the_older_claim_sub_setting(tx):
    tx.execute("select set_config('request.jwt.claim.sub', %s, true)", (str(OTHER_USER),))

    job_id = submit(tx, user_id=None)

    assert job(tx, job_id)["user_id"] == OTHER_USER


def test_submit_job_prefers_an_explicit_user_id_to_the_claims(tx):
    tx.execute("select set_config('request.jwt.claims', %s, true)", (f'{{"sub": "{OTHER_USER}"}}',))

    assert job(tx, submit(tx, user_id=USER))["user_id"] == USER


def test_submit_job_without_any_user_id_is_refused(tx):
    with raises(tx, "22023", "user_id"):
        submit(tx, user_id=None)

    assert counts(tx) == (0, 0)


def test_submit_job_refuses_a_sub_claim_that_is_not_a_uuid(tx):
    tx.execute("select set_config('request.jwt.claims', '{\"sub\": \"anonymous\"}', true)")

    with raises(tx, "22023", "user_id"):
        submit(tx, user_id=None)

    assert counts(tx) == (0, 0)


def test_submit_job_refuses_claims_without_sub(tx):
    tx.execute("select set_config('request.jwt.claims', '{\"role\": \"anon\"}', true)")

    with raises(tx, "22023", "user_id"):
        submit(tx, user_id=None)


def test_a_rolled_back_submit_leaves_neither_row_nor_message(db):
    with db.transaction(force_rollback=True):
        job_id = submit(db)
        assert counts(db) == (1, 1)

    assert counts(db) == (0, 0)
    assert rows(db, "select * from jobs where id = %s", (job_id,)) == []


def test_a_submit_is_invisible_to_others_until_commit(db, connect):
    other = connect()
    with db.transaction():
        submit(db)
        assert counts(other) == (0, 0)
        assert value(other, "select count(*) from dequeue_jobs(10)") == 0

    assert counts(other) == (1, 1)


def test_submitting_wakes_listeners_on_channel_jobqueue(db, connect):
    listener = connect()
    listener.execute("listen jobqueue")

    submit(db)

    notices = list(listener.notifies(timeout=10, stop_after=1))
    assert [(n.channel, n.payload) for n in notices] == [("jobqueue", QUEUE)]


def test_submit_jobs_returns_ids_in_the_order_of_the_array(tx):
    params = [{"message": str(i)} for i in range(20)]

    ids = [
        r[0]
        for r in tx.execute(
            "select submit_jobs('sample_task', %s::jsonb[], %s)", ([Jsonb(p) for p in params], USER)
        )
    ]

    assert len(ids) == 20
    assert [job(tx, i)["job_parameters"] for i in ids] == params
    assert counts(tx) == (20, 20)
    assert {m["message"]["job_id"] for m in messages(tx)} == {str(i) for i in ids}


def test_submit_jobs_with_an_empty_array_submits_nothing(tx):
    assert (
        tx.execute("select submit_jobs('sample_task', '{}'::jsonb[], %s)", (USER,)).fetchall() == []
    )
    assert counts(tx) == (0, 0)


def test_submit_jobs_writes_nothing_when_one_element_is_invalid(tx):
    params = [Jsonb({"message": "ok"}), Jsonb({"duration_ms": -1}), Jsonb({})]

    with raises(tx, "22023", "duration_ms"):
        tx.execute("select submit_jobs('sample_task', %s::jsonb[], %s)", (params, USER))

    assert counts(tx) == (0, 0)


def test_submit_jobs_reports_the_first_invalid_element_of_repeated_parameters(tx):
    # Each distinct value is checked once, in the order of first appearance.
    bad_size, bad_fail = Jsonb({"duration_ms": -1}), Jsonb({"fail": "yes"})
    params = [Jsonb({}), bad_size, Jsonb({}), bad_fail, bad_size]

    with raises(tx, "22023", "duration_ms"):
        tx.execute("select submit_jobs('sample_task', %s::jsonb[], %s)", (params, USER))

    assert counts(tx) == (0, 0)


def test_a_hand_written_insert_after_submit_jobs_is_still_validated(tx):
    # submit_jobs tells the row trigger that its own rows are checked; the
    # word must not outlive its INSERT.
    submit(tx, "sample_task", {})
    tx.execute("select submit_jobs('sample_task', array['{}'::jsonb, '{}'::jsonb], %s)", (USER,))

    with raises(tx, "22023", "duration_ms"):
        tx.execute(
            "insert into jobs (job_type, user_id, job_parameters) values ('sample_task', %s, %s)",
            (USER, Jsonb({"duration_ms": "soon"})),
        )


def test_submit_jobs_refuses_a_null_array(tx):
    with raises(tx, "22023", "job_parameters"):
        tx.execute("select submit_jobs('sample_task', null, %s)", (USER,))


def test_submit_jobs_without_any_user_id_is_refused(tx):
    with raises(tx, "22023", "user_id"):
        tx.execute("select submit_jobs('sample_task', array['{}'::jsonb], null)")

    assert counts(tx) == (0, 0)


def test_submit_jobs_takes_null_elements_as_empty_parameters(tx):
    (job_id,) = tx.execute(
        "select submit_jobs('sample_task', array[null]::jsonb[], %s)", (USER,)
    ).fetchone()

    assert job(tx, job_id)["status"] == "pending"


def test_a_registered_type_takes_submissions_at_once(tx):
    add_job_type(tx, "resize_image", max_retries=2)

    job_id = submit(tx, "resize_image", {"anything": [1, {"nested": None}], "n": 1.5})

    assert job(tx, job_id)["job_type"] == "resize_image"
    assert messages(tx, job_id)[0]["message"]["job_type"] == "resize_image"


def test_submit_job_is_callable_with_only_the_job_type_under_a_claim(tx):
    tx.execute("select set_config('request.jwt.claims', %s, true)", (f'{{"sub": "{USER}"}}',))

    job_id = value(tx, "select submit_job('sample_task')")

    assert isinstance(job_id, uuid.UUID)
    assert job(tx, job_id)["user_id"] == USER


def test_a_failed_submit_in_autocommit_leaves_nothing(db):
    try:
        submit(db, "no_such_type")
    except psycopg.Error as error:
        assert error.sqlstate == "22023"
    else:
        raise AssertionError("submit of an unknown type succeeded")

    assert counts(db) == (0, 0)


def test_submit_jobs_and_validate_accept_named_arguments(tx):
    tx.execute(
        "select validate_job_parameters("
        " job_parameters => '{\"fail\": true}', job_type => 'sample_task')"
    )
    ids = tx.execute(
        "select submit_jobs(user_id => %s, job_parameters => array['{}'::jsonb, '{}'],"
        " job_type => 'sample_task')",
        (USER,),
    ).fetchall()

    assert len(ids) == 2
    assert counts(tx) == (2, 2)
