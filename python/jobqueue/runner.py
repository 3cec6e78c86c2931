"""The runner: the sidecar that executes jobs.

It takes jobs (`dequeue_jobs`, never more than it has free slots), runs
their handlers under a concurrency cap, extends the lease of jobs that run
long, finishes each job (completed with the handler's return value, or
failed with the exception: `complete_jobs` and `fail_jobs`, the batch forms
of `complete_job` and `fail_job`, record a turn's results in one
transaction), and stops cleanly on a signal.

Parts, a module each, driven by the loop of this module (events, signals,
shutdown):

- intake.Intake decides when to call dequeue_jobs and for how many, and
  starts the handlers of the jobs it returns;
- slots.Slots holds the attempts in flight, one per worker thread;
- leases.LeaseKeeper extends their leases, and gives up the attempts whose
  lease is gone;
- results.ResultRecorder records their results, with the next dequeue_jobs
  call in one transaction;
- tally.Tally says what became of each attempt, and counts it.

Threads: the main thread owns the database connection and every decision;
`concurrency` worker threads (attempts.WorkerPool) only run handlers; a
listener thread (listener.Listener) waits for NOTIFY jobqueue on a
connection of its own. They talk through one queue of
events (a finished handler, a wake-up, a stop request), so the main thread
blocks on that queue when there is nothing to do: an idle runner uses no
CPU beyond one poll per --poll-interval (the fallback for a lost LISTEN
connection, and the way retries come back once their backoff delay ends).

Leases. The msg_id that dequeue_jobs returned is the attempt's lease, passed
to every later call. A job still running after half the visibility timeout
gets its lease extended by another visibility timeout, again and again until
its job type's timeout_seconds: near that limit the database grants less
than asked, and the runner keeps the lease it was granted. When
complete_jobs or fail_jobs reports an attempt as lease_lost, not_processing
or not_found, or extend_job_lease answers 55000 or P0002, the attempt is
gone (timed out, cancelled, recovered, deleted): the runner logs it and
drops the result.

Hung handlers. A Python thread cannot be stopped from outside. A handler
that outlives its job type's timeout_seconds loses its lease (the extension
is refused), recovery fails or retries the job (JobTimeout), and any runner
may take it again, this one included: attempts are told apart by their
msg_id, so the retry holds a slot and a lease of its own beside the hung
attempt. The runner logs that, and drops whatever the hung handler returns
later; but its slot stays occupied until the handler's thread returns.
The runner never starts more handler threads than --concurrency, because
concurrency is also the cap on the load handlers put on what they call: a
hung handler usually still holds a socket, a lock or a subprocess, and
starting a replacement next to it would exceed the cap, and grow the
thread count without bound if handlers keep hanging. A runner whose slots
are all held by hung handlers says so in its log; its leases are gone, so
other runners carry on with the work. On shutdown such threads are left
behind (they are daemon threads), and the process exits.

Versions. Before it takes any job, the runner checks the database's
jobqueue version (jobqueue.installed_version(), see versions.py): it works
with the same major version and the same or a later minor one. Otherwise it
logs one line saying which to upgrade, and exits 1. While the database is
out of reach at start, the runner reconnects as below, and checks on the
first connection.

Database errors never stop the runner. A lost connection (class 08, 57P01,
a broken socket), a serialization failure or a deadlock is retried after
reconnecting with capped exponential backoff and jitter; results wait for
the connection and are recorded once it is back (a 55000 then means the
lease ran out meanwhile: logged, dropped). Any other error is logged.

Signals. SIGTERM or SIGINT: no new work; running handlers get
--shutdown-grace seconds to finish and have their results recorded; then
the runner exits 0. A second signal ends the wait at once. With --burst the
runner exits 0 as soon as dequeue_jobs returns nothing while nothing is in
flight (retries still waiting for their backoff are left for a later run).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

import psycopg

import jobqueue

from . import errors, versions
from .attempts import Outcome, WorkerPool
from .config import RunnerConfig
from .db import Link
from .handlers import HandlerRegistry, default_registry
from .intake import DequeueCall, Intake
from .leases import LeaseKeeper
from .listener import Listener
from .results import ResultRecorder
from .slots import Slots
from .tally import Tally

__all__ = ["Runner", "RunnerConfig", "run"]

log = logging.getLogger("jobqueue.runner")

# The database's version does not fit this runner's: as the CLI's refusals.
EXIT_REFUSED = 1


@dataclass(slots=True)
class _Stop:
    signum: int


_WAKE = object()  # a NOTIFY arrived, or the listener (re)connected
Event = Outcome | _Stop | object


class _PipelineExitNoise(logging.Filter):
    """Drops psycopg's "error ignored terminating <Pipeline>" warnings: they
    repeat a lost connection that the runner reports itself, once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("error ignored terminating")


_PSYCOPG_FILTER = _PipelineExitNoise()


class Runner:
    """Takes jobs, runs handlers under a concurrency cap, extends leases of
    long jobs, finishes each job, stops cleanly on a signal."""

    def __init__(self, config: RunnerConfig, registry: HandlerRegistry | None = None) -> None:
        self.config = config
        self.registry = registry or default_registry
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._db = Link(config.database_url, application_name="jobqueue-runner", log=log)
        self._pool = WorkerPool(config.concurrency, self._events.put, self.name)
        self._listener = Listener(config.database_url, self._wake) if config.listen else None
        self._tally = Tally()
        self._slots = Slots(config.concurrency)
        self._results = ResultRecorder(config, self._tally, self.name)
        self._leases = LeaseKeeper(config, self._slots, self._results, self._tally)
        self._intake = Intake(
            config, self.registry, self._slots, self._pool, self._results.add, self.name
        )
        self._started = False  # the database's version was checked, and fits
        self._refused = False  # it does not fit: the runner ends at once
        self._stopping = False
        self._grace_deadline = 0.0
        self._drained = False  # --burst: nothing left and nothing in flight
        self._last_error: str | None = None  # the last unexpected database error, logged once

    # -- the loop ------------------------------------------------------------------

    def run(self) -> int:
        """Runs until stopped (or drained, with burst); returns the exit code:
        0, or EXIT_REFUSED when the database's version does not fit."""
        previous = self._install_signal_handlers()
        logging.getLogger("psycopg").addFilter(_PSYCOPG_FILTER)  # once: filters are a set
        try:
            while not self._finished():
                self._collect(self._wait_seconds())
                self._step()
        finally:
            self._restore_signal_handlers(previous)
            self._pool.stop()
            if self._listener:
                self._listener.stop()
            self._db.close()
        if self._refused:
            return EXIT_REFUSED
        self._tally.summary(self.name)
        return 0

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Asks the runner to stop (safe from a signal handler or any thread)."""
        self._events.put(_Stop(signum))

    def _step(self) -> None:
        """One turn: record results, keep leases, take work."""
        conn = self._db.get()
        if conn is None:
            return
        try:
            if not self._started and not self._start(conn):
                return
            if len(self._slots) or len(self._results):
                self._leases.extend_due(conn)
            call = self._intake.call() if self._should_dequeue() else None
            if self._results.is_due():
                recorded = self._results.record(conn, call)
                if recorded.one_by_one:
                    self._intake.more_work = True
                elif call is not None and recorded.dequeued is not None:
                    self._take(recorded.dequeued, call)
            elif call is not None:
                self._take(call.send(conn).fetchall(), call)
            self._last_error = None
        except psycopg.Error as exc:
            if errors.is_connection_loss(exc):
                self._db.lost(exc)
            elif errors.is_retryable(exc):
                # A serialization failure or deadlock: go again at once.
                log.info("retrying after %s", errors.from_psycopg(exc).describe())
                self._intake.more_work = True
            else:
                # An answer we did not expect (say, a grant missing): say it
                # once, and try again every poll interval.
                text = errors.from_psycopg(exc).describe()
                if text != self._last_error:
                    log.error("database error (retrying every poll interval): %s", text)
                self._last_error = text
                self._intake.more_work = False
                self._intake.last_dequeue = time.monotonic()

    def _start(self, conn: psycopg.Connection[Any]) -> bool:
        """Checks the database's version on the first connection; when it
        fits, starts the handler threads and the listener. False when this
        runner must not work with the database: said in one line."""
        database_version, refusal = versions.check(conn, jobqueue.__version__)
        if refusal is not None:
            log.error("%s", refusal)
            self._refused = True
            return False
        self._started = True
        cfg = self.config
        log.info(
            "runner %s started (jobqueue %s, database %s): concurrency %d, batch size %d, "
            "visibility timeout %d s, handlers for %s%s",
            self.name,
            jobqueue.__version__,
            database_version,
            cfg.concurrency,
            cfg.dequeue_size,
            cfg.visibility_timeout,
            ", ".join(self.registry.names()) or "no job type",
            ", burst" if cfg.burst else "",
        )
        self._pool.start()
        if self._listener:
            self._listener.start()
        return True

    def _should_dequeue(self) -> bool:
        return self._intake.should_dequeue(
            stopping=self._stopping,
            # --burst: confirm the queue is empty before exiting
            confirm_empty=self.config.burst and self._idle() and not self._last_error,
        )

    def _take(self, rows: list[Any], call: DequeueCall) -> None:
        if not self._intake.take(rows, call) and self.config.burst and self._idle():
            self._drained = True

    def _idle(self) -> bool:
        """Nothing running, and no result waiting."""
        return not len(self._slots) and not len(self._results)

    def _finished(self) -> bool:
        if self._refused:
            return True
        if self._drained:
            log.info("burst: no job left and nothing in flight")
            return True
        if not self._stopping:
            return False
        holding = self._slots.leased()
        if not holding and not len(self._results):
            self._report_left_behind()
            return True
        if time.monotonic() >= self._grace_deadline:
            log.warning(
                "shutdown grace over: leaving %d running job(s) and %d unrecorded result(s) "
                "to recovery (their leases expire, then they are retried or timed out)",
                len(holding),
                len(self._results),
            )
            self._report_left_behind()
            return True
        return False

    def _report_left_behind(self) -> None:
        hung = self._slots.hung()
        if hung:
            log.warning(
                "leaving %d hung handler thread(s) behind: %s",
                len(hung),
                ", ".join(str(a.job.job_id) for a in hung),
            )

    def _wait_seconds(self) -> float:
        """How long the loop may block waiting for an event."""
        now = time.monotonic()
        if self._db.is_down:
            deadline = self._leases.reconnect_by(now)
            if deadline is not None:
                self._db.retry_by(deadline)
        retry_in = self._db.seconds_until_retry()
        if retry_in is not None:
            deadlines = [now + retry_in]
        else:
            if self._results.is_due() or self._should_dequeue():
                return 0.0
            deadlines = self._leases.extension_times()
            if len(self._results):
                deadlines.append(self._results.due)
            if not self._stopping and self._slots.free():
                deadlines.append(self._intake.next_poll())
        if self._stopping:
            deadlines.append(self._grace_deadline)
        if not deadlines:
            return self.config.poll_interval
        return min(max(0.0, min(deadlines) - now), self.config.poll_interval)

    def _collect(self, timeout: float) -> None:
        """Waits up to `timeout` for an event, then takes every event queued."""
        try:
            event = self._events.get(timeout=timeout) if timeout > 0 else self._events.get_nowait()
        except queue.Empty:
            return
        while True:
            self._handle(event)
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return

    def _handle(self, event: Event) -> None:
        if isinstance(event, Outcome):
            self._slots.release(event.attempt)
            if event.attempt.lost:
                self._tally.returned_late(event)
            else:
                self._results.add(event)
        elif event is _WAKE:
            self._intake.more_work = True
        elif isinstance(event, _Stop):
            self._on_stop(event.signum)

    def _on_stop(self, signum: int) -> None:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        now = time.monotonic()
        if self._stopping:
            log.warning("%s again: not waiting for running jobs any longer", name)
            self._grace_deadline = now
            return
        self._stopping = True
        self._grace_deadline = now + self.config.shutdown_grace
        log.info(
            "%s: taking no new jobs; waiting up to %.0f s for %d running job(s)",
            name,
            self.config.shutdown_grace,
            len(self._slots.leased()),
        )

    def _wake(self) -> None:
        self._events.put(_WAKE)

    # -- signals ---------------------------------------------------------------------

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def on_signal(signum: int, frame: FrameType | None) -> None:
            self.request_stop(signum)

        return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(config: RunnerConfig, registry: HandlerRegistry | None = None) -> int:
    """Runs a runner until it stops; returns its exit code."""
    return Runner(config, registry).run()
