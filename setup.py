"""The package version for the wheel, read from sql/version.sql by the same
parser the runner uses (everything else is in pyproject.toml). The parser's
module is loaded by path: importing the jobqueue package would need its
dependencies, which a build does not have."""

import importlib.util
from pathlib import Path

from setuptools import setup

_ROOT = Path(__file__).resolve().parent
_PARSER = _ROOT / "python" / "jobqueue" / "package.py"
_SPEC = importlib.util.spec_from_file_location("_jobqueue_package", _PARSER)
assert _SPEC is not None and _SPEC.loader is not None
_PACKAGE = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_PACKAGE)

setup(version=_PACKAGE.parse_version((_ROOT / "sql" / "version.sql").read_text(encoding="utf-8")))
