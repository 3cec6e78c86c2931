"""Where the time goes inside the SQL API: pg_stat_statements with
track = all (set for the pgbench sessions only, through PGOPTIONS) over
one-client workloads of submit_job, submit_jobs, and dequeue_jobs +
complete_job. Times are the server's execution times; a statement's time
includes the statements it calls (a PL/pgSQL body, a trigger, EXECUTE),
so the shares of nested statements overlap. track = all adds some
overhead of its own to every nested statement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench import db, pgbench, queries
from bench.settings import Settings

_TRACK_ALL = "-c pg_stat_statements.track=all"


@dataclass(frozen=True)
class Workload:
    name: str
    script: str
    jobs_per_transaction: int
    define: dict[str, object]
    prefill: bool  # the jobs to take are submitted first


def workloads(s: Settings) -> list[Workload]:
    return [
        Workload(
            "submit_job, one per transaction", "submit_one", 1, {"user_id": db.USER_ID}, False
        ),
        Workload(
            f"submit_jobs, {s.batch_size} per transaction",
            "submit_batch",
            s.batch_size,
            {"user_id": db.USER_ID, "batch": s.batch_size},
            False,
        ),
        Workload("dequeue_jobs(1) + complete_job", "drain_one", 1, {}, True),
        Workload(
            "dequeue_jobs(10) + complete_jobs",
            "drain_batch",
            10,
            {"batch": 10},
            True,
        ),
    ]


def profile(url: str, s: Settings, work: Workload) -> dict[str, Any]:
    jobs_wanted = 500 if s.quick else 2000
    if work.jobs_per_transaction >= 100:
        jobs_wanted *= 5
    transactions = max(1, jobs_wanted // work.jobs_per_transaction)
    jobs = transactions * work.jobs_per_transaction
    db.reset_jobs(url)
    if work.prefill:
        db.submit_many(url, jobs)
    db.execute(url, "pgss_reset")
    result = pgbench.run(
        url, work.script, transactions=transactions, define=work.define, options=_TRACK_ALL
    )
    rows = db.execute(url, "pgss_read")
    top_total = sum(total for toplevel, _c, total, *_ in rows if toplevel)
    statements = []
    for toplevel, calls, total_ms, blocks, _rows, query in rows:
        if "pg_stat_statements_reset" in query:
            continue
        statements.append(
            {
                "toplevel": toplevel,
                "calls_per_job": calls / jobs,
                "us_per_job": total_ms * 1000 / jobs,
                "blocks_per_job": blocks / jobs,
                "share": total_ms / top_total if top_total else 0.0,
                "query": " ".join(query.split()),
            }
        )
    return {
        "workload": work.name,
        "jobs": jobs,
        "rate_with_tracking": result.tps * work.jobs_per_transaction,
        "server_us_per_job": top_total * 1000 / jobs,
        "statements": statements,
    }


def run(url: str, s: Settings) -> list[dict[str, Any]]:
    db.execute(url, "pgss_create")
    return [profile(url, s, work) for work in workloads(s)]


def available(url: str) -> str | None:
    """Why pg_stat_statements cannot be used here, or None."""
    try:
        with db.connection(url) as conn:
            conn.execute(queries.get("pgss_create"))
            conn.execute(queries.get("pgss_reset"))
    except Exception as exc:  # any failure means: no profile
        return f"pg_stat_statements is not usable: {exc}".strip()
    return None
