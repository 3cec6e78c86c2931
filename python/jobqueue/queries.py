"""The SQL the Python side runs, loaded once from queries.sql.

Each query sits in queries.sql under a ``-- name: <name>`` header; everything
up to the next header is its text. Python code asks for queries by name and
never holds SQL of its own, so that the SQL can be read, linted and reviewed
in one place.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

_HEADER = re.compile(r"^--\s*name:\s*(?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """Splits a queries file into {name: query}; comments before a query stay with it."""
    queries: dict[str, str] = {}
    matches = list(_HEADER.finditer(text))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        body = _strip_trailing_comments(text[match.end() : end]).strip()
        name = match["name"]
        if name in queries:
            raise ValueError(f"queries.sql: query {name!r} is defined twice")
        if not body:
            raise ValueError(f"queries.sql: query {name!r} is empty")
        queries[name] = body
    return queries


def _strip_trailing_comments(body: str) -> str:
    # Comment lines just above the next header belong to the next query.
    lines = body.rstrip().splitlines()
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
        lines.pop()
    return "\n".join(lines)


@functools.cache
def load() -> dict[str, str]:
    """All queries by name, read from the package's queries.sql once."""
    text = resources.files(__package__).joinpath("queries.sql").read_text(encoding="utf-8")
    return parse(text)


def get(name: str) -> str:
    """The text of one query; KeyError names the query when there is none."""
    try:
        return load()[name]
    except KeyError:
        raise KeyError(f"queries.sql has no query named {name!r}") from None
