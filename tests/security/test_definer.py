"""SECURITY DEFINER functions: a pinned search_path, and no look-alike of a
built-in ever runs inside them, whatever search_path the caller sets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from support.jobs import raises, rows, value

from .support import APP, PACKAGE_FUNCTIONS, RUNNER, SERVICE, USER_A, USER_B, acting_as, submit

# The functions that run with the owner's rights; docs/security.md says how
# each one checks its caller.
DEFINER_FUNCTIONS = {
    "submit_jobs(text,jsonb[],uuid,timestamp with time zone,integer,text[])",
    "retry_job(uuid)",
    "validate_job_parameters(text,jsonb)",
    "get_job(uuid)",
    "cancel_job(uuid)",
    "dequeue_jobs(integer,integer)",
    "complete_job(uuid,jsonb,bigint)",
    "fail_job(uuid,text,text,jsonb,bigint)",
    "complete_jobs(uuid[],jsonb[],bigint[])",
    "fail_jobs(uuid[],text[],text[],jsonb[],bigint[])",
    "extend_job_lease(uuid,bigint,integer)",
    "recover_orphans()",
    "jobqueue.installed_version()",
}


def search_paths(conn: psycopg.Connection, where: str) -> dict[str, list[str] | None]:
    """The search_path each matching package function pins, as a list of
    schema names; None for a function that pins none."""
    found = rows(
        conn,
        f"select f.signature, p.prosecdef, p.proconfig from ({PACKAGE_FUNCTIONS}) as f"
        f" inner join pg_catalog.pg_proc as p on p.oid = f.oid where {where}",
    )
    paths: dict[str, list[str] | None] = {}
    for row in found:
        setting = next(
            (c.split("=", 1)[1] for c in row["proconfig"] or [] if c.startswith("search_path=")),
            None,
        )
        paths[row["signature"]] = (
            None
            if setting is None
            else [s.strip().strip('"') for s in setting.split(",") if s.strip()]
        )
    return paths


def test_the_definer_functions_are_the_documented_ones(tx):
    assert set(search_paths(tx, "p.prosecdef")) == DEFINER_FUNCTIONS


def test_every_definer_function_pins_pg_catalog_then_pg_temp(tx):
    for signature, path in search_paths(tx, "p.prosecdef").items():
        # pg_temp last: else the caller's temporary tables would come first.
        assert path == ["pg_catalog", "pg_temp"], signature


def test_no_schema_of_a_pinned_search_path_is_writable_by_others(tx):
    schemas = {
        s
        for path in search_paths(tx, "p.proconfig is not null").values()
        for s in path or []
        if s != "pg_temp"  # the caller's own, searched last, never for functions
    }
    writers = rows(
        tx,
        "select n.nspname, r.rolname from pg_catalog.pg_namespace as n"
        " cross join pg_catalog.pg_roles as r"
        " where n.nspname = any(%s) and not r.rolsuper"
        " and pg_catalog.has_schema_privilege(r.oid, n.oid, 'CREATE')",
        (sorted(schemas),),
    )

    assert schemas == {"pg_catalog"}
    assert writers == []
    assert not value(tx, "select pg_catalog.has_schema_privilege('public', 'pg_catalog', 'CREATE')")


# Small SQL helpers that PostgreSQL inlines into their (pinned) callers, and
# the per-key schema check: a SET clause would stop the inlining and cost more
# than their work (sql/src/040_helpers.sql says why). Every name in them is
# schema-qualified.
UNPINNED_HELPERS = {
    "jobqueue.queue_name()",
    "jobqueue.caller_role()",
    "jobqueue.message_job_id(jsonb)",
    "jobqueue.job_message(uuid,text,uuid,jsonb,integer)",
    "jobqueue.supabase_roles_exist()",
    "jobqueue.check_json_schema(jsonb,jsonb,text)",
}


def test_every_function_of_the_package_pins_its_search_path(tx):
    # Helpers run inside definer functions; a pinned path of their own keeps
    # them safe if one is ever called from elsewhere.
    unpinned = {s for s, path in search_paths(tx, "true").items() if path is None}

    assert unpinned <= UNPINNED_HELPERS


def test_the_unpinned_helpers_run_with_no_caller_rights(tx):
    # None of them is a definer function, so none can lend the owner's rights
    # to a caller's search path.
    definers = {s for s, path in search_paths(tx, "p.prosecdef").items()}

    assert not definers & UNPINNED_HELPERS


def test_the_identity_helpers_pass_plpgsql_check_without_an_auth_schema(tx):
    assert value(tx, "select pg_catalog.to_regnamespace('auth')") is None
    tx.execute("create extension if not exists plpgsql_check")
    problems = rows(
        tx,
        "select p.oid::regprocedure::text as function, c.level, c.message"
        " from pg_catalog.pg_proc as p"
        " cross join lateral public.plpgsql_check_function_tb("
        "   p.oid,"
        "   case when p.prorettype = 'trigger'::regtype then"
        "     case when p.proname = 'tg_queue__notify' then 'pgmq.q_job_queue'::regclass"
        "     when starts_with(p.proname, 'tg_job_types') then 'public.job_types'::regclass"
        "     else 'public.jobs'::regclass end"
        "   else 0 end,"
        "   newtable => case when p.proname = 'tg_jobs__enqueue' then 'new_jobs' end,"
        "   fatal_errors => false, security_warnings => true) as c"
        " where p.prolang = (select l.oid from pg_catalog.pg_language as l"
        "                    where l.lanname = 'plpgsql')"
        "   and p.pronamespace in ('jobqueue'::regnamespace, 'public'::regnamespace)"
        "   and c.level in ('error', 'warning')",
    )

    assert problems == []


# -- look-alikes --------------------------------------------------------------------

# Built-ins the package's functions use, and what an attacker would put
# before pg_catalog on their search_path in their place. Each look-alike
# records its call in attacker.calls, then does what the real one does, so
# that a hijack would go unnoticed but for the record. pg_has_role lies.
LOOKALIKE_FUNCTIONS = [
    ("now()", "timestamptz", "pg_catalog.now()"),
    ("clock_timestamp()", "timestamptz", "pg_catalog.clock_timestamp()"),
    ("gen_random_uuid()", "uuid", "pg_catalog.gen_random_uuid()"),
    ("pg_notify(a text, b text)", "void", "pg_catalog.pg_notify(a, b)"),
    ("current_setting(a text)", "text", "pg_catalog.current_setting(a)"),
    ("current_setting(a text, b boolean)", "text", "pg_catalog.current_setting(a, b)"),
    ("pg_has_role(a text, b oid, c text)", "boolean", "true"),
    ("pg_has_role(a text, b text, c text)", "boolean", "true"),
    ("to_regrole(a text)", "regrole", "pg_catalog.to_regrole(a)"),
    ("format(a text, b text)", "text", "pg_catalog.format(a, b)"),
    ("jsonb_typeof(a jsonb)", "text", "pg_catalog.jsonb_typeof(a)"),
    ("octet_length(a text)", "integer", "pg_catalog.octet_length(a)"),
    ("length(a text)", "integer", "pg_catalog.length(a)"),
    (
        "jsonb_build_object(a text, b uuid, c text, d text, e text, f uuid, g text, h jsonb)",
        "jsonb",
        "pg_catalog.jsonb_build_object(a, b, c, d, e, f, g, h)",
    ),
    ("make_interval(secs integer)", "interval", "pg_catalog.make_interval(secs => secs)"),
]
# (operator, left type, right type, result type)
LOOKALIKE_OPERATORS = [
    ("->>", "jsonb", "text", "text"),
    ("=", "uuid", "uuid", "boolean"),
    ("=", "text", "text", "boolean"),
    ("<>", "text", "text", "boolean"),
    ("~*", "text", "text", "boolean"),
    ("!~*", "text", "text", "boolean"),
    ("||", "text", "text", "text"),
]
# Relations the package names, as temporary views of the caller's.
LOOKALIKE_RELATIONS = ["jobs", "job_types", "settings", "queue_messages", "q_job_queue", "meta"]


def plant_lookalikes(conn: psycopg.Connection) -> None:
    """Look-alikes in schema attacker and in public, and temporary views."""
    conn.execute(
        """
        create schema attacker;
        create table attacker.calls (name text not null);
        grant usage on schema attacker to public;
        grant insert, select on attacker.calls to public;
        create function attacker.note(p_name text) returns boolean
        language plpgsql volatile set search_path = pg_catalog
        as $$ begin insert into attacker.calls (name) values (p_name); return true; end $$;
        """
    )
    for schema in ("attacker", "public"):
        for signature, returns, body in LOOKALIKE_FUNCTIONS:
            name = signature.split("(")[0]
            conn.execute(
                f"create function {schema}.{signature} returns {returns}"
                " language plpgsql volatile set search_path = pg_catalog as"
                f" $$ begin perform attacker.note('{schema}.{name}');"
                + (f" perform {body}; return;" if returns == "void" else f" return {body};")
                + " end $$"
            )
        for number, (op, left, right, result) in enumerate(LOOKALIKE_OPERATORS):
            function = f"{schema}.op_{number}"
            conn.execute(
                f"create function {function}(a {left}, b {right}) returns {result}"
                " language plpgsql volatile set search_path = pg_catalog as"
                f" $$ begin perform attacker.note('{schema}.{op}');"
                f" return a operator(pg_catalog.{op}) b; end $$"
            )
            conn.execute(
                f"create operator {schema}.{op} (leftarg = {left}, rightarg = {right},"
                f" function = {function})"
            )
        conn.execute(f"grant all on all functions in schema {schema} to public")
    for name in LOOKALIKE_RELATIONS:
        conn.execute(
            sql.SQL("create temporary view {} as select attacker.note({}) as noted").format(
                sql.Identifier(name), sql.Literal(f"pg_temp.{name}")
            )
        )
    conn.execute("grant select on all tables in schema pg_temp to public")


@contextmanager
def hostile_path(conn: psycopg.Connection) -> Iterator[None]:
    """The attacker's search_path for the block: their temporary views, their
    schema and public all before pg_catalog."""
    conn.execute("set local search_path = pg_temp, attacker, public, pg_catalog")
    yield
    conn.execute("set local search_path to default")


def calls(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("select name from attacker.calls")]


def test_the_lookalikes_are_what_the_callers_own_sql_would_run(tx):
    # The control: on the hostile path, plain SQL of the caller's does call them.
    plant_lookalikes(tx)

    with tx.transaction(force_rollback=True), acting_as(tx, APP, USER_A), hostile_path(tx):
        tx.execute(
            "select now(), gen_random_uuid(), '{\"a\": \"b\"}'::jsonb ->> 'a',"
            " 'x'::text = 'y'::text, jobs.noted from jobs"
        )
        assert set(calls(tx)) >= {
            "attacker.now",
            "attacker.gen_random_uuid",
            "attacker.->>",
            "attacker.=",
            "pg_temp.jobs",
        }


def run_every_call(conn: psycopg.Connection) -> None:
    """Every API function, each as a role that may call it, on the hostile path."""
    with acting_as(conn, SERVICE), hostile_path(conn):
        submit(conn, USER_A, {"duration_ms": 1})
        theirs = submit(conn, USER_B)
        conn.execute(
            "select public.submit_jobs('sample_task', array['{}'::jsonb, '{}'::jsonb], %s)",
            (USER_B,),
        )

    with acting_as(conn, APP, USER_A), hostile_path(conn):
        mine = submit(conn, None, {"message": "hi"})
        conn.execute(
            "select public.validate_job_parameters('sample_task', %s)", (Jsonb({"fail": True}),)
        )
        assert rows(conn, "select user_id from public.get_job(%s)", (mine,)) == [
            {"user_id": USER_A}
        ]
        assert value(conn, "select public.cancel_job(%s)", (mine,)) is True
        # The rules hold: the lying pg_has_role is never asked.
        with raises(conn, "42501"):
            submit(conn, USER_B)
        with raises(conn, "P0002"):
            conn.execute("select public.get_job(%s)", (theirs,))
        with raises(conn, "P0002"):
            conn.execute("select public.cancel_job(%s)", (theirs,))
        # RLS on a plain SELECT: the policy's operators were resolved at install.
        assert [r[0] for r in conn.execute("select user_id from public.jobs")] == [USER_A, USER_A]

    with acting_as(conn, RUNNER), hostile_path(conn):
        taken = rows(conn, "select * from public.dequeue_jobs(10, 30)")
        assert len(taken) == 4
        first, second, third = taken[0], taken[1], taken[2]
        conn.execute(
            "select public.extend_job_lease(%s, %s, 60)", (first["job_id"], first["msg_id"])
        )
        conn.execute("select public.complete_job(%s, null, %s)", (first["job_id"], first["msg_id"]))
        conn.execute(
            "select public.fail_job(%s, 'boom', 'E', null, %s)",
            (second["job_id"], second["msg_id"]),
        )
        conn.execute("select public.recover_orphans()")
        with raises(conn, "55000"):
            conn.execute(
                "select public.complete_job(%s, null, %s)",
                (third["job_id"], third["msg_id"] + 1000),
            )


def test_definer_functions_never_call_lookalikes_on_the_callers_search_path(tx):
    plant_lookalikes(tx)

    run_every_call(tx)

    assert calls(tx) == []
    assert value(tx, "select count(*) from public.jobs") == 5


def test_no_lookalike_runs_in_the_triggers_of_hand_written_sql(tx):
    # The owner's own INSERT and UPDATE on a hostile path still run the
    # package's triggers (validation, state machine, enqueue, notify) on
    # their pinned path.
    plant_lookalikes(tx)
    submit(tx, USER_A)

    with hostile_path(tx):
        tx.execute(
            "insert into public.jobs (job_type, user_id, job_parameters)"
            " values ('sample_task', %s, %s)",
            (USER_B, Jsonb({"message": "x"})),
        )
        tx.execute("update public.jobs set job_parameters = %s", (Jsonb({"fail": True}),))
        tx.execute("update public.jobs set status = 'failed'")
        assert calls(tx) == []

    assert value(tx, "select count(*) from public.jobs where status = 'failed'") == 2
