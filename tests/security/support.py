"""Helpers of the security tests: act as a role the way PostgREST does, and
read what the catalog grants.

Every helper takes the connection to act on. `acting_as` switches role and
identity for a block inside the test's transaction and switches back after.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from support import jobs
from support.db import install
from support.jobs import ARCHIVE_TABLE, QUEUE_TABLE, rows, value

USER_A = uuid.UUID("0000000a-0000-4000-8000-00000000000a")
USER_B = uuid.UUID("0000000b-0000-4000-8000-00000000000b")
USER_C = uuid.UUID("0000000c-0000-4000-8000-00000000000c")
# A job id no job has.
UNKNOWN = "ffffffff-ffff-4fff-bfff-ffffffffffff"

APP = "jobqueue_app"
RUNNER = "jobqueue_runner"
SERVICE = "jobqueue_service"
SUPABASE_ROLES = ("anon", "authenticated", "service_role")
# Roles of the tests, created when missing and never dropped (cluster-wide).
LOGIN_ROLE = "jobqueue_test_app_login"  # LOGIN, granted jobqueue_app
SERVICE_LOGIN_ROLE = "jobqueue_test_service_login"  # LOGIN, granted jobqueue_service
RUNNER_LOGIN_ROLE = "jobqueue_test_runner_login"  # LOGIN, granted jobqueue_runner
STRANGER_ROLE = "jobqueue_test_stranger"  # granted nothing
POSTGREST_ROLE = "jobqueue_test_authenticator"  # LOGIN NOINHERIT, like PostgREST's

APP_FUNCTIONS = frozenset(
    {
        "submit_job(text,jsonb,uuid,timestamp with time zone,integer,text)",
        "submit_jobs(text,jsonb[],uuid,timestamp with time zone,integer,text[])",
        "validate_job_parameters(text,jsonb)",
        "get_job(uuid)",
        "cancel_job(uuid)",
        "retry_job(uuid)",
    }
)
RUNNER_FUNCTIONS = frozenset(
    {
        "dequeue_jobs(integer,integer)",
        "complete_job(uuid,jsonb,bigint)",
        "fail_job(uuid,text,text,jsonb,bigint)",
        "extend_job_lease(uuid,bigint,integer)",
        "recover_orphans()",
        # The batch forms of complete_job and fail_job, with their checks.
        "complete_jobs(uuid[],jsonb[],bigint[])",
        "fail_jobs(uuid[],text[],text[],jsonb[],bigint[])",
    }
)
# The one private function callers need: the RLS policy on jobs calls it as them.
POLICY_HELPERS = frozenset({"jobqueue.current_user_id()"})
# The runner and service roles may read the database's package version
# (runners check it at start).
VERSION_HELPERS = frozenset({"jobqueue.installed_version()"})

# The package's functions: every function in schema jobqueue, and every
# function in public that no extension owns (only the API lives there).
PACKAGE_FUNCTIONS = """
select p.oid, p.oid::regprocedure::text as signature
from pg_catalog.pg_proc as p
where p.pronamespace = 'jobqueue'::regnamespace
    or (
        p.pronamespace = 'public'::regnamespace
        and not exists (
            select from pg_catalog.pg_depend as d
            where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
        )
    )
"""

# The package's tables and views, and the queue's tables.
PACKAGE_RELATIONS = (
    "public.jobs",
    "public.job_types",
    "jobqueue.settings",
    "jobqueue.schema_versions",
    "jobqueue.queue_messages",
    QUEUE_TABLE,
    ARCHIVE_TABLE,
)


def claims_of(sub: uuid.UUID | str | None, **extra: Any) -> str:
    """request.jwt.claims as PostgREST sets them; '' for a request without a JWT."""
    if sub is None and not extra:
        return ""
    claims = {"sub": str(sub)} if sub is not None else {}
    return json.dumps({**claims, **extra})


@contextmanager
def acting_as(
    conn: psycopg.Connection, db_role: str, sub: uuid.UUID | str | None = None, **claims: Any
) -> Iterator[psycopg.Connection]:
    """Runs the block as PostgREST runs a request: SET LOCAL ROLE, then the
    JWT's claims in request.jwt.claims for this transaction only.

    The block runs in a savepoint; afterwards the connection acts as itself
    again, with no claims.
    """
    with conn.transaction():
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(db_role)))
        conn.execute(
            "select pg_catalog.set_config('request.jwt.claims', %s, true)",
            (claims_of(sub, **claims),),
        )
        yield conn
        conn.execute("set local role none")
        conn.execute("select pg_catalog.set_config('request.jwt.claims', '', true)")


def install_twice(url: str, *extra: str) -> None:
    """Installs, then upgrades in place: every rule is checked after an upgrade."""
    install(url, *extra)
    install(url)


def submit(
    conn: psycopg.Connection,
    user_id: uuid.UUID | None,
    params: Any = None,
    job_type: str = "sample_task",
) -> uuid.UUID:
    """support.jobs.submit with the user first: here, who submits is the point."""
    return jobs.submit(conn, job_type, params, user_id)


def get_job(conn: psycopg.Connection, job_id: uuid.UUID) -> dict:
    found = rows(conn, "select * from public.get_job(%s)", (job_id,))
    assert len(found) == 1
    return found[0]


def visible_jobs(conn: psycopg.Connection) -> set[uuid.UUID]:
    """The ids a plain SELECT on public.jobs returns to the current role."""
    return {r[0] for r in conn.execute("select id from public.jobs")}


def status_of(conn: psycopg.Connection, job_id: uuid.UUID) -> str:
    """The job's status, read as the connection's own role."""
    return value(conn, "select status from public.jobs where id = %s", (job_id,))


def executable(conn: psycopg.Connection, grantee: str) -> set[str]:
    """The package's functions that `grantee` may EXECUTE (directly, through
    membership, or through PUBLIC); signatures of public functions unqualified."""
    found = rows(
        conn,
        f"select f.signature from ({PACKAGE_FUNCTIONS}) as f"
        " where pg_catalog.has_function_privilege(%s, f.oid, 'EXECUTE')",
        (grantee,),
    )
    return {r["signature"].replace(", ", ",") for r in found}


def table_privileges(conn: psycopg.Connection, grantee: str) -> dict[str, set[str]]:
    """What `grantee` may do with each of the package's relations (only those
    where it may do anything)."""
    privileges = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    found: dict[str, set[str]] = {}
    for relation in PACKAGE_RELATIONS:
        held = {
            p
            for p in privileges
            if value(
                conn, "select pg_catalog.has_table_privilege(%s, %s, %s)", (grantee, relation, p)
            )
        }
        if held:
            found[relation] = held
    return found
