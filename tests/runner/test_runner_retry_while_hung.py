"""A handler outlives its lease, its job is retried, and the same runner takes
the retry while the hung handler still runs: two attempts of one job, each
holding a slot and a lease of its own.

The runner runs in this process (in a thread), so that the handlers can be
held and released by the test; everything else is the real database.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from jobqueue import HandlerRegistry, Job
from jobqueue.runner import Runner, RunnerConfig
from support.jobs import add_job_type, job, status, submit
from support.waiting import wait_for

HUNG_TYPE = "test_hung_first_attempt"
QUICK_TYPE = "test_quick"
# Short enough for the first attempt to lose its lease quickly, long enough
# for the retry to run a few lease extensions within it.
TIMEOUT_SECONDS = 5


class Attempts:
    """The handler of HUNG_TYPE: each attempt says it started and waits to be
    released; the runs are counted per attempt."""

    def __init__(self) -> None:
        self.started = {1: threading.Event(), 2: threading.Event()}
        self.release = {1: threading.Event(), 2: threading.Event()}
        self.msg_ids: dict[int, int] = {}
        self.runs: Counter[int] = Counter()
        self._lock = threading.Lock()

    def handler(self, job: Job) -> dict[str, Any]:
        attempt = job.retry_count + 1
        with self._lock:
            self.runs[attempt] += 1
            self.msg_ids[attempt] = job.msg_id
        self.started[attempt].set()
        self.release[attempt].wait(timeout=120)
        return {"attempt": attempt}

    def release_all(self) -> None:
        for event in self.release.values():
            event.set()


@pytest.fixture
def attempts() -> Iterator[Attempts]:
    held = Attempts()
    yield held
    held.release_all()


@pytest.fixture
def in_process_runner(new_db: str, attempts: Attempts) -> Iterator[Runner]:
    registry = HandlerRegistry(
        {HUNG_TYPE: attempts.handler, QUICK_TYPE: lambda job: {"quick": True}}
    )
    config = RunnerConfig(
        new_db, concurrency=2, visibility_timeout=1, poll_interval=0.1, listen=False
    )
    runner = Runner(config, registry)
    thread = threading.Thread(target=runner.run, name="test-runner", daemon=True)
    thread.start()
    yield runner
    attempts.release_all()
    runner.request_stop()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the runner did not stop"


def lease_end(db: psycopg.Connection, msg_id: int) -> datetime | None:
    row = db.execute(
        "select vt from jobqueue.queue_messages where msg_id = %s", (msg_id,)
    ).fetchone()
    return row[0] if row else None


def wait_for_extensions(db: psycopg.Connection, msg_id: int, what: str, count: int = 2) -> None:
    """Waits until the runner has extended the lease `count` more times."""
    for _ in range(count):
        before = lease_end(db, msg_id)
        assert before is not None, f"the message of {what} is gone"

        def extended(before: datetime = before) -> bool:
            end = lease_end(db, msg_id)
            return end is not None and end > before

        wait_for(extended, timeout=10, what=f"the lease of {what} to be extended")


def test_a_retry_taken_while_its_hung_attempt_runs_keeps_its_slot_and_lease(
    db, attempts, in_process_runner, caplog
):
    caplog.set_level(logging.INFO, logger="jobqueue.runner")
    add_job_type(
        db, HUNG_TYPE, timeout_seconds=TIMEOUT_SECONDS, max_retries=1, retry_backoff_seconds=1
    )
    add_job_type(db, QUICK_TYPE)
    job_id = submit(db, HUNG_TYPE)

    # The first attempt hangs past its type's timeout: its lease is refused,
    # the job times out and is retried, and this runner takes the retry.
    wait_for(attempts.started[1].is_set, what="the first attempt to start")
    wait_for(
        attempts.started[2].is_set,
        timeout=TIMEOUT_SECONDS + 15,
        what="the same runner to take the retry",
    )
    assert any("lease lost" in m for m in caplog.messages)
    retry_msg = attempts.msg_ids[2]
    assert retry_msg != attempts.msg_ids[1]

    # Both slots are taken, one by each attempt: a new job waits.
    waiting = submit(db, QUICK_TYPE)
    wait_for_extensions(db, retry_msg, "the retry")
    assert status(db, waiting) == "pending"

    # The hung handler returns: its result is dropped, its slot freed, and
    # the retry's lease is still kept.
    attempts.release[1].set()
    wait_for(
        lambda: any("handler returned" in m for m in caplog.messages),
        what="the runner to drop the hung attempt's result",
    )
    wait_for_extensions(db, retry_msg, "the retry, after the hung attempt returned")
    wait_for(lambda: status(db, waiting) == "completed", what="the waiting job to get the slot")

    attempts.release[2].set()
    wait_for(lambda: status(db, job_id) != "processing", what="the retry's result")
    row = job(db, job_id)
    assert (row["status"], row["retry_count"], row["data_references"]) == (
        "completed",
        1,
        {"attempt": 2},
    )
    assert attempts.runs == Counter({1: 1, 2: 1})
    assert not any("attempt gone" in m for m in caplog.messages)
