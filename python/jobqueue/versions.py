"""Which databases a runner works with: the check it makes before taking jobs.

A runner works with a database whose jobqueue package has the same major
version as the runner and at least its minor version: minor releases of
the SQL package only add to what runners call, so a database upgraded past
the runner within its major still has everything the runner calls, while an
older minor may lack some of it and another major may have changed it.
Hence the order of an upgrade: the database first (`jobqueue migrate`),
then the runners.

The database tells its version with jobqueue.installed_version(). A
database without that function (42883, or 3F000 without the jobqueue
schema) was installed by a release from before the check, or has no
jobqueue at all: it counts as too old.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

from . import queries

# 42883: no such function; 3F000: no such schema.
_NO_VERSION_FUNCTION = frozenset({"42883", "3F000"})
# Leading MAJOR.MINOR: a local or development suffix does not matter here.
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.\d+)?")


def major_minor(version: str) -> tuple[int, int]:
    """(major, minor) of a version such as 0.2.1; ValueError if it has none."""
    match = _VERSION.match(version)
    if match is None:
        raise ValueError(f"{version!r} is not a MAJOR.MINOR.PATCH version")
    return int(match[1]), int(match[2])


def installed_version(conn: psycopg.Connection[Any]) -> str | None:
    """The database's package version; None when it cannot tell (a release
    from before versions were checked, or no jobqueue at all). Other errors
    are raised. `conn` must be in autocommit, so that a missing function
    leaves no aborted transaction behind."""
    try:
        row = conn.execute(queries.get("package_installed_version")).fetchone()
    except psycopg.Error as exc:
        if exc.sqlstate in _NO_VERSION_FUNCTION:
            return None
        raise
    return row[0] if row else None


def refusal(runner_version: str, database_version: str | None) -> str | None:
    """Why a runner of `runner_version` must not work with a database of
    `database_version` (one line for the log), or None when it may."""
    upgrade_database = "upgrade the database first (jobqueue migrate)"
    if database_version is None:
        return (
            "database has no jobqueue version (installed by an older release, or not "
            f"installed), this runner is {runner_version}: {upgrade_database}"
        )
    try:
        runner = major_minor(runner_version)
        database = major_minor(database_version)
    except ValueError as exc:
        return (
            f"cannot compare the database's jobqueue {database_version} with this "
            f"runner's {runner_version}: {exc}"
        )
    where = f"database has jobqueue {database_version}, this runner is {runner_version}"
    if database[0] > runner[0]:
        return f"{where}: upgrade the runner to a {database[0]}.x release"
    if database < runner:
        return f"{where}: {upgrade_database}"
    return None


def check(conn: psycopg.Connection[Any], runner_version: str) -> tuple[str | None, str | None]:
    """The database's version, and why this runner must not work with it
    (None when it may)."""
    database_version = installed_version(conn)
    return database_version, refusal(runner_version, database_version)
