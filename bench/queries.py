"""The benchmark's SQL, read from bench/sql/: named queries and pgbench scripts.

As in python/jobqueue, each query sits under a ``-- name: <name>`` header and
Python code refers to it by name.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent / "sql"
PGBENCH_DIR = SQL_DIR / "pgbench"

_HEADER = re.compile(r"^--\s*name:\s*(?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse(text: str, source: str) -> dict[str, str]:
    """Splits a file into {name: text}; comment lines just above a header
    belong to the next query."""
    found: dict[str, str] = {}
    matches = list(_HEADER.finditer(text))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        lines = text[match.end() : end].rstrip().splitlines()
        while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
            lines.pop()
        name = match["name"]
        if name in found:
            raise ValueError(f"{source}: {name!r} is defined twice")
        found[name] = "\n".join(lines).strip()
    return found


@functools.cache
def _file(name: str) -> dict[str, str]:
    return parse((SQL_DIR / name).read_text(encoding="utf-8"), name)


def get(name: str) -> str:
    """A query of queries.sql."""
    try:
        return _file("queries.sql")[name]
    except KeyError:
        raise KeyError(f"bench/sql/queries.sql has no query named {name!r}") from None


def pgbench_script(name: str) -> Path:
    path = PGBENCH_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(path)
    return path
