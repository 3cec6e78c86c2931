"""The baselines, measured with pgbench in the same run as the scenarios:
(a) a one-row INSERT per transaction, one client; (b) the minimal
claim-and-finish queue (UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP
LOCKED LIMIT 1), then a second UPDATE), several clients, on tables of
their own (schema bench)."""

from __future__ import annotations

from bench import db, pgbench, queries
from bench.settings import Settings


def prepare(url: str) -> None:
    with db.connection(url) as conn:
        for name in (
            "baseline_schema",
            "baseline_insert_table",
            "baseline_claim_table",
            "baseline_claim_index",
        ):
            conn.execute(queries.get(name))


def insert_one(url: str, s: Settings) -> float:
    """(a): transactions per second."""
    db.execute(url, "baseline_insert_reset")
    return pgbench.run(url, "insert_one", seconds=s.seconds).tps


def claim_jobs(s: Settings) -> tuple[int, int]:
    """(clients, claims per client): as many claims as the drain has jobs."""
    clients = s.drain_concurrency
    return clients, max(1, s.drain_jobs // clients)


def claim_finish(url: str, s: Settings) -> float:
    """(b): jobs claimed and finished per second, over a table holding
    exactly the jobs to take."""
    clients, each = claim_jobs(s)
    with db.connection(url) as conn:
        conn.execute(queries.get("baseline_claim_reset"))
        conn.execute(queries.get("baseline_claim_fill"), {"n": clients * each})
        conn.execute(queries.get("vacuum_claim"))
    return pgbench.run(url, "claim_finish", clients=clients, transactions=each).tps
