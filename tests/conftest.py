"""Shared fixtures: a template database built once per session, a clone per test.

The template is installed with psql and sql/install.sql (support.db), exactly
as a user installs it; it has no pg_cron (pg_cron lives in the cron database
only, whose launcher stays connected there, so it cannot be a template).

Every test is marked with its layer, the folder it sits in under tests/, so
that `pytest -m sql` runs one layer. pyproject.toml registers one marker per
folder; pytest warns of an unknown mark for a new folder until it is added.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from support.db import (
    admin_connect,
    create_database,
    database_name,
    drop_database,
    install,
    url_for,
)

TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks each test with the folder under tests/ it sits in."""
    for item in items:
        if item.path.is_relative_to(TESTS):
            parts = item.path.relative_to(TESTS).parts
            if len(parts) > 1:
                item.add_marker(parts[0])


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    """Name of a database with the package installed, used as a template."""
    name = database_name("template")
    install(create_database(name))
    yield name
    drop_database(name)


@pytest.fixture
def new_db(template_db: str) -> Iterator[str]:
    """The URL of a fresh database with the package installed."""
    name = database_name()
    url = create_database(name, template=template_db)
    yield url
    drop_database(name)


@pytest.fixture
def empty_db() -> Iterator[str]:
    """The URL of a new database without the package (installs, migrations)."""
    name = database_name()
    yield create_database(name)
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
