"""The server under test and the databases the tests make on it.

The server is the one DATABASE_URL names (the Makefile points it at the local
cluster). The package is installed with psql and sql/install.sql, exactly as
a user installs it. Database names carry the pytest process id, so that
parallel runs never meet.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SQL = ROOT / "sql" / "install.sql"
_counter = itertools.count()


def server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.exit("DATABASE_URL is not set: run the tests with 'make test'", returncode=2)
    return url


def url_with(url: str, **params: str) -> str:
    """`url` with some of its connection parameters replaced (dbname, user...)."""
    return make_conninfo(url, **params)


def url_for(dbname: str) -> str:
    """The server's URL with another database name."""
    return url_with(server_url(), dbname=dbname)


def database_name(label: str | None = None, *, prefix: str = "jqt") -> str:
    """A database name of this pytest process: PREFIX_PID_LABEL, or a new
    number in place of LABEL."""
    return f"{prefix}_{os.getpid()}_{label if label is not None else next(_counter)}"


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
