"""How much the benchmark measures: the default run, and --quick."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from bench.db import REPO

SCENARIOS = ("baselines", "submit", "batch", "drain", "latency", "scale", "profile")
# Everything a run writes but the chart: results, report, logs, the snapshot
# (ignored by git). docs/performance.md carries the table worth keeping.
OUT = REPO / "bench" / "out"


@dataclass(frozen=True)
class Settings:
    server_url: str  # DATABASE_URL: the server to use, its database left alone
    database: str = "jobqueue_bench"  # dropped and recreated, as are <name>_scale_<n>
    runs: int = 3  # each figure is the median of this many runs
    seconds: float = 6.0  # one timed pgbench or client measurement
    batch_size: int = 1000  # scenario 2
    drain_jobs: int = 20_000  # scenario 3 and baseline (b)
    drain_concurrency: int = 8
    latency_jobs: int = 200  # scenario 4
    latency_gap: float = 0.020
    idle_seconds: float = 5.0
    scale_small: int = 10_000  # scenario 5: finished jobs
    scale_large: int = 1_000_000
    scale_pending: int = 100_000
    scale_calls: int = 200  # calls of submit_job, dequeue_jobs, complete_job per state and run
    scale_recover_calls: int = 1  # per state and run: one sweep over 100,000 pending takes seconds
    scenarios: tuple[str, ...] = SCENARIOS
    scaling: bool = False  # drain with 1, 2, 4 runner processes x concurrency 1, 2, 4, 8
    scaling_jobs: int = 20_000
    keep: bool = False  # keep the benchmark databases afterwards
    out_dir: Path = OUT
    results_path: Path = OUT / "results.json"
    chart_path: Path = REPO / "docs" / "img" / "bench.png"
    quick: bool = False

    def scale_database(self, finished: int) -> str:
        return f"{self.database}_scale_{finished}"

    def quick_run(self) -> Settings:
        """A smoke run of about a minute: every scenario, small numbers."""
        return replace(
            self,
            quick=True,
            runs=1,
            seconds=2.0,
            drain_jobs=4000,
            latency_jobs=40,
            idle_seconds=2.0,
            scale_small=1_000,
            scale_large=20_000,
            scale_pending=5_000,
            scale_calls=40,
            scale_recover_calls=1,
            scaling_jobs=2000,
        )
