"""`jobqueue migrate`: install.sql's files in one transaction, from Python."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from jobqueue import migrate

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def jobqueue(url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobqueue", "migrate", "--database-url", url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def schema_fingerprint(url: str) -> list[tuple]:
    """Functions, tables, columns, indexes, triggers and settings of the package."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            """
            select 'function', p.oid::regprocedure::text, md5(pg_get_functiondef(p.oid))
            from pg_proc as p
            where p.pronamespace in ('public'::regnamespace, 'jobqueue'::regnamespace)
            union all
            select 'column', c.table_schema || '.' || c.table_name || '.' || c.column_name,
                c.data_type || coalesce(c.column_default, '')
            from information_schema.columns as c
            where c.table_schema in ('public', 'jobqueue', 'pgmq')
            union all
            select 'index', schemaname || '.' || indexname, indexdef
            from pg_indexes where schemaname in ('public', 'jobqueue', 'pgmq')
            union all
            select 'trigger', tgrelid::regclass::text || '.' || tgname, tgfoid::regproc::text
            from pg_trigger where not tgisinternal
            union all
            select 'settings', queue_name, orphan_max_requeues::text from jobqueue.settings
            order by 1, 2
            """
        ).fetchall()


def test_install_files_are_the_ir_lines_of_install_sql_in_order():
    files = migrate.install_files(SQL_DIR / "install.sql")

    listed = [
        line.split()[1]
        for line in (SQL_DIR / "install.sql").read_text().splitlines()
        if line.startswith("\\ir ")
    ]
    assert [f.relative_to(SQL_DIR).as_posix() for f in files] == listed


def test_migrate_installs_the_package_and_a_second_run_changes_nothing(empty_db):
    code, out, err = finish(jobqueue(empty_db))
    assert code == 0, err
    assert "package installed" in out
    installed = schema_fingerprint(empty_db)

    code, _, err = finish(jobqueue(empty_db))

    assert code == 0, err
    assert schema_fingerprint(empty_db) == installed
    assert any(kind == "function" and "submit_job(" in name for kind, name, _ in installed)


def test_two_concurrent_migrations_both_succeed(empty_db):
    first, second = jobqueue(empty_db), jobqueue(empty_db)

    results = [finish(first), finish(second)]

    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select count(*) from pgmq.meta").fetchone() == (1,)
        assert conn.execute("select count(*) from jobqueue.settings").fetchone() == (1,)


def test_migrate_prints_the_servers_notices(empty_db):
    with psycopg.connect(empty_db) as conn:
        cron_db = conn.execute("select current_setting('cron.database_name', true)").fetchone()
    if not cron_db or not cron_db[0]:
        pytest.skip("pg_cron is not loaded on this server")

    code, _, err = finish(jobqueue(empty_db))

    # Not the cron database: install.sql says how to schedule the sweep from there.
    assert code == 0, err
    assert "cron.schedule_in_database(" in err


def test_migrate_uses_the_queue_name_given_at_the_first_install(empty_db):
    code, _, err = finish(jobqueue(empty_db, "--queue-name", "my_jobs"))
    assert code == 0, err
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select queue_name from jobqueue.settings").fetchone() == ("my_jobs",)
        assert conn.execute("select to_regclass('pgmq.q_my_jobs') is not null").fetchone() == (
            True,
        )

    code, _, err = finish(jobqueue(empty_db, "--queue-name", "other_jobs"))

    assert code == 1
    assert "[55000]" in err and "020_schema.sql" in err
    assert len(err.strip().splitlines()) == 1


def test_install_sql_variables_are_set_like_psql_v(empty_db):
    code, _, err = finish(jobqueue(empty_db, "--set", "queue_name=via_set"))

    assert code == 0, err
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select queue_name from jobqueue.settings").fetchone() == ("via_set",)


def test_an_unknown_variable_is_refused_before_connecting(empty_db):
    code, _, err = finish(jobqueue(empty_db, "--set", "no_such_variable=1"))

    assert code == 1
    assert "no_such_variable" in err and "queue_name" in err
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select to_regnamespace('jobqueue')").fetchone() == (None,)


def test_a_failing_file_leaves_the_database_untouched(empty_db, tmp_path):
    broken = tmp_path / "sql"
    shutil.copytree(SQL_DIR, broken)
    last = migrate.install_files(broken / "install.sql")[-1]
    last.write_text(last.read_text() + "\nselect no_such_function();\n")

    code, _, err = finish(jobqueue(empty_db, env={**os.environ, "JOBQUEUE_SQL_DIR": str(broken)}))

    assert code == 1
    assert "[42883]" in err and last.name in err
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select to_regnamespace('jobqueue')").fetchone() == (None,)


def test_migrate_from_python_reports_versions_and_notices(empty_db):
    notices: list[migrate.Notice] = []

    versions = migrate.migrate(empty_db, on_notice=notices.append)

    assert versions == ["0.1.0"]
    assert all(n.message for n in notices)
