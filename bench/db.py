"""The benchmark's databases: created on the server of DATABASE_URL, each
dropped and recreated by the run; no other database is touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench import queries

REPO = Path(__file__).resolve().parent.parent
# Where the code under test is read from: the working tree, or the snapshot
# that snapshot() takes at the start of a run.
CODE = {"sql": REPO / "sql", "python": REPO / "python"}
# Every job the benchmark submits belongs to this user.
USER_ID = "00000000-0000-4000-8000-00000000be9c"
# The lease of the jobs the benchmark takes itself (not through a runner):
# the runner's default --visibility-timeout, as in the pgbench scripts.
VISIBILITY_TIMEOUT = 30


def pg_bin(name: str) -> str:
    """A PostgreSQL client program: $PG_BIN, then PATH, then Debian's place."""
    for folder in (os.environ.get("PG_BIN"), None, "/usr/lib/postgresql/15/bin"):
        if folder is None:
            found = shutil.which(name)
            if found:
                return found
            continue
        path = Path(folder) / name
        if path.is_file():
            return str(path)
    raise FileNotFoundError(f"{name} not found: set PG_BIN to PostgreSQL's bin folder")


def database_name(url: str) -> str:
    return conninfo_to_dict(url).get("dbname") or os.environ.get("PGDATABASE") or "postgres"


def with_database(url: str, name: str) -> str:
    """The conninfo of database `name` on the server of `url`."""
    return make_conninfo(url, dbname=name)


def connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    kwargs.setdefault("autocommit", True)
    kwargs.setdefault("application_name", "jobqueue-bench")
    return psycopg.connect(url, **kwargs)


@contextmanager
def connection(url: str, **kwargs: Any) -> Iterator[psycopg.Connection[Any]]:
    conn = connect(url, **kwargs)
    try:
        yield conn
    finally:
        conn.close()


def execute(url: str, name: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Runs one named query on a connection of its own; returns its rows."""
    with connection(url) as conn:
        cur = conn.execute(queries.get(name), params)
        return cur.fetchall() if cur.description else []


def recreate(server_url: str, name: str) -> str:
    """Drops and creates database `name` (never the one DATABASE_URL names);
    returns its conninfo."""
    if name == database_name(server_url):
        raise ValueError(f"refusing to drop {name!r}: it is the database DATABASE_URL names")
    with connection(server_url) as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL(queries.get("database_drop")).format(name=ident))
        conn.execute(sql.SQL(queries.get("database_create")).format(name=ident))
    return with_database(server_url, name)


def drop(server_url: str, name: str) -> None:
    if name == database_name(server_url):
        raise ValueError(f"refusing to drop {name!r}: it is the database DATABASE_URL names")
    with connection(server_url) as conn:
        conn.execute(sql.SQL(queries.get("database_drop")).format(name=sql.Identifier(name)))


def snapshot(folder: Path) -> None:
    """Copies sql/ and python/jobqueue/ into `folder` and measures that copy
    from now on: a run's every database and runner then has the same code,
    even while the working tree changes under it."""
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(REPO / "sql", folder / "sql")
    shutil.copytree(
        REPO / "python" / "jobqueue",
        folder / "python" / "jobqueue",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    CODE["sql"] = folder / "sql"
    CODE["python"] = folder / "python"
    # This process too (the Python client scenario imports jobqueue later).
    sys.path.insert(0, str(CODE["python"]))


def install(url: str) -> None:
    """Installs the SQL package as users do: psql -f sql/install.sql."""
    install_sql = CODE["sql"] / "install.sql"
    done = subprocess.run(
        [pg_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(install_sql)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"install.sql failed:\n{done.stderr.strip()}")


def source_state() -> dict[str, object]:
    """Which code is measured: the checkout's commit, and the files of sql/
    and python/ changed since (the benchmark installs the working tree)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "sql", "python")
    return {
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "uncommitted": [line[3:] for line in changed.splitlines()],
    }


def server_settings(url: str) -> dict[str, str]:
    rows = execute(url, "server_settings")
    return {name: f"{setting}{' ' + unit if unit else ''}" for name, setting, unit in rows}


def reset_jobs(url: str) -> None:
    """No jobs and no messages, tables vacuumed and analyzed."""
    with connection(url) as conn:
        conn.execute(queries.get("jobs_reset"))
        conn.execute(queries.get("queue_purge"))
        conn.execute(queries.get("vacuum_jobs"))
        conn.execute(queries.get("vacuum_queue"))


def submit_many(
    url: str, count: int, job_type: str = "sample_task", chunk: int = 5000, analyze: bool = True
) -> None:
    """Submits `count` jobs with {} parameters through submit_jobs(), then
    vacuums the tables (and analyzes them, unless told not to)."""
    with connection(url) as conn:
        left = count
        while left > 0:
            n = min(chunk, left)
            conn.execute(
                queries.get("jobs_submit_many"),
                {"job_type": job_type, "parameters": "{}", "n": n, "user_id": USER_ID},
            )
            left -= n
        conn.execute(queries.get("vacuum_jobs" if analyze else "vacuum_jobs_only"))
        conn.execute(queries.get("vacuum_queue"))


def job_counts(url: str) -> dict[str, int]:
    with connection(url) as conn:
        return dict(conn.execute(queries.product("job_count_by_status")).fetchall())


def update_stats(url: str) -> dict[str, tuple[int, int]]:
    """(updates, HOT updates) of the jobs table and of the queue table."""
    return {name: (upd, hot) for name, upd, hot in execute(url, "table_update_stats")}
