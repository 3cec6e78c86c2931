"""The runner role (its calls, nothing else), the service role (the
application's calls for any user) and the owner (everything)."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest
from psycopg.types.json import Jsonb
from support.db import url_with
from support.jobs import QUEUE_TABLE, cancel, raises, rows, value

from .support import (
    RUNNER,
    RUNNER_LOGIN_ROLE,
    SERVICE,
    SERVICE_LOGIN_ROLE,
    UNKNOWN,
    USER_A,
    USER_B,
    acting_as,
    get_job,
    status_of,
    submit,
    visible_jobs,
)


def dequeue(conn: psycopg.Connection, batch_size: int = 10) -> list[dict]:
    return rows(conn, "select * from public.dequeue_jobs(%s, 30)", (batch_size,))


def as_login(url: str, role: str) -> str:
    return url_with(url, user=role)


# -- runner ---------------------------------------------------------------------


def test_the_runner_role_runs_the_whole_life_of_a_job(tx):
    done, failed = submit(tx, USER_A), submit(tx, USER_B)

    with acting_as(tx, RUNNER):
        taken = {t["job_id"]: t["msg_id"] for t in dequeue(tx)}
        assert set(taken) == {done, failed}
        tx.execute("select public.extend_job_lease(%s, %s, 60)", (done, taken[done]))
        tx.execute(
            "select public.complete_job(%s, %s, %s)", (done, Jsonb({"echo": "hi"}), taken[done])
        )
        assert (
            value(
                tx,
                "select public.fail_job(%s, 'boom', 'RuntimeError', null, %s)",
                (failed, taken[failed]),
            )
            == "failed"
        )
        swept = value(tx, "select public.recover_orphans()")

    assert status_of(tx, done) == "completed"
    assert status_of(tx, failed) == "failed"
    assert set(swept) >= {"stale_messages_deleted", "orphans_requeued"}


def test_the_runner_role_reads_every_job(tx):
    ids = {submit(tx, USER_A), submit(tx, USER_B)}

    with acting_as(tx, RUNNER):
        assert visible_jobs(tx) == ids


@pytest.mark.parametrize(
    "statement",
    [
        "select public.submit_job('sample_task', null, '0000000a-0000-4000-8000-00000000000a')",
        "select public.submit_jobs('sample_task', array['{}'::jsonb], "
        "'0000000a-0000-4000-8000-00000000000a')",
        "select public.validate_job_parameters('sample_task', null)",
        f"select public.get_job('{UNKNOWN}')",
        f"select public.cancel_job('{UNKNOWN}')",
        "select jobqueue.current_user_id()",
        "select jobqueue.queue_name()",
        "select * from jobqueue.queue_messages",
        "select * from jobqueue.settings",
        f"select * from {QUEUE_TABLE}",
        "select pgmq.send('job_queue', '{}'::jsonb)",
        "update public.jobs set status = 'failed'",
        "delete from public.jobs",
        "insert into public.job_types (name) values ('mine')",
    ],
)
def test_the_runner_role_can_do_nothing_else(tx, statement):
    submit(tx, USER_A)

    with acting_as(tx, RUNNER), raises(tx, "42501"):
        tx.execute(statement)


def test_the_runner_cli_runs_as_a_login_role_granted_the_runner_role(sec_db):
    with psycopg.connect(sec_db, autocommit=True) as owner:
        ok = submit(owner, USER_A, {"message": "hi"})
        bad = submit(owner, USER_B, {"fail": True})

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jobqueue",
            "run",
            "--burst",
            "--database-url",
            as_login(sec_db, RUNNER_LOGIN_ROLE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    with psycopg.connect(sec_db, autocommit=True) as owner:
        assert status_of(owner, ok) == "completed"
        assert status_of(owner, bad) == "failed"


# -- service --------------------------------------------------------------------


def test_the_service_role_submits_for_any_user(tx):
    with acting_as(tx, SERVICE):
        a = submit(tx, USER_A)
        bs = [
            r[0]
            for r in tx.execute(
                "select public.submit_jobs('sample_task', array['{}'::jsonb, '{}'::jsonb], %s)",
                (USER_B,),
            )
        ]
    # Claims of its own do not narrow what it may do.
    with acting_as(tx, SERVICE, USER_A):
        b = submit(tx, USER_B)

    assert value(tx, "select user_id from public.jobs where id = %s", (a,)) == USER_A
    assert {value(tx, "select user_id from public.jobs where id = %s", (i,)) for i in [*bs, b]} == {
        USER_B
    }


def test_the_service_role_still_needs_a_user_id(tx):
    with acting_as(tx, SERVICE), raises(tx, "22023"):
        submit(tx, None)


def test_the_service_role_gets_and_cancels_any_users_job(tx):
    a, b = submit(tx, USER_A), submit(tx, USER_B)

    with acting_as(tx, SERVICE):
        assert get_job(tx, a)["user_id"] == USER_A
        assert cancel(tx, b) is True
        assert visible_jobs(tx) == {a, b}
        with raises(tx, "P0002"):
            get_job(tx, UNKNOWN)

    assert status_of(tx, b) == "failed"


@pytest.mark.parametrize(
    "statement",
    [
        "select * from public.dequeue_jobs(1, 30)",
        f"select public.complete_job('{UNKNOWN}', null, 1)",
        f"select public.fail_job('{UNKNOWN}', 'x', null, null, 1)",
        f"select public.extend_job_lease('{UNKNOWN}', 1, 30)",
        "select public.recover_orphans()",
        "select jobqueue.caller_acts_for_anyone()",
        "select * from jobqueue.settings",
        f"select * from {QUEUE_TABLE}",
        "update public.jobs set status = 'failed'",
        "insert into public.job_types (name) values ('mine')",
    ],
)
def test_the_service_role_cannot_run_jobs_or_touch_tables(tx, statement):
    submit(tx, USER_A)

    with acting_as(tx, SERVICE), raises(tx, "42501"):
        tx.execute(statement)


def test_a_login_role_granted_the_service_role_acts_for_any_user(sec_db):
    with psycopg.connect(sec_db, autocommit=True) as owner:
        theirs = submit(owner, USER_B)

    with psycopg.connect(as_login(sec_db, SERVICE_LOGIN_ROLE), autocommit=True) as backend:
        mine = submit(backend, USER_A)
        assert get_job(backend, theirs)["user_id"] == USER_B
        assert cancel(backend, theirs) is True
        assert visible_jobs(backend) == {mine, theirs}


# -- owner ----------------------------------------------------------------------


def test_the_owner_sees_and_does_everything(tx):
    a, b = submit(tx, USER_A), submit(tx, USER_B)

    assert visible_jobs(tx) == {a, b}
    assert get_job(tx, b)["user_id"] == USER_B
    assert cancel(tx, a) is True
    assert len(dequeue(tx)) == 1
    assert value(tx, "select count(*) from jobqueue.settings") == 1
