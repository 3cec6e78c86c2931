"""`jobqueue submit` and `jobqueue status`, and how the command reports errors."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from support.jobs import USER, job, submit

from .helpers import cli_env, run_cli

AS_USER = ("--user-id", str(USER))


def test_submit_prints_the_new_jobs_id(db, new_db):
    result = run_cli(new_db, "submit", "sample_task", '{"message": "hi"}', "--user-id", str(USER))

    assert result.returncode == 0, result.stderr
    row = job(db, uuid.UUID(result.stdout.strip()))
    assert (row["status"], row["job_parameters"], row["user_id"]) == (
        "pending",
        {"message": "hi"},
        USER,
    )


def test_submit_refused_prints_one_line_with_the_sqlstate_and_exits_1(db, new_db):
    result = run_cli(
        new_db, "submit", "sample_task", '{"duration_ms": 99999999}', "--user-id", str(USER)
    )

    assert result.returncode == 1
    assert result.stderr.startswith("jobqueue: error: [22023] job_parameters.duration_ms")
    assert len(result.stderr.strip().splitlines()) == 1
    assert db.execute("select count(*) from jobs").fetchone() == (0,)


def test_submit_of_text_that_is_not_json_is_refused_before_the_database(new_db):
    result = run_cli(new_db, "submit", "sample_task", "{not json", *AS_USER)

    assert result.returncode == 1
    assert "not valid JSON" in result.stderr


def test_status_counts_jobs_per_status_and_the_queue_depth(db, new_db):
    for _ in range(3):
        submit(db, "sample_task")
    db.execute("select dequeue_jobs(1)")

    result = run_cli(new_db, "status", "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["jobs"] == {"pending": 2, "processing": 1, "completed": 0, "failed": 0}
    assert report["queue"]["name"] == "job_queue"
    assert report["queue"]["depth"] == 3
    text = run_cli(new_db, "status")
    assert text.returncode == 0
    assert "pending     2" in text.stdout and "queue job_queue: 3 message(s)" in text.stdout


def test_without_a_database_url_the_command_says_so():
    env = cli_env()
    env.pop("DATABASE_URL", None)

    result = subprocess.run(
        [sys.executable, "-m", "jobqueue", "status"], capture_output=True, text=True, env=env
    )

    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr


def test_an_unreachable_database_is_one_line_and_exit_1():
    result = run_cli("postgresql://nobody@127.0.0.1:1/none?connect_timeout=2", "status")

    assert result.returncode == 1
    assert result.stderr.startswith("jobqueue: error:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_submit_takes_a_delay_a_priority_and_a_dedup_key(db, new_db):
    first = run_cli(
        new_db, "submit", "sample_task", "{}", "--user-id", str(USER),
        "--delay", "2h", "--priority", "7", "--dedup-key", "nightly",
    )  # fmt: skip
    again = run_cli(
        new_db, "submit", "sample_task", "--user-id", str(USER), "--dedup-key", "nightly"
    )

    assert first.returncode == 0, first.stderr
    job_id = uuid.UUID(first.stdout.strip())
    assert uuid.UUID(again.stdout.strip()) == job_id
    row = job(db, job_id)
    assert (row["priority"], row["dedup_key"]) == (7, "nightly")
    hours = db.execute("select extract(epoch from run_at - now()) / 3600 from jobs").fetchone()[0]
    assert 1.9 < hours <= 2


def test_submit_refuses_a_malformed_delay_before_the_database(new_db):
    result = run_cli(new_db, "submit", "sample_task", "--delay", "soon")

    assert result.returncode == 2
    assert "duration" in result.stderr
