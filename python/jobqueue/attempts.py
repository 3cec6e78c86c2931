"""Attempts and their handlers: what a runner holds, and the threads that
run the handlers.

An `Attempt` is one job as dequeue_jobs handed it out, with its lease (the
msg_id) and the times the runner keeps it by. A handler's run ends in an
`Outcome`: a JSON result for complete_job, or an error for fail_job. The
`WorkerPool` is a fixed set of daemon threads, one per slot.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from .handlers import Handler, Job

# The tail of a handler's traceback kept in error_context.
_TRACEBACK_LINES = 30
_TRACEBACK_CHARS = 8000


@dataclass(slots=True, eq=False)
class Attempt:
    """A job this runner holds: its lease and its handler's progress."""

    job: Job
    handler: Handler | None
    started: float  # monotonic, taken before the dequeue call
    lease_until: float
    extend_at: float
    lost: bool = False  # the lease is gone: whatever the handler returns is dropped
    refused: bool = False  # the database refused its result once: said in the log


@dataclass(slots=True, eq=False)
class Outcome:
    """What a handler did; what complete_job or fail_job will record."""

    attempt: Attempt
    seconds: float
    data_references: str | None = None  # JSON text
    error_message: str | None = None
    error_type: str | None = None
    error_context: str | None = None  # JSON text

    @property
    def ok(self) -> bool:
        return self.error_type is None


def run_handler(attempt: Attempt, runner_name: str) -> Outcome:
    """Runs the attempt's handler; whatever it raises becomes a failure."""
    started = time.perf_counter()
    try:
        assert attempt.handler is not None
        result = attempt.handler(attempt.job)
        data = None if result is None else json.dumps(result, allow_nan=False)
    except BaseException as exc:  # a handler's failure, whatever it is, fails the job
        return failure(attempt, exc, time.perf_counter() - started, runner_name)
    return Outcome(attempt, time.perf_counter() - started, data_references=data)


def failure(attempt: Attempt, exc: BaseException, seconds: float, runner_name: str) -> Outcome:
    """The outcome of a handler that raised `exc`: message, class name and a
    context with the traceback's tail, for fail_job. Whatever the exception
    does when it is turned into text (raise, hold NULs or lone surrogates),
    the outcome is one PostgreSQL can store."""
    cls = type(exc)
    name = clean_text(_safe(lambda: cls.__name__, "an exception"))
    try:
        lines = traceback.format_exception(cls, exc, exc.__traceback__)
    except BaseException:  # the handler's own objects fail to format
        lines = [f"{name}: <its traceback could not be formatted>"]
    tail = "".join(lines[-_TRACEBACK_LINES:])[-_TRACEBACK_CHARS:]
    context = {
        "exception": clean_text(_safe(lambda: f"{cls.__module__}.{cls.__qualname__}", name)),
        "traceback": clean_text(tail),
        "attempt": attempt.job.retry_count + 1,
        "duration_ms": round(seconds * 1000, 3),
        "runner": runner_name,
    }
    message = _safe(lambda: str(exc), f"<{name} whose str() failed>")
    return Outcome(
        attempt,
        seconds,
        error_message=clean_text(message) or name,
        error_type=name,
        error_context=json.dumps(context),
    )


def _safe(describe: Callable[[], str], fallback: str) -> str:
    """describe(), or the fallback when the handler's object refuses."""
    try:
        text = describe()
    except BaseException:  # a __str__ of the handler's may raise anything
        return fallback
    return text if isinstance(text, str) else fallback


def error_outcome(
    attempt: Attempt, error_type: str, message: str, context: dict[str, object]
) -> Outcome:
    """An outcome the runner decides itself (no handler, a refused result)."""
    return Outcome(
        attempt,
        0.0,
        error_message=message,
        error_type=error_type,
        error_context=json.dumps(context),
    )


def clean_text(text: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL characters, and a lone
    # surrogate (which Python strings may hold) has no UTF-8 form: both are
    # written as backslash escapes instead.
    return text.replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode("utf-8")


class WorkerPool:
    """`size` daemon threads that run handlers and post their outcomes.

    Daemon threads, so that a hung handler cannot keep the process alive
    after the shutdown grace period."""

    def __init__(self, size: int, post: Callable[[Outcome], None], runner_name: str) -> None:
        self._tasks: queue.SimpleQueue[Attempt | None] = queue.SimpleQueue()
        self._post = post
        self._runner_name = runner_name
        self._threads = [
            threading.Thread(target=self._work, name=f"jobqueue-worker-{i}", daemon=True)
            for i in range(size)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, attempt: Attempt) -> None:
        self._tasks.put(attempt)

    def stop(self) -> None:
        """Lets idle threads end; busy ones end when their handler returns."""
        for _ in self._threads:
            self._tasks.put(None)

    def _work(self) -> None:
        while (attempt := self._tasks.get()) is not None:
            try:
                outcome = run_handler(attempt, self._runner_name)
            except BaseException as exc:  # a thread lost here is a slot lost for good
                outcome = self._unreadable(attempt, exc)
            self._post(outcome)

    def _unreadable(self, attempt: Attempt, exc: BaseException) -> Outcome:
        error = clean_text(_safe(lambda: repr(exc), type(exc).__name__))
        return error_outcome(
            attempt,
            "HandlerError",
            "the runner could not turn the handler's outcome into a result",
            {"error": error, "runner": self._runner_name},
        )
