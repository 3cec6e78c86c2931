"""Scenario 4, pickup latency: an idle runner (default settings, with
bench.handlers loaded), jobs submitted one at a time `latency_gap` apart,
latency from the submitter's commit (the moment submit_job returned, on
an autocommit connection) to the handler's first statement, on the same
clock. Also what the idle runner costs: its CPU and that of its database
backends over `idle_seconds`, and its resident memory."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench import db, queries
from bench.runner import Runner, cpu_seconds, rss_mb
from bench.settings import Settings

_WARMUP_JOBS = 3


@dataclass(frozen=True)
class Pickup:
    latencies_ms: list[float]
    # The same, split at the job's started_at (now() of the runner's
    # dequeue_jobs transaction): commit -> the runner's dequeue begins
    # (NOTIFY, wake-up), then dequeue begins -> handler starts (dequeue_jobs
    # itself, the result's trip back, the hand-over to a worker thread).
    to_dequeue_ms: list[float]
    dequeue_to_handler_ms: list[float]
    idle_cpu_pct: float  # of one core, the runner process
    idle_backend_cpu_pct: float  # of one core, its database backends
    idle_rss_mb: float


def _recorded(path: Path) -> dict[str, float]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    starts = {}
    for line in text.splitlines():
        job_id, _, at = line.partition("\t")
        if at:
            starts[job_id] = float(at)
    return starts


def _wait_for(path: Path, count: int, timeout: float, runner: Runner) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        starts = _recorded(path)
        if len(starts) >= count:
            return starts
        if not runner.alive():
            raise RuntimeError(f"the runner exited with {runner.exit.code if runner.exit else '?'}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(starts)} of {count} jobs picked up after {timeout:.0f} s")
        time.sleep(0.01)


def pickup(url: str, s: Settings, log_dir: Path, *, listen: bool = True) -> Pickup:
    """With listen=False the runner polls (--no-listen), as it must behind
    a transaction pooler, and fewer jobs are submitted."""
    db.reset_jobs(url)
    mode = "listen" if listen else "poll"
    record = log_dir / f"pickup-{mode}.tsv"
    record.unlink(missing_ok=True)
    runner = Runner(
        url,
        handlers="bench.handlers",
        extra_args=[] if listen else ["--no-listen"],
        env={"BENCH_PICKUP_FILE": str(record)},
        log_path=log_dir / f"pickup-{mode}-runner.log",
    ).start()
    # Polling: fewer jobs, spread over several poll intervals at a gap that
    # is no fraction of the interval, so that they arrive at every phase.
    jobs = s.latency_jobs if listen else max(10, s.latency_jobs // 7)
    gap = s.latency_gap if listen else 0.137
    submit = queries.product("job_submit")
    params = {"job_type": "bench_noop", "job_parameters": "{}", "user_id": db.USER_ID}
    try:
        with db.connection(url, application_name="jobqueue-bench-submitter") as conn:
            # Warm-up: the runner is up, listening, its statements prepared.
            for i in range(_WARMUP_JOBS):
                conn.execute(submit, params)
                _wait_for(record, i + 1, 60, runner)
            time.sleep(1.0)

            backends = [pid for (pid,) in conn.execute(queries.get("runner_backends")).fetchall()]
            cpu0 = cpu_seconds(runner.pid) or 0.0
            back0 = sum(cpu_seconds(pid) or 0.0 for pid in backends)
            t0 = time.monotonic()
            time.sleep(s.idle_seconds if listen else 0.0)
            elapsed = max(time.monotonic() - t0, 1e-9)
            cpu1 = cpu_seconds(runner.pid) or 0.0
            back1 = sum(cpu_seconds(pid) or 0.0 for pid in backends)
            idle_rss = rss_mb(runner.pid) or 0.0

            committed: dict[str, float] = {}
            next_at = time.monotonic()
            for _ in range(jobs):
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                next_at += gap
                (job_id,) = conn.execute(submit, params).fetchone()  # type: ignore[misc]
                committed[str(job_id)] = time.time()
            starts = _wait_for(record, _WARMUP_JOBS + jobs, 60, runner)
            dequeued = {
                str(job_id): at
                for job_id, at in conn.execute(
                    queries.get("job_started_at"), {"ids": list(committed)}
                ).fetchall()
            }
    finally:
        runner.stop()
    latencies = [(starts[job] - at) * 1000 for job, at in committed.items()]
    return Pickup(
        latencies_ms=latencies,
        to_dequeue_ms=[(dequeued[job] - at) * 1000 for job, at in committed.items()],
        dequeue_to_handler_ms=[(starts[job] - dequeued[job]) * 1000 for job in committed],
        idle_cpu_pct=(cpu1 - cpu0) / elapsed * 100,
        idle_backend_cpu_pct=(back1 - back0) / elapsed * 100,
        idle_rss_mb=idle_rss,
    )
