"""The environment of the Python processes the tests start (`jobqueue`
commands, runners with handler modules of the tests)."""

from __future__ import annotations

import os
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def python_env(*folders: Path, **extra: str) -> dict[str, str]:
    """This process's environment for a child: `folders` (of handler modules)
    first on PYTHONPATH, then tests/, so that `support` imports there as it
    does here; JOBQUEUE_HANDLERS of the caller's shell dropped, so that a
    runner loads only the handlers a test names; then `extra`."""
    env = dict(os.environ)
    env.pop("JOBQUEUE_HANDLERS", None)
    path = [*map(str, folders), str(TESTS), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, path))
    env.update(extra)
    return env
