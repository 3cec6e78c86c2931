"""Upgrades from earlier releases: a database full of jobs, installed from a
release's sql/ taken from git history, upgraded in place by today's install.

Every release that changes the schema adds its commit to RELEASES: upgrades
are tested from the first release and from the one before this one.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row
from support.catalog import snapshot
from support.db import ROOT, create_database, drop_database, install, url_for
from support.jobs import submit, value

# Releases users may upgrade from: (name, commit).
RELEASES = [("0.1.0", "84f7d4a"), ("0.2.0", "3d5d030")]


def release_sql(commit: str, into: Path) -> Path:
    """The release's sql/ directory, taken from git history."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, "sql"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        pytest.fail(f"commit {commit} is not in this clone's history: {archive.stderr.decode()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "sql"


def install_from(sql: Path, url: str) -> None:
    subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(sql / "install.sql")],
        check=True,
        capture_output=True,
        text=True,
    )


def fill(conn: psycopg.Connection) -> dict[str, uuid.UUID]:
    """Jobs in every status, made with the oldest release's API: pending,
    processing (its lease held), completed, failed, pending again for a
    retry (its message delayed), and pending with its message lost."""
    conn.execute(
        "insert into job_types (name, max_retries, retry_backoff_seconds) values ('flaky', 3, 3600)"
    )
    jobs = {
        name: submit(conn, params={"message": name})
        for name in ("processing", "completed", "failed")
    }
    jobs["retrying"] = submit(conn, "flaky", params={})
    taken = dict(conn.execute("select job_id, msg_id from dequeue_jobs(10, 3600)").fetchall())
    assert set(taken) == set(jobs.values())
    conn.execute(
        "select complete_job(%s, '{\"ok\": 1}', %s)", (jobs["completed"], taken[jobs["completed"]])
    )
    conn.execute(
        "select fail_job(%s, 'boom', 'Boom', null, %s)", (jobs["failed"], taken[jobs["failed"]])
    )
    conn.execute(
        "select fail_job(%s, 'again', 'Flaky', null, %s)",
        (jobs["retrying"], taken[jobs["retrying"]]),
    )
    jobs["pending"] = submit(conn, params={"message": "pending"})
    jobs["lost"] = submit(conn, params={"message": "lost"})
    conn.execute(
        "delete from jobqueue.queue_messages where message ->> 'job_id' = %s", (str(jobs["lost"]),)
    )
    return jobs


def contents(conn: psycopg.Connection) -> tuple[list[dict], list[dict]]:
    """Every job and every message, as the data model defines them."""
    with conn.cursor(row_factory=dict_row) as cur:
        jobs = cur.execute(
            "select id, job_type, status, user_id, job_parameters, error_message, error_type,"
            " error_context, data_references, retry_count, created_at, updated_at, started_at,"
            " completed_at from public.jobs order by id"
        ).fetchall()
        messages = cur.execute(
            "select msg_id, read_ct, enqueued_at, vt, message"
            " from jobqueue.queue_messages order by msg_id"
        ).fetchall()
    return jobs, messages


def schema(url: str) -> list[tuple]:
    """The catalog snapshot of the install tests, without the rows of data."""
    return [row for row in snapshot(url) if row[0] != "row"]


@pytest.mark.parametrize(("release", "commit"), RELEASES)
def test_an_upgrade_keeps_every_job_and_message_and_matches_a_fresh_install(
    release, commit, tmp_path, template_db
):
    name = f"jqt_upgrade_{release.replace('.', '_')}_{uuid.uuid4().hex[:6]}"
    url = create_database(name)
    try:
        install_from(release_sql(commit, tmp_path), url)
        with psycopg.connect(url, autocommit=True) as conn:
            jobs = fill(conn)
            before = contents(conn)

        install(url)

        with psycopg.connect(url, autocommit=True) as conn:
            assert contents(conn) == before
            versions = [r[0] for r in conn.execute("select version from jobqueue.schema_versions")]
            assert release in versions and "0001" in versions
        assert schema(url) == schema(url_for(template_db))

        # The runner drains what is left: the pending job now, the lost one
        # once the sweep has sent its message again.
        with psycopg.connect(url, autocommit=True) as conn:
            assert value(conn, "select (recover_orphans() ->> 'orphans_requeued')::int") == 1
        runner = subprocess.run(
            [sys.executable, "-m", "jobqueue", "run", "--burst", "--database-url", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert runner.returncode == 0, runner.stderr
        with psycopg.connect(url, autocommit=True) as conn:
            statuses = dict(conn.execute("select id, status from jobs").fetchall())
            assert statuses[jobs["pending"]] == statuses[jobs["lost"]] == "completed"
            assert statuses[jobs["processing"]] == "processing"  # its lease still holds
            assert statuses[jobs["retrying"]] == "pending"  # its backoff still runs
    finally:
        drop_database(name)
