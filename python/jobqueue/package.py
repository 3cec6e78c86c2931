"""Where the SQL package lives, and which version it is.

The SQL files ship inside the Python package (``jobqueue/sql``, mapped
from the repository's ``sql/`` by pyproject.toml), so that ``jobqueue
migrate`` works from an installed wheel; in a checkout the repository's
``sql/`` is used directly, and ``JOBQUEUE_SQL_DIR`` overrides both.

The package version is written once, in ``sql/version.sql``: the install
records it in the database, setup.py gives it to the wheel, and the runner
compares it with the database's (``jobqueue.installed_version()``).
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

_VERSION = re.compile(
    r"""^set "jobqueue\.package_version" = '(?P<version>\d+\.\d+\.\d+)';$""", re.MULTILINE
)


def sql_dir() -> Path:
    """The directory holding install.sql: $JOBQUEUE_SQL_DIR, else the
    checkout's sql/ next to python/, else the sql/ shipped in the package."""
    override = os.environ.get("JOBQUEUE_SQL_DIR")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent
    checkout = here.parent.parent / "sql"
    if (checkout / "install.sql").is_file():
        return checkout
    return here / "sql"


def parse_version(text: str) -> str:
    """The version literal of a version.sql text."""
    match = _VERSION.search(text)
    if match is None:
        raise ValueError("version.sql holds no line: set \"jobqueue.package_version\" = 'X.Y.Z';")
    return match["version"]


@functools.cache
def package_version() -> str:
    """This package's version, from sql/version.sql."""
    return parse_version((sql_dir() / "version.sql").read_text(encoding="utf-8"))
