"""SQLSTATE -> Python exception classes, in one place.

The SQL package raises a handful of standard codes, each with a message
naming the offending field and often a DETAIL and HINT:

    22023  InvalidParameters (alias ValidationError): bad argument or job parameters
    P0002  JobNotFound: no such job (or one the caller may not see)
    55000  WrongState: the job is not in the status the call needs;
           LeaseLost when the call carried a msg_id (the attempt is gone)
    42501  NotAllowed: the caller may not do this

`from_psycopg` turns a psycopg error into one of these, reading ``exc.diag``;
anything else becomes a plain `DatabaseError` that keeps the SQLSTATE.
`is_retryable` says which failures are worth retrying: a lost connection, a
server shutting down or starting up, a serialization failure, a deadlock.
"""

from __future__ import annotations

import psycopg

# Shutdown and start-up of the server: the connection is gone or not there yet.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03"})


class JobQueueError(Exception):
    """An error answered by the database, with its SQLSTATE and diagnostics."""

    sqlstate: str | None = None

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        detail: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if sqlstate is not None:
            self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint

    def describe(self) -> str:
        """One line for a log or a terminal: [SQLSTATE] message (detail) (hint)."""
        parts = [f"[{self.sqlstate}] {self.message}" if self.sqlstate else self.message]
        if self.detail:
            parts.append(f"detail: {self.detail}")
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return " ".join("; ".join(parts).split())  # one line, whatever the server sent


class InvalidParameters(JobQueueError):
    """22023: an argument or the job's parameters were refused; nothing was written."""

    sqlstate = "22023"


ValidationError = InvalidParameters


class JobNotFound(JobQueueError):
    """P0002: no job with that id, or not one the caller may see."""

    sqlstate = "P0002"


class WrongState(JobQueueError):
    """55000: the job is not in a status that allows the call; nothing changed."""

    sqlstate = "55000"


class LeaseLost(WrongState):
    """55000 for a call carrying a msg_id: that attempt was timed out, retried,
    cancelled or recovered, and its result can no longer be recorded."""


class NotAllowed(JobQueueError):
    """42501: the caller may not do this."""

    sqlstate = "42501"


class DatabaseError(JobQueueError):
    """Any other error answered by the database; `sqlstate` says which."""


_BY_SQLSTATE: dict[str, type[JobQueueError]] = {
    "22023": InvalidParameters,
    "P0002": JobNotFound,
    "55000": WrongState,
    "42501": NotAllowed,
}


def from_psycopg(exc: psycopg.Error, *, lease: bool = False) -> JobQueueError:
    """The jobqueue exception for a psycopg error; `lease` marks calls that
    carried a msg_id, whose 55000 means the attempt is gone."""
    sqlstate = exc.sqlstate
    cls = _BY_SQLSTATE.get(sqlstate or "", DatabaseError)
    if cls is WrongState and lease:
        cls = LeaseLost
    diag = exc.diag
    message = diag.message_primary or str(exc).strip() or type(exc).__name__
    return cls(message, sqlstate=sqlstate, detail=diag.message_detail, hint=diag.message_hint)


def is_connection_loss(exc: BaseException) -> bool:
    """True when the connection is gone or could not be made: reconnect and retry."""
    if not isinstance(exc, psycopg.Error):
        return False
    sqlstate = exc.sqlstate
    if sqlstate is not None:
        return sqlstate.startswith("08") or sqlstate in {"57P01", "57P02", "57P03"}
    # A broken socket, a refused connection or a closed connection object
    # carries no SQLSTATE: nothing was answered by a server.
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def refuses_value(exc: BaseException) -> bool:
    """True when the database refused a value it was sent (class 22, a data
    exception; class 54, too large or too deep): the same value gets the
    same answer. Other refusals (a lock or statement timeout, a read-only
    server, a missing function) say nothing about the value."""
    if not isinstance(exc, psycopg.Error) or exc.sqlstate is None:
        return False
    return exc.sqlstate[:2] in {"22", "54"}


def is_retryable(exc: BaseException) -> bool:
    """True for failures that a retry may cure: a lost connection (class 08,
    57P01-03, a broken socket), a serialization failure (40001) or a deadlock
    (40P01). Everything else is an answer, and retrying gets the same one."""
    if is_connection_loss(exc):
        return True
    return isinstance(exc, psycopg.Error) and exc.sqlstate in _RETRYABLE_SQLSTATES
