"""The runner's parts on their own, against the real database where they
talk to it: slots, the result recorder, the lease keeper."""

from __future__ import annotations

import time
import uuid
from typing import Any

import psycopg
from jobqueue.attempts import Attempt, Outcome
from jobqueue.config import RunnerConfig
from jobqueue.handlers import Job
from jobqueue.leases import LeaseKeeper
from jobqueue.results import ResultRecorder
from jobqueue.slots import Slots
from jobqueue.tally import Tally
from support.waiting import wait_for

USER = uuid.UUID("00000000-0000-4000-8000-0000000000aa")


def attempt_of(row: tuple[Any, ...], lease_seconds: float = 30) -> Attempt:
    """An attempt of a dequeue_jobs row, as the runner's intake makes it."""
    job_id, msg_id, job_type, user_id, parameters, retry_count = row
    job = Job(job_id, msg_id, job_type, user_id, parameters or {}, retry_count)
    now = time.monotonic()
    return Attempt(job, None, now, now + lease_seconds, now + lease_seconds / 2)


def dequeue(db: psycopg.Connection, visibility_timeout: int = 30) -> list[tuple[Any, ...]]:
    return db.execute(
        "select job_id, msg_id, job_type, user_id, job_parameters, retry_count"
        " from dequeue_jobs(1, %s)",
        (visibility_timeout,),
    ).fetchall()


def test_two_attempts_of_one_job_hold_a_slot_each():
    job_id = uuid.uuid4()
    hung = Attempt(Job(job_id, 1, "t", USER, {}, 0), None, 0.0, 0.0, 0.0)
    retry = Attempt(Job(job_id, 2, "t", USER, {}, 1), None, 0.0, 0.0, 0.0)
    hung.lost = True
    slots = Slots(2)

    slots.take(hung)
    slots.take(retry)

    assert (len(slots), slots.free()) == (2, 0)
    assert slots.leased() == [retry] and slots.hung() == [hung]
    slots.release(hung)
    assert retry in slots and hung not in slots
    assert (len(slots), slots.free()) == (1, 1)


def test_results_of_two_attempts_of_one_job_in_one_batch_are_told_apart(db):
    db.execute(
        "insert into job_types (name, max_retries, retry_backoff_seconds) values ('t2', 1, 1)"
    )
    job_id = db.execute("select submit_job('t2', '{}'::jsonb, %s)", (USER,)).fetchone()[0]
    [first] = dequeue(db, visibility_timeout=1)
    # Its lease runs out: a later dequeue times the attempt out, and once the
    # retry's backoff is over, hands out the retry.
    [second] = wait_for(lambda: dequeue(db), what="the retry")
    assert (second[0], second[5]) == (job_id, 1)
    tally = Tally()
    recorder = ResultRecorder(RunnerConfig("unused"), tally, "r")
    recorder.add(Outcome(attempt_of(first), 0.1, data_references='{"attempt": 1}'))
    recorder.add(Outcome(attempt_of(second), 0.1, data_references='{"attempt": 2}'))

    recorder.record(db)

    assert (tally.counts["completed"], tally.counts["dropped"]) == (1, 1)
    row = db.execute("select status, data_references from jobs where id = %s", (job_id,))
    assert row.fetchone() == ("completed", {"attempt": 2})
    assert len(recorder) == 0


def test_the_lease_keeper_keeps_the_lease_the_database_granted_not_the_one_asked(db):
    # Attempts of this type may last 10 s; the runner asks 30 s at a time.
    db.execute("insert into job_types (name, timeout_seconds) values ('t10', 10)")
    db.execute("select submit_job('t10', '{}'::jsonb, %s)", (USER,))
    [row] = dequeue(db)
    config = RunnerConfig("unused", visibility_timeout=30)
    slots, tally = Slots(1), Tally()
    keeper = LeaseKeeper(config, slots, ResultRecorder(config, tally, "r"), tally)
    attempt = attempt_of(row)
    attempt.extend_at = time.monotonic()  # due now
    slots.take(attempt)

    before = time.monotonic()
    keeper.extend_due(db)
    after = time.monotonic()

    left = db.execute(
        "select extract(epoch from vt - clock_timestamp())::float8"
        " from jobqueue.queue_messages where msg_id = %s",
        (attempt.job.msg_id,),
    ).fetchone()[0]
    runner_left = attempt.lease_until - time.monotonic()
    assert left <= 10
    # The runner's lease ends with the database's, a little sooner if at all.
    assert left - 0.5 <= runner_left <= left
    # Renewed halfway through the lease granted: 2 * extend_at - lease_until
    # is the moment the keeper asked.
    assert before <= 2 * attempt.extend_at - attempt.lease_until <= after
    assert not attempt.lost
