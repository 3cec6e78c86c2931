"""`jobqueue migrate`: installs or upgrades the SQL package from Python.

It applies what ``psql -f sql/install.sql`` applies, read from install.sql
itself: the files its ``\\ir`` lines name, in their order, and its steps.
Files between a ``begin;`` and a ``commit;`` line run in one transaction;
each file outside them runs statement by statement outside any transaction
(the install lock, and the migrations' CREATE INDEX CONCURRENTLY steps).
The lock taken first makes concurrent migrations queue up; the later ones
find everything in place.

install.sql's optional psql variables (``psql -v queue_name=...``) are read
from its ``set_config('jobqueue.<setting>', :'<variable>', false)`` lines,
so `migrate` knows the same variables (queue_name, app_role, ...) and sets
the same settings, for the session, before the first step.

`bundle` writes the same install as one script for tools that run plain SQL
in a single transaction (Supabase's SQL editor and CLI migrations): the
concurrent index builds become plain ones there.

The server's NOTICEs (for example the cron.schedule_in_database() call to
run when pg_cron lives in another database) are passed to `on_notice`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from . import errors, queries
from .package import sql_dir

_INCLUDE = re.compile(r"^\s*\\ir?\s+(?P<path>\S+)\s*$")
_BEGIN = re.compile(r"^\s*begin\s*;\s*$", re.IGNORECASE)
_COMMIT = re.compile(r"^\s*commit\s*;\s*$", re.IGNORECASE)
_VARIABLE = re.compile(
    r"set_config\(\s*'(?P<setting>[a-z_][a-z0-9_.]*)'\s*,\s*:'(?P<variable>[a-z_][a-z0-9_]*)'"
)
_CONCURRENTLY = re.compile(r"\b(index|reindex)\s+concurrently\b", re.IGNORECASE)


class MigrationError(errors.JobQueueError):
    """A file of the package failed to apply; its step changed nothing."""

    def __init__(self, error: errors.JobQueueError, path: Path | None) -> None:
        where = f"{path.parent.name}/{path.name}: " if path else ""
        super().__init__(
            where + error.message, sqlstate=error.sqlstate, detail=error.detail, hint=error.hint
        )
        self.error = error
        self.path = path


@dataclass(frozen=True)
class Notice:
    severity: str
    message: str
    detail: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        text = f"{self.severity}: {self.message}"
        if self.detail:
            text += f"\nDETAIL: {self.detail}"
        if self.hint:
            text += f"\nHINT: {self.hint}"
        return text


@dataclass(frozen=True)
class Step:
    """Files applied together: in one transaction, or each statement of
    each file on its own outside any transaction."""

    files: tuple[Path, ...]
    transaction: bool


def install_steps(install_sql: Path) -> list[Step]:
    """The steps of install.sql: its \\ir (or \\i) files, resolved relative
    to install.sql as psql's \\ir does, grouped by its begin;/commit; lines."""
    if not install_sql.is_file():
        raise FileNotFoundError(
            f"{install_sql} not found: set JOBQUEUE_SQL_DIR to the package's sql/ directory"
        )
    steps: list[Step] = []
    current: list[Path] | None = None  # the files of an open transaction
    for line in install_sql.read_text(encoding="utf-8").splitlines():
        if _BEGIN.match(line):
            current = []
        elif _COMMIT.match(line):
            if current is None:
                raise ValueError(f"{install_sql}: commit; without begin;")
            steps.append(Step(tuple(current), transaction=True))
            current = None
        elif match := _INCLUDE.match(line):
            path = (install_sql.parent / match["path"]).resolve()
            if current is None:
                steps.append(Step((path,), transaction=False))
            else:
                current.append(path)
    if current is not None:
        raise ValueError(f"{install_sql}: begin; without commit;")
    if not steps:
        raise ValueError(f"{install_sql} includes no files (no \\ir lines)")
    return steps


def install_files(install_sql: Path) -> list[Path]:
    """Every file install.sql applies, in order."""
    return [path for step in install_steps(install_sql) for path in step.files]


def install_variables(install_sql: Path) -> dict[str, str]:
    """install.sql's optional psql variables: {variable: the setting it sets}."""
    text = install_sql.read_text(encoding="utf-8")
    return {m["variable"]: m["setting"] for m in _VARIABLE.finditer(text)}


def split_statements(text: str) -> list[str]:
    """The statements of a SQL script, split at semicolons outside quotes,
    dollar quotes and comments."""
    statements: list[str] = []
    start = 0
    for end in _statement_ends(text):
        statement = text[start:end].strip()
        if _strip_comments(statement):
            statements.append(statement)
        start = end
    if _strip_comments(text[start:]):
        statements.append(text[start:].strip())
    return statements


def _statement_ends(text: str) -> Iterator[int]:
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("--", i):
            i = _after(text, "\n", i + 2)
        elif text.startswith("/*", i):
            i = _after(text, "*/", i + 2)
        elif c in "'\"":
            i = _after(text, c, i + 1)
        elif c == "$" and (tag := re.match(r"\$[A-Za-z_]*\$", text[i:])):
            i = _after(text, tag.group(), i + len(tag.group()))
        elif c == ";":
            i += 1
            yield i
        else:
            i += 1


def _after(text: str, closing: str, start: int) -> int:
    end = text.find(closing, start)
    return len(text) if end < 0 else end + len(closing)


def _strip_comments(statement: str) -> str:
    return re.sub(r"--[^\n]*", "", statement).strip(" \n\t;")


def migrate(
    url: str,
    *,
    variables: Mapping[str, str] | None = None,
    directory: Path | None = None,
    on_notice: Callable[[Notice], None] | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> list[str]:
    """Applies install.sql's steps; returns what jobqueue.schema_versions
    records afterwards (migration numbers and package versions). Raises
    JobQueueError (MigrationError for a file that failed)."""
    install_sql = (directory or sql_dir()) / "install.sql"
    steps = install_steps(install_sql)
    known = install_variables(install_sql)
    unknown = sorted(set(variables or {}) - set(known))
    if unknown:
        raise ValueError(
            f"install.sql has no variable {', '.join(unknown)} (it knows: {', '.join(known)})"
        )
    texts = {path: path.read_text(encoding="utf-8") for step in steps for path in step.files}
    current: Path | None = None
    try:
        # prepare_threshold=None: scripts of many statements cannot be prepared.
        with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
            if on_notice is not None:
                conn.add_notice_handler(lambda diag: on_notice(_notice(diag)))
            for variable, value in (variables or {}).items():
                conn.execute(
                    queries.get("migrate_set_setting"), {"setting": known[variable], "value": value}
                )
            for step in steps:
                for current in _apply(conn, step, texts):
                    if on_file is not None:
                        on_file(current)
                current = None
            rows = conn.execute(queries.get("migrate_installed_versions")).fetchall()
    except psycopg.Error as exc:
        raise MigrationError(errors.from_psycopg(exc), current) from exc
    return [row[0] for row in rows]


def _apply(conn: psycopg.Connection[Any], step: Step, texts: Mapping[Path, str]) -> Iterator[Path]:
    """Applies one step, yielding each file before it runs (so that an
    error names it)."""
    if step.transaction:
        with conn.transaction():
            for path in step.files:
                yield path
                conn.execute(texts[path])  # the package's own files, as psql runs them
    else:
        for path in step.files:
            yield path
            for statement in split_statements(texts[path]):
                conn.execute(statement)


def bundle(directory: Path | None = None) -> str:
    """The whole install as one plain SQL script, for tools that run a file
    in one transaction (no psql meta-commands, no CONCURRENTLY)."""
    install_sql = (directory or sql_dir()) / "install.sql"
    parts = [
        "-- jobqueue: the SQL package as one script (generated by `jobqueue migrate --bundle`).\n"
        "-- Run it in ONE transaction. Concurrent index builds are plain ones here:\n"
        "-- for a large jobs table, upgrade with psql or `jobqueue migrate` instead.\n"
    ]
    for path in install_files(install_sql):
        text = _CONCURRENTLY.sub(lambda m: m.group(1), path.read_text(encoding="utf-8"))
        parts.append(f"\n-- {path.parent.name}/{path.name}\n{text}")
    return "".join(parts)


def _notice(diag: Any) -> Notice:
    return Notice(
        severity=diag.severity or "NOTICE",
        message=diag.message_primary or "",
        detail=diag.message_detail,
        hint=diag.message_hint,
    )
