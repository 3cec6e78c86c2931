"""Roles and grants, read from the catalog after install has run twice."""

from __future__ import annotations

import subprocess

import psycopg
import pytest
from support.db import install
from support.jobs import raises, rows, value

from .support import (
    APP,
    APP_FUNCTIONS,
    PACKAGE_FUNCTIONS,
    PACKAGE_RELATIONS,
    POLICY_HELPERS,
    RUNNER,
    RUNNER_FUNCTIONS,
    SERVICE,
    STRANGER_ROLE,
    VERSION_HELPERS,
    acting_as,
    executable,
    install_twice,
    table_privileges,
)


def test_install_creates_the_three_roles_nologin(tx):
    found = rows(
        tx,
        "select rolname, rolcanlogin, rolsuper, rolbypassrls from pg_catalog.pg_roles"
        " where rolname = any(%s) order by rolname",
        ([APP, RUNNER, SERVICE],),
    )

    assert [r["rolname"] for r in found] == [APP, RUNNER, SERVICE]
    assert not any(r["rolcanlogin"] or r["rolsuper"] or r["rolbypassrls"] for r in found)
    assert rows(tx, "select app_role, runner_role, service_role from jobqueue.settings") == [
        {"app_role": APP, "runner_role": RUNNER, "service_role": SERVICE}
    ]


def test_public_may_execute_no_function_of_the_package(tx):
    # A NULL proacl means the default, which lets PUBLIC execute: count it too.
    granted = rows(
        tx,
        f"select f.signature from ({PACKAGE_FUNCTIONS}) as f"
        " inner join pg_catalog.pg_proc as p on p.oid = f.oid"
        " cross join pg_catalog.aclexplode("
        "   coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) as a"
        " where a.grantee = 0 and a.privilege_type = 'EXECUTE'",
    )
    functions = value(tx, f"select count(*) from ({PACKAGE_FUNCTIONS}) as f")

    assert granted == []
    assert functions >= 25  # every helper counted, not only the API
    assert executable(tx, "public") == set()


def test_only_the_api_lives_in_public(tx):
    # Install revokes on the API's signatures in public: anything else the
    # package put there would keep the default grant to PUBLIC.
    found = {
        r["signature"]
        for r in rows(tx, f"select f.signature from ({PACKAGE_FUNCTIONS}) as f")
        if not r["signature"].startswith("jobqueue.")
    }

    assert found == APP_FUNCTIONS | RUNNER_FUNCTIONS


def test_public_holds_no_privilege_on_the_package_tables_or_schema(tx):
    assert table_privileges(tx, "public") == {}
    assert not value(tx, "select pg_catalog.has_schema_privilege('public', 'jobqueue', 'USAGE')")
    assert not value(tx, "select pg_catalog.has_schema_privilege('public', 'pgmq', 'USAGE')")


def test_a_role_granted_nothing_reaches_nothing_of_the_package(tx):
    assert executable(tx, STRANGER_ROLE) == set()
    assert table_privileges(tx, STRANGER_ROLE) == {}


def test_the_app_role_may_execute_its_calls_and_the_policy_helper_only(tx):
    assert executable(tx, APP) == APP_FUNCTIONS | POLICY_HELPERS


def test_the_service_role_may_execute_the_app_calls_only(tx):
    assert executable(tx, SERVICE) == APP_FUNCTIONS | POLICY_HELPERS | VERSION_HELPERS


def test_the_runner_role_may_execute_exactly_its_functions(tx):
    assert executable(tx, RUNNER) == RUNNER_FUNCTIONS | VERSION_HELPERS


def test_each_role_may_only_read_jobs_and_job_types(tx):
    read_only = {"public.jobs": {"SELECT"}, "public.job_types": {"SELECT"}}

    for role in (APP, SERVICE, RUNNER):
        assert table_privileges(tx, role) == read_only, role


def test_rls_is_enabled_on_jobs_with_a_policy_per_audience(tx):
    enabled = value(
        tx, "select relrowsecurity from pg_catalog.pg_class where oid = 'public.jobs'::regclass"
    )
    policies = {
        r["polname"]: r
        for r in rows(
            tx,
            "select p.polname, p.polcmd,"
            " pg_catalog.pg_get_expr(p.polqual, p.polrelid) as qual,"
            " array(select pg_catalog.pg_get_userbyid(r) from pg_catalog.unnest(p.polroles) as r"
            "       order by 1) as roles"
            " from pg_catalog.pg_policy as p where p.polrelid = 'public.jobs'::regclass",
        )
    }

    assert enabled
    assert set(policies) == {"jobs_select_own", "jobs_select_all"}
    # SELECT only: nobody but the owner writes jobs other than through the API.
    assert {p["polcmd"] for p in policies.values()} == {"r"}
    assert policies["jobs_select_own"]["qual"] == "(user_id = jobqueue.current_user_id())"
    assert APP in policies["jobs_select_own"]["roles"]
    assert {RUNNER, SERVICE} <= set(policies["jobs_select_all"]["roles"])
    assert APP not in policies["jobs_select_all"]["roles"]


def test_reinstall_takes_back_grants_made_meanwhile(sec_db):
    with psycopg.connect(sec_db, autocommit=True) as conn:
        conn.execute(
            "grant all on public.jobs, jobqueue.settings, pgmq.q_job_queue to public, jobqueue_app;"
            " grant usage, create on schema jobqueue to public;"
            " grant execute on all functions in schema jobqueue to public, jobqueue_runner;"
            " grant execute on function public.dequeue_jobs(integer, integer) to jobqueue_app"
        )

        install(sec_db)

        assert executable(conn, "public") == set()
        assert executable(conn, APP) == APP_FUNCTIONS | POLICY_HELPERS
        assert executable(conn, RUNNER) == RUNNER_FUNCTIONS | VERSION_HELPERS
        assert table_privileges(conn, "public") == {}
        assert table_privileges(conn, APP) == {
            "public.jobs": {"SELECT"},
            "public.job_types": {"SELECT"},
        }
        assert not value(
            conn, "select pg_catalog.has_schema_privilege('public', 'jobqueue', 'CREATE')"
        )


def test_role_names_are_configurable_and_fixed_by_the_first_install(empty_db, cluster_roles):
    app, runner, service = (f"jobqueue_test_cfg_{r}" for r in ("app", "runner", "service"))
    install_twice(
        empty_db,
        "-v",
        f"app_role={app}",
        "-v",
        f"runner_role={runner}",
        "-v",
        f"service_role={service}",
    )

    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert rows(conn, "select app_role, runner_role, service_role from jobqueue.settings") == [
            {"app_role": app, "runner_role": runner, "service_role": service}
        ]
        assert not value(
            conn,
            "select bool_or(rolcanlogin) from pg_catalog.pg_roles where rolname = any(%s)",
            ([app, runner, service],),
        )
        assert executable(conn, app) == APP_FUNCTIONS | POLICY_HELPERS
        assert executable(conn, service) == APP_FUNCTIONS | POLICY_HELPERS | VERSION_HELPERS
        assert executable(conn, runner) == RUNNER_FUNCTIONS | VERSION_HELPERS
        # The default names get nothing in this database.
        for role in (APP, RUNNER, SERVICE):
            assert executable(conn, role) == set(), role
            assert table_privileges(conn, role) == {}, role

        with pytest.raises(subprocess.CalledProcessError) as refused:
            install(empty_db, "-v", f"app_role={APP}")
        assert "differs from the installed" in refused.value.stderr
        assert value(conn, "select app_role from jobqueue.settings") == app


def test_the_package_relations_list_is_complete(tx):
    # Guards PACKAGE_RELATIONS, on which the privilege checks above rely:
    # every relation of schemas jobqueue and public, and the queues' tables.
    found = {
        r[0]
        for r in tx.execute(
            "select n.nspname || '.' || c.relname from pg_catalog.pg_class as c"
            " inner join pg_catalog.pg_namespace as n on c.relnamespace = n.oid"
            " where c.relkind in ('r', 'v', 'p', 'm', 'f')"
            " and (n.nspname in ('jobqueue', 'public')"
            "      or (n.nspname = 'pgmq' and c.relname ~ '^[aq]_'))"
        )
    }

    assert found == set(PACKAGE_RELATIONS)


def test_a_role_without_rights_is_refused_at_every_door(tx):
    with acting_as(tx, STRANGER_ROLE):
        for statement in (
            "select public.submit_job('sample_task', null, gen_random_uuid())",
            "select public.get_job(gen_random_uuid())",
            "select * from public.dequeue_jobs(1, 30)",
            "select public.recover_orphans()",
            "select count(*) from public.jobs",
            "select count(*) from public.job_types",
            "select jobqueue.current_user_id()",
            "select count(*) from pgmq.q_job_queue",
        ):
            with raises(tx, "42501"):
                tx.execute(statement)
