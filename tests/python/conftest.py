"""Fixtures of the Python client tests."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

_counter = itertools.count()


@pytest.fixture
def empty_db() -> Iterator[str]:
    """The URL of a new database without the package (for migrations)."""
    server = os.environ["DATABASE_URL"]
    name = f"jqt_{os.getpid()}_empty_{next(_counter)}"
    ident = sql.Identifier(name)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(ident))
        conn.execute(sql.SQL("create database {}").format(ident))
    params = conninfo_to_dict(server)
    params["dbname"] = name
    yield make_conninfo(**params)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(ident))
