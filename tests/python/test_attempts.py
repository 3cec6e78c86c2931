"""What a handler's failure becomes: an outcome PostgreSQL can store, whatever
the handler raised, and a worker thread that lives on."""

from __future__ import annotations

import json
import queue
import uuid

from jobqueue import attempts
from jobqueue.attempts import Attempt, Outcome, WorkerPool, failure
from jobqueue.handlers import Job


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def make_attempt(handler=None) -> Attempt:
    job = Job(uuid.uuid4(), 1, "t", uuid.uuid4(), {}, 0)
    return Attempt(job, handler, 0.0, 0.0, 0.0)


def storable(outcome: Outcome) -> None:
    """Every text field encodes as UTF-8 without NULs, the context is JSON."""
    for text in (outcome.error_message, outcome.error_type, outcome.error_context):
        assert text is not None
        assert "\x00" not in text
        text.encode("utf-8")
    json.loads(outcome.error_context or "")


def test_an_exception_whose_str_raises_still_fails_the_job():
    try:
        raise Unprintable()
    except Unprintable as exc:
        outcome = failure(make_attempt(), exc, 0.1, "r")

    storable(outcome)
    assert outcome.error_type == "Unprintable"
    assert "str() failed" in (outcome.error_message or "")


def test_nul_characters_and_lone_surrogates_are_escaped():
    try:
        raise ValueError("a \x00 and a \ud800")
    except ValueError as exc:
        outcome = failure(make_attempt(), exc, 0.1, "r")

    storable(outcome)
    assert outcome.error_message == "a \\0 and a \\ud800"


def test_a_worker_thread_survives_an_outcome_it_cannot_build(monkeypatch):
    outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
    pool = WorkerPool(1, outcomes.put, "r")
    calls = iter([RuntimeError("cannot describe"), None])

    def handler(job: Job) -> dict:
        return {"ok": True}

    real = attempts.run_handler

    def flaky_run_handler(attempt: Attempt, runner_name: str) -> Outcome:
        error = next(calls)
        if error is not None:
            raise error
        return real(attempt, runner_name)

    monkeypatch.setattr(attempts, "run_handler", flaky_run_handler)
    pool.start()
    try:
        pool.submit(make_attempt(handler))
        pool.submit(make_attempt(handler))
        first = outcomes.get(timeout=10)
        second = outcomes.get(timeout=10)
    finally:
        pool.stop()

    assert first.error_type == "HandlerError"
    storable(first)
    assert second.ok and second.data_references == '{"ok": true}'
