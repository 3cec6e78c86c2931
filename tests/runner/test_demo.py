"""`python -m jobqueue.demo`, as `make demo` runs it."""

from __future__ import annotations

import subprocess
import sys

from .helpers import cli_env


def test_the_demo_drains_its_jobs_and_reports_each_status(new_db):
    result = subprocess.run(
        [sys.executable, "-m", "jobqueue.demo", "--database-url", new_db, "--jobs", "10"],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "completed   8" in result.stdout
    assert "failed      2" in result.stdout
    assert "SampleTaskFailed" in result.stdout
    assert "demo passed" in result.stdout
