"""JobQueueService: the application's client of the SQL API.

Each method is a thin call of one SQL function; the validation, the state
machine and the queue live in the database. SQLSTATEs come back as the
exceptions of jobqueue.errors.

    with JobQueueService.connect(url) as jobs:
        job_id = jobs.submit_job("sample_task", {"message": "hi"}, user_id=user)
        print(jobs.get_job(job_id).status)

Given a connection, the service uses it as it is: in a transaction of the
caller's, each call runs in a savepoint and commits with the caller's work
(submit a job together with the rows it is about). Given a conninfo string,
it opens an autocommit connection of its own and closes it on `close()`.

`acting_for(user_id)` returns a service whose calls run as that user: each
call first sets ``request.jwt.claims`` to ``{"sub": user_id}`` for its
transaction (as PostgREST does), so that a NULL user_id is taken from the
claims and, once row-level security is in place, the database decides what
the user may see and do. The identity lasts for the call only: when the call
ends, in success or in error, the claims in place before it are back, also
in a transaction of the caller's that goes on after the call.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from . import errors, queries


@dataclass(frozen=True)
class JobRecord:
    """One row of public.jobs."""

    id: UUID
    job_type: str
    status: str
    user_id: UUID
    job_parameters: dict[str, Any] | None
    error_message: str | None
    error_type: str | None
    error_context: Any
    data_references: Any
    retry_count: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    run_at: datetime | None = None
    priority: int = 0
    dedup_key: str | None = None
    retry_of: UUID | None = None


def _jsonb(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


class JobQueueService:
    """Submits, validates, reads and cancels jobs through the SQL API."""

    def __init__(
        self,
        conn: psycopg.Connection[Any] | str,
        *,
        acting_user_id: UUID | str | None = None,
    ) -> None:
        if isinstance(conn, str):
            self._conn: psycopg.Connection[Any] = psycopg.connect(conn, autocommit=True)
            self._owns_conn = True
        else:
            self._conn = conn
            self._owns_conn = False
        self._claims = (
            json.dumps({"sub": str(acting_user_id)}) if acting_user_id is not None else None
        )

    @classmethod
    def connect(cls, conninfo: str, **kwargs: Any) -> JobQueueService:
        """A service on a new autocommit connection of its own."""
        return cls(conninfo, **kwargs)

    @property
    def connection(self) -> psycopg.Connection[Any]:
        return self._conn

    def acting_for(self, user_id: UUID | str) -> JobQueueService:
        """A service on the same connection whose calls run as `user_id`."""
        return JobQueueService(self._conn, acting_user_id=user_id)

    def close(self) -> None:
        """Closes the connection if the service opened it."""
        if self._owns_conn:
            self._conn.close()

    def __enter__(self) -> JobQueueService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the API -----------------------------------------------------------

    def submit_job(
        self,
        job_type: str,
        job_parameters: Mapping[str, Any] | None = None,
        user_id: UUID | str | None = None,
        *,
        run_at: datetime | None = None,
        priority: int = 0,
        dedup_key: str | None = None,
    ) -> UUID:
        """Validates and enqueues one job; returns its id. 22023 on bad input.
        With a dedup_key that an unfinished job of the type holds, returns
        that job's id and writes nothing."""
        with self._call() as cur:
            cur.execute(
                queries.get("job_submit"),
                {
                    "job_type": job_type,
                    "job_parameters": _jsonb(job_parameters),
                    "user_id": user_id,
                    "run_at": run_at,
                    "priority": priority,
                    "dedup_key": dedup_key,
                },
            )
            row = cur.fetchone()
        assert row is not None
        return row[0]

    def submit_jobs(
        self,
        job_type: str,
        job_parameters: Iterable[Mapping[str, Any] | None],
        user_id: UUID | str | None = None,
        *,
        run_at: datetime | None = None,
        priority: int = 0,
        dedup_keys: Sequence[str | None] | None = None,
    ) -> list[UUID]:
        """Enqueues one job per parameters object, all or none; ids in order."""
        with self._call() as cur:
            cur.execute(
                queries.get("job_submit_many"),
                {
                    "job_type": job_type,
                    "job_parameters": [_jsonb(p) for p in job_parameters],
                    "user_id": user_id,
                    "run_at": run_at,
                    "priority": priority,
                    "dedup_keys": None if dedup_keys is None else list(dedup_keys),
                },
            )
            return [row[0] for row in cur.fetchall()]

    def validate_job_parameters(
        self, job_type: str, job_parameters: Mapping[str, Any] | None
    ) -> None:
        """Raises InvalidParameters (22023) when submit_job would refuse them."""
        with self._call() as cur:
            cur.execute(
                queries.get("job_validate_parameters"),
                {"job_type": job_type, "job_parameters": _jsonb(job_parameters)},
            )

    def get_job(self, job_id: UUID | str) -> JobRecord:
        """The job's row; JobNotFound (P0002) when there is none."""
        with self._call(row_factory=class_row(JobRecord)) as cur:
            cur.execute(queries.get("job_get"), {"job_id": job_id})
            record = cur.fetchone()
        assert record is not None
        return record

    def cancel_job(self, job_id: UUID | str) -> bool:
        """Fails a pending or running job as 'Cancelled': True; a finished
        one: False."""
        with self._call() as cur:
            cur.execute(queries.get("job_cancel"), {"job_id": job_id})
            row = cur.fetchone()
        assert row is not None
        return bool(row[0])

    def retry_job(self, job_id: UUID | str) -> UUID:
        """Submits a failed job again as a new job; returns the new id.
        WrongState (55000) when the job is not failed."""
        with self._call() as cur:
            cur.execute(queries.get("job_retry"), {"job_id": job_id})
            row = cur.fetchone()
        assert row is not None
        return row[0]

    # -- plumbing ------------------------------------------------------------

    @contextmanager
    def _call(self, row_factory: Any = None) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor for one API call, errors mapped. Where the call runs:

        - autocommit, no claims: the statement commits by itself (no
          BEGIN/COMMIT round trips);
        - autocommit, acting for a user: a transaction of its own;
        - the caller's transaction in progress: a savepoint in it, so that
          a refused call leaves the caller's transaction usable;
        - no autocommit and no transaction yet: the call starts the caller's
          transaction (the caller commits); a refused call rolls it back,
          which undoes nothing but the call itself.
        """
        conn = self._conn
        idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        try:
            plain = self._claims is None if conn.autocommit else idle
            if plain:
                with conn.cursor(row_factory=row_factory) as cur, self._acting(conn):
                    yield cur
            else:
                with (
                    conn.transaction(),
                    conn.cursor(row_factory=row_factory) as cur,
                    self._acting(conn),
                ):
                    yield cur
        except psycopg.Error as exc:
            if not conn.autocommit and idle and not conn.closed:
                conn.rollback()
            raise errors.from_psycopg(exc) from exc

    @contextmanager
    def _acting(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        """Runs the call as the acting user, if any. Claims set for the
        transaction would outlive the call in a transaction of the caller's
        (a savepoint's release keeps them), so the call puts back the claims
        it replaced. An aborted call needs nothing: the rollback, to its
        savepoint or of the transaction it started, undoes them."""
        if self._claims is None:
            yield
            return
        row = conn.execute(queries.get("request_set_claims"), {"claims": self._claims}).fetchone()
        assert row is not None
        try:
            yield
        finally:
            # In autocommit the call's own transaction has ended with it.
            usable = conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
            if not conn.autocommit and usable:
                conn.execute(queries.get("request_restore_claims"), {"claims": row[0]})
