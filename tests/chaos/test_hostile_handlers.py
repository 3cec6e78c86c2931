"""Hostile handlers and poison messages: nothing a handler raises or returns,
and nothing found in the queue, stops a runner or blocks the queue.

Handlers raise BaseException subclasses, exceptions whose text cannot be
printed or encoded, NUL characters, megabytes of message; they return what
JSON or jsonb cannot hold. Poison messages (not an object, no job_id, a
job_id that is no uuid) sit in the queue between the jobs. Each hostile job
must end failed with a recorded error, every ordinary job completed, and the
runner must still be running, with all of its slots.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable

import psycopg
from psycopg.types.json import Jsonb
from support.waiting import wait_for

from .harness import (
    Reconnecting,
    Runners,
    Submitted,
    all_finished,
    check_promise,
    runner_log_problems,
    submit_now,
)

RUNNER_ARGS = ("--concurrency", "2", "--visibility-timeout", "3", "--poll-interval", "0.2")
RAISES = ("base_exception", "unprintable", "surrogate", "surrogate_module", "nul", "huge")
RETURNS = ("not_json", "nan", "surrogate", "nul")
POISON = ('"a string"', "[1, 2]", '{"no": "job id"}', '{"job_id": "not-a-uuid"}', "null")


HOSTILE = [{"hostile": kind} for kind in RAISES] + [{"hostile_result": kind} for kind in RETURNS]
# What each hostile job must end with: the exception's class, or for a
# result that jsonb refuses, ResultRejected.
EXPECTED = {
    "base_exception": "ChaosBaseException",
    "unprintable": "UnprintableError",
    "surrogate": "ValueError",
    "surrogate_module": "OddModuleError",
    "nul": "ValueError",
    "huge": "ValueError",
    "result:not_json": "TypeError",
    "result:nan": "ValueError",
    "result:surrogate": "ResultRejected",
    "result:nul": "ResultRejected",
}


def hostile_mix() -> Callable[[random.Random], tuple[str, dict]]:
    """Every hostile kind in turn, each followed by an ordinary job."""
    turn = itertools.count()

    def draw(rng: random.Random) -> tuple[str, dict]:
        n = next(turn)
        if n % 2:
            return "chaos_task", {"ms": rng.randint(0, 20)}
        return "chaos_fail", HOSTILE[n // 2 % len(HOSTILE)]

    return draw


def _kind(params: dict) -> str:
    if "hostile" in params:
        return params["hostile"]
    return f"result:{params['hostile_result']}"


def test_hostile_handlers_and_poison_messages_never_stop_a_runner(chaos_db, workdir, scale, report):
    began = time.monotonic()
    submitted = Submitted()
    with psycopg.connect(chaos_db, autocommit=True) as conn:
        for text in POISON:
            conn.execute("select pgmq.send(jobqueue.queue_name(), %s::jsonb)", (text,))
    submit_now(chaos_db, submitted, hostile_mix(), scale.hostile_jobs, 6)
    with psycopg.connect(chaos_db, autocommit=True) as conn:
        for text in POISON:
            conn.execute("select pgmq.send(jobqueue.queue_name(), %s)", (Jsonb(text),))
    # Two slots only: a slot lost to a hostile handler would stall the drain.
    runners = Runners(chaos_db, workdir, *RUNNER_ARGS)
    probe = Reconnecting(chaos_db, "chaos-probe")
    try:
        (runner,) = runners.start(1)
        wait_for(
            lambda: all_finished(probe, scale.hostile_jobs), "every job to finish", timeout=120
        )
        alive = runner.alive()
        codes = runners.stop_all()
        with psycopg.connect(chaos_db, autocommit=True) as conn:
            archived = conn.execute("select count(*) from pgmq.a_job_queue").fetchone()[0]
            unrecorded = conn.execute(
                "select count(*) from jobs where status = 'failed'"
                " and (error_type is null or error_message is null)"
            ).fetchone()[0]
            ended = dict(
                conn.execute(
                    "select id, error_type from jobs where job_type = 'chaos_fail'"
                ).fetchall()
            )
    finally:
        runners.cleanup()
        probe.drop()

    fig = check_promise(chaos_db, "7. hostile handlers, poison", submitted, workdir)
    hostile = sum(1 for p in submitted.committed.values() if "hostile" in str(p))
    fig.faults = hostile + 2 * len(POISON)
    fig.fault_kind = f"{hostile} hostile handlers, {2 * len(POISON)} poison messages"
    fig.seconds = time.monotonic() - began
    fig.notes.update(poison_archived=archived)
    fig.problems += runner_log_problems(runners.all)
    fig.problems += [f"{name} exited {code}" for name, code in codes.items() if code]
    if not alive:
        fig.problems.append("the runner died")
    if archived != 2 * len(POISON):
        fig.problems.append(f"{2 * len(POISON)} poison messages sent, {archived} archived")
    if unrecorded:
        fig.problems.append(f"{unrecorded} failed job(s) without a recorded error")
    for job_id, params in submitted.committed.items():
        if "hostile" in str(params) and ended.get(job_id) != EXPECTED[_kind(params)]:
            fig.problems.append(f"{_kind(params)} ended {ended.get(job_id)}")
    if fig.failed != hostile:
        fig.problems.append(f"{hostile} hostile jobs, {fig.failed} failed: {fig.failed_by_type}")
    report(fig)

    assert fig.problems == []
    assert (fig.lost, fig.duplicated, fig.messages_left) == (0, 0, 0)
