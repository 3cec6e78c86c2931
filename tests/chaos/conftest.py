"""Fixtures of the fault-injection scenarios (tests/chaos).

Two sizes: the short form runs in `make test`; `--chaos-full` (`make
chaos`) runs the same scenarios longer and larger. Each scenario gets a
fresh clone of the template (tests/conftest.py) with an audit trigger and
its job types (harness.prepare_database), and reports its figures; the
session writes them to tests/chaos/out/results-<short|full>.json (ignored by
git) and prints them as a table at the end.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from .harness import Cluster, Figures, local_cluster, prepare_database

OUT = Path(__file__).resolve().parent / "out"
_RESULTS: list[Figures] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-full",
        action="store_true",
        default=False,
        help="run the fault-injection scenarios in their full size (make chaos)",
    )


@dataclass(frozen=True)
class Scale:
    """How big and how long each scenario is."""

    full: bool
    kill_jobs: int
    kills: int
    crash_jobs: int
    crashes: int
    terminate_jobs: int
    soak_seconds: float
    machine_examples: int
    machine_steps: int
    fuzz_examples: int
    hostile_jobs: int

    @property
    def name(self) -> str:
        return "full" if self.full else "short"


SHORT = Scale(
    full=False,
    kill_jobs=240,
    kills=1,
    crash_jobs=2000,
    crashes=1,
    terminate_jobs=600,
    soak_seconds=20,
    machine_examples=25,
    machine_steps=30,
    fuzz_examples=120,
    hostile_jobs=40,
)
FULL = Scale(
    full=True,
    kill_jobs=2000,
    kills=6,
    crash_jobs=10000,
    crashes=3,
    terminate_jobs=5000,
    soak_seconds=180,
    machine_examples=400,
    machine_steps=60,
    fuzz_examples=2000,
    hostile_jobs=400,
)


def _full_requested(config: pytest.Config) -> bool:
    # The option exists only when this file was loaded at start-up (pytest
    # tests/chaos ...); `pytest tests` loads it later, and runs the short form.
    try:
        return bool(config.getoption("--chaos-full"))
    except ValueError:
        return False


@pytest.fixture(scope="session")
def scale(request: pytest.FixtureRequest) -> Scale:
    return FULL if _full_requested(request.config) else SHORT


@pytest.fixture
def chaos_db(new_db: str) -> str:
    """The URL of a fresh clone with the audit trigger and the chaos job types."""
    prepare_database(new_db)
    return new_db


@pytest.fixture
def cluster(new_db: str) -> Cluster:
    """The local cluster, for scenarios that crash PostgreSQL; skipped, with
    the reason printed, when the server is not the project's own."""
    found, reason = local_cluster(new_db)
    if found is None:
        print(f"\nskipped: {reason}")
        pytest.skip(reason)
    return found


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Where runners write their logs and the handlers their execution lines."""
    return tmp_path


@pytest.fixture
def report(scale: Scale) -> Callable[[Figures], None]:
    """Records a scenario's figures for the results file and the summary."""

    def _report(figures: Figures) -> None:
        figures.notes.setdefault("size", scale.name)
        _RESULTS.append(figures)

    return _report


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _RESULTS:
        return
    size = FULL.name if _full_requested(session.config) else SHORT.name
    OUT.mkdir(exist_ok=True)
    path = OUT / f"results-{size}.json"
    document = {
        "size": size,
        "commit": _commit(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "scenarios": [f.as_dict() for f in sorted(_RESULTS, key=lambda f: f.scenario)],
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _RESULTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault injection: figures")
    header = (
        f"{'scenario':<34} {'submitted':>9} {'faults':>7} {'completed':>9} {'failed':>7}"
        f" {'lost':>5} {'dup':>4} {'msgs':>5} {'rerun':>5} {'secs':>6}"
    )
    write(header)
    for f in sorted(_RESULTS, key=lambda f: f.scenario):
        write(
            f"{f.scenario:<34} {f.submitted:>9} {f.faults:>7} {f.completed:>9} {f.failed:>7}"
            f" {f.lost:>5} {f.duplicated:>4} {f.messages_left:>5} {f.reexecuted:>5}"
            f" {f.seconds:>6.1f}"
        )
    write(f"(written to {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT})")
