"""Run later, priorities, deduplication, per-type concurrency limits and
retry_job(): the job features of migration 0002."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb
from support.jobs import (
    QUEUE_TABLE,
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

from .support import check_invariant, dequeue, take


def submit_with(conn: psycopg.Connection, job_type: str = "sample_task", **options) -> uuid.UUID:
    """submit_job() with named options, as PostgREST calls it."""
    arguments = {"job_type": job_type, "user_id": USER, **options}
    names = ", ".join(f"{name} => %({name})s" for name in arguments)
    return value(conn, f"select submit_job({names})", arguments)


# -- run later -------------------------------------------------------------------


def test_a_job_to_run_later_is_pending_and_out_of_sight_until_then(tx):
    later = submit_with(tx, run_at=value(tx, "select now() + interval '1 hour'"))
    now = submit(tx)

    assert [r["job_id"] for r in dequeue(tx, 10)] == [now]
    row = job(tx, later)
    assert (row["status"], row["run_at"]) == ("pending", messages(tx, later)[0]["vt"])
    assert value(tx, "select recover_orphans() ->> 'orphans_requeued'") == "0"


def test_run_at_in_the_past_or_null_means_now(tx):
    past = submit_with(tx, run_at=value(tx, "select now() - interval '1 day'"))
    unset = submit_with(tx, run_at=None)

    assert {r["job_id"] for r in dequeue(tx, 10)} == {past, unset}
    assert job(tx, past)["run_at"] is None


def test_run_at_more_than_a_year_ahead_is_22023_and_writes_nothing(tx):
    with raises(tx, "22023", "run_at"):
        submit_with(tx, run_at=value(tx, "select now() + interval '13 months'"))

    assert counts(tx) == (0, 0)


def test_a_retry_records_the_end_of_its_backoff_as_run_at(tx):
    add_job_type(tx, "flaky", max_retries=1, retry_backoff_seconds=60)
    job_id = submit(tx, "flaky")
    msg_id = take(tx, job_id)

    tx.execute("select fail_job(%s, 'boom', null, null, %s)", (job_id, msg_id))

    (retry,) = messages(tx, job_id)
    assert job(tx, job_id)["run_at"] == retry["vt"]
    assert value(tx, "select %s > now() + interval '59 seconds'", (retry["vt"],))


# -- priorities ------------------------------------------------------------------


def test_higher_priorities_come_first_and_each_in_submit_order(tx):
    low = [submit_with(tx, priority=-5) for _ in range(2)]
    normal = [submit(tx) for _ in range(2)]
    high = [submit_with(tx, priority=10) for _ in range(2)]

    taken = [dequeue(tx, 1)[0]["job_id"] for _ in range(6)]

    assert taken == high + normal + low


def test_a_higher_priority_job_is_not_held_back_by_delayed_or_running_ones(tx):
    in_an_hour = value(tx, "select now() + interval '1 hour'")
    for _ in range(20):
        submit_with(tx, priority=50, run_at=in_an_hour)
    running = submit_with(tx, priority=50)
    take(tx, running)
    ready = submit(tx)

    assert [r["job_id"] for r in dequeue(tx, 5)] == [ready]


@pytest.mark.parametrize("priority", [-101, 101])
def test_a_priority_out_of_range_is_22023(tx, priority):
    with raises(tx, "22023", "priority"):
        submit_with(tx, priority=priority)


def test_a_null_priority_means_0(tx):
    job_id = submit_with(tx, priority=None)

    assert job(tx, job_id)["priority"] == 0
    assert "priority" not in messages(tx, job_id)[0]["message"]


def test_the_read_walks_the_priority_index(tx):
    tx.execute("set local enable_seqscan = off")
    plan = "\n".join(
        r["QUERY PLAN"]
        for r in rows(
            tx,
            f"explain select v.msg_id from {QUEUE_TABLE} as v"
            " where (case when pg_catalog.jsonb_typeof(v.message -> 'priority') = 'number'"
            " then least(greatest((v.message ->> 'priority')::numeric, -100), 100)::integer"
            " else 0 end) = 0 and v.vt <= now()",
        )
    )

    assert "q_job_queue_priority_idx" in plan


# -- deduplication -----------------------------------------------------------------


def test_a_key_held_by_an_unfinished_job_returns_that_job_and_writes_nothing(tx):
    first = submit_with(tx, dedup_key="report-42")
    before = counts(tx)

    again = submit_with(tx, job_parameters=Jsonb({"message": "other"}), dedup_key="report-42")

    assert again == first
    assert counts(tx) == before
    assert job(tx, first)["dedup_key"] == "report-42"


def test_a_key_is_free_again_once_its_job_has_finished(tx):
    first = submit_with(tx, dedup_key="k")
    tx.execute("select cancel_job(%s)", (first,))

    second = submit_with(tx, dedup_key="k")

    assert second != first
    assert job(tx, second)["status"] == "pending"


def test_keys_are_per_job_type(tx):
    add_job_type(tx, "other")

    assert submit_with(tx, dedup_key="k") != submit_with(tx, "other", dedup_key="k")


def test_elements_of_one_batch_that_repeat_a_key_get_the_id_of_the_first(tx):
    ids = [
        r["id"]
        for r in rows(
            tx,
            "select s.id from submit_jobs('sample_task', array['{}', '{}', '{}', '{}']::jsonb[],"
            " %s, dedup_keys => array['a', null, 'a', 'b']) as s (id)",
            (USER,),
        )
    ]

    assert ids[0] == ids[2]
    assert len(set(ids)) == 3
    assert counts(tx) == (3, 3)


def test_dedup_keys_of_another_length_are_22023(tx):
    with raises(tx, "22023", "dedup_keys"):
        tx.execute(
            "select submit_jobs('sample_task', array['{}', '{}']::jsonb[], %s,"
            " dedup_keys => array['a'])",
            (USER,),
        )


def test_an_application_role_meeting_another_users_key_gets_42501(tx):
    other = uuid.UUID("00000000-0000-4000-8000-0000000000ff")
    holder = submit_with(tx, dedup_key="shared", user_id=other)
    tx.execute("set local role jobqueue_app")
    tx.execute("select set_config('request.jwt.claims', %s, true)", (f'{{"sub": "{USER}"}}',))

    with raises(tx, "42501", "dedup_key"):
        tx.execute(
            "select submit_job('sample_task', null, null, dedup_key => 'shared')",
        )

    tx.execute("reset role")
    assert counts(tx) == (1, 1)
    assert job(tx, holder)["user_id"] == other


def test_32_concurrent_submitters_of_one_key_make_one_job(db, connect):
    conns = [connect() for _ in range(32)]
    barrier = threading.Barrier(len(conns))
    ids: list[uuid.UUID] = []
    errors: list[Exception] = []

    def submit_once(conn: psycopg.Connection) -> None:
        barrier.wait()
        try:
            ids.append(submit_with(conn, dedup_key="once"))
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=submit_once, args=(c,)) for c in conns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(ids) == 32 and len(set(ids)) == 1
    assert counts(db) == (1, 1)
    check_invariant(db)


# -- concurrency limits ------------------------------------------------------------


def test_a_limited_type_runs_at_most_its_limit_and_parks_the_rest(tx):
    add_job_type(tx, "limited", max_concurrency=2)
    limited = [submit(tx, "limited") for _ in range(5)]
    free = submit(tx)

    taken = [r["job_id"] for r in dequeue(tx, 10)]

    assert taken == [*limited[:2], free]
    assert value(tx, f"select count(*) from {QUEUE_TABLE} where vt = 'infinity'") == 3
    assert dequeue(tx, 10) == []


def test_a_finished_job_frees_its_slot_for_the_next_one(tx):
    add_job_type(tx, "limited", max_concurrency=1)
    first, second = submit(tx, "limited"), submit(tx, "limited")
    (taken,) = dequeue(tx, 10)
    assert taken["job_id"] == first

    tx.execute("select complete_job(%s, null, %s)", (first, taken["msg_id"]))

    assert [r["job_id"] for r in dequeue(tx, 10)] == [second]
    check_invariant(tx)


def test_raising_the_limit_wakes_waiting_jobs_at_once(tx):
    add_job_type(tx, "limited", max_concurrency=1)
    for _ in range(3):
        submit(tx, "limited")
    assert len(dequeue(tx, 10)) == 1

    tx.execute("update job_types set max_concurrency = 3 where name = 'limited'")

    assert len(dequeue(tx, 10)) == 2


def test_the_sweep_wakes_parked_jobs_of_a_type_with_free_slots(tx):
    add_job_type(tx, "limited", max_concurrency=1)
    job_ids = [submit(tx, "limited") for _ in range(2)]
    (taken,) = dequeue(tx, 10)
    # A finish that bypasses the trigger's wake-up: the sweep is the safety net.
    tx.execute("alter table jobs disable trigger jobs_900_sync_queue")
    tx.execute("update jobs set status = 'completed' where id = %s", (job_ids[0],))
    tx.execute("alter table jobs enable trigger jobs_900_sync_queue")
    tx.execute(f"delete from {QUEUE_TABLE} where msg_id = %s", (taken["msg_id"],))

    assert value(tx, "select recover_orphans() ->> 'parked_woken'") == "1"
    assert [r["job_id"] for r in dequeue(tx, 10)] == [job_ids[1]]


def test_a_limit_below_1_is_refused(tx):
    with raises(tx, "23514"):
        add_job_type(tx, "broken", max_concurrency=0)


def test_two_dequeues_in_concurrent_transactions_never_share_the_last_slot(db, connect):
    add_job_type(db, "limited", max_concurrency=1)
    for _ in range(2):
        submit(db, "limited")
    first, second = connect(autocommit=False), connect(autocommit=False)

    assert len(dequeue(first, 10)) == 1
    result: list[list[dict]] = []
    waiter = threading.Thread(target=lambda: result.append(dequeue(second, 10)))
    waiter.start()
    first.commit()
    waiter.join(timeout=30)
    second.commit()

    assert result == [[]]
    assert value(db, "select count(*) from jobs where status = 'processing'") == 1


# -- retry_job ---------------------------------------------------------------------


def test_retry_job_submits_a_failed_job_again_as_a_new_job(tx):
    failed = submit_with(tx, priority=7, job_parameters=Jsonb({"message": "again"}))
    msg_id = take(tx, failed)
    tx.execute("select fail_job(%s, 'boom', null, null, %s)", (failed, msg_id))

    retried = value(tx, "select retry_job(%s)", (failed,))

    new, old = job(tx, retried), job(tx, failed)
    assert (new["status"], new["retry_of"], new["priority"]) == ("pending", failed, 7)
    assert new["job_parameters"] == old["job_parameters"] == {"message": "again"}
    assert (old["status"], old["error_message"]) == ("failed", "boom")
    assert [r["job_id"] for r in dequeue(tx, 10)] == [retried]


def test_retry_job_of_a_job_that_is_not_failed_is_55000(tx):
    job_id = submit(tx)

    with raises(tx, "55000", "not failed"):
        tx.execute("select retry_job(%s)", (job_id,))


def test_retry_job_of_an_unknown_job_is_p0002(tx):
    with raises(tx, "P0002"):
        tx.execute("select retry_job(%s)", (uuid.uuid4(),))
