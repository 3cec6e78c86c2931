"""Starting `jobqueue run` and watching it from /proc: RSS, CPU seconds, and
the CPU of the database backends that serve it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import db, queries

_TICK = os.sysconf("SC_CLK_TCK")


def runner_program() -> Path:
    """The CLI users get after set-up: .venv/bin/jobqueue (beside this Python)."""
    return Path(sys.executable).parent / "jobqueue"


def runner_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The runner's environment: the run's copy of jobqueue first (PYTHONPATH
    is searched before the editable install's path), and bench.handlers
    importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(db.CODE["python"]), str(db.REPO), env.get("PYTHONPATH")])
    )
    env.update(extra or {})
    return env


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process, from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_mb(pid: int) -> float | None:
    """VmRSS of a live process, from /proc/<pid>/status."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Exit:
    code: int
    wall: float  # seconds from spawn to exit
    cpu: float  # user + system seconds of the process
    max_rss_mb: float


@dataclass
class Runner:
    """One `jobqueue run` process."""

    url: str
    concurrency: int | None = None
    burst: bool = False
    handlers: str | None = None
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    exit: Exit | None = None

    def start(self) -> Runner:
        args = [str(runner_program()), "run", "--database-url", self.url]
        if self.concurrency is not None:
            args += ["--concurrency", str(self.concurrency)]
        if self.burst:
            args.append("--burst")
        if self.handlers:
            args += ["--handlers", self.handlers]
        args += self.extra_args
        env = runner_env(self.env)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.started = time.time()
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=env)
        if self.log_path:
            log.close()  # type: ignore[union-attr]
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def poll(self) -> Exit | None:
        """The exit, once the process has ended. The child is reaped here
        with wait4 (never by Popen) so that its resource usage is kept."""
        if self.exit is None and self.proc is not None:
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.exit = Exit(
                    self.proc.returncode,
                    time.time() - self.started,
                    usage.ru_utime + usage.ru_stime,
                    usage.ru_maxrss / 1024,
                )
        return self.exit

    def alive(self) -> bool:
        return self.proc is not None and self.poll() is None

    def wait(self, timeout: float | None = None) -> Exit:
        """Waits for the exit; kills the process after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (done := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"jobqueue run (pid {self.pid}) did not exit in {timeout:.0f} s")
            time.sleep(0.005)
        return done

    def stop(self, timeout: float = 60) -> Exit:
        """SIGTERM, then the exit."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            while self.poll() is None:
                time.sleep(0.005)


class Watcher:
    """Samples, every `interval`, the RSS of some processes and the CPU of
    the runner's database backends (found by application_name)."""

    def __init__(self, url: str, pids: list[int], interval: float = 0.2) -> None:
        self._url = url
        self._pids = pids
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-watcher", daemon=True)
        self.max_rss_mb = 0.0
        self.backend_cpu: dict[int, float] = {}  # last reading per backend
        self.backend_cpu_start: dict[int, float] = {}

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def backend_cpu_seconds(self) -> float:
        """CPU the backends used while watched (up to the last sample)."""
        return sum(
            cpu - self.backend_cpu_start.get(pid, cpu) for pid, cpu in self.backend_cpu.items()
        )

    def _run(self) -> None:
        with db.connection(self._url) as conn:
            query = queries.get("runner_backends")
            while not self._stop.is_set():
                for pid in self._pids:
                    rss = rss_mb(pid)
                    if rss:
                        self.max_rss_mb = max(self.max_rss_mb, rss)
                for (backend,) in conn.execute(query).fetchall():
                    cpu = cpu_seconds(backend)
                    if cpu is None:
                        continue
                    # A backend first seen now may have started before: its
                    # CPU so far counts only when it is new (the runner's).
                    self.backend_cpu_start.setdefault(backend, 0.0)
                    self.backend_cpu[backend] = cpu
                self._stop.wait(self._interval)
