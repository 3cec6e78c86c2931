"""The demo: submit sample jobs, drain them with the runner, show the outcome.

    python -m jobqueue.demo [--database-url URL] [--jobs 40]

(`make demo` runs it after `jobqueue migrate`.) It submits `sample_task`
jobs, every fifth one asking to fail and the others sleeping a few
milliseconds, runs the runner in this process with --burst until the queue
is empty, then prints the number of jobs per status and a few rows of each.
Only the jobs this run submitted are counted; the runner also drains
whatever else was waiting in the queue.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg

from . import errors, queries
from .runner import RunnerConfig, run
from .service import JobQueueService

DEMO_USER = uuid.uuid5(uuid.NAMESPACE_URL, "jobqueue:demo-user")


def demo_parameters(count: int) -> list[dict[str, Any]]:
    """Every fifth job fails; the others sleep 0-180 ms and echo a message."""
    jobs: list[dict[str, Any]] = []
    for i in range(count):
        params: dict[str, Any] = {"message": f"demo job {i + 1}", "duration_ms": (i * 37) % 200}
        if i % 5 == 4:
            params["fail"] = True
        jobs.append(params)
    return jobs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jobqueue.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    if not args.database_url:
        print("demo: set DATABASE_URL or pass --database-url", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    try:
        return demo(args.database_url, args.jobs, args.concurrency)
    except (errors.JobQueueError, psycopg.Error) as exc:
        error = exc if isinstance(exc, errors.JobQueueError) else errors.from_psycopg(exc)
        print(f"demo: error: {error.describe()}", file=sys.stderr)
        return 1


def demo(url: str, count: int, concurrency: int) -> int:
    parameters = demo_parameters(count)
    with JobQueueService.connect(url) as service:
        ids = service.submit_jobs("sample_task", parameters, user_id=DEMO_USER)
    expected_failures = sum(1 for p in parameters if p.get("fail"))
    print(f"\n== submitted {len(ids)} sample_task jobs ({expected_failures} set to fail)\n")

    started = time.monotonic()
    config = RunnerConfig(url, concurrency=concurrency, burst=True, poll_interval=0.2)
    code = run(config)
    elapsed = time.monotonic() - started
    if code:
        print(f"\n== demo FAILED: the runner exited {code} (see its log above)")
        return code

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(queries.get("job_count_by_status_among"), {"job_ids": ids})
        counts: dict[str, int] = dict(rows.fetchall())
        examples = conn.execute(
            queries.get("job_examples_among"), {"job_ids": ids, "per_status": 3}
        ).fetchall()

    print(f"\n== drained in {elapsed:.1f} s with concurrency {concurrency}\n")
    print("jobs per status:")
    for status in ("pending", "processing", "completed", "failed"):
        print(f"  {status:<11} {counts.get(status, 0)}")
    current = None
    for status, job_id, params, error_type, error_message, data_refs in examples:
        if status != current:
            current = status
            print(f"\n{status}, for example:")
        outcome = (
            f"data_references={json.dumps(data_refs)}"
            if status == "completed"
            else f"{error_type}: {error_message}"
        )
        print(f"  {job_id}  {json.dumps(params)}\n      -> {outcome}")

    ok = counts.get("completed", 0) == count - expected_failures and (
        counts.get("failed", 0) == expected_failures
    )
    print("\n== demo " + ("passed: every job reached the status it asked for" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
