"""Recording results: complete_jobs and fail_jobs for the outcomes waiting,
sent with the next dequeue_jobs call in one transaction.

The database may answer for a result in three ways besides recording it:

- the attempt is gone (complete_jobs or fail_jobs report it lease_lost,
  not_processing or not_found; 55000 or P0002 from the one-job forms): the
  result is dropped;
- the result itself is refused (a data exception: say, a string the jsonb
  type does not take): the job fails as ResultRejected instead;
- any other refusal says nothing about the result (a lock or statement
  timeout, a read-only server, the package being upgraded): the result is
  kept and sent again every poll interval while its lease lasts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg

from . import errors, queries
from .attempts import Attempt, Outcome, error_outcome
from .config import RunnerConfig
from .intake import DequeueCall
from .tally import Tally

# 55000: the attempt is no longer current; P0002: the job is gone.
ATTEMPT_GONE = frozenset({"55000", "P0002"})
# What complete_jobs() and fail_jobs() answer for an attempt that is gone.
_REFUSALS = frozenset({"lease_lost", "not_processing", "not_found"})


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a call of ResultRecorder.record did besides recording."""

    dequeued: list[Any] | None  # the rows of the dequeue_jobs call, when it ran
    one_by_one: bool  # a refusal rolled the batch back, and the dequeue with it


class ResultRecorder:
    """Holds the outcomes waiting to be recorded, and records them."""

    def __init__(self, config: RunnerConfig, tally: Tally, runner_name: str) -> None:
        self.config = config
        self._tally = tally
        self._runner_name = runner_name
        self._waiting: list[Outcome] = []
        self.due = 0.0  # when results the database refused may be sent again

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, outcome: Outcome) -> None:
        self._waiting.append(outcome)

    def is_due(self) -> bool:
        return bool(self._waiting) and time.monotonic() >= self.due

    def leased(self) -> list[Attempt]:
        """The attempts whose result waits, and whose lease this runner holds."""
        return [o.attempt for o in self._waiting if not o.attempt.lost]

    def drop(self, attempt: Attempt, error: errors.JobQueueError) -> None:
        """The attempt's lease is gone: its waiting result with it."""
        dropped = [o for o in self._waiting if o.attempt is attempt]
        self._waiting = [o for o in self._waiting if o.attempt is not attempt]
        for outcome in dropped:
            self._tally.gone(outcome, error.describe())

    def record(self, conn: psycopg.Connection[Any], dequeue: DequeueCall | None = None) -> Recorded:
        """Records every waiting result, and makes the `dequeue` call: all in
        one transaction when possible (one round trip and one commit for the
        lot), else one by one to isolate a refusal."""
        batch, self._waiting = self._waiting, []
        rows: list[Any] | None = None
        try:
            if len(batch) == 1 and dequeue is None:
                statuses = [self._send(conn, batch[0])]
            else:
                statuses, rows = self._send_batch(conn, batch, dequeue)
        except psycopg.Error as exc:
            if errors.is_retryable(exc):
                self._waiting = batch + self._waiting
                raise
            # One of them was refused, and the transaction took the rest
            # (and the dequeue) down with it: record each on its own.
            self._record_each(conn, batch)
            return Recorded(dequeued=None, one_by_one=True)
        for outcome, status in zip(batch, statuses, strict=True):
            if status in _REFUSALS:
                self._tally.gone(outcome, status.replace("_", " "))
            else:
                self._tally.recorded(outcome, status)
        return Recorded(dequeued=rows, one_by_one=False)

    def _record_each(self, conn: psycopg.Connection[Any], batch: list[Outcome]) -> None:
        kept: list[Outcome] = []
        for i, outcome in enumerate(batch):
            try:
                if not self._record_one(conn, outcome):
                    kept.append(outcome)
            except psycopg.Error:
                self._waiting = kept + batch[i:] + self._waiting
                raise
        if kept:
            self._waiting = kept + self._waiting
            self.due = time.monotonic() + self.config.poll_interval

    def _send(self, conn: psycopg.Connection[Any], outcome: Outcome) -> str:
        cur = conn.execute(*_finish_call(outcome))
        return "completed" if outcome.ok else _fetch_status(cur)

    def _send_batch(
        self, conn: psycopg.Connection[Any], batch: list[Outcome], dequeue: DequeueCall | None
    ) -> tuple[list[str], list[Any] | None]:
        """Sends the batch as at most three statements: complete_jobs() for
        its completions, fail_jobs() for its failures (set-based: one call
        costs the client and the server far less than one per job; an
        attempt that is gone is reported, not raised), and the dequeue_jobs
        call.

        They go out in pipeline mode without a Sync between them, so the
        server runs them as ONE implicit transaction: one commit for the
        lot, and a refusal of any call rolls all of them back."""
        completes = [o for o in batch if o.ok]
        fails = [o for o in batch if not o.ok]
        completed = failed = dequeued = None
        with conn.pipeline():
            if completes:
                completed = conn.execute(
                    queries.get("job_complete_many"), _complete_arrays(completes)
                )
            if fails:
                failed = conn.execute(queries.get("job_fail_many"), _fail_arrays(fails))
            if dequeue is not None:
                dequeued = dequeue.send(conn)
        # One row per element, in order: matched by position, not by job id,
        # since one batch may hold the results of two attempts of one job.
        status_of: dict[Outcome, str] = {}
        for outcomes, cursor in ((completes, completed), (fails, failed)):
            if cursor is not None:
                rows = cursor.fetchall()
                status_of.update(zip(outcomes, (str(r[1]) for r in rows), strict=True))
        statuses = [status_of[o] for o in batch]
        return statuses, (dequeued.fetchall() if dequeued else None)

    def _record_one(self, conn: psycopg.Connection[Any], outcome: Outcome) -> bool:
        """Records one result on its own; an attempt that is gone drops it.
        False when the result is kept to be sent again later."""
        try:
            status = self._send(conn, outcome)
        except psycopg.Error as exc:
            if errors.is_retryable(exc):
                raise
            error = errors.from_psycopg(exc, lease=True)
            if exc.sqlstate in ATTEMPT_GONE:
                self._tally.gone(outcome, error.describe())
            elif errors.refuses_value(exc) and outcome.error_type != "ResultRejected":
                # The result itself was refused (say, a string the jsonb type
                # does not take): fail the job with the reason instead.
                return self._record_one(conn, self._rejected(outcome, error))
            else:
                # A refusal that says nothing about the result: keep it, and
                # try again while the lease lasts.
                return self._keep(outcome, error)
            return True
        self._tally.recorded(outcome, status)
        return True

    def _keep(self, outcome: Outcome, error: errors.JobQueueError) -> bool:
        """Keeps a refused result for another try, unless its lease is over."""
        attempt = outcome.attempt
        if time.monotonic() >= attempt.lease_until:
            self._tally.ran_out(outcome, error)
            return True
        if not attempt.refused:
            attempt.refused = True  # said once per attempt
            self._tally.refused(outcome, error)
        return False

    def _rejected(self, outcome: Outcome, error: errors.JobQueueError) -> Outcome:
        """A failure to record instead of a result the database refused."""
        what = "result" if outcome.ok else f"error ({outcome.error_type})"
        return error_outcome(
            outcome.attempt,
            "ResultRejected",
            f"the database refused the handler's {what}: {error.message}",
            {"sqlstate": error.sqlstate, "runner": self._runner_name},
        )


def _finish_call(outcome: Outcome) -> tuple[str, dict[str, Any]]:
    job = outcome.attempt.job
    if outcome.ok:
        return queries.get("job_complete"), {
            "job_id": job.job_id,
            "data_references": outcome.data_references,
            "msg_id": job.msg_id,
        }
    return queries.get("job_fail"), {
        "job_id": job.job_id,
        "error_message": outcome.error_message,
        "error_type": outcome.error_type,
        "error_context": outcome.error_context,
        "msg_id": job.msg_id,
    }


def _complete_arrays(outcomes: list[Outcome]) -> dict[str, list[Any]]:
    return {
        "job_ids": [o.attempt.job.job_id for o in outcomes],
        "data_references": [o.data_references for o in outcomes],
        "msg_ids": [o.attempt.job.msg_id for o in outcomes],
    }


def _fail_arrays(outcomes: list[Outcome]) -> dict[str, list[Any]]:
    return {
        "job_ids": [o.attempt.job.job_id for o in outcomes],
        "error_messages": [o.error_message for o in outcomes],
        "error_types": [o.error_type for o in outcomes],
        "error_contexts": [o.error_context for o in outcomes],
        "msg_ids": [o.attempt.job.msg_id for o in outcomes],
    }


def _fetch_status(cur: psycopg.Cursor[Any]) -> str:
    row = cur.fetchone()
    return str(row[0]) if row else "failed"
