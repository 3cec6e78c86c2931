"""Handlers the benchmark loads into the runner: `jobqueue run --handlers bench.handlers`.

bench_noop writes the moment it starts (time.time(), before anything else)
and the job's id to the file named by BENCH_PICKUP_FILE, one line per job,
so that pickup latency can be measured from the submitter's commit to the
handler's start on the same clock. It does nothing else.
"""

from __future__ import annotations

import os
import time
from typing import Any

_fd: int | None = None


def _record(line: str) -> None:
    global _fd
    if _fd is None:
        path = os.environ.get("BENCH_PICKUP_FILE")
        if not path:
            return
        _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    # One write per line with O_APPEND: lines of concurrent handlers never interleave.
    os.write(_fd, line.encode())


def bench_noop(job: Any) -> None:
    started = time.time()
    _record(f"{job.job_id}\t{started:.6f}\n")


# A dict rather than @jobqueue.handler: this module then needs nothing from
# jobqueue's import-time API.
HANDLERS = {"bench_noop": bench_noop}
