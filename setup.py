"""The package version for the wheel, read from sql/version.sql, where the
SQL install reads it too (everything else is in pyproject.toml)."""

import re
from pathlib import Path

from setuptools import setup

_TEXT = (Path(__file__).resolve().parent / "sql" / "version.sql").read_text(encoding="utf-8")
setup(version=re.search(r"""^set "jobqueue\.package_version" = '([0-9.]+)';$""", _TEXT, re.M)[1])
