"""Fixtures of the security tests, on top of tests/conftest.py.

Every database here has had install.sql run twice, so that each rule is
checked after an upgrade in place. Most tests run in `tx`: a transaction on
one shared clone, rolled back after the test, in which they switch roles as
PostgREST does (SET LOCAL ROLE, then request.jwt.claims). Tests that need
other sessions or LOGIN roles get a clone of their own (`sec_db`).

Roles are cluster-wide and other suites run beside this one: the roles made
here are created only when missing, and never dropped.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql
from support.db import admin_connect, create_database, database_name, drop_database, url_with

from .support import (
    LOGIN_ROLE,
    POSTGREST_ROLE,
    RUNNER_LOGIN_ROLE,
    SERVICE_LOGIN_ROLE,
    STRANGER_ROLE,
    SUPABASE_ROLES,
    USER_A,
    USER_B,
    USER_C,
    install_twice,
    submit,
)

# Creates a role unless it exists; an install or a parallel run in another
# database may create it at the same moment, which is not an error here.
# (DO takes no parameters: the names are passed as quoted literals.)
_CREATE_ROLE = """
do $$
begin
    if pg_catalog.to_regrole({name}) is null then
        execute pg_catalog.format('create role %I ' || {options}, {name});
    end if;
exception when duplicate_object or unique_violation then
    null;
end;
$$
"""

_GRANT_ROLE = """
do $$
begin
    if not pg_catalog.pg_has_role({member}, {role}, 'MEMBER') then
        execute pg_catalog.format('grant %I to %I', {role}, {member});
    end if;
exception when duplicate_object or unique_violation then
    null;
end;
$$
"""

# What a Supabase project has before anything is installed, reproduced on
# plain PostgreSQL: the auth schema with its users table and auth.uid(), and
# the default privileges that hand everything created in public to the API
# roles.
SUPABASE_SETUP = """
create schema auth;
create table auth.users (id uuid primary key, email text);
create function auth.uid() returns uuid
language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
    )::uuid
$$;
grant usage on schema auth to anon, authenticated, service_role;
grant execute on function auth.uid() to anon, authenticated, service_role;
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public
grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public
grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public
grant all on sequences to anon, authenticated, service_role;
"""


def create_role(conn: psycopg.Connection, name: str, options: str) -> None:
    conn.execute(sql.SQL(_CREATE_ROLE).format(name=sql.Literal(name), options=sql.Literal(options)))


def grant_role(conn: psycopg.Connection, role: str, member: str) -> None:
    conn.execute(sql.SQL(_GRANT_ROLE).format(role=sql.Literal(role), member=sql.Literal(member)))


@pytest.fixture(scope="session")
def cluster_roles() -> None:
    """The roles the tests act as, besides the package's own.

    Supabase's three API roles (NOLOGIN NOINHERIT, as Supabase makes them)
    exist before any install of this suite, so that every database here is
    installed the same way; LOGIN roles for an application, a backend and a
    runner (granted the package's roles once install has made them); a role
    granted nothing at all; and a LOGIN NOINHERIT role that may become each
    Supabase role, as PostgREST's `authenticator` is.
    """
    with admin_connect() as conn:
        for name in SUPABASE_ROLES:
            create_role(conn, name, "nologin noinherit")
        for name in (LOGIN_ROLE, SERVICE_LOGIN_ROLE, RUNNER_LOGIN_ROLE):
            create_role(conn, name, "login")
        create_role(conn, STRANGER_ROLE, "nologin")
        create_role(conn, POSTGREST_ROLE, "login noinherit")
        for name in SUPABASE_ROLES:
            grant_role(conn, name, POSTGREST_ROLE)


@pytest.fixture(scope="session")
def sec_template(cluster_roles: None) -> Iterator[str]:
    """Name of a database installed twice, the template of the others here."""
    name = database_name("template", prefix="jqsec")
    install_twice(create_database(name))
    # The package's roles exist now: the LOGIN roles are granted them, as
    # docs/security.md tells deployments to do.
    with admin_connect() as conn:
        grant_role(conn, "jobqueue_app", LOGIN_ROLE)
        grant_role(conn, "jobqueue_service", SERVICE_LOGIN_ROLE)
        grant_role(conn, "jobqueue_runner", RUNNER_LOGIN_ROLE)
    yield name
    drop_database(name)


@pytest.fixture
def sec_db(sec_template: str) -> Iterator[str]:
    """URL of a fresh clone of the template, for tests that commit."""
    name = database_name(prefix="jqsec")
    url = create_database(name, template=sec_template)
    yield url
    drop_database(name)


@pytest.fixture(scope="session")
def _shared_conn(sec_template: str) -> Iterator[psycopg.Connection]:
    name = database_name("shared", prefix="jqsec")
    url = create_database(name, template=sec_template)
    conn = psycopg.connect(url)
    yield conn
    conn.rollback()
    conn.close()
    drop_database(name)


@pytest.fixture
def tx(_shared_conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """A connection as the owner, in a transaction rolled back after the test."""
    _shared_conn.rollback()
    # Open the transaction now, so that acting_as() and raises() make
    # savepoints in it rather than transactions of their own.
    _shared_conn.execute("select")
    yield _shared_conn
    _shared_conn.rollback()


@dataclass(frozen=True)
class SupabaseDb:
    """A database set up as a Supabase project, then installed twice.

    auth.users holds USER_A, USER_B and USER_C; `jobs` are pending jobs the
    owner committed, by user: two of USER_A's, one of USER_B's.
    """

    url: str
    jobs: dict[uuid.UUID, list[uuid.UUID]]


@pytest.fixture(scope="session")
def supabase_db(cluster_roles: None) -> Iterator[SupabaseDb]:
    name = database_name("supabase", prefix="jqsec")
    url = create_database(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SUPABASE_SETUP)
    install_twice(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "insert into auth.users (id) values (%s), (%s), (%s)", (USER_A, USER_B, USER_C)
        )
        jobs = {
            user: [submit(conn, user) for _ in range(count)]
            for user, count in ((USER_A, 2), (USER_B, 1))
        }
    yield SupabaseDb(url, jobs)
    drop_database(name)


@pytest.fixture
def supa_tx(supabase_db: SupabaseDb) -> Iterator[psycopg.Connection]:
    """The owner (postgres, as on Supabase) in a transaction rolled back after the test."""
    with psycopg.connect(supabase_db.url) as conn:
        conn.execute("select")
        yield conn
        conn.rollback()


@pytest.fixture
def postgrest(supabase_db: SupabaseDb) -> Iterator[psycopg.Connection]:
    """A connection as PostgREST has one: logged in as an authenticator role
    (LOGIN NOINHERIT, a member of anon, authenticated and service_role), in a
    transaction rolled back after the test."""
    with psycopg.connect(url_with(supabase_db.url, user=POSTGREST_ROLE)) as conn:
        conn.execute("select")
        yield conn
        conn.rollback()
