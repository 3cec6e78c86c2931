"""Fixtures of the runner tests (helpers live in helpers.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .helpers import RunnerProcess, cli_env


@pytest.fixture
def start_runner(new_db: str, tmp_path: Path) -> Iterator[Callable[..., RunnerProcess]]:
    """Starts `jobqueue run` processes on the test's database; kills leftovers."""
    started: list[RunnerProcess] = []

    def _start(*args: str, env: dict[str, str] | None = None) -> RunnerProcess:
        log_path = tmp_path / f"runner-{len(started)}.log"
        runner = RunnerProcess(new_db, args, log_path, env or cli_env())
        started.append(runner)
        return runner

    yield _start
    for runner in started:
        runner.stop()
