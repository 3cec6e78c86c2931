"""Helpers shared by every layer of the test suite.

pytest puts tests/ on sys.path (pythonpath in pyproject.toml), so a test
imports them by module, whatever folder it sits in:

    from support.db import create_database, install, url_with
    from support.jobs import USER, job, rows, submit, value
    from support.waiting import wait_for

- support.db: the server under test, the databases made on it, install.sql.
- support.jobs: the SQL API as the tests call it, and what the tables hold.
- support.waiting: waiting for a condition rather than for time to pass.
- support.processes: the environment of the Python processes tests start.

What only one layer needs stays in that layer's folder (tests/sql/support.py,
tests/security/support.py, tests/runner/helpers.py, tests/chaos/harness.py).
"""
