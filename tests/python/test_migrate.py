"""`jobqueue migrate`: install.sql's steps and files, from Python."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from jobqueue import migrate
from jobqueue.package import package_version

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
    assert "[55000]" in err and "010_settings.sql" in err
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


def broken_copy(tmp_path: Path, name: str) -> Path:
    """A copy of sql/ whose file `name` ends with a call that fails (42883)."""
    broken = tmp_path / "sql"
    shutil.copytree(SQL_DIR, broken)
    path = broken / name
    path.write_text(path.read_text() + "\nselect no_such_function();\n")
    return broken


def test_a_failing_migration_applies_nothing(empty_db, tmp_path):
    broken = broken_copy(tmp_path, "migrations/0001_initial.sql")

    code, _, err = finish(jobqueue(empty_db, env={**os.environ, "JOBQUEUE_SQL_DIR": str(broken)}))

    assert code == 1
    assert "[42883]" in err and "0001_initial.sql" in err
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select to_regclass('public.jobs')").fetchone() == (None,)
        assert conn.execute("select count(*) from jobqueue.schema_versions").fetchone() == (0,)


def test_a_failing_code_file_keeps_the_migrations_and_records_no_version(empty_db, tmp_path):
    broken = broken_copy(tmp_path, "src/180_version.sql")

    code, _, err = finish(jobqueue(empty_db, env={**os.environ, "JOBQUEUE_SQL_DIR": str(broken)}))

    assert code == 1
    assert "[42883]" in err and "180_version.sql" in err
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select to_regclass('public.jobs') is not null").fetchone() == (True,)
        assert conn.execute("select to_regprocedure('public.get_job(uuid)')").fetchone() == (None,)
        assert conn.execute(
            "select array_agg(version order by version) from jobqueue.schema_versions"
        ).fetchone() == (["0001", "0002"],)


def test_migrate_from_python_reports_versions_and_notices(empty_db):
    notices: list[migrate.Notice] = []

    versions = migrate.migrate(empty_db, on_notice=notices.append)

    assert versions == ["0001", "0002", package_version()]
    assert all(n.message for n in notices)


def test_statements_are_split_outside_quotes_dollar_quotes_and_comments():
    script = (
        "set x = 'a;b'; -- a comment; with a semicolon\n"
        "do $$ begin perform 1; end; $$;\n"
        "create function f() returns text language sql as $fn$ select 'x;' $fn$;\n"
        '/* block; comment */ select ";" as "a;b";\n'
        "-- a trailing comment\n"
    )

    assert migrate.split_statements(script) == [
        "set x = 'a;b';",
        "-- a comment; with a semicolon\ndo $$ begin perform 1; end; $$;",
        "create function f() returns text language sql as $fn$ select 'x;' $fn$;",
        '/* block; comment */ select ";" as "a;b";',
    ]


def test_the_install_steps_follow_begin_and_commit_in_install_sql():
    steps = migrate.install_steps(SQL_DIR / "install.sql")

    transactional = [step for step in steps if step.transaction]
    assert [path.parent.name for path in transactional[0].files] == ["migrations"] * len(
        transactional[0].files
    )
    assert all(path.parent.name == "src" for path in transactional[1].files)
    assert [step.files[0].name for step in steps if not step.transaction] == [
        "version.sql",
        "prepare.sql",
        "0002_job_features.online.sql",
        "finish.sql",
    ]


def test_the_bundle_installs_the_same_package_in_one_transaction(empty_db, new_db, tmp_path):
    script = tmp_path / "jobqueue_install.sql"
    script.write_text(migrate.bundle())

    subprocess.run(
        ["psql", "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", empty_db, "-f", str(script)],
        check=True,
        capture_output=True,
        text=True,
    )

    assert not re.search(r"index\s+concurrently", script.read_text(), re.IGNORECASE)
    assert schema_fingerprint(empty_db) == schema_fingerprint(new_db)


def test_migrate_works_from_an_installed_wheel(empty_db, tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(SQL_DIR.parent)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("jobqueue-*.whl")
    site = tmp_path / "site"
    shutil.unpack_archive(wheel, site, format="zip")
    assert wheel.name.startswith(f"jobqueue-{package_version()}-")
    assert (site / "jobqueue" / "sql" / "migrations" / "0001_initial.sql").is_file()

    env = {k: v for k, v in os.environ.items() if k != "JOBQUEUE_SQL_DIR"}
    env["PYTHONPATH"] = str(site)
    code, out, err = finish(
        subprocess.Popen(
            [sys.executable, "-m", "jobqueue", "migrate", "--database-url", empty_db],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
    )
    used = subprocess.run(
        [sys.executable, "-c", "from jobqueue.package import sql_dir; print(sql_dir())"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    ).stdout.strip()

    assert code == 0, err
    assert package_version() in out
    assert Path(used) == site / "jobqueue" / "sql"
