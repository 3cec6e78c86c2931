"""sql/install.sql run with psql: idempotent, configurable queue name, upgrades of signatures."""

from __future__ import annotations

import re
import subprocess
import sys
import threading

import psycopg
import pytest
from support.catalog import snapshot
from support.db import ROOT, install
from support.jobs import USER, counts, messages, submit, value

from .support import dequeue


def test_a_second_install_changes_nothing(new_db):
    install(new_db)  # the sources as they are now, whatever the template was built from
    first = snapshot(new_db)

    result = install(new_db)

    assert snapshot(new_db) == first
    assert "ERROR" not in result.stderr
    assert "WARNING" not in result.stderr


def test_a_fresh_install_then_a_reinstall_match_and_keep_the_data(empty_db):
    install(empty_db)
    first = snapshot(empty_db)
    with psycopg.connect(empty_db, autocommit=True) as conn:
        job_id = submit(conn)

    install(empty_db)

    assert snapshot(empty_db) == first
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert counts(conn) == (1, 1)
        assert messages(conn, job_id)[0]["message"]["job_id"] == str(job_id)


def test_install_creates_the_documented_objects(new_db):
    with psycopg.connect(new_db, autocommit=True) as conn:
        columns = value(
            conn,
            "select array_agg(attname::text order by attnum) from pg_attribute"
            " where attrelid = 'public.jobs'::regclass and attnum > 0 and not attisdropped",
        )
        indexes = value(
            conn,
            "select array_agg(indexrelid::regclass::text) from pg_index"
            " where indrelid = 'public.jobs'::regclass",
        )
        queue = value(conn, "select jobqueue.queue_name()")
        sample = value(conn, "select max_retries from job_types where name = 'sample_task'")

    assert columns == [
        "id", "job_type", "status", "user_id", "job_parameters", "error_message", "error_type",
        "error_context", "data_references", "retry_count", "created_at", "updated_at",
        "started_at", "completed_at", "run_at", "priority", "dedup_key", "retry_of",
    ]  # fmt: skip
    assert {"jobs_status_idx", "jobs_user_id_idx", "jobs_created_at_idx"} <= set(indexes)
    assert queue == "job_queue"
    assert sample == 0


def test_the_queue_name_is_set_by_the_first_install(empty_db):
    install(empty_db, "-v", "queue_name=my_jobs")

    with (
        psycopg.connect(empty_db, autocommit=True) as conn,
        psycopg.connect(empty_db, autocommit=True) as listener,
    ):
        listener.execute("listen jobqueue")
        assert value(conn, "select jobqueue.queue_name()") == "my_jobs"
        assert value(conn, "select to_regclass('pgmq.q_my_jobs') is not null")
        assert value(conn, "select to_regclass('pgmq.q_job_queue') is null")
        job_id = submit(conn)
        assert value(conn, "select count(*) from pgmq.q_my_jobs") == 1
        assert [n.payload for n in listener.notifies(timeout=10, stop_after=1)] == ["my_jobs"]
        assert value(conn, "select count(*) from jobqueue.queue_messages") == 1
        (taken,) = dequeue(conn)
        assert taken["job_id"] == job_id
        conn.execute("select complete_job(%s, null, %s)", (job_id, taken["msg_id"]))
        assert value(conn, "select count(*) from pgmq.q_my_jobs") == 0

    # Later installs keep it, with or without naming it again.
    install(empty_db)
    install(empty_db, "-v", "queue_name=my_jobs")
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert value(conn, "select jobqueue.queue_name()") == "my_jobs"


def test_another_queue_name_on_a_later_install_fails_and_changes_nothing(new_db):
    before = snapshot(new_db)

    with pytest.raises(subprocess.CalledProcessError) as info:
        install(new_db, "-v", "queue_name=elsewhere")

    assert "queue_name" in info.value.stderr
    assert "elsewhere" in info.value.stderr
    assert snapshot(new_db) == before


@pytest.mark.parametrize("name", ["Bad-Name", "1abc", "x" * 48])
def test_an_invalid_queue_name_fails_the_install(empty_db, name):
    with pytest.raises(subprocess.CalledProcessError):
        install(empty_db, "-v", f"queue_name={name}")

    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert value(conn, "select to_regclass('public.jobs') is null")


def test_an_old_signature_of_an_api_function_is_dropped(new_db):
    with psycopg.connect(new_db, autocommit=True) as conn:
        conn.execute(
            "create function public.submit_job(job_type text, job_parameters jsonb)"
            " returns uuid language sql as 'select null::uuid'"
        )
        conn.execute(
            "create function public.cancel_job(job_id uuid, reason text)"
            " returns boolean language sql as 'select false'"
        )

    install(new_db)

    with psycopg.connect(new_db, autocommit=True) as conn:
        signatures = value(
            conn,
            "select array_agg(oid::regprocedure::text order by 1) from pg_proc"
            " where proname in ('submit_job', 'cancel_job')"
            " and pronamespace = 'public'::regnamespace",
        )
        assert signatures == [
            "cancel_job(uuid)",
            "submit_job(text,jsonb,uuid,timestamp with time zone,integer,text)",
        ]
        # The call that was ambiguous with the old overload resolves again.
        job_id = value(conn, "select submit_job('sample_task', '{}', %s)", (USER,))
        assert value(conn, "select cancel_job(%s)", (job_id,)) is True


def test_a_users_own_function_in_public_is_left_alone(new_db):
    with psycopg.connect(new_db, autocommit=True) as conn:
        conn.execute(
            "create function public.submit_report(x int) returns int language sql as 'select x'"
        )

    install(new_db)

    with psycopg.connect(new_db, autocommit=True) as conn:
        assert value(conn, "select submit_report(3)") == 3


def test_concurrent_installs_queue_up_and_both_succeed(empty_db):
    results: list[subprocess.CompletedProcess | Exception] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        barrier.wait()
        try:
            results.append(install(empty_db))
        except Exception as error:  # reported below
            results.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert all(isinstance(r, subprocess.CompletedProcess) for r in results), results
    assert len(results) == 2
    with psycopg.connect(empty_db, autocommit=True) as conn:
        assert value(conn, "select count(*) from pgmq.meta") == 1
        assert value(conn, "select count(*) from jobqueue.settings") == 1
        assert value(conn, "select count(*) from job_types") == 1


# The API as the spec fixes it, by position and by name (PostgREST calls by name), and
# the batch forms the runner uses.
API = {
    "submit_job": (
        "job_type text, job_parameters jsonb DEFAULT NULL::jsonb, user_id uuid DEFAULT NULL::uuid,"
        " run_at timestamp with time zone DEFAULT NULL::timestamp with time zone,"
        " priority integer DEFAULT 0, dedup_key text DEFAULT NULL::text",
        "uuid",
    ),
    "submit_jobs": (
        "job_type text, job_parameters jsonb[], user_id uuid DEFAULT NULL::uuid,"
        " run_at timestamp with time zone DEFAULT NULL::timestamp with time zone,"
        " priority integer DEFAULT 0, dedup_keys text[] DEFAULT NULL::text[]",
        "SETOF uuid",
    ),
    "validate_job_parameters": ("job_type text, job_parameters jsonb", "void"),
    "dequeue_jobs": (
        "batch_size integer DEFAULT 1, visibility_timeout_seconds integer DEFAULT 30",
        "TABLE(job_id uuid, msg_id bigint, job_type text, user_id uuid, job_parameters jsonb,"
        " retry_count integer)",
    ),
    "complete_job": (
        "job_id uuid, data_references jsonb DEFAULT NULL::jsonb,"
        " msg_id bigint DEFAULT NULL::bigint",
        "void",
    ),
    "fail_job": (
        "job_id uuid, error_message text, error_type text DEFAULT NULL::text,"
        " error_context jsonb DEFAULT NULL::jsonb, msg_id bigint DEFAULT NULL::bigint",
        "text",
    ),
    "complete_jobs": (
        "job_ids uuid[], data_references jsonb[] DEFAULT NULL::jsonb[],"
        " msg_ids bigint[] DEFAULT NULL::bigint[]",
        "TABLE(job_id uuid, outcome text)",
    ),
    "fail_jobs": (
        "job_ids uuid[], error_messages text[], error_types text[] DEFAULT NULL::text[],"
        " error_contexts jsonb[] DEFAULT NULL::jsonb[], msg_ids bigint[] DEFAULT NULL::bigint[]",
        "TABLE(job_id uuid, outcome text)",
    ),
    "extend_job_lease": ("job_id uuid, msg_id bigint, seconds integer", "timestamp with time zone"),
    "cancel_job": ("job_id uuid", "boolean"),
    "retry_job": ("job_id uuid", "uuid"),
    "get_job": ("job_id uuid", "jobs"),
    "recover_orphans": ("", "jsonb"),
}


def test_public_holds_exactly_the_api_with_its_documented_signatures(new_db):
    with psycopg.connect(new_db, autocommit=True) as conn:
        found = {
            name: (args, result)
            for name, args, result in conn.execute(
                "select proname::text, pg_get_function_arguments(oid), pg_get_function_result(oid)"
                " from pg_proc where pronamespace = 'public'::regnamespace"
            )
        }

    assert found == API


# PGMQ functions present since 1.4, which Supabase's older PGMQ has too.
PGMQ_SINCE_1_4 = {
    "create", "send", "send_batch", "read", "set_vt", "delete", "archive", "purge_queue", "metrics",
}  # fmt: skip


def test_the_package_calls_only_pgmq_functions_present_since_1_4():
    sources = (ROOT / "sql").rglob("*.sql")
    called = {
        name
        for path in sources
        for name in re.findall(r"\bpgmq\.\"?([a-z_]+)\"?\s*\(", path.read_text())
    }

    assert called, "no pgmq call found: is the pattern still right?"
    assert called <= PGMQ_SINCE_1_4


def test_a_jobs_message_is_found_through_the_index_not_a_scan(new_db):
    with psycopg.connect(new_db, autocommit=True) as conn:
        conn.execute("set enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "explain select msg_id from jobqueue.queue_messages"
                " where message ->> 'job_id' = %s",
                (str(USER),),
            )
        )

    assert "q_job_queue_job_id_idx" in plan


def test_every_api_function_carries_its_contract_as_a_comment(new_db):
    with psycopg.connect(new_db, autocommit=True) as conn:
        comments = dict(
            conn.execute(
                "select p.proname::text, obj_description(p.oid, 'pg_proc') from pg_proc as p"
                " where p.pronamespace = 'public'::regnamespace"
            ).fetchall()
        )

    assert set(comments) == set(API)
    assert all(text and len(text) > 40 for text in comments.values()), comments
    assert comments["submit_job"].startswith("Submits one job")


def test_the_comments_file_is_generated_from_the_function_headers():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "function_comments.py"), "--check"],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr


def test_each_sql_file_reads_in_one_sitting():
    lengths = {
        path.name: len(path.read_text().splitlines()) for path in (ROOT / "sql").rglob("*.sql")
    }

    assert max(lengths.values()) <= 400, lengths


def test_an_install_drops_code_it_no_longer_has(new_db):
    with psycopg.connect(new_db, autocommit=True) as conn:
        # A private helper of an older release, and an older body of a current one.
        conn.execute("create function jobqueue.leftover() returns int language sql as 'select 1'")
        conn.execute(
            "create or replace function jobqueue.queue_name() returns text"
            " language sql as $$ select 'x' $$"
        )

    install(new_db)

    with psycopg.connect(new_db, autocommit=True) as conn:
        assert value(conn, "select to_regprocedure('jobqueue.leftover()') is null")
        assert value(conn, "select jobqueue.queue_name()") == "job_queue"


def test_an_install_refuses_to_downgrade_and_changes_nothing(new_db):
    with psycopg.connect(new_db, autocommit=True) as conn:
        conn.execute("insert into jobqueue.schema_versions (version) values ('99.0.0')")
    before = snapshot(new_db)

    with pytest.raises(subprocess.CalledProcessError) as info:
        install(new_db)

    assert "99.0.0" in info.value.stderr and "never downgraded" in info.value.stderr
    assert snapshot(new_db) == before


def test_a_users_view_over_the_api_survives_an_install(new_db):
    with psycopg.connect(new_db, autocommit=True) as conn:
        job_id = submit(conn)
        conn.execute(
            "create view public.my_job as select j.status from get_job(%s) as j".replace(
                "%s", f"'{job_id}'::uuid"
            )
        )

    install(new_db)

    with psycopg.connect(new_db, autocommit=True) as conn:
        assert value(conn, "select status from my_job") == "pending"
