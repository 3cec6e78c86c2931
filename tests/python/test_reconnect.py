"""Reconnecting: backoff that grows with an outage, but never past a lease
the runner holds. No database is reached: the address refuses at once."""

from __future__ import annotations

import logging
import time
import uuid

from jobqueue.attempts import Attempt, Outcome
from jobqueue.db import Link
from jobqueue.handlers import Job
from jobqueue.runner import Runner, RunnerConfig

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"


def grown_outage(link: Link, attempts: int = 12) -> None:
    """An outage that has lasted long enough for the backoff to reach its cap."""
    link.lost(ConnectionError("gone"))
    link._backoff.attempts = attempts
    link.lost(ConnectionError("still gone"))


def test_backoff_reaches_its_cap_and_retry_by_brings_the_attempt_forward():
    link = Link(UNREACHABLE, application_name="t", log=logging.getLogger("t"))
    grown_outage(link)
    waiting = link.seconds_until_retry()
    assert waiting is not None and 5.0 - 0.1 <= waiting <= 10.0

    link.retry_by(time.monotonic() + 2.0)
    waiting = link.seconds_until_retry()
    assert waiting is not None and waiting <= 2.0

    link.retry_by(time.monotonic() + 3.0)  # later than planned: no change
    assert link.seconds_until_retry() <= 2.0


def test_retry_by_keeps_a_gap_after_the_last_attempt():
    link = Link(UNREACHABLE, application_name="t", log=logging.getLogger("t"))
    assert link.get() is None  # one attempt, refused
    grown_outage(link)

    link.retry_by(time.monotonic() - 5.0, min_gap=0.5)
    waiting = link.seconds_until_retry()
    assert waiting is not None and waiting > 0.3


def test_retry_by_does_nothing_while_connected_or_before_any_loss():
    link = Link(UNREACHABLE, application_name="t", log=logging.getLogger("t"))
    link.retry_by(time.monotonic() + 1.0)
    assert link.seconds_until_retry() == 0.0


def test_a_runner_holding_a_result_retries_before_its_lease_ends():
    runner = Runner(RunnerConfig(UNREACHABLE, visibility_timeout=30, listen=False))
    job = Job(uuid.uuid4(), 7, "t", uuid.uuid4(), {}, 0)
    now = time.monotonic()
    attempt = Attempt(job, None, now - 25, lease_until=now + 5, extend_at=now - 10)
    runner._results.add(Outcome(attempt, 0.1, data_references="{}"))
    grown_outage(runner._db)

    runner._wait_seconds()

    waiting = runner._db.seconds_until_retry()
    assert waiting is not None and waiting <= 4.0  # a second before the lease ends
