"""Helpers of the runner tests: the `jobqueue` command run as a subprocess.

Nothing here sleeps to let time pass: tests wait for a state in the database
(or a line in a log) with a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

SUPPORT = Path(__file__).resolve().parent / "support"
USER_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("JOBQUEUE_HANDLERS", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SUPPORT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def jobqueue_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "jobqueue", *args]


def run_cli(
    url: str, *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs `jobqueue ARGS --database-url URL` to the end."""
    return subprocess.run(
        jobqueue_cmd(*args, "--database-url", url),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or cli_env(),
    )


def wait_for(predicate: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Polls `predicate` until it returns something truthy; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class RunnerProcess:
    """A `jobqueue run` in the background, its log in a file."""

    def __init__(self, url: str, args: tuple[str, ...], log_path: Path, env: dict[str, str]):
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            jobqueue_cmd("run", "--database-url", url, *args),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_for_log(self, text: str, timeout: float = 20) -> None:
        wait_for(lambda: text in self.log(), timeout, f"{text!r} in the runner's log")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def submit(conn: psycopg.Connection, job_type: str, parameters: dict | None = None) -> uuid.UUID:
    row = conn.execute(
        "select submit_job(%s, %s::jsonb, %s)",
        (job_type, None if parameters is None else psycopg.types.json.Jsonb(parameters), USER_ID),
    ).fetchone()
    assert row is not None
    return row[0]


def job(conn: psycopg.Connection, job_id: uuid.UUID) -> dict[str, Any]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("select * from jobs where id = %s", (job_id,)).fetchone()
    assert row is not None
    return row


def status(conn: psycopg.Connection, job_id: uuid.UUID) -> str:
    return job(conn, job_id)["status"]


def messages(conn: psycopg.Connection) -> int:
    row = conn.execute("select count(*) from jobqueue.queue_messages").fetchone()
    assert row is not None
    return row[0]


def add_job_type(conn: psycopg.Connection, name: str, **settings: Any) -> None:
    columns = ["name", *settings]
    placeholders = ", ".join(["%s"] * len(columns))
    conn.execute(
        f"insert into job_types ({', '.join(columns)}) values ({placeholders})",  # type: ignore[arg-type]
        (name, *settings.values()),
    )
