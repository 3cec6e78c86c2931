"""plpgsql_check over every PL/pgSQL function of the package (sqlfluff cannot look inside bodies).

Error-level findings fail the test. Warnings fail it too unless reviewed below
and found harmless, so that a new warning is looked at before it is accepted.
"""

from __future__ import annotations

import psycopg
import pytest
from support.jobs import rows

# (function, message) -> why the warning is not a defect.
REVIEWED = {
    (
        "jobqueue.raise_no_such_job(uuid)",
        "routine is marked as VOLATILE, should be IMMUTABLE",
    ): "it only raises: IMMUTABLE would let the planner fold a call with constant"
    " arguments and raise while planning, even in a branch never taken",
    (
        "jobqueue.raise_lease_lost(uuid, bigint, text)",
        "routine is marked as VOLATILE, should be IMMUTABLE",
    ): "as raise_no_such_job",
}

# Every PL/pgSQL function of the package, with the relation of each trigger
# it serves (trigger functions are checked once per relation, with the
# trigger's transition tables).
TARGETS = """
select pg_catalog.format(
        '%%s.%%s(%%s)',
        p.pronamespace::regnamespace, p.proname, pg_catalog.oidvectortypes(p.proargtypes)
    ) as function,
    p.oid as funcoid,
    p.prorettype = 'trigger'::regtype as is_trigger,
    t.tgrelid::regclass::text as relation,
    coalesce(t.tgrelid, 0) as relid,
    t.tgnewtable as newtable,
    t.tgoldtable as oldtable
from pg_catalog.pg_proc as p
inner join pg_catalog.pg_language as l on p.prolang = l.oid
left join pg_catalog.pg_trigger as t on t.tgfoid = p.oid and not t.tgisinternal
where l.lanname = 'plpgsql'
    and p.pronamespace in ('public'::regnamespace, 'jobqueue'::regnamespace)
order by 1, 4
"""

CHECK = """
select level, sqlstate, message, lineno, statement, query, detail, hint
from plpgsql_check.plpgsql_check_function_tb(
    %(funcoid)s, %(relid)s,
    fatal_errors => false,
    other_warnings => true,
    extra_warnings => true,
    performance_warnings => true,
    security_warnings => true,
    compatibility_warnings => true,
    newtable => %(newtable)s,
    oldtable => %(oldtable)s
)
"""


def check_all(db: psycopg.Connection) -> tuple[list[dict], list[dict]]:
    db.execute("create schema if not exists plpgsql_check")
    db.execute("create extension if not exists plpgsql_check schema plpgsql_check")
    targets = rows(db, TARGETS)
    findings = []
    for target in targets:
        for finding in rows(db, CHECK, target):
            findings.append(
                {"function": target["function"], "relation": target["relation"], **finding}
            )
    return targets, findings


@pytest.fixture
def checked(db: psycopg.Connection) -> tuple[list[dict], list[dict]]:
    """(targets, findings) of plpgsql_check over a clone of the installed package."""
    return check_all(db)


def describe(finding: dict) -> str:
    where = finding["function"] + (f" on {finding['relation']}" if finding["relation"] else "")
    return (
        f"{where}, line {finding['lineno']}: {finding['level']} {finding['sqlstate']}"
        f" {finding['message']} {finding['query'] or ''}"
    )


def test_every_plpgsql_function_is_checked(checked):
    targets, _ = checked
    functions = {t["function"] for t in targets}

    # Trigger functions can only be checked against a relation.
    assert [t["function"] for t in targets if t["is_trigger"] and t["relation"] is None] == []
    assert {
        "public.dequeue_jobs(integer, integer)",
        "public.recover_orphans()",
        "jobqueue.tg_jobs__transition()",
        "jobqueue.tg_jobs__enqueue()",
        "jobqueue.tg_queue__notify()",
        "jobqueue.check_json_schema(jsonb, jsonb, text)",
    } <= functions
    assert len(functions) >= 15


def test_plpgsql_check_finds_no_error(checked):
    _, findings = checked

    assert [describe(f) for f in findings if f["level"] == "error"] == []


def test_plpgsql_check_finds_no_unreviewed_warning(checked):
    _, findings = checked

    unreviewed = [
        describe(f)
        for f in findings
        if f["level"] != "error" and (f["function"], f["message"]) not in REVIEWED
    ]
    assert unreviewed == []


def test_the_check_catches_a_typo_in_a_body(db):
    # The harness itself: a body that names a missing column must be reported.
    db.execute(
        "create function jobqueue.broken() returns integer language plpgsql as"
        " $$ begin return (select j.no_such_column from public.jobs as j limit 1); end; $$"
    )

    _, findings = check_all(db)

    assert [
        (f["function"], f["level"], f["sqlstate"]) for f in findings if f["level"] == "error"
    ] == [("jobqueue.broken()", "error", "42703")]
