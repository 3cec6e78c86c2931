"""Scenario 1: a runner killed with SIGKILL in the middle of a batch.

Jobs that last 50-400 ms are drained by three runners with 3 s leases while
the sweep runs in a loop. A runner holding several running jobs is killed
(in the full form, again and again, each time replaced by a new one); the
other runners and the sweep finish its jobs once their leases expire.
"""

from __future__ import annotations

import time

from support.waiting import wait_for

from .harness import (
    Reconnecting,
    Runners,
    Submitted,
    Sweeper,
    all_finished,
    check_promise,
    count_by_status,
    in_flight,
    job_mix,
    runner_log_problems,
    running,
    submit_now,
)

RUNNER_ARGS = ("--concurrency", "4", "--visibility-timeout", "3", "--poll-interval", "0.2")


def test_a_runner_killed_mid_batch_loses_no_job(chaos_db, workdir, scale, report):
    began = time.monotonic()
    submitted = Submitted()
    submit_now(chaos_db, submitted, job_mix((50, 400), flaky=0.1, fail=0.05), scale.kill_jobs, 1)
    runners = Runners(chaos_db, workdir, *RUNNER_ARGS)
    sweeper = Sweeper(chaos_db)
    probe = Reconnecting(chaos_db, "chaos-probe")
    abandoned = 0
    try:
        runners.start(3)
        with running(sweeper):
            for k in range(scale.kills):
                # Spread the kills over the drain.
                share = (k + 1) * scale.kill_jobs // (scale.kills + 2)
                wait_for(
                    lambda share=share: count_by_status(chaos_db).get("completed", 0) >= share,
                    f"{share} completed jobs before kill {k + 1}",
                    timeout=120,
                )
                victim = runners.live[0]
                held = wait_for(
                    lambda victim=victim: (n := in_flight(workdir, victim.pid)) >= 2 and n,
                    f"{victim.name} to run at least two jobs",
                    timeout=60,
                )
                runners.kill(victim)
                abandoned += held
                runners.start(1)  # a replacement, as a supervisor would start
            wait_for(
                lambda: all_finished(probe, scale.kill_jobs), "every job to finish", timeout=180
            )
        codes = runners.stop_all()
    finally:
        runners.cleanup()
        probe.drop()

    fig = check_promise(chaos_db, "1. kill -9 a runner mid-batch", submitted, workdir)
    fig.faults = len(runners.killed)
    fig.fault_kind = "SIGKILL to a runner holding running jobs"
    fig.seconds = time.monotonic() - began
    fig.notes.update(attempts_abandoned=abandoned, sweep=dict(sweeper.totals))
    fig.problems += runner_log_problems(runners.live)
    fig.problems += [f"{name} exited {code}" for name, code in codes.items() if code != 0]
    fig.problems += [f"sweep: {e}" for e in sweeper.unexpected]
    report(fig)

    assert fig.problems == []
    assert (fig.lost, fig.duplicated, fig.messages_left) == (0, 0, 0)
    assert fig.completed + fig.failed == scale.kill_jobs
    # The killed runners' running jobs ran again elsewhere, once their leases ended.
    assert fig.reexecuted >= 1
