"""The SQL API as the tests call it, and what the tables hold.

Every helper takes the connection to act on, so that a test reads as a
sequence of calls of the SQL API and checks of what the tables hold. Names
are schema-qualified: the helpers work whatever role or search_path a test
has set.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

# The user the jobs of most tests belong to.
USER = uuid.UUID("00000000-0000-4000-8000-000000000001")
# The queue of a default install; the tables PGMQ keeps for it.
QUEUE = "job_queue"
QUEUE_TABLE = "pgmq.q_job_queue"
ARCHIVE_TABLE = "pgmq.a_job_queue"

Params = Sequence[Any] | dict[str, Any]


def rows(conn: psycopg.Connection, query: str, params: Params = ()) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        return cur.fetchall()


def value(conn: psycopg.Connection, query: str, params: Params = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row[0]


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


def add_job_type(conn: psycopg.Connection, name: str, **settings: Any) -> None:
    """Registers a job type, as docs tell users to: one INSERT."""
    columns = ["name", *settings]
    values = [name, *(Jsonb(v) if isinstance(v, dict) else v for v in settings.values())]
    conn.execute(
        f"insert into public.job_types ({', '.join(columns)})"
        f" values ({', '.join(['%s'] * len(values))})",
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
        "select public.submit_job(%s, %s, %s)",
        (job_type, None if params is None else Jsonb(params), user_id),
    )


def cancel(conn: psycopg.Connection, job_id: uuid.UUID | str) -> bool:
    return value(conn, "select public.cancel_job(%s)", (job_id,))


def job(conn: psycopg.Connection, job_id: uuid.UUID) -> dict:
    found = rows(conn, "select * from public.jobs where id = %s", (job_id,))
    assert found, f"no job {job_id}"
    return found[0]


def status(conn: psycopg.Connection, job_id: uuid.UUID) -> str:
    return job(conn, job_id)["status"]


def messages(conn: psycopg.Connection, job_id: uuid.UUID | None = None) -> list[dict]:
    """The queue's messages, of one job or all, oldest first."""
    return rows(
        conn,
        f"select msg_id, vt, read_ct, message from {QUEUE_TABLE}"
        " where %s::text is null or message ->> 'job_id' = %s::text order by msg_id",
        (job_id, job_id),
    )


def message_count(conn: psycopg.Connection) -> int:
    """The messages in the package's queue, whatever its name."""
    return value(conn, "select count(*) from jobqueue.queue_messages")


def counts(conn: psycopg.Connection) -> tuple[int, int]:
    """(jobs, messages): what a failed or refused call must leave as it found it."""
    return (
        value(conn, "select count(*) from public.jobs"),
        value(conn, f"select count(*) from {QUEUE_TABLE}"),
    )
