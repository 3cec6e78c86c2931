"""Helpers of the SQL package's tests: submit, take and inspect jobs and messages.

Every helper takes the connection to act on, so that a test reads as a
sequence of calls of the SQL API and checks of what the tables hold.
"""

from __future__ import annotations

import importlib.util
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb


def _load_base() -> ModuleType:
    # tests/conftest.py (install, create_database, url_for) is not importable
    # by name: tests/ is no package, and pytest may rebind the module name
    # "conftest" to another directory's.
    path = Path(__file__).resolve().parent.parent / "conftest.py"
    spec = importlib.util.spec_from_file_location("jobqueue_tests_base", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


base = _load_base()
USER = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER_USER = uuid.UUID("00000000-0000-4000-8000-000000000002")
# The queue of a default install; the message table PGMQ keeps for it.
QUEUE = "job_queue"
QUEUE_TABLE = "pgmq.q_job_queue"
ARCHIVE_TABLE = "pgmq.a_job_queue"
STATUSES = ("pending", "processing", "completed", "failed")
LEGAL_TRANSITIONS = {
    ("pending", "processing"),
    ("processing", "completed"),
    ("processing", "failed"),
    ("pending", "failed"),
    ("processing", "pending"),
}


def rows(conn: psycopg.Connection, query: str, params: Sequence[Any] = ()) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def value(conn: psycopg.Connection, query: str, params: Sequence[Any] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row[0]


def add_type(conn: psycopg.Connection, name: str, **settings: Any) -> None:
    """Registers a job type, as docs tell users to: one INSERT."""
    columns = ["name", *settings]
    values = [name, *(Jsonb(v) if isinstance(v, dict) else v for v in settings.values())]
    conn.execute(
        f"insert into job_types ({', '.join(columns)}) values ({', '.join(['%s'] * len(values))})",
        values,
    )


def submit(
    conn: psycopg.Connection,
    job_type: str | None = "sample_task",
    params: Any = None,
    user_id: uuid.UUID | None = USER,
) -> uuid.UUID:
    return value(
        conn,
        "select submit_job(%s, %s, %s)",
        (job_type, None if params is None else Jsonb(params), user_id),
    )


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


def job(conn: psycopg.Connection, job_id: uuid.UUID) -> dict:
    found = rows(conn, "select * from jobs where id = %s", (job_id,))
    assert found, f"no job {job_id}"
    return found[0]


def messages(conn: psycopg.Connection, job_id: uuid.UUID | None = None) -> list[dict]:
    """The queue's messages, of one job or all, oldest first."""
    return rows(
        conn,
        f"select msg_id, vt, read_ct, message from {QUEUE_TABLE}"
        " where %s::text is null or message ->> 'job_id' = %s::text order by msg_id",
        (job_id, job_id),
    )


def msg_ids(conn: psycopg.Connection, job_id: uuid.UUID) -> list[int]:
    return [m["msg_id"] for m in messages(conn, job_id)]


def counts(conn: psycopg.Connection) -> tuple[int, int]:
    """(jobs, messages): what a failed call must leave as it found it."""
    return (
        value(conn, "select count(*) from public.jobs"),
        value(conn, f"select count(*) from {QUEUE_TABLE}"),
    )


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


@contextmanager
def raises(conn: psycopg.Connection, sqlstate: str, *words: str) -> Iterator[pytest.ExceptionInfo]:
    """Expects the block to raise sqlstate with every word in the message.

    The block runs in a savepoint (or its own transaction in autocommit), so
    that the connection stays usable for the checks that follow.
    """
    with pytest.raises(psycopg.Error) as info, conn.transaction():
        yield info
    error = info.value
    assert error.sqlstate == sqlstate, f"{error.sqlstate}: {error}"
    for word in words:
        assert word in (error.diag.message_primary or ""), f"{word!r} not in {error}"


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Polls predicate until it holds: waiting on a condition, not a guessed delay."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def wait_until_blocked(observer: psycopg.Connection, blocked: psycopg.Connection) -> None:
    """Waits until the backend of `blocked` waits for a lock that another one holds."""
    pid = blocked.info.backend_pid
    wait_for(
        lambda: bool(
            observer.execute("select cardinality(pg_blocking_pids(%s)) > 0", (pid,)).fetchone()[0]
        ),
        f"backend {pid} to wait for a lock",
    )
