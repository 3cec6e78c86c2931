"""The tally: what became of each attempt, one log line each, and the
counts that the runner's last line gives (completed, failed, retries
scheduled, results dropped)."""

from __future__ import annotations

import logging
import time
from collections import Counter

from .attempts import Attempt, Outcome
from .errors import JobQueueError

log = logging.getLogger("jobqueue.runner")


class Tally:
    """Counts outcomes and says each one in the log."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def recorded(self, outcome: Outcome, status: str) -> None:
        """The database recorded the outcome; `status` is the job's new one."""
        job = outcome.attempt.job
        ms = outcome.seconds * 1000
        self.counts["completed" if outcome.ok else status.replace("pending", "retried")] += 1
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
                brief(outcome.error_message),
            )
        else:
            log.info(
                "job %s (%s): failed in %.1f ms (%s: %s)",
                job.job_id,
                job.job_type,
                ms,
                outcome.error_type,
                brief(outcome.error_message),
            )

    def gone(self, outcome: Outcome, why: str) -> None:
        """The attempt is gone (timed out, cancelled, recovered, deleted)."""
        job = outcome.attempt.job
        self.counts["dropped"] += 1
        log.warning("job %s (%s): attempt gone, result dropped (%s)", job.job_id, job.job_type, why)

    def returned_late(self, outcome: Outcome) -> None:
        """A handler returned after its attempt's lease was lost."""
        job = outcome.attempt.job
        self.counts["dropped"] += 1
        log.warning(
            "job %s (%s): handler returned %.1f s after its lease was lost; "
            "result dropped, slot free again",
            job.job_id,
            job.job_type,
            outcome.seconds,
        )

    @staticmethod
    def refused(outcome: Outcome, error: JobQueueError) -> None:
        """The database refused to record the outcome, for a reason that says
        nothing about it: it is kept for another try."""
        job = outcome.attempt.job
        log.warning(
            "job %s (%s): could not record its result (%s); trying again while its lease lasts",
            job.job_id,
            job.job_type,
            error.describe(),
        )

    def ran_out(self, outcome: Outcome, error: JobQueueError) -> None:
        """The lease of a refused outcome ended before the database took it."""
        job = outcome.attempt.job
        self.counts["dropped"] += 1
        log.error(
            "job %s (%s): result dropped: its lease ran out while the database refused "
            "it (%s); recovery will retry or time out the job",
            job.job_id,
            job.job_type,
            error.describe(),
        )

    @staticmethod
    def lease_lost(attempt: Attempt, error: JobQueueError) -> None:
        """The lease of an attempt whose handler still runs was refused."""
        log.warning(
            "job %s (%s): lease lost after %.1f s while its handler is still running "
            "(%s); its result will be dropped, and its slot stays taken until the "
            "handler returns",
            attempt.job.job_id,
            attempt.job.job_type,
            time.monotonic() - attempt.started,
            error.message,
        )

    def summary(self, runner_name: str) -> None:
        """The runner's last line."""
        log.info(
            "runner %s stopped: %d completed, %d failed, %d retries scheduled, %d results dropped",
            runner_name,
            self.counts["completed"],
            self.counts["failed"],
            self.counts["retried"],
            self.counts["dropped"],
        )


def brief(text: str | None, limit: int = 500) -> str:
    """A message short enough for one log line; the job keeps all of it."""
    text = text or ""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
