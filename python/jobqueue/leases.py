"""Keeping leases: extending them before they end, and giving up the
attempts whose lease is gone.

The msg_id that dequeue_jobs returned is the attempt's lease. This runner
keeps the leases of its attempts in flight and of those whose result waits
to be recorded: each asks for another visibility timeout once half of the
lease has passed. The database may grant less than asked (never past the
job type's timeout_seconds); the runner keeps the lease it was granted, by
the database's clock: the lease ends that many seconds after the call was
made, and is renewed halfway. When extend_job_lease answers 55000 or P0002
the attempt is gone (timed out, cancelled, recovered, deleted): a handler
still running has its result dropped when it returns, and a result waiting
is dropped at once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg

from . import errors, queries
from .attempts import Attempt
from .config import RunnerConfig
from .results import ATTEMPT_GONE, ResultRecorder
from .slots import Slots
from .tally import Tally

log = logging.getLogger("jobqueue.runner")


class LeaseKeeper:
    """Extends the leases this runner holds, and decides when."""

    def __init__(
        self, config: RunnerConfig, slots: Slots, results: ResultRecorder, tally: Tally
    ) -> None:
        self.config = config
        self._slots = slots
        self._results = results
        self._tally = tally

    def leased(self) -> list[Attempt]:
        """The attempts whose lease this runner keeps: running ones, and those
        whose result waits to be recorded."""
        return self._slots.leased() + self._results.leased()

    def extension_times(self) -> list[float]:
        """When each lease is due to be extended (time.monotonic())."""
        return [a.extend_at for a in self.leased()]

    def reconnect_by(self, now: float) -> float | None:
        """While the database is out of reach: by when to try to reconnect.
        Backoff grows with an outage, and may schedule the next attempt
        after the leases this runner holds have run out: a result it could
        still record, once the database is back, would then be dropped and
        its job run again. So the next attempt comes, at the latest, a
        little before the earliest lease ends (None: no lease to keep)."""
        margin = min(1.0, self.config.visibility_timeout / 4)
        ends = [a.lease_until for a in self.leased()]
        upcoming = [end - margin for end in ends if end - margin > now]
        return min(upcoming) if upcoming else None

    def extend_due(self, conn: psycopg.Connection[Any]) -> None:
        """Extends every lease whose time has come."""
        now = time.monotonic()
        for attempt in [a for a in self.leased() if a.extend_at <= now]:
            self._extend(conn, attempt)

    def _extend(self, conn: psycopg.Connection[Any], attempt: Attempt) -> None:
        seconds = self.config.visibility_timeout
        asked = time.monotonic()
        job = attempt.job
        try:
            row = conn.execute(
                queries.get("job_extend_lease"),
                {"job_id": job.job_id, "msg_id": job.msg_id, "seconds": seconds},
            ).fetchone()
        except psycopg.Error as exc:
            if errors.is_retryable(exc):
                raise
            if exc.sqlstate in ATTEMPT_GONE and attempt in self._slots:
                self._lost(attempt, errors.from_psycopg(exc, lease=True))
            elif exc.sqlstate in ATTEMPT_GONE:
                self._results.drop(attempt, errors.from_psycopg(exc, lease=True))
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
            return
        if row is None or row[0] is None:
            log.error(
                "job %s (%s): extend_job_lease granted no lease end; trying again",
                job.job_id,
                job.job_type,
            )
            attempt.extend_at = asked + self.config.poll_interval
            return
        # The database counts the seconds from the end of its call, the runner
        # from before it: the runner's end of the lease comes first, never after.
        granted = float(row[0])
        attempt.lease_until = asked + granted
        attempt.extend_at = asked + granted / 2

    def _lost(self, attempt: Attempt, error: errors.JobQueueError) -> None:
        """The lease of an attempt whose handler still runs is gone."""
        attempt.lost = True
        self._tally.lease_lost(attempt, error)
        self._slots.warn_if_all_hung()
