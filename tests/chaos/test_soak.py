"""Scenario 4: a soak. Everything at once, for a bounded time.

Two submitters, three runners, the sweep in a loop, random cancels, poison
and stale messages sent straight into the queue, a few handlers that hang
past their type's timeout, and a runner replaced with SIGTERM now and then.
The invariant and the audited state changes are checked once a second while
it runs, and the whole promise at the end.
"""

from __future__ import annotations

import threading
import time

import psycopg
from support.waiting import wait_for

from .harness import (
    Canceller,
    Checker,
    Poisoner,
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

RUNNER_ARGS = (
    "--concurrency",
    "4",
    "--visibility-timeout",
    "3",
    "--poll-interval",
    "0.2",
    "--shutdown-grace",
    "10",
)


def test_a_soak_of_everything_at_once_keeps_every_promise(chaos_db, workdir, scale, report):
    began = time.monotonic()
    submitted = Submitted()
    mix = job_mix((0, 150), flaky=0.08, fail=0.04, hang=0.004)
    submitters = [
        Submitter(chaos_db, submitted, mix, total=None, batch=3, pace=0.1, seed=i, name=f"s{i}")
        for i in range(2)
    ]
    canceller = Canceller(chaos_db, submitted, pace=0.2, seed=41)
    poisoner = Poisoner(chaos_db, pace=1.0, seed=42)
    sweeper = Sweeper(chaos_db)
    checker = Checker(chaos_db)
    runners = Runners(chaos_db, workdir, *RUNNER_ARGS)
    probe = Reconnecting(chaos_db, "chaos-probe")
    restarts: dict[str, int] = {}
    clock = threading.Event()
    try:
        runners.start(3)
        with running(sweeper, checker):
            with running(*submitters, canceller, poisoner):
                end = began + scale.soak_seconds
                every = scale.soak_seconds / 3
                while (now := time.monotonic()) < end:
                    clock.wait(min(every, end - now))  # the soak's own duration
                    if time.monotonic() < end:
                        # A deploy: the oldest runner stops cleanly, a new one starts.
                        old = runners.live[0]
                        runners.start(1)
                        restarts[old.name] = old.stop()
                        runners.killed.append(old)  # no longer live
            wait_for(lambda: all_finished(probe, 1), "every job to finish", timeout=120)
            wait_for(lambda: _messages(probe) == 0, "the queue to empty", timeout=60)
        codes = runners.stop_all()
        archived = probe.call(
            lambda conn: conn.execute("select count(*) from pgmq.a_job_queue").fetchone()[0]
        )
    finally:
        runners.cleanup()
        probe.drop()

    fig = check_promise(chaos_db, "4. soak", submitted, workdir, cancelled=canceller.cancelled)
    hung = sum(1 for p in submitted.committed.values() if p.get("ms") == 3000)
    fig.faults = len(canceller.cancelled) + poisoner.poison + poisoner.stale + hung + len(restarts)
    fig.fault_kind = (
        f"{len(canceller.cancelled)} cancels, {poisoner.poison} poison and {poisoner.stale}"
        f" stale messages, {hung} hung handlers, {len(restarts)} runner restarts,"
        f" for {scale.soak_seconds:.0f} s"
    )
    fig.seconds = time.monotonic() - began
    fig.notes.update(
        checks_while_running=checker.checks,
        cancel_refused=canceller.refused,
        poison_archived=archived,
        sweep=dict(sweeper.totals),
    )
    fig.problems += [f"while running: {v}" for v in checker.violations]
    fig.problems += runner_log_problems(runners.all)
    exits = {**codes, **restarts}
    fig.problems += [f"{name} exited {code}" for name, code in exits.items() if code]
    for actor in (*submitters, canceller, poisoner, sweeper, checker):
        fig.problems += [f"{actor.name}: {e}" for e in actor.unexpected]
    if archived != poisoner.poison:
        fig.problems.append(f"{poisoner.poison} poison messages sent, {archived} archived")
    if fig.failed_by_type.get("Cancelled", 0) != len(canceller.cancelled):
        fig.problems.append("a cancelled job did not end Cancelled")
    report(fig)

    assert fig.problems == []
    assert (fig.lost, fig.duplicated, fig.messages_left) == (0, 0, 0)
    assert checker.checks >= scale.soak_seconds / 2


def _messages(probe: Reconnecting) -> int:
    def count(conn: psycopg.Connection) -> int:
        row = conn.execute("select count(*) from jobqueue.queue_messages").fetchone()
        assert row is not None
        return row[0]

    return probe.call(count)
