"""CPU time of the database backend per job: the SQL's own cost.

One connection runs a workload and /proc/<backend pid>/stat says how much
CPU its backend used (parsing, planning, executing, triggers, committing;
not waiting for the WAL flush, not the client). On a shared machine this
moves far less than a rate does, so it is the measure of choice when two
versions of the SQL are compared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from bench import db, queries
from bench.runner import cpu_seconds
from bench.settings import Settings

Work = Callable[[psycopg.Connection[Any], int, str], int]  # (conn, jobs wanted, url) -> jobs done


def _submit_one(conn: psycopg.Connection[Any], jobs: int, url: str) -> int:
    query = queries.product("job_submit")
    params = {"job_type": "sample_task", "job_parameters": "{}", "user_id": db.USER_ID}
    for _ in range(jobs):
        conn.execute(query, params)
    return jobs


def _submit_batch(batch: int) -> Work:
    def work(conn: psycopg.Connection[Any], jobs: int, url: str) -> int:
        query = queries.get("jobs_submit_many")
        params = {"job_type": "sample_task", "parameters": "{}", "n": batch, "user_id": db.USER_ID}
        calls = max(1, jobs // batch)
        for _ in range(calls):
            conn.execute(query, params)
        return calls * batch

    return work


def _finish(conn: psycopg.Connection[Any], taken: list[tuple[Any, ...]], many: bool) -> None:
    """Completes the jobs taken: one complete_jobs() call when `many`, else
    complete_job for each, in one transaction."""
    if not taken:
        return
    if many:
        conn.execute(
            queries.product("job_complete_many"),
            {
                "job_ids": [t[0] for t in taken],
                "data_references": None,
                "msg_ids": [t[1] for t in taken],
            },
        ).fetchall()
        return
    complete = queries.product("job_complete")
    with conn.transaction():
        for job_id, msg_id, *_ in taken:
            params = {"job_id": job_id, "data_references": None, "msg_id": msg_id}
            conn.execute(complete, params)


def _drain(batch: int) -> Work:
    """dequeue_jobs(batch), then the jobs' completions: complete_jobs() for
    a batch, as the runner records them, the single complete_job for
    batches of one."""

    def work(conn: psycopg.Connection[Any], jobs: int, url: str) -> int:
        many = batch > 1
        done = 0
        dequeue = queries.product("job_dequeue")
        while done < jobs:
            params = {
                "batch_size": min(batch, jobs - done),
                "visibility_timeout": db.VISIBILITY_TIMEOUT,
            }
            taken = conn.execute(dequeue, params).fetchall()
            if not taken:
                break
            _finish(conn, taken, many)
            done += len(taken)
        return done

    return work


# An idle runner with the default concurrency asks for this many jobs.
PICKUP_BATCH = 4


def _pickup(conn: psycopg.Connection[Any], jobs: int, url: str) -> int:
    """One job at a time, as an idle runner takes it: another session
    submits a job, then this one calls dequeue_jobs(PICKUP_BATCH) and records
    the completion as the runner does. Only this session's backend counts."""
    dequeue = queries.product("job_dequeue")
    take = {"batch_size": PICKUP_BATCH, "visibility_timeout": db.VISIBILITY_TIMEOUT}
    submit = queries.product("job_submit")
    params = {"job_type": "sample_task", "job_parameters": "{}", "user_id": db.USER_ID}
    done = 0
    with db.connection(url, prepare_threshold=0) as submitter:
        for _ in range(jobs):
            submitter.execute(submit, params)
            taken = conn.execute(dequeue, take).fetchall()
            _finish(conn, taken, many=True)
            done += len(taken)
    return done


def _insert_one(conn: psycopg.Connection[Any], jobs: int, url: str) -> int:
    query = queries.get("baseline_insert")
    for _ in range(jobs):
        conn.execute(query)
    return jobs


def _claim_finish(conn: psycopg.Connection[Any], jobs: int, url: str) -> int:
    claim, finish = queries.get("baseline_claim"), queries.get("baseline_finish")
    done = 0
    for _ in range(jobs):
        row = conn.execute(claim).fetchone()
        if row is None:
            break
        conn.execute(finish, {"id": row[0]})
        done += 1
    return done


@dataclass(frozen=True)
class Workload:
    key: str
    label: str
    work: Work
    prefill: str | None  # "jobs": submit the jobs first; "claim": fill bench.claim
    jobs_factor: int = 1  # jobs measured, in units of the base count


def workloads(s: Settings) -> list[Workload]:
    return [
        Workload("insert_one", "baseline (a): one-row INSERT", _insert_one, None),
        Workload("claim_finish", "baseline (b): claim + finish", _claim_finish, "claim"),
        Workload("submit_one", "submit_job, one per transaction", _submit_one, None),
        Workload(
            "submit_batch",
            f"submit_jobs, {s.batch_size} per call",
            _submit_batch(s.batch_size),
            None,
            jobs_factor=10,
        ),
        Workload("drain_1", "dequeue_jobs(1) + complete_job", _drain(1), "jobs"),
        Workload("drain_10", "dequeue_jobs(10) + complete_jobs", _drain(10), "jobs"),
        Workload(
            "pickup",
            f"pickup: dequeue_jobs({PICKUP_BATCH}) with 1 job visible, then its completion",
            _pickup,
            None,
        ),
    ]


def base_jobs(s: Settings) -> int:
    return 400 if s.quick else 2000


def measure(url: str, s: Settings, work: Workload) -> float:
    """Backend CPU microseconds per job of one workload, after a warm-up."""
    jobs = base_jobs(s) * work.jobs_factor
    warm = max(20, jobs // 20)
    db.reset_jobs(url)
    if work.prefill == "jobs":
        db.submit_many(url, jobs + warm)
    elif work.prefill == "claim":
        with db.connection(url) as conn:
            conn.execute(queries.get("baseline_claim_reset"))
            conn.execute(queries.get("baseline_claim_fill"), {"n": jobs + warm})
            conn.execute(queries.get("vacuum_claim"))
    with db.connection(url, prepare_threshold=0) as conn:
        (pid,) = conn.execute(queries.get("backend_pid")).fetchone()  # type: ignore[misc]
        work.work(conn, warm, url)
        before = cpu_seconds(pid) or 0.0
        done = work.work(conn, jobs, url)
        after = cpu_seconds(pid) or 0.0
    if done < jobs:
        raise RuntimeError(f"{work.key}: only {done} of {jobs} jobs done")
    return (after - before) / done * 1e6
