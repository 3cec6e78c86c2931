"""Runs pgbench custom scripts (bench/sql/pgbench/) and reads their rate."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass

from bench import queries
from bench.db import pg_bin

_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)
_PROCESSED = re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE)
_LATENCY = re.compile(r"^latency average = ([0-9.]+) ms", re.MULTILINE)


class PgbenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class PgbenchResult:
    tps: float  # script executions per second
    transactions: int
    latency_ms: float


def run(
    url: str,
    script: str,
    *,
    clients: int = 1,
    seconds: float | None = None,
    transactions: int | None = None,
    define: dict[str, object] | None = None,
    options: str | None = None,
) -> PgbenchResult:
    """Runs bench/sql/pgbench/<script>.sql with `clients` clients, either for
    `seconds` or for `transactions` per client. The extended protocol with
    prepared statements, as drivers use it. `options` go to PGOPTIONS (per
    session settings such as pg_stat_statements.track)."""
    if (seconds is None) == (transactions is None):
        raise ValueError("give seconds or transactions")
    args = [
        pg_bin("pgbench"),
        "--no-vacuum",
        "--protocol=prepared",
        f"--client={clients}",
        f"--jobs={min(clients, os.cpu_count() or 1)}",
        f"--file={queries.pgbench_script(script)}",
    ]
    if seconds is not None:
        args.append(f"--time={max(1, round(seconds))}")
    else:
        args.append(f"--transactions={transactions}")
    for key, value in (define or {}).items():
        args.append(f"--define={key}={value}")
    args.append(url)
    env = dict(os.environ)
    if options:
        env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} {options}".strip()
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    out = done.stdout + done.stderr
    tps = _TPS.search(out)
    processed = _PROCESSED.search(out)
    if done.returncode or not tps or not processed:
        raise PgbenchError(
            f"pgbench {script} failed (exit {done.returncode}):\n{out.strip()[-2000:]}"
        )
    if transactions is not None and int(processed[1]) != transactions * clients:
        raise PgbenchError(
            f"pgbench {script}: only {processed[1]} transactions ran:\n{out[-2000:]}"
        )
    latency = _LATENCY.search(out)
    return PgbenchResult(float(tps[1]), int(processed[1]), float(latency[1]) if latency else 0.0)
