"""`jobqueue migrate`: installs or upgrades the SQL package from Python.

It applies what ``psql -f sql/install.sql`` applies: the files named by the
``\\ir`` lines of install.sql, in their order, in ONE transaction, so that a
failure leaves the database as it was. The first file takes an advisory
lock, so concurrent migrations queue up and the later ones find everything
in place.

install.sql's optional psql variables (``psql -v queue_name=...``) are read
from its ``set_config('jobqueue.<setting>', :'<variable>', false)`` lines,
so `migrate` knows the same variables (queue_name, app_role, ...) and sets
the same settings, for the session, before the transaction.

The SQL directory is found next to the package in a checkout
(python/jobqueue -> ../../sql), or wherever JOBQUEUE_SQL_DIR points.
The server's NOTICEs (for example the cron.schedule_in_database() call to
run when pg_cron lives in another database) are passed to `on_notice`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from . import errors, queries

_INCLUDE = re.compile(r"^\s*\\ir?\s+(?P<path>\S+)\s*$")
_VARIABLE = re.compile(
    r"set_config\(\s*'(?P<setting>[a-z_][a-z0-9_.]*)'\s*,\s*:'(?P<variable>[a-z_][a-z0-9_]*)'"
)


class MigrationError(errors.JobQueueError):
    """A file of the package failed to apply; nothing was changed."""

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


def sql_dir() -> Path:
    """Where install.sql lives: $JOBQUEUE_SQL_DIR, else the checkout's sql/."""
    override = os.environ.get("JOBQUEUE_SQL_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent.parent / "sql"


def install_files(install_sql: Path) -> list[Path]:
    """The files install.sql includes (\\ir or \\i lines), in order, resolved
    relative to install.sql as psql's \\ir does."""
    if not install_sql.is_file():
        raise FileNotFoundError(
            f"{install_sql} not found: set JOBQUEUE_SQL_DIR to the package's sql/ directory"
        )
    files = []
    for line in install_sql.read_text(encoding="utf-8").splitlines():
        match = _INCLUDE.match(line)
        if match:
            files.append((install_sql.parent / match["path"]).resolve())
    if not files:
        raise ValueError(f"{install_sql} includes no files (no \\ir lines)")
    return files


def install_variables(install_sql: Path) -> dict[str, str]:
    """install.sql's optional psql variables: {variable: the setting it sets}."""
    text = install_sql.read_text(encoding="utf-8")
    return {m["variable"]: m["setting"] for m in _VARIABLE.finditer(text)}


def migrate(
    url: str,
    *,
    variables: Mapping[str, str] | None = None,
    directory: Path | None = None,
    on_notice: Callable[[Notice], None] | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> list[str]:
    """Applies install.sql's files in one transaction; returns the package
    versions recorded in the database afterwards. Raises JobQueueError."""
    install_sql = (directory or sql_dir()) / "install.sql"
    files = install_files(install_sql)
    known = install_variables(install_sql)
    unknown = sorted(set(variables or {}) - set(known))
    if unknown:
        raise ValueError(
            f"install.sql has no variable {', '.join(unknown)} (it knows: {', '.join(known)})"
        )
    scripts = [(path, path.read_text(encoding="utf-8")) for path in files]
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
            with conn.transaction():
                for current, text in scripts:
                    if on_file is not None:
                        on_file(current)
                    conn.execute(text)  # the package's own files, run as psql would
                current = None
            rows = conn.execute(queries.get("migrate_installed_versions")).fetchall()
    except psycopg.Error as exc:
        raise MigrationError(errors.from_psycopg(exc), current) from exc
    return [row[0] for row in rows]


def _notice(diag: Any) -> Notice:
    return Notice(
        severity=diag.severity or "NOTICE",
        message=diag.message_primary or "",
        detail=diag.message_detail,
        hint=diag.message_hint,
    )
