"""RunnerConfig: how a runner runs, the options of `jobqueue run`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunnerConfig:
    """How a runner runs; the CLI's options, with the same defaults."""

    database_url: str
    concurrency: int = 4
    batch_size: int | None = None  # None: the concurrency
    visibility_timeout: int = 30
    burst: bool = False
    poll_interval: float = 1.0
    shutdown_grace: float = 30.0
    listen: bool = True

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.batch_size is not None and not 1 <= self.batch_size <= 10000:
            raise ValueError("batch_size must be between 1 and 10000")
        if not 1 <= self.visibility_timeout <= 86400:
            raise ValueError("visibility_timeout must be between 1 and 86400 seconds")
        if self.poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if self.shutdown_grace < 0:
            raise ValueError("shutdown_grace must not be negative")

    @property
    def dequeue_size(self) -> int:
        return self.batch_size or self.concurrency
