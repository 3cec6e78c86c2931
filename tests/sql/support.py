"""Helpers of the SQL package's tests: take jobs, inspect and steer messages.

The basics (submit, job, messages, rows, value, raises...) come from the
shared support.jobs; these are what only the SQL tests need. Every helper
takes the connection to act on.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from support.jobs import QUEUE, QUEUE_TABLE, USER, messages, rows, value
from support.waiting import wait_for

OTHER_USER = uuid.UUID("00000000-0000-4000-8000-000000000002")
STATUSES = ("pending", "processing", "completed", "failed")
LEGAL_TRANSITIONS = {
    ("pending", "processing"),
    ("processing", "completed"),
    ("processing", "failed"),
    ("pending", "failed"),
    ("processing", "pending"),
}


def submit_many(
    conn: psycopg.Connection, count: int, job_type: str = "sample_task"
) -> list[uuid.UUID]:
    return [
        r[0]
        for r in conn.execute(
            "select submit_jobs(%s, array_fill('{}'::jsonb, array[%s]), %s)",
            (job_type, count, USER),
        )
    ]


def dequeue(conn: psycopg.Connection, batch_size: int = 1, vt: int = 30) -> list[dict]:
    return rows(conn, "select * from dequeue_jobs(%s, %s)", (batch_size, vt))


def take(conn: psycopg.Connection, job_id: uuid.UUID, vt: int = 30) -> int:
    """Dequeues until job_id is handed out; returns the attempt's msg_id."""
    for taken in iter(lambda: dequeue(conn, 1, vt), []):
        if taken[0]["job_id"] == job_id:
            return taken[0]["msg_id"]
    raise AssertionError(f"job {job_id} was not handed out")


def msg_ids(conn: psycopg.Connection, job_id: uuid.UUID) -> list[int]:
    return [m["msg_id"] for m in messages(conn, job_id)]


def make_visible(conn: psycopg.Connection, msg_id: int | None = None) -> None:
    """Lets a hidden message (or all of them) be read now: an expired lease or backoff."""
    conn.execute(
        f"update {QUEUE_TABLE} set vt = clock_timestamp() - interval '1 second'"
        " where %s::bigint is null or msg_id = %s",
        (msg_id, msg_id),
    )


def send_raw(conn: psycopg.Connection, message: Any) -> int:
    """Sends a message that no submit_job() made (stale or poison)."""
    return value(conn, "select pgmq.send(%s, %s::jsonb)", (QUEUE, Jsonb(message)))


def now(conn: psycopg.Connection):
    return value(conn, "select clock_timestamp()")


def check_invariant(conn: psycopg.Connection) -> None:
    """An unfinished job has exactly one message, a finished one none; no stray messages."""
    broken = rows(
        conn,
        f"""
        select j.id, j.status, count(m.msg_id) as messages
        from jobs as j
        left join {QUEUE_TABLE} as m on m.message ->> 'job_id' = j.id::text
        group by j.id, j.status
        having count(m.msg_id) <> case when j.status in ('pending', 'processing') then 1 else 0 end
        """,
    )
    assert broken == [], f"jobs whose message count breaks the invariant: {broken}"
    strays = value(
        conn,
        f"select count(*) from {QUEUE_TABLE} as m"
        " where not exists (select from jobs as j where j.id::text = m.message ->> 'job_id')",
    )
    assert strays == 0, f"{strays} messages of no job"


def wait_until_blocked(observer: psycopg.Connection, blocked: psycopg.Connection) -> None:
    """Waits until the backend of `blocked` waits for a lock that another one holds."""
    pid = blocked.info.backend_pid
    wait_for(
        lambda: bool(
            observer.execute("select cardinality(pg_blocking_pids(%s)) > 0", (pid,)).fetchone()[0]
        ),
        f"backend {pid} to wait for a lock",
    )
