"""Supabase, reproduced on plain PostgreSQL: its API roles (NOLOGIN
NOINHERIT), an auth schema with users and auth.uid(), and its default
privileges on public; then install, twice.

Requests are made as PostgREST makes them: logged in as an authenticator
role, the request's role and JWT claims set for the transaction, functions
called with named arguments.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from support.db import install
from support.jobs import QUEUE_TABLE, raises, rows, value

from .support import (
    APP_FUNCTIONS,
    POLICY_HELPERS,
    RUNNER_FUNCTIONS,
    USER_A,
    USER_B,
    USER_C,
    VERSION_HELPERS,
    executable,
    table_privileges,
    visible_jobs,
)

READ_ONLY = {"public.jobs": {"SELECT"}, "public.job_types": {"SELECT"}}


@contextmanager
def request(
    conn: psycopg.Connection, role: str, sub: uuid.UUID | None = None
) -> Iterator[psycopg.Connection]:
    """One PostgREST request: the JWT's role becomes the transaction's role,
    its claims go to request.jwt.claims (here in a savepoint, so that a test
    can make several)."""
    claims: dict[str, Any] = {"role": role, "aud": role}
    if sub is not None:
        claims["sub"] = str(sub)
    with conn.transaction():
        conn.execute(
            "select pg_catalog.set_config('role', %s, true),"
            " pg_catalog.set_config('request.jwt.claims', %s, true),"
            " pg_catalog.set_config('request.method', 'POST', true)",
            (role, json.dumps(claims)),
        )
        yield conn
        conn.execute("select pg_catalog.set_config('role', 'none', true)")


def rpc(conn: psycopg.Connection, function: str, **arguments: Any) -> list[tuple]:
    """supabase.rpc(function, arguments): a call with named arguments."""
    names = ", ".join(f"{name} => %({name})s" for name in arguments)
    values = {k: Jsonb(v) if isinstance(v, dict) else v for k, v in arguments.items()}
    return conn.execute(f"select * from public.{function}({names})", values).fetchall()


# -- what install granted -----------------------------------------------------------


def test_authenticated_gets_the_app_roles_rights(supa_tx):
    assert executable(supa_tx, "authenticated") == APP_FUNCTIONS | POLICY_HELPERS
    assert table_privileges(supa_tx, "authenticated") == READ_ONLY


def test_service_role_gets_the_runners_rights_and_the_service_roles(supa_tx):
    assert (
        executable(supa_tx, "service_role")
        == APP_FUNCTIONS | POLICY_HELPERS | RUNNER_FUNCTIONS | VERSION_HELPERS
    )
    assert table_privileges(supa_tx, "service_role") == READ_ONLY


def test_anon_gets_nothing(supa_tx):
    assert executable(supa_tx, "anon") == set()
    assert table_privileges(supa_tx, "anon") == {}
    assert not value(supa_tx, "select pg_catalog.has_schema_privilege('anon', 'jobqueue', 'USAGE')")


def test_the_default_privileges_of_public_were_taken_back(supa_tx):
    # Supabase's default privileges handed everything to all three roles;
    # what is left is exactly what each should have (the checks above), and
    # the default privileges themselves are the project's, left alone.
    defaults = value(
        supa_tx,
        "select count(*) from pg_catalog.pg_default_acl as d"
        " where d.defaclnamespace = 'public'::regnamespace",
    )
    for role in ("anon", "authenticated", "service_role"):
        held = table_privileges(supa_tx, role)
        assert all(p <= {"SELECT"} for p in held.values()), role

    assert defaults == 3


def test_the_policies_name_the_noinherit_roles_directly(supa_tx):
    policies = dict(
        supa_tx.execute(
            "select p.polname, array(select pg_catalog.pg_get_userbyid(r)"
            "   from pg_catalog.unnest(p.polroles) as r order by 1)::text[]"
            " from pg_catalog.pg_policy as p where p.polrelid = 'public.jobs'::regclass"
        ).fetchall()
    )

    assert "authenticated" in policies["jobs_select_own"]
    assert "service_role" in policies["jobs_select_all"]
    assert "anon" not in policies["jobs_select_own"] + policies["jobs_select_all"]


def test_jobs_user_id_references_auth_users(supa_tx):
    definition = value(
        supa_tx,
        "select pg_catalog.pg_get_constraintdef(c.oid) from pg_catalog.pg_constraint as c"
        " where c.conrelid = 'public.jobs'::regclass and c.contype = 'f'"
        " and c.confrelid = 'auth.users'::regclass",
    )

    assert definition.startswith("FOREIGN KEY (user_id) REFERENCES auth.users(id)")
    with raises(supa_tx, "23503"):
        supa_tx.execute(
            "select public.submit_job('sample_task', null, %s)",
            ("00000000-0000-4000-8000-0000000000ff",),
        )


def test_a_reinstall_takes_back_what_the_dashboard_granted_meanwhile(supabase_db):
    with psycopg.connect(supabase_db.url, autocommit=True) as conn:
        conn.execute(
            "grant all on public.jobs, public.job_types to anon, authenticated, service_role;"
            " grant execute on all functions in schema public to anon;"
            " grant execute on all functions in schema jobqueue to authenticated, service_role;"
            " grant usage on schema jobqueue to anon"
        )

        install(supabase_db.url)

        assert executable(conn, "anon") == set()
        assert executable(conn, "authenticated") == APP_FUNCTIONS | POLICY_HELPERS
        assert (
            executable(conn, "service_role")
            == APP_FUNCTIONS | POLICY_HELPERS | RUNNER_FUNCTIONS | VERSION_HELPERS
        )
        for role, expected in (
            ("anon", {}),
            ("authenticated", READ_ONLY),
            ("service_role", READ_ONLY),
        ):
            assert table_privileges(conn, role) == expected, role
        assert not value(
            conn, "select pg_catalog.has_schema_privilege('anon', 'jobqueue', 'USAGE')"
        )


# -- requests as PostgREST makes them ------------------------------------------------


def test_authenticated_submits_for_the_jwts_user(postgrest):
    with request(postgrest, "authenticated", USER_C):
        [(job_id,)] = rpc(
            postgrest, "submit_job", job_type="sample_task", job_parameters={"message": "hi"}
        )
        assert rpc(postgrest, "get_job", job_id=job_id)[0][3] == USER_C
        assert value(postgrest, "select auth.uid()") == USER_C
        assert value(postgrest, "select jobqueue.current_user_id()") == USER_C


def test_authenticated_reads_only_its_own_jobs(postgrest, supabase_db):
    with request(postgrest, "authenticated", USER_A):
        assert visible_jobs(postgrest) == set(supabase_db.jobs[USER_A])
    with request(postgrest, "authenticated", USER_C):
        assert visible_jobs(postgrest) == set()


def test_authenticated_gets_and_cancels_only_its_own_jobs(postgrest, supabase_db):
    mine, theirs = supabase_db.jobs[USER_A][0], supabase_db.jobs[USER_B][0]

    with request(postgrest, "authenticated", USER_A):
        with raises(postgrest, "P0002"):
            rpc(postgrest, "get_job", job_id=theirs)
        with raises(postgrest, "P0002"):
            rpc(postgrest, "cancel_job", job_id=theirs)
        assert rpc(postgrest, "cancel_job", job_id=mine) == [(True,)]
    with request(postgrest, "service_role"):
        assert rpc(postgrest, "get_job", job_id=theirs)[0][2] == "pending"


def test_authenticated_may_not_submit_for_another_user(postgrest):
    with request(postgrest, "authenticated", USER_A):
        with raises(postgrest, "42501"):
            rpc(postgrest, "submit_job", job_type="sample_task", user_id=USER_B)
        with raises(postgrest, "42501"):
            rpc(
                postgrest,
                "submit_jobs",
                job_type="sample_task",
                job_parameters=[Jsonb({})],
                user_id=USER_B,
            )


@pytest.mark.parametrize(
    "statement",
    [
        "select * from public.dequeue_jobs(batch_size => 1)",
        "select public.recover_orphans()",
        f"select * from {QUEUE_TABLE}",
        "select * from jobqueue.settings",
        "select jobqueue.caller_acts_for_anyone()",
        "update public.jobs set status = 'failed'",
        "delete from public.jobs",
        "insert into public.job_types (name) values ('mine')",
    ],
)
def test_authenticated_cannot_run_jobs_or_touch_tables(postgrest, statement):
    with request(postgrest, "authenticated", USER_A), raises(postgrest, "42501"):
        postgrest.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "select public.submit_job(job_type => 'sample_task')",
        "select public.validate_job_parameters(job_type => 'sample_task', job_parameters => null)",
        "select public.get_job(job_id => gen_random_uuid())",
        "select public.cancel_job(job_id => gen_random_uuid())",
        "select * from public.dequeue_jobs()",
        "select * from public.jobs",
        "select * from public.job_types",
    ],
)
def test_anon_can_do_nothing(postgrest, statement):
    with request(postgrest, "anon"), raises(postgrest, "42501"):
        postgrest.execute(statement)


def test_service_role_submits_and_cancels_for_any_user(postgrest, supabase_db):
    theirs = supabase_db.jobs[USER_B][0]

    with request(postgrest, "service_role"):
        [(for_a,)] = rpc(postgrest, "submit_job", job_type="sample_task", user_id=USER_A)
        [(for_c,)] = rpc(postgrest, "submit_job", job_type="sample_task", user_id=USER_C)
        assert rpc(postgrest, "cancel_job", job_id=theirs) == [(True,)]
        assert rpc(postgrest, "get_job", job_id=for_c)[0][3] == USER_C
        assert {for_a, for_c, theirs} <= visible_jobs(postgrest)
        with raises(postgrest, "22023"):
            rpc(postgrest, "submit_job", job_type="sample_task")


def test_service_role_runs_jobs_as_the_runner_does(postgrest):
    with request(postgrest, "service_role"):
        [(job_id,)] = rpc(postgrest, "submit_job", job_type="sample_task", user_id=USER_A)
        taken = rows(postgrest, "select * from public.dequeue_jobs(batch_size => 10)")
        msg_id = next(t["msg_id"] for t in taken if t["job_id"] == job_id)
        rpc(postgrest, "extend_job_lease", job_id=job_id, msg_id=msg_id, seconds=60)
        rpc(postgrest, "complete_job", job_id=job_id, msg_id=msg_id)
        assert rpc(postgrest, "get_job", job_id=job_id)[0][2] == "completed"
        assert "orphans_requeued" in rpc(postgrest, "recover_orphans")[0][0]


def test_service_role_cannot_log_in_but_the_runner_may_run_as_the_owner(supa_tx):
    assert (
        value(supa_tx, "select rolcanlogin from pg_catalog.pg_roles where rolname = 'service_role'")
        is False
    )
    assert rows(supa_tx, "select * from public.dequeue_jobs(batch_size => 1)") != []
