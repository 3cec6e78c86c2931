"""Handlers the runner tests load with --handlers jq_test_handlers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jobqueue


class NotAnException(BaseException):
    """A BaseException that is neither KeyboardInterrupt nor SystemExit."""


@jobqueue.handler("test_sleep")
def sleep(job: jobqueue.Job) -> dict[str, Any]:
    """Sleeps `seconds`; touches `started_file` first, when given."""
    started_file = job.parameters.get("started_file")
    if started_file:
        Path(started_file).write_text(str(job.job_id))
    time.sleep(float(job.parameters.get("seconds", 0)))
    return {"slept": job.parameters.get("seconds", 0), "attempt": job.retry_count + 1}


@jobqueue.handler("test_flaky")
def flaky(job: jobqueue.Job) -> dict[str, int]:
    """Fails its first attempt, succeeds on the retry."""
    if job.retry_count == 0:
        raise ConnectionResetError("the first attempt always fails")
    return {"attempt": job.retry_count + 1}


def raise_base_exception(job: jobqueue.Job) -> None:
    kind = job.parameters.get("kind")
    if kind == "system_exit":
        raise SystemExit(3)
    if kind == "keyboard_interrupt":
        raise KeyboardInterrupt
    raise NotAnException("a BaseException from a handler")


def unserializable(job: jobqueue.Job) -> object:
    return {"when": object()}


def nul_result(job: jobqueue.Job) -> dict[str, str]:
    return {"text": "nul \x00 inside"}  # JSON, but not a jsonb value


HANDLERS = {
    "test_base_exception": raise_base_exception,
    "test_unserializable": unserializable,
    "test_nul_result": nul_result,
}
