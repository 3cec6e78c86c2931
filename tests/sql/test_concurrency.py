"""Concurrent sessions: each job handed out once, no deadlock, and one legal end state.

Two kinds of tests: races started together behind a barrier and repeated,
and fixed step orders across two sessions, where the second session's call
is known to wait for the first one's locks (pg_blocking_pids) before the
first one commits.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from support.jobs import add_job_type, job, messages, submit, value

from .support import (
    check_invariant,
    dequeue,
    make_visible,
    msg_ids,
    send_raw,
    submit_many,
    take,
    wait_until_blocked,
)

# A call that waits longer than this for a lock fails instead of hanging the suite.
LOCK_TIMEOUT = "20s"
# Errors a concurrent call may legitimately end with: its attempt is gone.
LEASE_LOST = "55000"


class Background:
    """Runs one call in a thread on its own connection; join() gives its result or error."""

    def __init__(self, conn: psycopg.Connection, call: Callable[[psycopg.Connection], Any]):
        self.conn = conn
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self._thread.start()

    def _run(self, call: Callable[[psycopg.Connection], Any]) -> None:
        try:
            self.result = call(self.conn)
        except BaseException as error:  # handed to the test by join()
            self.error = error

    def join(self) -> Any:
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the background call did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Starts every call at once (a barrier) in its own thread; returns results or errors."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = calls[index]()
        except Exception as error:  # compared by the test
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a concurrent call did not finish"
    return outcomes


@pytest.fixture
def session(connect) -> Callable[..., psycopg.Connection]:
    """Opens a connection whose lock waits are bounded by LOCK_TIMEOUT."""

    def _open(**kwargs) -> psycopg.Connection:
        conn = connect(**kwargs)
        conn.execute(f"set lock_timeout = '{LOCK_TIMEOUT}'")
        if not conn.autocommit:
            conn.commit()
        return conn

    return _open


def unexpected(outcomes: list[Any], allowed: tuple[str, ...] = ()) -> list[Any]:
    return [
        o
        for o in outcomes
        if isinstance(o, Exception) and getattr(o, "sqlstate", None) not in allowed
    ]


# --- several dequeuers ---------------------------------------------------------


def test_concurrent_dequeuers_hand_out_each_job_exactly_once(db, session):
    ids = submit_many(db, 400)
    workers = [session() for _ in range(4)]

    def drain(conn: psycopg.Connection) -> Callable[[], list[tuple]]:
        def run() -> list[tuple]:
            taken = []
            while batch := dequeue(conn, 7, 600):
                taken += [(r["job_id"], r["msg_id"]) for r in batch]
            return taken

        return run

    outcomes = run_together([drain(w) for w in workers])

    assert unexpected(outcomes) == []
    taken = [t for outcome in outcomes for t in outcome]
    assert Counter(job_id for job_id, _ in taken).most_common(1)[0][1] == 1
    assert sorted(job_id for job_id, _ in taken) == sorted(ids)
    assert len({msg_id for _, msg_id in taken}) == len(ids)
    assert value(db, "select count(*) from jobs where status = 'processing'") == len(ids)
    check_invariant(db)


def test_concurrent_dequeuers_and_sweeps_amid_junk_hand_out_each_pending_job_once(db, session):
    # Retries wait an hour: none comes back while the workers drain.
    add_job_type(db, "flaky", max_retries=1, retry_backoff_seconds=3600)
    abandoned = [submit(db, "flaky") for _ in range(10)] + [submit(db) for _ in range(10)]
    for job_id in abandoned:
        take(db, job_id)
    make_visible(db)
    gone = submit_many(db, 30)
    db.execute("delete from jobs where id = any(%s)", (gone,))
    for i in range(10):
        send_raw(db, {"poison": i})
    pending = submit_many(db, 200)
    workers = [session() for _ in range(3)]
    sweeper = session()

    def drain(conn: psycopg.Connection) -> Callable[[], list]:
        def run() -> list:
            taken = []
            while batch := dequeue(conn, 5, 600):
                taken += [r["job_id"] for r in batch]
            return taken

        return run

    def sweep() -> list:
        return [value(sweeper, "select recover_orphans()") for _ in range(20)]

    outcomes = run_together([*(drain(w) for w in workers), sweep])

    assert unexpected(outcomes) == []
    taken = [job_id for outcome in outcomes[:-1] for job_id in outcome]
    assert sorted(taken) == sorted(pending)
    assert value(db, "select count(*) from pgmq.q_job_queue where vt <= clock_timestamp()") == 0
    statuses = {job_id: job(db, job_id) for job_id in abandoned}
    assert {(r["status"], r["error_type"]) for r in statuses.values()} == {
        ("pending", "JobTimeout"),
        ("failed", "JobTimeout"),
    }
    check_invariant(db)


# --- complete, fail, recover, cancel, dequeue on the same job ------------------------------


@pytest.mark.parametrize("max_retries", [0, 1])
def test_racing_calls_on_one_job_never_deadlock_and_end_in_one_legal_state(
    db, session, max_retries
):
    # A retry waits an hour: it cannot be handed out again within a round.
    add_job_type(db, "racer", max_retries=max_retries, retry_backoff_seconds=3600)
    finisher, sweeper, canceller, dequeuer = (session() for _ in range(4))

    def race(job_id, msg_id) -> list[Any]:
        return run_together(
            [
                lambda: finisher.execute(
                    "select complete_job(%s, '{\"done\": true}', %s)", (job_id, msg_id)
                ).fetchone(),
                lambda: value(sweeper, "select recover_orphans()"),
                lambda: value(canceller, "select cancel_job(%s)", (job_id,)),
                lambda: dequeue(dequeuer, 1, 600),
            ]
        )

    for _ in range(12):
        job_id = submit(db, "racer")
        msg_id = take(db, job_id)
        make_visible(db, msg_id)  # its lease has expired: the sweep may take it too

        outcomes = race(job_id, msg_id)
        completed, swept, cancelled, dequeued = outcomes

        assert unexpected(outcomes, (LEASE_LOST,)) == []
        assert dequeued == [] or isinstance(dequeued, Exception)
        row = job(db, job_id)
        if not isinstance(completed, Exception):
            # The runner kept its lease: nobody else touched the job.
            assert (row["status"], row["error_type"]) == ("completed", None)
            assert cancelled is False
        else:
            assert completed.sqlstate == LEASE_LOST
            assert row["error_type"] in ("JobTimeout", "Cancelled")
            if cancelled is True:
                # Cancelled while processing, or after the sweep's retry.
                assert (row["status"], row["error_type"]) == ("failed", "Cancelled")
            elif max_retries == 0:
                assert (row["status"], row["error_type"]) == ("failed", "JobTimeout")
            else:
                assert (row["status"], row["retry_count"]) == ("pending", 1)
        assert isinstance(swept, dict)
        check_invariant(db)
        db.execute("delete from jobs")
        db.execute("select pgmq.purge_queue('job_queue')")


def test_racing_cancels_of_a_pending_job_cancel_it_once(db, session):
    conns = [session() for _ in range(4)]

    def race(job_id) -> list[Any]:
        return run_together(
            [lambda c=c: value(c, "select cancel_job(%s)", (job_id,)) for c in conns[:3]]
            + [lambda: dequeue(conns[3], 1, 600)]
        )

    for _ in range(10):
        job_id = submit(db)
        outcomes = race(job_id)

        assert unexpected(outcomes) == []
        cancels = outcomes[:3]
        # Pending or already taken, the job is cancelled exactly once.
        assert sorted(cancels) == [False, False, True]
        assert job(db, job_id)["error_type"] == "Cancelled"
        check_invariant(db)
        db.execute("delete from jobs")
        db.execute("select pgmq.purge_queue('job_queue')")


# --- fixed step orders across two sessions ------------------------------------------


def test_cancel_waits_for_a_dequeue_in_progress_then_cancels_the_running_job(db, session):
    job_id = submit(db)
    runner = session(autocommit=False)
    dequeue(runner)  # holds the message and the job until commit
    other = session()

    cancel = Background(other, lambda c: value(c, "select cancel_job(%s)", (job_id,)))
    wait_until_blocked(db, other)
    runner.commit()

    assert cancel.join() is True
    assert (job(db, job_id)["status"], job(db, job_id)["error_type"]) == ("failed", "Cancelled")
    assert msg_ids(db, job_id) == []


def test_a_dequeue_skips_a_message_that_a_cancel_holds(db, session):
    job_id = submit(db)
    canceller = session(autocommit=False)
    assert value(canceller, "select cancel_job(%s)", (job_id,)) is True

    assert dequeue(session(), 10) == []  # SKIP LOCKED: does not wait

    canceller.commit()
    assert dequeue(db, 10) == []
    assert job(db, job_id)["error_type"] == "Cancelled"
    check_invariant(db)


def test_a_second_dequeuer_skips_what_the_first_holds(db, session):
    first_id, second_id = submit_many(db, 2)
    first = session(autocommit=False)
    assert [r["job_id"] for r in dequeue(first)] == [first_id]

    assert [r["job_id"] for r in dequeue(session())] == [second_id]

    first.rollback()
    assert job(db, first_id)["status"] == "pending"
    assert [r["job_id"] for r in dequeue(db)] == [first_id]


def test_the_sweep_skips_a_job_whose_completion_is_in_progress(db, session):
    job_id = submit(db)
    msg_id = take(db, job_id)
    make_visible(db, msg_id)
    runner = session(autocommit=False)
    runner.execute("select complete_job(%s, null, %s)", (job_id, msg_id))

    swept = value(session(), "select recover_orphans()")  # must not wait for the runner

    assert swept["timed_out_failed"] == swept["timed_out_retried"] == 0
    runner.commit()
    assert job(db, job_id)["status"] == "completed"
    check_invariant(db)


def test_a_completion_waits_for_the_sweep_then_finds_its_lease_gone(db, session):
    job_id = submit(db)
    msg_id = take(db, job_id)
    make_visible(db, msg_id)
    sweeper = session(autocommit=False)
    assert value(sweeper, "select recover_orphans()")["timed_out_failed"] == 1
    runner = session()

    finish = Background(
        runner, lambda c: c.execute("select complete_job(%s, null, %s)", (job_id, msg_id))
    )
    wait_until_blocked(db, runner)
    sweeper.commit()

    with pytest.raises(psycopg.Error) as info:
        finish.join()
    assert info.value.sqlstate == LEASE_LOST
    assert (job(db, job_id)["status"], job(db, job_id)["error_type"]) == ("failed", "JobTimeout")
    check_invariant(db)


def test_a_lease_extension_waits_for_a_completion_then_finds_its_lease_gone(db, session):
    job_id = submit(db)
    msg_id = take(db, job_id)
    runner = session(autocommit=False)
    runner.execute("select complete_job(%s, null, %s)", (job_id, msg_id))
    heartbeat = session()

    extend = Background(
        heartbeat, lambda c: c.execute("select extend_job_lease(%s, %s, 60)", (job_id, msg_id))
    )
    wait_until_blocked(db, heartbeat)
    runner.commit()

    with pytest.raises(psycopg.Error) as info:
        extend.join()
    assert info.value.sqlstate == LEASE_LOST
    assert job(db, job_id)["status"] == "completed"


def test_a_cancel_that_waited_for_a_retry_deletes_the_retrys_message(db, session):
    add_job_type(db, "flaky", max_retries=1)
    job_id = submit(db, "flaky")
    msg_id = take(db, job_id)
    runner = session(autocommit=False)
    assert value(runner, "select fail_job(%s, 'x', msg_id => %s)", (job_id, msg_id)) == "pending"
    other = session()

    cancel = Background(other, lambda c: value(c, "select cancel_job(%s)", (job_id,)))
    wait_until_blocked(db, other)
    runner.commit()

    assert cancel.join() is True
    assert (job(db, job_id)["status"], job(db, job_id)["error_type"]) == ("failed", "Cancelled")
    assert messages(db, job_id) == []
    check_invariant(db)


def test_a_cancel_that_waited_for_a_re_send_deletes_the_new_message(db, session):
    job_id = submit(db)
    db.execute("select pgmq.purge_queue('job_queue')")
    sweeper = session(autocommit=False)
    assert value(sweeper, "select recover_orphans()")["orphans_requeued"] == 1
    other = session()

    cancel = Background(other, lambda c: value(c, "select cancel_job(%s)", (job_id,)))
    wait_until_blocked(db, other)
    sweeper.commit()

    assert cancel.join() is True
    assert job(db, job_id)["error_type"] == "Cancelled"
    assert messages(db, job_id) == []
    check_invariant(db)


def test_a_submit_in_progress_is_neither_dequeued_nor_recovered(db, session):
    submitter = session(autocommit=False)
    job_id = submit(submitter)

    assert dequeue(session(), 10) == []
    assert value(session(), "select recover_orphans()")["orphans_requeued"] == 0

    submitter.commit()
    assert [r["job_id"] for r in dequeue(db)] == [job_id]
