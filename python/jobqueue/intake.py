"""Taking jobs: when to call dequeue_jobs and for how many (never more than
the free slots), and handing each job it returns to a handler thread.

A job whose type has no handler in this runner is not run: its attempt ends
at once as a HandlerNotFound failure, recorded with the other results.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from . import queries
from .attempts import Attempt, Outcome, WorkerPool, error_outcome
from .config import RunnerConfig
from .handlers import HandlerRegistry, Job
from .slots import Slots


@dataclass(frozen=True, slots=True)
class DequeueCall:
    """One dequeue_jobs call: how many jobs it asks for, and when."""

    wanted: int
    visibility_timeout: int
    started: float  # monotonic, taken before the call: the leases end after it

    def send(self, conn: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
        params = {"batch_size": self.wanted, "visibility_timeout": self.visibility_timeout}
        return conn.execute(queries.get("job_dequeue"), params)


class Intake:
    """Decides when to take jobs, and starts the handlers of those taken."""

    def __init__(
        self,
        config: RunnerConfig,
        registry: HandlerRegistry,
        slots: Slots,
        pool: WorkerPool,
        post_result: Callable[[Outcome], None],
        runner_name: str,
    ) -> None:
        self.config = config
        self.registry = registry
        self._slots = slots
        self._pool = pool
        self._post_result = post_result
        self._runner_name = runner_name
        self.more_work = True  # the queue may hold visible messages
        self.last_dequeue = 0.0

    def should_dequeue(self, *, stopping: bool, confirm_empty: bool) -> bool:
        """Whether to call dequeue_jobs now. `confirm_empty`: the runner
        would exit (--burst) once the queue is seen empty."""
        if stopping or self._slots.free() <= 0:
            return False
        if self.more_work or confirm_empty:
            return True
        return time.monotonic() >= self.next_poll()

    def next_poll(self) -> float:
        return self.last_dequeue + self.config.poll_interval

    def call(self) -> DequeueCall:
        """The dequeue_jobs call for the free slots."""
        call = DequeueCall(
            wanted=min(self.config.dequeue_size, self._slots.free()),
            visibility_timeout=self.config.visibility_timeout,
            started=time.monotonic(),
        )
        # Set before the call, so that a failing call is not retried in a spin.
        self.last_dequeue = call.started
        self.more_work = False
        return call

    def dequeue(self, conn: psycopg.Connection[Any], call: DequeueCall) -> int:
        """Makes the call and starts the jobs it returns; how many."""
        return self.take(call.send(conn).fetchall(), call)

    def take(self, rows: list[Any], call: DequeueCall) -> int:
        """Starts the handlers of the jobs dequeue_jobs returned; how many."""
        self.more_work = len(rows) == call.wanted
        if not rows:
            return 0
        lease_until = call.started + call.visibility_timeout
        extend_at = call.started + call.visibility_timeout / 2
        for job_id, msg_id, job_type, user_id, parameters, retry_count in rows:
            job = Job(job_id, msg_id, job_type, user_id, parameters or {}, retry_count)
            fn = self.registry.get(job_type)
            attempt = Attempt(job, fn, call.started, lease_until, extend_at)
            if fn is None:
                self._post_result(self._no_handler(attempt))
                continue
            self._slots.take(attempt)
            self._pool.submit(attempt)
        if len(self._slots) and self._slots.free() == 0:
            self._slots.warn_if_all_hung()
        return len(rows)

    def _no_handler(self, attempt: Attempt) -> Outcome:
        job_type = attempt.job.job_type
        name = self._runner_name
        return error_outcome(
            attempt,
            "HandlerNotFound",
            f"no handler registered for job type {job_type!r} in runner {name}",
            {"job_type": job_type, "handlers": self.registry.names(), "runner": name},
        )
