"""Scenario 3, end-to-end drain: pre-submitted no-op jobs (sample_task, {})
drained by `jobqueue run --burst`, wall time from the runner's start to its
exit with every job completed. Beside it, the same drain through the SQL
API from pgbench (no runner), which is the ceiling the SQL sets; and the
scaling table (runner processes x concurrency)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench import db, pgbench
from bench.runner import Runner, Watcher
from bench.settings import Settings


@dataclass(frozen=True)
class Drain:
    jobs: int
    wall: float  # seconds
    runner_cpu: float  # seconds, all runner processes
    backend_cpu: float  # seconds, their database backends (sampled)
    max_rss_mb: float
    hot_jobs: float  # share of HOT updates on public.jobs
    hot_queue: float  # and on the queue table

    @property
    def rate(self) -> float:
        return self.jobs / self.wall


def _hot_shares(url: str, before: dict[str, tuple[int, int]]) -> tuple[float, float]:
    time.sleep(0.5)  # exited backends have flushed their table statistics
    after = db.update_stats(url)

    def share(table: str) -> float:
        upd = after[table][0] - before.get(table, (0, 0))[0]
        hot = after[table][1] - before.get(table, (0, 0))[1]
        return hot / upd if upd else 0.0

    return share("jobs"), share("pgmq.q_job_queue")


def _check_all_completed(url: str, jobs: int, what: str) -> None:
    counts = db.job_counts(url)
    if counts.get("completed", 0) != jobs:
        raise RuntimeError(f"{what}: expected {jobs} completed jobs, found {counts}")


def runner_drain(
    url: str,
    jobs: int,
    *,
    concurrency: int,
    processes: int = 1,
    log_dir: Path | None = None,
) -> Drain:
    """`processes` runners with --burst --concurrency N over `jobs` jobs."""
    db.reset_jobs(url)
    db.submit_many(url, jobs)
    before = db.update_stats(url)
    runners = [
        Runner(
            url,
            concurrency=concurrency,
            burst=True,
            log_path=log_dir / f"drain-p{processes}-c{concurrency}-{i}.log" if log_dir else None,
        )
        for i in range(processes)
    ]
    timeout = 120 + jobs / 20
    started = time.time()
    for runner in runners:
        runner.start()
    with Watcher(url, [r.pid for r in runners]) as watcher:
        exits = [runner.wait(timeout) for runner in runners]
    finished = max(r.started + e.wall for r, e in zip(runners, exits, strict=True))
    failed = [e.code for e in exits if e.code]
    if failed:
        raise RuntimeError(f"jobqueue run --burst exited with {failed} (logs in {log_dir})")
    _check_all_completed(url, jobs, "runner drain")
    hot_jobs, hot_queue = _hot_shares(url, before)
    return Drain(
        jobs=jobs,
        wall=finished - started,
        runner_cpu=sum(e.cpu for e in exits),
        backend_cpu=watcher.backend_cpu_seconds(),
        max_rss_mb=max(max(e.max_rss_mb for e in exits), watcher.max_rss_mb),
        hot_jobs=hot_jobs,
        hot_queue=hot_queue,
    )


def sql_drain(url: str, s: Settings, batch: int) -> Drain:
    """The runner's calls without the runner: s.drain_concurrency pgbench
    clients, each dequeue_jobs(batch) then, in a transaction of its own,
    complete_jobs() for the jobs taken (complete_job for a batch of one)."""
    script = "drain_one" if batch == 1 else "drain_batch"
    return _pgbench_drain(url, s, batch, script)


def floor_drain(url: str, s: Settings, batch: int) -> Drain:
    """The drain's writes alone, in batches of `batch`, by plain SQL with no
    trigger (bench/sql/pgbench/drain_floor.sql): the ceiling of any drain
    with this data model on this machine."""
    return _pgbench_drain(url, s, batch, "drain_floor", "-c session_replication_role=replica")


def _pgbench_drain(
    url: str, s: Settings, batch: int, script: str, options: str | None = None
) -> Drain:
    """s.drain_concurrency pgbench clients drain freshly submitted jobs with
    `script`, `batch` jobs per transaction; every job must end completed."""
    clients = s.drain_concurrency
    per_client = max(1, s.drain_jobs // (clients * batch))
    jobs = per_client * clients * batch
    db.reset_jobs(url)
    db.submit_many(url, jobs)
    before = db.update_stats(url)
    define = {} if batch == 1 else {"batch": batch}
    result = pgbench.run(
        url, script, clients=clients, transactions=per_client, define=define, options=options
    )
    _check_all_completed(url, jobs, f"pgbench {script}")
    hot_jobs, hot_queue = _hot_shares(url, before)
    return Drain(jobs, per_client * clients / result.tps, 0.0, 0.0, 0.0, hot_jobs, hot_queue)


SCALING_PROCESSES = (1, 2, 4)
SCALING_CONCURRENCY = (1, 2, 4, 8)


def scaling(url: str, s: Settings, log_dir: Path) -> list[dict[str, float]]:
    """Drain throughput per (runner processes, concurrency), one drain of
    s.scaling_jobs each, repeated s.runs times (median kept by the caller)."""
    rows = []
    for processes in SCALING_PROCESSES:
        for concurrency in SCALING_CONCURRENCY:
            rates = []
            for _ in range(s.runs):
                drain = runner_drain(
                    url,
                    s.scaling_jobs,
                    concurrency=concurrency,
                    processes=processes,
                    log_dir=log_dir,
                )
                rates.append(drain.rate)
            rows.append({"processes": processes, "concurrency": concurrency, "rates": rates})
    return rows
