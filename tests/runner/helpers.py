"""Helpers of the runner tests: the `jobqueue` command run as a subprocess.

Nothing here sleeps to let time pass: tests wait for a state in the database
(or a line in a log) with a deadline (support.waiting). Jobs are submitted
and read with support.jobs.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from support.processes import python_env
from support.waiting import wait_for

# The handler modules the runners of these tests load (--handlers jq_test_handlers).
HANDLER_MODULES = Path(__file__).resolve().parent / "support"


def cli_env(**extra: str) -> dict[str, str]:
    return python_env(HANDLER_MODULES, **extra)


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
        wait_for(lambda: text in self.log(), f"{text!r} in the runner's log", timeout=timeout)

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
