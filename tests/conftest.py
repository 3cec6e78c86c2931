"""Shared fixtures: a template database built once per session, a clone per test.

The server is the one DATABASE_URL names (the Makefile points it at the local
cluster). The template is installed with psql and sql/install.sql, exactly as
a user installs it; it has no pg_cron (pg_cron lives in the cron database
only, whose launcher stays connected there, so it cannot be a template).
Database names carry the pytest process id, so that parallel runs never meet.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
INSTALL_SQL = ROOT / "sql" / "install.sql"
_counter = itertools.count()


def server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.exit("DATABASE_URL is not set: run the tests with 'make test'", returncode=2)
    return url


def url_for(dbname: str) -> str:
    """The server's URL with another database name."""
    params = conninfo_to_dict(server_url())
    params["dbname"] = dbname
    return make_conninfo(**params)


def admin_connect() -> psycopg.Connection:
    return psycopg.connect(server_url(), autocommit=True)


def install(url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """Runs sql/install.sql with psql, as a user would; raises on failure."""
    return subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *extra, "-d", url, "-f", str(INSTALL_SQL)],
        check=True,
        capture_output=True,
        text=True,
    )


def drop_database(name: str) -> None:
    with admin_connect() as conn:
        drop = sql.SQL("drop database if exists {} with (force)")
        conn.execute(drop.format(sql.Identifier(name)))


def create_database(name: str, template: str | None = None) -> str:
    """Creates (or re-creates) a database, optionally from a template; returns its URL."""
    drop_database(name)
    create = sql.SQL("create database {}").format(sql.Identifier(name))
    if template:
        create = sql.SQL("{} template {}").format(create, sql.Identifier(template))
    with admin_connect() as conn:
        conn.execute(create)
    return url_for(name)


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    """Name of a database with the package installed, used as a template."""
    name = f"jqt_{os.getpid()}_template"
    install(create_database(name))
    yield name
    drop_database(name)


@pytest.fixture
def new_db(template_db: str) -> Iterator[str]:
    """The URL of a fresh database with the package installed."""
    name = f"jqt_{os.getpid()}_{next(_counter)}"
    url = create_database(name, template=template_db)
    yield url
    drop_database(name)


@pytest.fixture
def db(new_db: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to a fresh clone: every statement commits."""
    with psycopg.connect(new_db, autocommit=True) as conn:
        yield conn


@pytest.fixture
def connect(new_db: str) -> Iterator:
    """Opens more autocommit connections to the same clone as `db`."""
    opened: list[psycopg.Connection] = []

    def _connect(**kwargs) -> psycopg.Connection:
        kwargs.setdefault("autocommit", True)
        conn = psycopg.connect(new_db, **kwargs)
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        conn.close()


@pytest.fixture(scope="session")
def cron_db_url() -> str:
    """URL of the database pg_cron lives in (cron.database_name)."""
    with admin_connect() as conn:
        row = conn.execute("select current_setting('cron.database_name', true)").fetchone()
    if not row or not row[0]:
        pytest.skip("pg_cron is not loaded on this server")
    return url_for(row[0])
