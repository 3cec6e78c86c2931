"""Wake-ups: LISTEN jobqueue on a connection of its own.

The SQL package sends NOTIFY jobqueue (payload: the queue's name) whenever
messages are inserted into the queue. A runner that listens is woken at
once instead of at its next poll. LISTEN needs a session of its own: behind
a transaction-mode pooler (PgBouncer) notifications are not delivered, so
run the runner with --no-listen there (or give it a direct connection) and
it falls back on polling every --poll-interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from . import queries
from .db import Backoff, connect

log = logging.getLogger("jobqueue.runner")


class Listener:
    """LISTEN jobqueue on a connection of its own; every notification (and
    every (re)connection, which may have missed some) wakes the runner."""

    def __init__(self, url: str, wake: Callable[[], None]) -> None:
        self._url = url
        self._wake = wake
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobqueue-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def _run(self) -> None:
        backoff = Backoff(initial=0.2, cap=10.0)
        while not self._stopping.is_set():
            try:
                with connect(
                    self._url, application_name="jobqueue-runner-listen", prepare_threshold=None
                ) as conn:
                    conn.execute(queries.get("runner_listen"))
                    log.debug("listening on channel jobqueue")
                    backoff.reset()
                    self._wake()
                    while not self._stopping.is_set():
                        # The timeout only bounds how long stop() waits.
                        for _ in conn.notifies(timeout=1.0):
                            self._wake()
            except psycopg.Error as exc:
                log.debug("LISTEN connection failed (%s): polling meanwhile", exc)
                self._stopping.wait(backoff.next_delay())
