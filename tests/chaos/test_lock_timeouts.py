"""Scenario 8: the database refuses a runner's calls for a while without
the connection being lost: row locks held by someone else, and a runner
whose role has a lock_timeout (55P03), as DBAs often set.

A refusal that says nothing about the result itself must not fail the job
nor drop its result: the runner keeps it and tries again while the lease
lasts.
"""

from __future__ import annotations

import time

from support.waiting import wait_for

from .harness import (
    Locker,
    Reconnecting,
    Runners,
    Submitted,
    Sweeper,
    all_finished,
    check_promise,
    job_mix,
    runner_log_problems,
    running,
    submit_now,
)


def test_lock_timeouts_neither_fail_jobs_nor_drop_results(chaos_db, workdir, scale, report):
    began = time.monotonic()
    submitted = Submitted()
    submit_now(chaos_db, submitted, job_mix((0, 80), fail=0.03), scale.terminate_jobs, 8)
    locker = Locker(chaos_db, pace=0.05, hold=0.4, seed=8)
    sweeper = Sweeper(chaos_db)
    url = f"{chaos_db} options='-c lock_timeout=100'"
    runners = Runners(
        url, workdir, "--concurrency", "4", "--visibility-timeout", "3", "--poll-interval", "0.2"
    )
    probe = Reconnecting(chaos_db, "chaos-probe")
    try:
        runners.start(2)
        with running(sweeper, locker):
            wait_for(
                lambda: all_finished(probe, scale.terminate_jobs),
                "every job to finish",
                timeout=240,
            )
        codes = runners.stop_all()
    finally:
        runners.cleanup()
        probe.drop()

    fig = check_promise(chaos_db, "8. lock timeouts (55P03)", submitted, workdir)
    fig.faults = locker.locked
    fig.fault_kind = f"rows locked by another session for 0.2-0.6 s, {locker.rounds} rounds"
    fig.seconds = time.monotonic() - began
    fig.notes.update(sweep=dict(sweeper.totals))
    fig.problems += runner_log_problems(runners.live)
    fig.problems += [f"{name} exited {code}" for name, code in codes.items() if code]
    fig.problems += [f"sweep: {e}" for e in sweeper.unexpected]
    wrongly = {k: v for k, v in fig.failed_by_type.items() if k != "ChaosFailure"}
    if wrongly:
        fig.problems.append(f"jobs failed for no fault of theirs: {wrongly}")
    report(fig)

    assert fig.problems == []
    assert (fig.lost, fig.duplicated, fig.messages_left) == (0, 0, 0)
