"""Fixtures of the SQL package's tests, on top of tests/conftest.py.

Most tests need one connection only: they run in `tx`, a transaction rolled
back after the test on one clone shared by the session (cloning costs more
than most tests). Tests about visibility, locking, NOTIFY or installs use
the per-test clones of tests/conftest.py (`db`, `connect`, `new_db`).
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from support.db import create_database, database_name, drop_database


@pytest.fixture(scope="session")
def shared_db(template_db: str) -> Iterator[str]:
    """URL of one clone of the template that the whole session shares via `tx`."""
    name = database_name("sql_shared")
    url = create_database(name, template=template_db)
    yield url
    drop_database(name)


@pytest.fixture(scope="session")
def _shared_conn(shared_db: str) -> Iterator[psycopg.Connection]:
    conn = psycopg.connect(shared_db)
    yield conn
    conn.rollback()
    conn.close()


@pytest.fixture
def tx(_shared_conn: psycopg.Connection) -> Iterator[psycopg.Connection]:
    """A connection in a transaction that is rolled back after the test.

    Everything the test writes or sets (settings, job types, messages) goes
    away with it; errors expected inside the test belong in support.jobs.raises(),
    which runs them in a savepoint.
    """
    _shared_conn.rollback()
    yield _shared_conn
    _shared_conn.rollback()
