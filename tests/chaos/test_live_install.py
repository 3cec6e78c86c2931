"""Scenario 9: the package installed again and again over a live database,
while applications submit and runners drain.

Each install drops the package's code and creates it anew (functions,
triggers, views, grants) under locks on the jobs and queue tables. Callers
wait for it; none may fail, no job may be lost or run twice, and the
runners carry on with the new code.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from support.waiting import wait_for

from .harness import (
    Actor,
    Reconnecting,
    Runners,
    Submitted,
    Submitter,
    Sweeper,
    all_finished,
    check_promise,
    job_mix,
    runner_log_problems,
    running,
)

INSTALL_SQL = Path(__file__).resolve().parents[2] / "sql" / "install.sql"
RUNNER_ARGS = ("--concurrency", "4", "--visibility-timeout", "5", "--poll-interval", "0.2")


class Installer(Actor):
    """Runs sql/install.sql with psql, as a DBA upgrading would."""

    pace = 0.5

    def __init__(self, url: str) -> None:
        super().__init__(url, "chaos-install")
        self.url = url
        self.installs = 0

    def turn(self, conn) -> None:
        result = subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url, "-f", str(INSTALL_SQL)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            self.unexpected.append(result.stderr.strip()[-500:])
        self.installs += 1


def test_installs_over_a_live_database_lose_and_fail_nothing(chaos_db, workdir, scale, report):
    began = time.monotonic()
    total = scale.terminate_jobs
    submitted = Submitted()
    submitter = Submitter(
        chaos_db, submitted, job_mix((0, 20), fail=0.02), total=total, batch=5, pace=0.01, seed=9
    )
    sweeper = Sweeper(chaos_db)
    installer = Installer(chaos_db)
    runners = Runners(chaos_db, workdir, *RUNNER_ARGS)
    probe = Reconnecting(chaos_db, "chaos-probe")
    try:
        runners.start(2)
        with running(submitter, sweeper, installer):
            wait_for(submitter.done.is_set, "the submitter to finish", timeout=240)
            wait_for(lambda: installer.installs >= 3, "three installs", timeout=120)
            wait_for(lambda: all_finished(probe, total), "every job to finish", timeout=240)
        codes = runners.stop_all()
    finally:
        runners.cleanup()
        probe.drop()

    fig = check_promise(chaos_db, "9. installs during a drain", submitted, workdir)
    fig.faults = installer.installs
    fig.fault_kind = "installs of sql/install.sql"
    fig.seconds = time.monotonic() - began
    fig.problems += runner_log_problems(runners.live)
    fig.problems += [f"{name} exited {code}" for name, code in codes.items() if code != 0]
    fig.problems += [f"submit: {e}" for e in submitter.unexpected]
    fig.problems += [f"sweep: {e}" for e in sweeper.unexpected]
    fig.problems += [f"install: {e}" for e in installer.unexpected]
    report(fig)

    assert fig.problems == []
    assert (fig.lost, fig.duplicated, fig.messages_left) == (0, 0, 0)
    assert submitter.outages == sweeper.outages == 0
