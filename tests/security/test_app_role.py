"""The application role: its own identity's jobs, nothing else.

Each test acts as PostgREST does (SET LOCAL ROLE jobqueue_app, then the JWT's
claims in request.jwt.claims), on a database installed twice.
"""

from __future__ import annotations

import psycopg
import pytest
from jobqueue import InvalidParameters, JobNotFound, JobQueueService, NotAllowed
from psycopg.types.json import Jsonb
from support.db import url_with
from support.jobs import ARCHIVE_TABLE, QUEUE_TABLE, cancel, counts, raises, rows, value

from .support import (
    APP,
    LOGIN_ROLE,
    UNKNOWN,
    USER_A,
    USER_B,
    acting_as,
    get_job,
    status_of,
    submit,
    visible_jobs,
)


@pytest.fixture
def jobs(tx) -> dict:
    """Two pending jobs of USER_A and one of USER_B, submitted by the owner."""
    return {
        USER_A: [submit(tx, USER_A), submit(tx, USER_A)],
        USER_B: [submit(tx, USER_B)],
    }


def messages_of(conn: psycopg.Connection, job_id) -> int:
    return value(
        conn, f"select count(*) from {QUEUE_TABLE} where message ->> 'job_id' = %s", (str(job_id),)
    )


# -- reading: RLS and get_job ----------------------------------------------------


def test_a_plain_select_shows_the_app_role_only_its_own_jobs(tx, jobs):
    with acting_as(tx, APP, USER_A):
        assert visible_jobs(tx) == set(jobs[USER_A])
        assert value(tx, "select count(*) from public.jobs where user_id = %s", (USER_B,)) == 0
    with acting_as(tx, APP, USER_B):
        assert visible_jobs(tx) == set(jobs[USER_B])


def test_a_plain_select_without_identity_shows_no_job(tx, jobs):
    with acting_as(tx, APP):
        assert visible_jobs(tx) == set()


def test_get_job_returns_the_callers_own_job(tx, jobs):
    with acting_as(tx, APP, USER_A):
        found = get_job(tx, jobs[USER_A][0])

    assert found["user_id"] == USER_A
    assert found["status"] == "pending"


def test_get_job_answers_p0002_for_another_users_job(tx, jobs):
    with acting_as(tx, APP, USER_A), raises(tx, "P0002"):
        get_job(tx, jobs[USER_B][0])


def test_get_job_without_identity_answers_p0002_for_any_job(tx, jobs):
    with acting_as(tx, APP), raises(tx, "P0002"):
        get_job(tx, jobs[USER_A][0])


def error_of(conn: psycopg.Connection, call: str, job_id) -> tuple:
    """What a refused call tells the caller, with the id it was given blanked out."""
    with raises(conn, "P0002") as info:
        conn.execute(call, (job_id,))
    diag = info.value.diag
    return tuple(
        (text or "").replace(str(job_id), "<id>")
        for text in (diag.sqlstate, diag.message_primary, diag.message_detail, diag.message_hint)
    )


@pytest.mark.parametrize(
    "call", ["select * from public.get_job(%s)", "select public.cancel_job(%s)"]
)
def test_another_users_job_and_an_unknown_id_give_the_same_error(tx, jobs, call):
    with acting_as(tx, APP, USER_A):
        unknown = error_of(tx, call, UNKNOWN)
        others = error_of(tx, call, jobs[USER_B][0])

    assert unknown == others
    assert unknown[0] == "P0002"


def test_cancel_job_of_another_user_does_not_wait_for_that_jobs_locks(sec_db):
    # Waiting on the row lock would tell the caller that the job exists.
    with psycopg.connect(sec_db, autocommit=True) as owner:
        job_id = submit(owner, USER_B)
    with psycopg.connect(sec_db) as holder, psycopg.connect(sec_db) as app:
        holder.execute("select from public.jobs where id = %s for update", (job_id,))
        holder.execute(
            f"select from {QUEUE_TABLE} where message ->> 'job_id' = %s for update", (str(job_id),)
        )
        app.execute("set lock_timeout = '5s'")

        with acting_as(app, APP, USER_A), raises(app, "P0002"):
            cancel(app, job_id)


# -- cancelling -----------------------------------------------------------------


def test_cancel_job_cancels_the_callers_own_pending_job(tx, jobs):
    job_id = jobs[USER_A][0]

    with acting_as(tx, APP, USER_A):
        assert cancel(tx, job_id) is True
        assert get_job(tx, job_id)["error_type"] == "Cancelled"

    assert status_of(tx, job_id) == "failed"
    assert messages_of(tx, job_id) == 0


def test_cancel_job_of_another_user_changes_nothing(tx, jobs):
    job_id = jobs[USER_B][0]

    with acting_as(tx, APP, USER_A), raises(tx, "P0002"):
        cancel(tx, job_id)
    with acting_as(tx, APP), raises(tx, "P0002"):
        cancel(tx, job_id)

    assert status_of(tx, job_id) == "pending"
    assert messages_of(tx, job_id) == 1


# -- submitting -----------------------------------------------------------------


def test_submit_job_without_user_id_submits_for_the_callers_identity(tx):
    with acting_as(tx, APP, USER_A):
        job_id = submit(tx, None)
        assert get_job(tx, job_id)["user_id"] == USER_A

    assert value(tx, "select user_id from public.jobs where id = %s", (job_id,)) == USER_A
    assert messages_of(tx, job_id) == 1


def test_submit_job_with_the_callers_own_user_id_is_accepted(tx):
    with acting_as(tx, APP, USER_A):
        job_id = submit(tx, USER_A)

    assert value(tx, "select user_id from public.jobs where id = %s", (job_id,)) == USER_A


def test_submit_job_for_another_user_is_refused_with_42501(tx):
    with acting_as(tx, APP, USER_A):
        with raises(tx, "42501"):
            submit(tx, USER_B)
        with raises(tx, "42501"):
            tx.execute(
                "select public.submit_jobs('sample_task', array['{}'::jsonb, '{}'::jsonb], %s)",
                (USER_B,),
            )

    assert counts(tx) == (0, 0)


def test_submit_job_without_identity_is_refused(tx):
    with acting_as(tx, APP):
        with raises(tx, "22023") as missing:
            submit(tx, None)
        # Naming a user proves nothing: the caller has no identity to match.
        with raises(tx, "42501"):
            submit(tx, USER_A)

    assert "user_id" in missing.value.diag.message_primary
    assert counts(tx) == (0, 0)


def test_a_role_claim_in_the_jwt_grants_nothing(tx):
    # Only the database role counts; a claim is text anyone can put in a token.
    with acting_as(tx, APP, USER_A, role="service_role"), raises(tx, "42501"):
        submit(tx, USER_B)


def test_validate_job_parameters_works_for_the_app_role(tx):
    with acting_as(tx, APP, USER_A):
        tx.execute(
            "select public.validate_job_parameters('sample_task', %s)", (Jsonb({"fail": True}),)
        )
        with raises(tx, "22023"):
            tx.execute(
                "select public.validate_job_parameters('sample_task', %s)", (Jsonb({"x": 1}),)
            )


# -- what the app role may not touch --------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "select * from public.dequeue_jobs(1, 30)",
        f"select public.complete_job('{UNKNOWN}', null, 1)",
        f"select public.fail_job('{UNKNOWN}', 'x', null, null, 1)",
        f"select public.extend_job_lease('{UNKNOWN}', 1, 30)",
        "select public.recover_orphans()",
    ],
)
def test_the_app_role_cannot_call_runner_functions(tx, jobs, statement):
    with acting_as(tx, APP, USER_A), raises(tx, "42501"):
        tx.execute(statement)

    assert status_of(tx, jobs[USER_A][0]) == "pending"


@pytest.mark.parametrize(
    "statement",
    [
        f"select * from {QUEUE_TABLE}",
        f"select * from {ARCHIVE_TABLE}",
        f"insert into {QUEUE_TABLE} (message) values ('{{}}')",
        f"update {QUEUE_TABLE} set vt = now()",
        f"delete from {QUEUE_TABLE}",
        "select pgmq.send('job_queue', '{}'::jsonb)",
        "select * from pgmq.read('job_queue', 30, 10)",
        "select pgmq.purge_queue('job_queue')",
        "select * from pgmq.metrics('job_queue')",
        "select * from pgmq.meta",
    ],
)
def test_the_app_role_cannot_read_or_write_the_queue(tx, jobs, statement):
    with acting_as(tx, APP, USER_A), raises(tx, "42501"):
        tx.execute(statement)

    assert counts(tx) == (3, 3)


@pytest.mark.parametrize(
    "statement",
    [
        "select * from jobqueue.settings",
        "update jobqueue.settings set orphan_max_requeues = 100",
        "select * from jobqueue.schema_versions",
        "select * from jobqueue.queue_messages",
        "insert into public.jobs (job_type, user_id) values ('sample_task', "
        "'0000000a-0000-4000-8000-00000000000a')",
        "update public.jobs set status = 'failed'",
        "delete from public.jobs",
        "truncate public.jobs",
        "insert into public.job_types (name) values ('mine')",
        "update public.job_types set max_retries = 100",
        "delete from public.job_types",
    ],
)
def test_the_app_role_cannot_read_or_write_the_package_tables(tx, jobs, statement):
    with acting_as(tx, APP, USER_A), raises(tx, "42501"):
        tx.execute(statement)

    assert counts(tx) == (3, 3)


def private_helper_calls(conn: psycopg.Connection) -> list[str]:
    """A call of every function of schema jobqueue (NULL arguments: the
    permission check comes first), trigger functions aside."""
    return [
        r["call"]
        for r in rows(
            conn,
            "select pg_catalog.format('select %%s(%%s)', p.oid::regproc,"
            "   (select pg_catalog.string_agg("
            "      'null::' || pg_catalog.format_type(t.oid, null), ', ')"
            "    from pg_catalog.unnest(p.proargtypes) as t (oid))) as call"
            " from pg_catalog.pg_proc as p"
            " where p.pronamespace = 'jobqueue'::regnamespace"
            "   and p.prorettype <> 'trigger'::regtype"
            "   and p.proname <> 'current_user_id'"
            " order by p.proname",
        )
    ]


def test_the_app_role_cannot_call_private_helpers(tx):
    calls = private_helper_calls(tx)
    assert len(calls) >= 14

    with acting_as(tx, APP, USER_A):
        for call in calls:
            with raises(tx, "42501"):
                tx.execute(call)


def test_the_policy_helper_is_all_the_app_role_may_call_in_schema_jobqueue(tx):
    # The RLS policy calls it as the caller; it only reads the caller's claims.
    with acting_as(tx, APP, USER_A):
        assert value(tx, "select jobqueue.current_user_id()") == USER_A


# -- JobQueueService as the application's own LOGIN role -------------------------


def login_url(url: str) -> str:
    return url_with(url, user=LOGIN_ROLE)


def test_job_queue_service_acting_for_a_user_is_held_to_that_users_jobs(sec_db):
    with psycopg.connect(sec_db, autocommit=True) as owner:
        other = submit(owner, USER_B)

    with JobQueueService.connect(login_url(sec_db)) as service:
        assert service.connection.info.user == LOGIN_ROLE
        alice = service.acting_for(USER_A)

        own = alice.submit_job("sample_task", {"message": "hi"})
        alice.validate_job_parameters("sample_task", {"duration_ms": 5})
        assert alice.get_job(own).user_id == USER_A
        with pytest.raises(JobNotFound):
            alice.get_job(other)
        with pytest.raises(JobNotFound):
            alice.cancel_job(other)
        with pytest.raises(NotAllowed):
            alice.submit_job("sample_task", {}, user_id=USER_B)
        with pytest.raises(NotAllowed):
            alice.submit_jobs("sample_task", [{}, {}], user_id=USER_B)
        assert alice.cancel_job(own) is True

        # Without acting for anyone, the LOGIN role has no identity at all.
        with pytest.raises(InvalidParameters):
            service.submit_job("sample_task", {})
        with pytest.raises(NotAllowed):
            service.submit_job("sample_task", {}, user_id=USER_A)
        with pytest.raises(JobNotFound):
            service.get_job(own)
        with pytest.raises(JobNotFound):
            service.cancel_job(other)
        assert service.connection.execute("select count(*) from public.jobs").fetchone() == (0,)

    with psycopg.connect(sec_db, autocommit=True) as owner:
        assert status_of(owner, other) == "pending"
        assert status_of(owner, own) == "failed"
        assert value(owner, "select count(*) from public.jobs") == 2


def test_the_login_role_reads_its_users_jobs_through_rls(sec_db):
    with psycopg.connect(sec_db, autocommit=True) as owner:
        mine = submit(owner, USER_A)
        submit(owner, USER_B)

    with psycopg.connect(login_url(sec_db)) as conn:
        conn.execute(
            "select pg_catalog.set_config('request.jwt.claims', %s, true)",
            (f'{{"sub": "{USER_A}"}}',),
        )
        assert visible_jobs(conn) == {mine}
        with raises(conn, "42501"):
            conn.execute("set local role jobqueue_service")
