"""`jobqueue run` checks the database's jobqueue version before it takes any
job: same major and at least its own minor, or one log line and exit 1."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import jobqueue
import psycopg
from jobqueue.versions import major_minor
from psycopg import sql
from support.jobs import status, submit

from .helpers import run_cli

RUNNER = jobqueue.__version__
MAJOR, MINOR = major_minor(RUNNER)
OLDER = f"{MAJOR}.{MINOR - 1}.9" if MINOR else f"{MAJOR - 1}.99.0"


def record_version(db: psycopg.Connection, version: str) -> None:
    """Makes the database say it was last upgraded to `version`."""
    db.execute("delete from jobqueue.schema_versions")
    db.execute("insert into jobqueue.schema_versions (version) values (%s)", (version,))
    assert db.execute("select jobqueue.installed_version()").fetchone() == (version,)


@contextmanager
def out_of_reach(db: psycopg.Connection) -> Iterator[None]:
    """The test's database refuses new connections meanwhile."""
    name = sql.Identifier(db.info.dbname)
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as admin:
        admin.execute(sql.SQL("alter database {} allow_connections false").format(name))
        try:
            yield
        finally:
            admin.execute(sql.SQL("alter database {} allow_connections true").format(name))


def refused_once(stderr: str, advice: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "ERROR" in lines[0] and lines[0].endswith(advice)
    assert "Traceback" not in stderr


def test_a_runner_refuses_a_database_of_an_older_minor_version(db, new_db):
    record_version(db, OLDER)
    job_id = submit(db, "sample_task")

    result = run_cli(new_db, "run", "--burst")

    assert result.returncode == 1
    refused_once(result.stderr, "upgrade the database first (jobqueue migrate)")
    assert f"database has jobqueue {OLDER}, this runner is {RUNNER}" in result.stderr
    assert status(db, job_id) == "pending"


def test_a_runner_refuses_a_database_of_a_newer_major_version(db, new_db):
    db.execute("insert into jobqueue.schema_versions (version) values ('99.0.0')")
    job_id = submit(db, "sample_task")

    result = run_cli(new_db, "run", "--burst")

    assert result.returncode == 1
    refused_once(result.stderr, "upgrade the runner to a 99.x release")
    assert f"database has jobqueue 99.0.0, this runner is {RUNNER}" in result.stderr
    assert status(db, job_id) == "pending"


def test_a_database_without_installed_version_counts_as_too_old(db, new_db):
    db.execute("drop function jobqueue.installed_version()")

    result = run_cli(new_db, "run", "--burst")

    assert result.returncode == 1
    refused_once(result.stderr, "upgrade the database first (jobqueue migrate)")
    assert "database has no jobqueue version" in result.stderr


def test_a_database_without_jobqueue_counts_as_too_old(db, new_db):
    db.execute("drop schema jobqueue cascade")

    result = run_cli(new_db, "run", "--burst")

    assert result.returncode == 1
    refused_once(result.stderr, "upgrade the database first (jobqueue migrate)")


def test_a_runner_starts_on_a_database_of_its_own_version(db, new_db):
    record_version(db, RUNNER)
    job_id = submit(db, "sample_task")

    result = run_cli(new_db, "run", "--burst")

    assert result.returncode == 0, result.stderr
    assert f"started (jobqueue {RUNNER}, database {RUNNER})" in result.stderr
    assert status(db, job_id) == "completed"


def test_a_runner_starts_on_a_database_of_a_later_minor_version(db, new_db):
    later = f"{MAJOR}.{MINOR + 1}.0"
    db.execute("insert into jobqueue.schema_versions (version) values (%s)", (later,))
    job_id = submit(db, "sample_task")

    result = run_cli(new_db, "run", "--burst")

    assert result.returncode == 0, result.stderr
    assert f"database {later}" in result.stderr
    assert status(db, job_id) == "completed"


def test_a_database_out_of_reach_at_start_is_checked_on_the_first_connection(db, start_runner):
    record_version(db, OLDER)
    job_id = submit(db, "sample_task")
    with out_of_reach(db):
        runner = start_runner("--poll-interval", "0.2")
        runner.wait_for_log("database unreachable")
        assert runner.proc.poll() is None  # reconnecting with backoff, as always

    assert runner.wait(timeout=30) == 1
    log = runner.log()
    assert f"database has jobqueue {OLDER}, this runner is {RUNNER}" in log
    assert "started" not in log and "Traceback" not in log
    assert status(db, job_id) == "pending"


def test_a_runner_stopped_while_the_database_is_out_of_reach_at_start_exits_zero(db, start_runner):
    with out_of_reach(db):
        runner = start_runner()
        runner.wait_for_log("database unreachable")
        runner.signal(signal.SIGTERM)
        assert runner.wait() == 0

    assert "stopped" in runner.log()
