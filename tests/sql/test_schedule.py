"""The pg_cron schedule of recover_orphans(): made in the cron database, printed elsewhere."""

from __future__ import annotations

import re

import psycopg
from psycopg.conninfo import conninfo_to_dict
from support.db import install
from support.jobs import value

COMMAND = "select public.recover_orphans()"
JOB_NAME = "jobqueue-recover-orphans"


def sweeps_scheduled(conn: psycopg.Connection, database: str) -> list[tuple]:
    return conn.execute(
        "select jobname, schedule, command from cron.job"
        " where database = %s and command = %s order by jobid",
        (database, COMMAND),
    ).fetchall()


def test_installing_twice_in_the_cron_database_leaves_exactly_one_cron_job(cron_db_url):
    cron_db = conninfo_to_dict(cron_db_url)["dbname"]

    install(cron_db_url)
    install(cron_db_url)

    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        assert sweeps_scheduled(conn, cron_db) == [(JOB_NAME, "* * * * *", COMMAND)]
        assert value(conn, "select count(*) from cron.job where jobname = %s", (JOB_NAME,)) == 1
        assert value(conn, "select active from cron.job where jobname = %s", (JOB_NAME,))


def test_installing_elsewhere_prints_the_exact_call_that_schedules_the_sweep(new_db, cron_db_url):
    database = conninfo_to_dict(new_db)["dbname"]
    cron_db = conninfo_to_dict(cron_db_url)["dbname"]

    result = install(new_db)

    found = re.search(
        r"NOTICE:  pg_cron lives in database (\S+): .* run there: (.*;)$", result.stderr, re.M
    )
    assert found, result.stderr
    assert found.group(1) == cron_db
    call = found.group(2)
    assert call == (
        f"select cron.schedule_in_database('{JOB_NAME}@{database}', '* * * * *',"
        f" '{COMMAND}', '{database}');"
    )
    with psycopg.connect(new_db, autocommit=True) as conn:
        assert value(conn, "select count(*) from pg_extension where extname = 'pg_cron'") == 0

    # The printed call works as printed, and running it again keeps one job.
    with psycopg.connect(cron_db_url, autocommit=True) as conn:
        try:
            conn.execute(call)
            conn.execute(call)
            assert sweeps_scheduled(conn, database) == [
                (f"{JOB_NAME}@{database}", "* * * * *", COMMAND)
            ]
        finally:
            conn.execute(
                "select cron.unschedule(jobid) from cron.job where database = %s", (database,)
            )


def test_a_reinstall_elsewhere_prints_the_same_call_again(new_db):
    first = install(new_db).stderr
    second = install(new_db).stderr

    notice = [line for line in second.splitlines() if "cron.schedule_in_database" in line]
    assert len(notice) == 1
    assert notice[0].split("NOTICE:", 1)[1] in first
