"""Job handlers: the Python function that runs each job type.

A handler takes a `Job` and returns a JSON-able value (recorded as the job's
data_references) or None. Raising anything fails the attempt (the job is
retried when its type allows it). Register handlers in a module of your own:

    # mypkg/jobs.py
    import jobqueue

    @jobqueue.handler("send_email")
    def send_email(job: jobqueue.Job) -> dict:
        ...
        return {"message_id": "..."}

or with a module-level dict, for code that should not import jobqueue:

    HANDLERS = {"send_email": send_email}

and load it in the runner with ``jobqueue run --handlers mypkg.jobs``
(repeatable), or ``JOBQUEUE_HANDLERS=mypkg.jobs,otherpkg.jobs``. The module
must be importable (installed, or on PYTHONPATH). The job type itself is
registered in the database: ``insert into job_types (name) values ('send_email')``.

`sample_task` is built in.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Job:
    """One attempt of a job, as dequeue_jobs() handed it out."""

    job_id: UUID
    msg_id: int
    job_type: str
    user_id: UUID
    parameters: dict[str, Any]
    retry_count: int


Handler = Callable[[Job], Any]
F = TypeVar("F", bound=Handler)


class HandlerRegistry:
    """Job type name -> handler."""

    def __init__(self, handlers: Mapping[str, Handler] | None = None) -> None:
        self._handlers: dict[str, Handler] = dict(handlers or {})

    def register(self, job_type: str, fn: Handler) -> None:
        if not callable(fn):
            raise TypeError(f"the handler for {job_type!r} is not callable: {fn!r}")
        existing = self._handlers.get(job_type)
        if existing is not None and existing is not fn:
            raise ValueError(
                f"job type {job_type!r} already has a handler: "
                f"{existing.__module__}.{getattr(existing, '__qualname__', existing)}"
            )
        self._handlers[job_type] = fn

    def handler(self, job_type: str) -> Callable[[F], F]:
        """Decorator: registers the function as the handler of `job_type`."""

        def register(fn: F) -> F:
            self.register(job_type, fn)
            return fn

        return register

    def unregister(self, job_type: str) -> None:
        """Forgets the handler of `job_type`, if any."""
        self._handlers.pop(job_type, None)

    def get(self, job_type: str) -> Handler | None:
        return self._handlers.get(job_type)

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def __contains__(self, job_type: object) -> bool:
        return job_type in self._handlers

    def load_module(self, module_name: str) -> None:
        """Imports a module of handlers: its @handler functions register as it
        is imported, and its HANDLERS dict, if any, is added here."""
        module = importlib.import_module(module_name)
        table = getattr(module, "HANDLERS", None)
        if table is None:
            return
        if not isinstance(table, Mapping):
            raise TypeError(f"{module_name}.HANDLERS must be a dict of job type -> function")
        for job_type, fn in table.items():
            self.register(job_type, fn)

    def load_modules(self, module_names: Iterable[str]) -> None:
        for name in module_names:
            self.load_module(name)


# The registry that @jobqueue.handler fills at import time, and that the
# runner uses unless it is given another.
default_registry = HandlerRegistry()


def handler(job_type: str) -> Callable[[F], F]:
    """Decorator: registers a function as the handler of `job_type`."""
    return default_registry.handler(job_type)


def split_module_list(value: str | None) -> list[str]:
    """'a.b, c' -> ['a.b', 'c'] (the JOBQUEUE_HANDLERS format)."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


# -- built in -------------------------------------------------------------------


class SampleTaskFailed(Exception):
    """Raised by sample_task when its parameters ask it to fail."""


@handler("sample_task")
def sample_task(job: Job) -> dict[str, Any]:
    """Sleeps duration_ms, raises when fail is true, else returns {"echo": message}."""
    params = job.parameters
    duration_ms = params.get("duration_ms") or 0
    if duration_ms:
        time.sleep(duration_ms / 1000)
    if params.get("fail"):
        raise SampleTaskFailed(f"sample_task failed as asked (fail=true) after {duration_ms} ms")
    return {"echo": params.get("message")}
