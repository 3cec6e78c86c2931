"""Scenario 2: PostgreSQL crashes (pg_ctl stop -m immediate) and restarts
while runners drain thousands of jobs and a submitter keeps submitting.

Every job whose submitting transaction committed (the submitter saw the
commit return) must reach a terminal state; a transaction cut off by the
crash is in doubt, and its jobs may or may not exist. Runs only against the
project's own local cluster.
"""

from __future__ import annotations

import threading
import time

from support.waiting import wait_for

from .harness import (
    Reconnecting,
    Runners,
    Submitted,
    Submitter,
    Sweeper,
    all_finished,
    check_promise,
    is_connection_loss,
    job_mix,
    outage_lines,
    runner_log_problems,
    running,
)

LEASE = 3
RUNNER_ARGS = ("--concurrency", "4", "--visibility-timeout", str(LEASE), "--poll-interval", "0.2")


def test_a_postgres_crash_loses_no_committed_job(cluster, chaos_db, workdir, scale, report):
    began = time.monotonic()
    submitted = Submitted()
    submitter = Submitter(
        chaos_db,
        submitted,
        job_mix((0, 20), flaky=0.05, fail=0.02),
        total=scale.crash_jobs,
        batch=20,
        pace=0.02,
        seed=2,
    )
    sweeper = Sweeper(chaos_db)
    runners = Runners(chaos_db, workdir, *RUNNER_ARGS)
    probe = Reconnecting(chaos_db, "chaos-probe")
    crashes = 0
    try:
        runners.start(3)
        with running(submitter, sweeper):
            for k in range(scale.crashes):
                share = (k + 1) * scale.crash_jobs // (scale.crashes + 1)
                wait_for(
                    lambda share=share: (
                        len(submitted.ids()) >= share and _completed(probe) >= share // 3
                    ),
                    f"{share} jobs submitted before crash {k + 1}",
                    timeout=120,
                )
                cluster.crash()
                crashes += 1
                if k % 2 == 0:
                    # Stay down longer than a lease: the runners' held results
                    # are then refused (55000) and their jobs run again.
                    threading.Event().wait(LEASE + 1.5)
                cluster.start()
            wait_for(submitter.done.is_set, "the submitter to finish", timeout=180)
            wait_for(
                lambda: all_finished(probe, scale.crash_jobs), "every job to finish", timeout=300
            )
        codes = runners.stop_all()
    finally:
        runners.cleanup()
        probe.drop()

    fig = check_promise(chaos_db, "2. PostgreSQL crash and restart", submitted, workdir)
    fig.faults = crashes
    fig.fault_kind = "pg_ctl stop -m immediate during submit and drain; down 0-5 s"
    fig.seconds = time.monotonic() - began
    fig.notes.update(
        submit_outages=submitter.outages,
        runner_outage_lines=outage_lines(runners.live),
        sweep=dict(sweeper.totals),
    )
    fig.problems += runner_log_problems(runners.live)
    fig.problems += [f"{name} exited {code}" for name, code in codes.items() if code != 0]
    fig.problems += [f"sweep: {e}" for e in sweeper.unexpected]
    fig.problems += [f"submitter: {e}" for e in submitter.unexpected]
    report(fig)

    assert fig.problems == []
    assert (fig.lost, fig.duplicated, fig.messages_left) == (0, 0, 0)
    # Every runner saw each crash and said so once, however long it lasted.
    assert fig.notes["runner_outage_lines"] >= crashes


def _completed(probe: Reconnecting) -> int:
    try:
        return probe.call(
            lambda conn: conn.execute(
                "select count(*) from jobs where status = 'completed'"
            ).fetchone()[0],
            timeout=1,
        )
    except Exception as exc:
        if is_connection_loss(exc):
            return 0
        raise
