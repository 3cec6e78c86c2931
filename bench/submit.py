"""Scenarios 1 and 2: submit_job one per transaction (pgbench and the Python
client), submit_jobs in batches."""

from __future__ import annotations

import time

from bench import db, pgbench
from bench.settings import Settings


def _jobs_per_second(
    url: str, s: Settings, script: str, *, batch: int = 1, options: str | None = None
) -> float:
    """Runs a pgbench script that writes `batch` jobs per transaction, on an
    empty jobs table: jobs per second."""
    db.reset_jobs(url)
    define: dict[str, object] = {"user_id": db.USER_ID}
    if batch > 1:
        define["batch"] = batch
    return pgbench.run(url, script, seconds=s.seconds, define=define, options=options).tps * batch


def submit_one_pgbench(url: str, s: Settings) -> float:
    """submit_job('sample_task', '{}', user) per transaction: jobs per second."""
    return _jobs_per_second(url, s, "submit_one")


def submit_one_python(url: str, s: Settings) -> float:
    """The same from Python, one call per transaction: JobQueueService."""
    # Imported here, after db.snapshot() has put the run's copy of python/
    # first on sys.path: the client measured is the code the runners run.
    from jobqueue.service import JobQueueService

    db.reset_jobs(url)
    service = JobQueueService.connect(url)
    try:
        for _ in range(20):  # connection warm, statement prepared
            service.submit_job("sample_task", {}, user_id=db.USER_ID)
        count = 0
        started = time.perf_counter()
        deadline = started + s.seconds
        while True:
            for _ in range(50):
                service.submit_job("sample_task", {}, user_id=db.USER_ID)
            count += 50
            now = time.perf_counter()
            if now >= deadline:
                return count / (now - started)
    finally:
        service.close()


def submit_batch(url: str, s: Settings) -> float:
    """submit_jobs with batches of s.batch_size, one batch per transaction:
    jobs per second."""
    return _jobs_per_second(url, s, "submit_batch", batch=s.batch_size)


# The floors run without triggers and foreign key checks (superuser only).
_NO_TRIGGERS = "-c session_replication_role=replica"


def floor_one(url: str, s: Settings) -> float:
    """The job row and message row of one submit per transaction, written by
    plain SQL with no trigger, check or function: jobs per second. What the
    data model's writes cost, the ceiling of any submit_job."""
    return _jobs_per_second(url, s, "floor_one", options=_NO_TRIGGERS)


def floor_batch(url: str, s: Settings) -> float:
    """The same for batches of s.batch_size: jobs per second."""
    return _jobs_per_second(url, s, "floor_batch", batch=s.batch_size, options=_NO_TRIGGERS)
