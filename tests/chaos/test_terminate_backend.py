"""Scenario 3: pg_terminate_backend on the runners' connections, again and
again, while they drain the queue.

Each round ends every runner connection of the database (the work
connections and the LISTEN ones) at whatever point they are: in a dequeue,
between a handler's end and its complete_job, in the middle of a batch of
results. The runners reconnect, record what they still can, and carry on.
"""

from __future__ import annotations

import time

from support.waiting import wait_for

from .harness import (
    Reconnecting,
    Runners,
    Submitted,
    Sweeper,
    Terminator,
    all_finished,
    check_promise,
    job_mix,
    outage_lines,
    runner_log_problems,
    running,
    submit_now,
)

RUNNER_ARGS = ("--concurrency", "4", "--visibility-timeout", "3", "--poll-interval", "0.2")


def test_terminated_runner_connections_lose_no_job(chaos_db, workdir, scale, report):
    began = time.monotonic()
    submitted = Submitted()
    mix = job_mix((0, 60), flaky=0.05, fail=0.03)
    submit_now(chaos_db, submitted, mix, scale.terminate_jobs, 3)
    sweeper = Sweeper(chaos_db)
    terminator = Terminator(chaos_db, pace=0.4)
    runners = Runners(chaos_db, workdir, *RUNNER_ARGS)
    probe = Reconnecting(chaos_db, "chaos-probe")
    try:
        runners.start(3)
        with running(sweeper, terminator):
            wait_for(
                lambda: all_finished(probe, scale.terminate_jobs),
                "every job to finish",
                timeout=240,
            )
        codes = runners.stop_all()
    finally:
        runners.cleanup()
        probe.drop()

    fig = check_promise(chaos_db, "3. pg_terminate_backend on runners", submitted, workdir)
    fig.faults = terminator.terminated
    fig.fault_kind = f"runner connections terminated, in {terminator.rounds} rounds"
    fig.seconds = time.monotonic() - began
    fig.notes.update(runner_outage_lines=outage_lines(runners.live), sweep=dict(sweeper.totals))
    fig.problems += runner_log_problems(runners.live)
    fig.problems += [f"{name} exited {code}" for name, code in codes.items() if code != 0]
    fig.problems += [f"sweep: {e}" for e in sweeper.unexpected]
    fig.problems += [f"terminator: {e}" for e in terminator.unexpected]
    report(fig)

    assert fig.problems == []
    assert (fig.lost, fig.duplicated, fig.messages_left) == (0, 0, 0)
    assert terminator.rounds >= 3, "the drain ended before the faults began"
