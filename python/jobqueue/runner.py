"""The runner: the sidecar that executes jobs.

It takes jobs (`dequeue_jobs`, never more than it has free slots), runs
their handlers under a concurrency cap, extends the lease of jobs that run
long, finishes each job (completed with the handler's return value, or
failed with the exception: `complete_jobs` and `fail_jobs`, the batch forms
of `complete_job` and `fail_job`, record a turn's results in one
transaction), and stops cleanly on a signal.

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
its job type's timeout_seconds. When complete_jobs or fail_jobs reports an
attempt as lease_lost, not_processing or not_found, or extend_job_lease
answers 55000 or P0002, the attempt is gone (timed out, cancelled,
recovered, deleted): the runner logs it and drops the result.

Hung handlers. A Python thread cannot be stopped from outside. A handler
that outlives its job type's timeout_seconds loses its lease (the extension
is refused), recovery fails or retries the job (JobTimeout), and any runner
may take it again. The runner logs that, and drops whatever the handler
returns later; but the slot stays occupied until the handler's thread
returns. The runner never starts more handler threads than --concurrency,
because concurrency is also the cap on the load handlers put on what they
call: a hung handler usually still holds a socket, a lock or a subprocess,
and starting a replacement next to it would exceed the cap, and grow the
thread count without bound if handlers keep hanging. A runner whose slots
are all held by hung handlers says so in its log; its leases are gone, so
other runners carry on with the work. On shutdown such threads are left
behind (they are daemon threads), and the process exits.

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
from collections import Counter
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import psycopg

from . import errors, queries
from .attempts import Attempt, Outcome, WorkerPool, error_outcome
from .db import Link
from .handlers import HandlerRegistry, Job, default_registry
from .listener import Listener

log = logging.getLogger("jobqueue.runner")

# 55000: the attempt is no longer current; P0002: the job is gone.
_ATTEMPT_GONE = frozenset({"55000", "P0002"})
# What complete_jobs() and fail_jobs() answer for an attempt that is gone.
_REFUSALS = frozenset({"lease_lost", "not_processing", "not_found"})


@dataclass(frozen=True)
class RunnerConfig:
    """How a runner runs; the CLI's options, with the same defaults."""

    database_url: str
    concurrency: int = 4
    batch_size: int | None = None  # None: the concurrency
    visibility_timeout: int = 30
    burst: bool = False
    poll_interval: float = 1.0
    shutdown_grace: float = 30.0
    listen: bool = True

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.batch_size is not None and not 1 <= self.batch_size <= 10000:
            raise ValueError("batch_size must be between 1 and 10000")
        if not 1 <= self.visibility_timeout <= 86400:
            raise ValueError("visibility_timeout must be between 1 and 86400 seconds")
        if self.poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if self.shutdown_grace < 0:
            raise ValueError("shutdown_grace must not be negative")

    @property
    def dequeue_size(self) -> int:
        return self.batch_size or self.concurrency


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


# -- the runner -------------------------------------------------------------------


@dataclass
class _State:
    running: dict[Any, Attempt] = field(default_factory=dict)  # job_id -> attempt
    results: list[Outcome] = field(default_factory=list)  # waiting to be recorded
    results_due: float = 0.0  # when results the database refused may be sent again
    more_work: bool = True  # the queue may hold visible messages
    last_dequeue: float = 0.0
    stopping: bool = False
    grace_deadline: float = 0.0
    drained: bool = False  # --burst: nothing left and nothing in flight
    warned_all_hung: bool = False
    last_error: str | None = None  # the last unexpected database error, logged once
    tally: Counter[str] = field(default_factory=Counter)  # outcomes, for the last line


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
        self._state = _State()

    # -- the loop ------------------------------------------------------------------

    def run(self) -> int:
        """Runs until stopped (or drained, with burst); returns the exit code, 0."""
        previous = self._install_signal_handlers()
        logging.getLogger("psycopg").addFilter(_PSYCOPG_FILTER)  # once: filters are a set
        cfg = self.config
        log.info(
            "runner %s started: concurrency %d, batch size %d, visibility timeout %d s, "
            "handlers for %s%s",
            self.name,
            cfg.concurrency,
            cfg.dequeue_size,
            cfg.visibility_timeout,
            ", ".join(self.registry.names()) or "no job type",
            ", burst" if cfg.burst else "",
        )
        self._pool.start()
        if self._listener:
            self._listener.start()
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
        tally = self._state.tally
        log.info(
            "runner %s stopped: %d completed, %d failed, %d retries scheduled, %d results dropped",
            self.name,
            tally["completed"],
            tally["failed"],
            tally["retried"],
            tally["dropped"],
        )
        return 0

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Asks the runner to stop (safe from a signal handler or any thread)."""
        self._events.put(_Stop(signum))

    def _step(self) -> None:
        """One turn: record results, keep leases, take work."""
        conn = self._db.get()
        if conn is None:
            return
        st = self._state
        try:
            if st.running or st.results:
                self._extend_leases(conn)
            take = self._should_dequeue()
            if self._results_due():
                self._record(conn, take=take)
            elif take:
                self._dequeue(conn)
            st.last_error = None
        except psycopg.Error as exc:
            if errors.is_connection_loss(exc):
                self._db.lost(exc)
            elif errors.is_retryable(exc):
                # A serialization failure or deadlock: go again at once.
                log.info("retrying after %s", errors.from_psycopg(exc).describe())
                st.more_work = True
            else:
                # An answer we did not expect (say, the package is not
                # installed): say it once, and try again every poll interval.
                text = errors.from_psycopg(exc).describe()
                if text != st.last_error:
                    log.error("database error (retrying every poll interval): %s", text)
                st.last_error = text
                st.more_work = False
                st.last_dequeue = time.monotonic()

    def _finished(self) -> bool:
        st = self._state
        if st.drained:
            log.info("burst: no job left and nothing in flight")
            return True
        if not st.stopping:
            return False
        holding = [a for a in st.running.values() if not a.lost]
        if not holding and not st.results:
            self._report_left_behind()
            return True
        if time.monotonic() >= st.grace_deadline:
            log.warning(
                "shutdown grace over: leaving %d running job(s) and %d unrecorded result(s) "
                "to recovery (their leases expire, then they are retried or timed out)",
                len(holding),
                len(st.results),
            )
            self._report_left_behind()
            return True
        return False

    def _report_left_behind(self) -> None:
        hung = [a for a in self._state.running.values() if a.lost]
        if hung:
            log.warning(
                "leaving %d hung handler thread(s) behind: %s",
                len(hung),
                ", ".join(str(a.job.job_id) for a in hung),
            )

    def _wait_seconds(self) -> float:
        """How long the loop may block waiting for an event."""
        st = self._state
        now = time.monotonic()
        if self._db.is_down:
            self._reconnect_before_leases_end(now)
        retry_in = self._db.seconds_until_retry()
        if retry_in is not None:
            deadlines = [now + retry_in]
        else:
            if self._results_due() or self._should_dequeue():
                return 0.0
            deadlines = [a.extend_at for a in self._leased()]
            if st.results:
                deadlines.append(st.results_due)
            if not st.stopping and self._free_slots():
                deadlines.append(st.last_dequeue + self.config.poll_interval)
        if st.stopping:
            deadlines.append(st.grace_deadline)
        if not deadlines:
            return self.config.poll_interval
        return min(max(0.0, min(deadlines) - now), self.config.poll_interval)

    def _results_due(self) -> bool:
        st = self._state
        return bool(st.results) and time.monotonic() >= st.results_due

    def _leased(self) -> list[Attempt]:
        """The attempts whose lease this runner keeps: running ones, and those
        whose result waits to be recorded."""
        st = self._state
        held = [a for a in st.running.values() if not a.lost]
        return held + [o.attempt for o in st.results if not o.attempt.lost]

    def _reconnect_before_leases_end(self, now: float) -> None:
        """Backoff grows with an outage, and may schedule the next attempt
        after the leases this runner holds have run out: a result it could
        still record, once the database is back, would then be dropped and
        its job run again. So the next attempt comes, at the latest, a
        little before the earliest lease ends."""
        margin = min(1.0, self.config.visibility_timeout / 4)
        ends = [a.lease_until for a in self._leased()]
        upcoming = [end - margin for end in ends if end - margin > now]
        if upcoming:
            self._db.retry_by(min(upcoming))

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
        st = self._state
        if isinstance(event, Outcome):
            attempt = event.attempt
            st.running.pop(attempt.job.job_id, None)
            if attempt.lost:
                st.tally["dropped"] += 1
                log.warning(
                    "job %s (%s): handler returned %.1f s after its lease was lost; "
                    "result dropped, slot free again",
                    attempt.job.job_id,
                    attempt.job.job_type,
                    event.seconds,
                )
            else:
                st.results.append(event)
        elif event is _WAKE:
            st.more_work = True
        elif isinstance(event, _Stop):
            self._on_stop(event.signum)

    def _on_stop(self, signum: int) -> None:
        st = self._state
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        now = time.monotonic()
        if st.stopping:
            log.warning("%s again: not waiting for running jobs any longer", name)
            st.grace_deadline = now
            return
        st.stopping = True
        st.grace_deadline = now + self.config.shutdown_grace
        log.info(
            "%s: taking no new jobs; waiting up to %.0f s for %d running job(s)",
            name,
            self.config.shutdown_grace,
            sum(1 for a in st.running.values() if not a.lost),
        )

    def _wake(self) -> None:
        self._events.put(_WAKE)

    # -- taking jobs ----------------------------------------------------------

    def _free_slots(self) -> int:
        return self.config.concurrency - len(self._state.running)

    def _should_dequeue(self) -> bool:
        st = self._state
        if st.stopping or self._free_slots() <= 0:
            return False
        if st.more_work:
            return True
        if self.config.burst and not st.running and not st.results and not st.last_error:
            return True  # confirm the queue is empty before exiting
        return time.monotonic() >= st.last_dequeue + self.config.poll_interval

    def _dequeue_call(self) -> tuple[str, dict[str, Any], int, float]:
        """The dequeue_jobs call for the free slots, its size, and its start."""
        st = self._state
        wanted = min(self.config.dequeue_size, self._free_slots())
        started = time.monotonic()
        # Set before the call, so that a failing call is not retried in a spin.
        st.last_dequeue = started
        st.more_work = False
        params = {"batch_size": wanted, "visibility_timeout": self.config.visibility_timeout}
        return queries.get("job_dequeue"), params, wanted, started

    def _dequeue(self, conn: psycopg.Connection[Any]) -> None:
        query, params, wanted, started = self._dequeue_call()
        self._take(conn.execute(query, params).fetchall(), wanted, started)

    def _take(self, rows: list[Any], wanted: int, started: float) -> None:
        """Starts the handlers of the jobs dequeue_jobs returned."""
        st = self._state
        cfg = self.config
        st.more_work = len(rows) == wanted
        if not rows:
            if cfg.burst and not st.running and not st.results:
                st.drained = True
            return
        lease_until = started + cfg.visibility_timeout
        extend_at = started + cfg.visibility_timeout / 2
        for job_id, msg_id, job_type, user_id, parameters, retry_count in rows:
            job = Job(job_id, msg_id, job_type, user_id, parameters or {}, retry_count)
            fn = self.registry.get(job_type)
            attempt = Attempt(job, fn, started, lease_until, extend_at)
            if fn is None:
                st.results.append(self._no_handler(attempt))
                continue
            st.running[job_id] = attempt
            self._pool.submit(attempt)
        if st.running and self._free_slots() == 0:
            self._warn_if_all_hung()

    def _no_handler(self, attempt: Attempt) -> Outcome:
        job_type = attempt.job.job_type
        return error_outcome(
            attempt,
            "HandlerNotFound",
            f"no handler registered for job type {job_type!r} in runner {self.name}",
            {"job_type": job_type, "handlers": self.registry.names(), "runner": self.name},
        )

    # -- keeping leases ------------------------------------------------------------

    def _extend_leases(self, conn: psycopg.Connection[Any]) -> None:
        now = time.monotonic()
        due = [a for a in self._leased() if a.extend_at <= now]
        seconds = self.config.visibility_timeout
        for attempt in due:
            asked = time.monotonic()
            job = attempt.job
            try:
                conn.execute(
                    queries.get("job_extend_lease"),
                    {"job_id": job.job_id, "msg_id": job.msg_id, "seconds": seconds},
                )
            except psycopg.Error as exc:
                if errors.is_retryable(exc):
                    raise
                if exc.sqlstate in _ATTEMPT_GONE and job.job_id in self._state.running:
                    self._lease_lost(attempt, errors.from_psycopg(exc, lease=True))
                elif exc.sqlstate in _ATTEMPT_GONE:
                    self._drop_waiting(attempt, errors.from_psycopg(exc, lease=True))
                else:
                    # Unexpected: say so, and try again a little later; the
                    # other jobs' leases and results must not wait for it.
                    log.error(
                        "job %s (%s): could not extend its lease: %s",
                        job.job_id,
                        job.job_type,
                        errors.from_psycopg(exc).describe(),
                    )
                    attempt.extend_at = asked + self.config.poll_interval
                continue
            attempt.lease_until = asked + seconds
            attempt.extend_at = asked + seconds / 2

    def _drop_waiting(self, attempt: Attempt, error: errors.JobQueueError) -> None:
        """The lease of a result still waiting to be recorded is gone."""
        st = self._state
        waiting = [o for o in st.results if o.attempt is attempt]
        st.results = [o for o in st.results if o.attempt is not attempt]
        for outcome in waiting:
            self._log_gone(outcome, error.describe())

    def _lease_lost(self, attempt: Attempt, error: errors.JobQueueError) -> None:
        attempt.lost = True
        log.warning(
            "job %s (%s): lease lost after %.1f s while its handler is still running "
            "(%s); its result will be dropped, and its slot stays taken until the "
            "handler returns",
            attempt.job.job_id,
            attempt.job.job_type,
            time.monotonic() - attempt.started,
            error.message,
        )
        self._warn_if_all_hung()

    def _warn_if_all_hung(self) -> None:
        st = self._state
        hung = sum(1 for a in st.running.values() if a.lost)
        if hung == self.config.concurrency and not st.warned_all_hung:
            st.warned_all_hung = True
            log.error(
                "all %d slots are held by handlers that outlived their lease: "
                "this runner takes no work until one returns",
                hung,
            )
        elif hung < self.config.concurrency:
            st.warned_all_hung = False

    # -- finishing jobs ---------------------------------------------------------

    def _record(self, conn: psycopg.Connection[Any], *, take: bool = False) -> None:
        """Records every waiting result, and with `take` dequeues jobs for the
        free slots: all in one transaction when possible (one round trip and
        one commit for the lot), else one by one to isolate a refusal."""
        st = self._state
        batch, st.results = st.results, []
        rows: list[Any] | None = None
        try:
            if len(batch) == 1 and not take:
                statuses = [self._send(conn, batch[0])]
            else:
                statuses, rows, wanted, started = self._send_batch(conn, batch, take=take)
        except psycopg.Error as exc:
            if errors.is_retryable(exc):
                st.results = batch + st.results
                raise
            # One of them was refused, and the transaction took the rest
            # (and the dequeue) down with it: record each on its own.
            kept: list[Outcome] = []
            for i, outcome in enumerate(batch):
                try:
                    if not self._record_one(conn, outcome):
                        kept.append(outcome)
                except psycopg.Error:
                    st.results = kept + batch[i:] + st.results
                    raise
            if kept:
                st.results = kept + st.results
                st.results_due = time.monotonic() + self.config.poll_interval
            st.more_work = True
            return
        for outcome, status in zip(batch, statuses, strict=True):
            if status in _REFUSALS:
                self._log_gone(outcome, status.replace("_", " "))
            else:
                self._log_outcome(outcome, status)
        if rows is not None:
            self._take(rows, wanted, started)

    def _send(self, conn: psycopg.Connection[Any], outcome: Outcome) -> str:
        cur = conn.execute(*self._finish_call(outcome))
        return "completed" if outcome.ok else _fetch_status(cur)

    def _send_batch(
        self, conn: psycopg.Connection[Any], batch: list[Outcome], *, take: bool
    ) -> tuple[list[str], list[Any] | None, int, float]:
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
        wanted, started = 0, 0.0
        completed = failed = dequeued = None
        with conn.pipeline():
            if completes:
                completed = conn.execute(
                    queries.get("job_complete_many"), _complete_arrays(completes)
                )
            if fails:
                failed = conn.execute(queries.get("job_fail_many"), _fail_arrays(fails))
            if take:
                query, params, wanted, started = self._dequeue_call()
                dequeued = conn.execute(query, params)
        status_of = {}
        for cursor in (completed, failed):
            if cursor is not None:
                status_of.update(cursor.fetchall())
        statuses = [str(status_of[o.attempt.job.job_id]) for o in batch]
        return statuses, (dequeued.fetchall() if dequeued else None), wanted, started

    def _record_one(self, conn: psycopg.Connection[Any], outcome: Outcome) -> bool:
        """Records one result on its own; an attempt that is gone drops it.
        False when the result is kept to be sent again later."""
        try:
            status = self._send(conn, outcome)
        except psycopg.Error as exc:
            if errors.is_retryable(exc):
                raise
            error = errors.from_psycopg(exc, lease=True)
            if exc.sqlstate in _ATTEMPT_GONE:
                self._log_gone(outcome, error.describe())
            elif errors.refuses_value(exc) and outcome.error_type != "ResultRejected":
                # The result itself was refused (say, a string the jsonb type
                # does not take): fail the job with the reason instead.
                return self._record_one(conn, self._rejected(outcome, error))
            else:
                # A refusal that says nothing about the result (a lock or
                # statement timeout, a read-only server, the package being
                # upgraded): keep it, and try again while the lease lasts.
                return self._keep(outcome, error)
            return True
        self._log_outcome(outcome, status)
        return True

    def _keep(self, outcome: Outcome, error: errors.JobQueueError) -> bool:
        """Keeps a refused result for another try, unless its lease is over."""
        attempt = outcome.attempt
        job = attempt.job
        if time.monotonic() >= attempt.lease_until:
            self._state.tally["dropped"] += 1
            log.error(
                "job %s (%s): result dropped: its lease ran out while the database refused "
                "it (%s); recovery will retry or time out the job",
                job.job_id,
                job.job_type,
                error.describe(),
            )
            return True
        if not attempt.refused:
            attempt.refused = True
            log.warning(
                "job %s (%s): could not record its result (%s); trying again while its lease lasts",
                job.job_id,
                job.job_type,
                error.describe(),
            )
        return False

    def _rejected(self, outcome: Outcome, error: errors.JobQueueError) -> Outcome:
        """A failure to record instead of a result the database refused."""
        what = "result" if outcome.ok else f"error ({outcome.error_type})"
        return error_outcome(
            outcome.attempt,
            "ResultRejected",
            f"the database refused the handler's {what}: {error.message}",
            {"sqlstate": error.sqlstate, "runner": self.name},
        )

    @staticmethod
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

    # -- log lines -------------------------------------------------------------

    def _log_outcome(self, outcome: Outcome, status: str) -> None:
        job = outcome.attempt.job
        ms = outcome.seconds * 1000
        self._state.tally["completed" if outcome.ok else status.replace("pending", "retried")] += 1
        if outcome.ok:
            log.info("job %s (%s): completed in %.1f ms", job.job_id, job.job_type, ms)
        elif status == "pending":
            log.info(
                "job %s (%s): attempt %d failed in %.1f ms (%s: %s); retry scheduled",
                job.job_id,
                job.job_type,
                job.retry_count + 1,
                ms,
                outcome.error_type,
                _brief(outcome.error_message),
            )
        else:
            log.info(
                "job %s (%s): failed in %.1f ms (%s: %s)",
                job.job_id,
                job.job_type,
                ms,
                outcome.error_type,
                _brief(outcome.error_message),
            )

    def _log_gone(self, outcome: Outcome, why: str) -> None:
        job = outcome.attempt.job
        self._state.tally["dropped"] += 1
        log.warning("job %s (%s): attempt gone, result dropped (%s)", job.job_id, job.job_type, why)

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


def _brief(text: str | None, limit: int = 500) -> str:
    """A message short enough for one log line; the job keeps all of it."""
    text = text or ""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _fetch_status(cur: psycopg.Cursor[Any]) -> str:
    row = cur.fetchone()
    return str(row[0]) if row else "failed"


def run(config: RunnerConfig, registry: HandlerRegistry | None = None) -> int:
    """Runs a runner until it stops; returns its exit code."""
    return Runner(config, registry).run()
