"""Connections: how the runner connects, and how it reconnects after a loss.

`connect` opens an autocommit connection with the runner's defaults: TCP
keepalives (so that a vanished network is noticed), a connect timeout, and
prepare_threshold=0 (every statement is prepared on first use: the runner
runs the same few statements all day, so the server parses and plans each
once per connection). Settings given in the URL win over these defaults.

`Link` holds one such connection and owns the reconnection policy: after a
loss it retries with capped exponential backoff and jitter, without
blocking the caller (who asks `get()` and gets None while the database is
out of reach), and writes one line when the outage starts and one when it
ends. A caller with a deadline of its own (the runner, holding leases) may
bring the next attempt forward with `retry_by()`.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


def connect(
    url: str, *, application_name: str, prepare_threshold: int | None = 0
) -> psycopg.Connection[Any]:
    """An autocommit connection with the defaults above."""
    given = conninfo_to_dict(url)
    extra = {k: v for k, v in _DEFAULTS.items() if k not in given}
    extra.setdefault("application_name", given.get("application_name") or application_name)
    return psycopg.connect(url, autocommit=True, prepare_threshold=prepare_threshold, **extra)


class Backoff:
    """Capped exponential backoff with jitter: the n-th wait is drawn from
    [c/2, c] where c = min(cap, initial * 2^n), so that many runners cut off
    by the same outage do not reconnect in lockstep, and none retries in a
    tight loop."""

    def __init__(self, initial: float = 0.1, cap: float = 10.0) -> None:
        self.initial = initial
        self.cap = cap
        self.attempts = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.initial * (2 ** min(self.attempts, 30)))
        self.attempts += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0


class Link:
    """One connection that comes back after a loss, without blocking anyone."""

    def __init__(
        self,
        url: str,
        *,
        application_name: str,
        log: logging.Logger,
        backoff: Backoff | None = None,
    ) -> None:
        self._url = url
        self._application_name = application_name
        self._log = log
        self._backoff = backoff or Backoff()
        self._conn: psycopg.Connection[Any] | None = None
        self._down_since: float | None = None
        self._next_attempt = 0.0
        self._last_attempt = 0.0
        self._last_error = ""

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    def get(self) -> psycopg.Connection[Any] | None:
        """The connection, (re)connecting when it is time to; None while the
        database is out of reach."""
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        now = time.monotonic()
        if now < self._next_attempt:
            return None
        self._last_attempt = now
        try:
            conn = connect(self._url, application_name=self._application_name)
        except psycopg.Error as exc:
            self._failed(exc, now)
            return None
        self._conn = conn
        if self._down_since is not None:
            self._log.warning(
                "database reachable again after %.1f s (%d attempts)",
                now - self._down_since,
                self._backoff.attempts,
            )
        self._down_since = None
        self._backoff.reset()
        return conn

    def lost(self, exc: BaseException) -> None:
        """The connection failed with `exc`: close it and start reconnecting."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._failed(exc, time.monotonic())

    def retry_by(self, deadline: float, min_gap: float = 0.5) -> None:
        """While the database is out of reach, makes the next connection
        attempt come no later than `deadline` (time.monotonic()), but not
        sooner than `min_gap` seconds after the previous attempt."""
        if self._down_since is None or deadline >= self._next_attempt:
            return
        self._next_attempt = max(deadline, self._last_attempt + min_gap)

    def seconds_until_retry(self) -> float | None:
        """How long until the next connection attempt; None when connected."""
        if self._conn is not None and not self._conn.closed:
            return None
        return max(0.0, self._next_attempt - time.monotonic())

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _failed(self, exc: BaseException, now: float) -> None:
        reason = _one_line(exc)
        if self._down_since is None:
            self._down_since = now
            self._log.warning("database unreachable (%s): reconnecting with backoff", reason)
        elif reason != self._last_error:
            self._log.debug("still unreachable: %s", reason)
        self._last_error = reason
        self._next_attempt = now + self._backoff.next_delay()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    sqlstate = getattr(exc, "sqlstate", None)
    return f"[{sqlstate}] {text}" if sqlstate else text
