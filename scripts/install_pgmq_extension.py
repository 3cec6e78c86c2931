"""Install pgmq's official extension SQL (shipped in its PyPI package) as a real extension.

Writes ``pgmq--<version>.sql`` and ``pgmq.control`` into PostgreSQL's extension
directory so that ``CREATE EXTENSION pgmq`` works as it does on Supabase. Does
nothing when the files are already there with the same content.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path


def pgmq_sql_dir() -> Path:
    # find_spec does not import pgmq (its __init__ pulls in optional clients).
    spec = importlib.util.find_spec("pgmq")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the pgmq PyPI package is not installed in this environment")
    return Path(next(iter(spec.submodule_search_locations))) / "sql"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sharedir", required=True, help="output of pg_config --sharedir")
    args = parser.parse_args()

    source = pgmq_sql_dir()
    version = (source / "VERSION").read_text().strip()
    files = {
        f"pgmq--{version}.sql": (source / "pgmq.sql").read_text(),
        "pgmq.control": (
            "# pgmq: a lightweight message queue, like AWS SQS, on PostgreSQL\n"
            "comment = 'A lightweight message queue. Like AWS SQS and RSMQ but on Postgres.'\n"
            f"default_version = '{version}'\n"
            "relocatable = false\n"
            "schema = 'pgmq'\n"
        ),
    }
    target = Path(args.sharedir) / "extension"
    for name, text in files.items():
        path = target / name
        if path.exists() and path.read_text() == text:
            continue
        try:
            path.write_text(text)
        except PermissionError:
            sys.exit(f"cannot write {path}: run 'make' as root once to install the pgmq extension")
        print(f"installed {path}")


if __name__ == "__main__":
    main()
