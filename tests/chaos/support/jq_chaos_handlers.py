"""Handlers the fault-injection scenarios load with --handlers jq_chaos_handlers.

Every run of a handler appends a line to a file of its own process in
$JQ_CHAOS_EXEC_DIR, when it starts and when it ends, so that the scenarios
can count executions per job and per attempt (msg_id) after the fact, even
of a runner killed with SIGKILL: the lines are written with one write(2) each
to a file opened with O_APPEND, and the kernel keeps them whatever happens to
the process.

Line format: ``<event> <job_id> <msg_id> <retry_count> <pid> <monotonic>``
where event is start, ok (the handler returned) or fail (it raised).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import jobqueue

_fd: int | None = None


class ChaosFailure(Exception):
    """Raised by a job whose parameters ask it to fail."""


class ChaosBaseException(BaseException):
    """A BaseException that is not a shutdown request."""


class UnprintableError(Exception):
    """An exception whose message cannot even be turned into text."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ refuses")


class OddModuleError(Exception):
    """An exception class whose module name has no UTF-8 form."""


OddModuleError.__module__ = "odd\udc80module"


def _record(event: str, job: jobqueue.Job) -> None:
    global _fd
    if _fd is None:
        folder = Path(os.environ["JQ_CHAOS_EXEC_DIR"])
        path = folder / f"exec-{os.getpid()}.log"
        _fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    line = f"{event} {job.job_id} {job.msg_id} {job.retry_count} {os.getpid()} {time.monotonic()}\n"
    os.write(_fd, line.encode())


def _run(job: jobqueue.Job) -> dict[str, Any]:
    _record("start", job)
    params = job.parameters
    try:
        time.sleep(params.get("ms", 0) / 1000)
        if params.get("fail") or job.retry_count < params.get("flaky", 0):
            raise ChaosFailure(f"failed as asked (attempt {job.retry_count + 1})")
        _raise_hostile(params.get("hostile"))
    except BaseException:
        _record("fail", job)
        raise
    _record("ok", job)
    result: dict[str, Any] = {"msg_id": job.msg_id, "pid": os.getpid()}
    if params.get("hostile_result"):
        result["result"] = _hostile_result(params["hostile_result"])
    return result


def _hostile_result(kind: str) -> Any:
    """Results a careless handler may return; none can be recorded as is."""
    if kind == "not_json":
        return object()
    if kind == "nan":
        return float("nan")
    if kind == "surrogate":
        return "a lone surrogate \ud800"
    if kind == "nul":
        return "a NUL \x00 inside"
    raise ValueError(f"unknown hostile result {kind!r}")


def _raise_hostile(kind: str | None) -> None:
    """Failures a careless handler may produce; each must fail its job."""
    if kind is None:
        return
    if kind == "base_exception":
        raise ChaosBaseException("not an Exception")
    if kind == "unprintable":
        raise UnprintableError()
    if kind == "surrogate":
        raise ValueError("a lone surrogate \ud800 in the message")
    if kind == "nul":
        raise ValueError("a NUL \x00 in the message")
    if kind == "huge":
        raise ValueError("x" * 2_000_000)
    if kind == "surrogate_module":
        raise OddModuleError("a module name that is no UTF-8")
    raise ValueError(f"unknown hostile kind {kind!r}")


HANDLERS = {
    "chaos_task": _run,
    "chaos_fail": _run,
    "chaos_hang": _run,
}
