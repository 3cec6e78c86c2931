"""The benchmark's SQL: the product's own statements, the benchmark's, and
the pgbench scripts.

Where the benchmark makes the calls the runner or the client makes
(submit_job, dequeue_jobs, complete_job...), it takes them from jobqueue's
queries.sql (`product`), so that it measures exactly those statements. Its
own statements (databases, baselines, loading, profiles) sit in
bench/sql/queries.sql under `-- name: <name>` headers (`get`); the pgbench
scripts in bench/sql/pgbench/.
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import ModuleType

SQL_DIR = Path(__file__).resolve().parent / "sql"
PGBENCH_DIR = SQL_DIR / "pgbench"


def _jobqueue_queries() -> ModuleType:
    # Imported at first use, which comes after db.snapshot() has put the
    # run's copy of python/ first on sys.path: the statements are then those
    # of the code measured, which the runners load too.
    from jobqueue import queries

    return queries


def product(name: str) -> str:
    """A statement of jobqueue's queries.sql, as the runner and client run it."""
    return _jobqueue_queries().get(name)


@functools.cache
def _bench_queries() -> dict[str, str]:
    return _jobqueue_queries().parse((SQL_DIR / "queries.sql").read_text(encoding="utf-8"))


def get(name: str) -> str:
    """A statement of the benchmark's own, from bench/sql/queries.sql."""
    try:
        return _bench_queries()[name]
    except KeyError:
        raise KeyError(f"bench/sql/queries.sql has no query named {name!r}") from None


def pgbench_script(name: str) -> Path:
    path = PGBENCH_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(path)
    return path
