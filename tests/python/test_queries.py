"""queries.sql: every query the Python side runs, by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jobqueue import queries

PACKAGE = Path(queries.__file__).resolve().parent


def test_every_query_name_used_in_the_package_exists():
    used = set()
    for path in PACKAGE.glob("*.py"):
        used |= set(re.findall(r'queries\.get\("([a-z0-9_]+)"\)', path.read_text()))

    assert used, "no query names found"
    assert used <= set(queries.load())


def test_parse_splits_queries_on_name_headers_and_keeps_leading_comments():
    text = "-- a file comment\n\n-- name: one\nselect 1;\n\n-- why two\n-- name: two\nselect 2;\n"

    assert queries.parse(text) == {"one": "select 1;", "two": "select 2;"}


def test_a_query_defined_twice_is_refused():
    with pytest.raises(ValueError, match="twice"):
        queries.parse("-- name: a\nselect 1;\n-- name: a\nselect 2;\n")


def test_an_unknown_name_is_a_key_error_naming_it():
    with pytest.raises(KeyError, match="no_such_query"):
        queries.get("no_such_query")
