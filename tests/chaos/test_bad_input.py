"""Scenario 6: fuzzed bad input to every public function.

Hypothesis draws arguments as text that PostgreSQL casts to the parameter's
type, as a client sending strings would: arbitrary JSON and strings for
job_type and job_parameters, megabytes of payload, nesting thousands deep,
any unicode, invalid uuids and integers, NULLs, arrays with NULLs, as the
owner and as the application role with arbitrary request claims. Only the
documented SQLSTATEs may come back:

* 22023, P0002, 55000, 42501: the package's answers, a 22023 naming the
  argument or field it refuses;
* 22P02, 22P05, 22003, 54001: PostgreSQL's own refusals of a value that is
  not of the parameter's type (bad syntax, an unsupported unicode escape, a
  number out of range, nesting too deep for the parser), raised before or
  while the value is read.

A refused call writes nothing; an accepted submit wrote exactly its jobs and
their messages, with parameters its type accepts (checked against an
independent reading of sample_task's rules).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harness import USER_ID, Figures, invariant_violations, transition_problems

DOCUMENTED = {"22023", "P0002", "55000", "42501"}
TYPE_INPUT = {"22P02", "22P05", "22003", "54001"}
# A 22023 names what it refuses: one of the arguments, or a field of them.
FIELDS = (
    "job_type",
    "job_parameters",
    "user_id",
    "job_id",
    "job_ids",
    "msg_id",
    "msg_ids",
    "batch_size",
    "visibility_timeout_seconds",
    "seconds",
    "error_message",
    "data_references",
    "error_types",
    "error_contexts",
)
KNOWN_TYPES = ("sample_task", "chaos_task")

# -- strategies -----------------------------------------------------------------------

# Any character a client can send: UTF-8 has no lone surrogates, and psycopg
# refuses NUL in text itself (a JSON \u0000 escape reaches the server below).
no_nul = st.characters(codec="utf-8", exclude_characters="\x00")
text = st.text(alphabet=no_nul, max_size=60)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)
sample_keys = st.sampled_from(["message", "duration_ms", "fail", "other", ""])
sample_like = st.dictionaries(
    sample_keys,
    st.integers(-5, 70000)
    | st.text(max_size=1100)
    | st.booleans()
    | st.none()
    | st.floats(-1, 70000),
    max_size=3,
)


def deep(depth: int, kind: str) -> str:
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a": ' * depth + "1" + "}" * depth


json_text = st.one_of(
    json_values.map(json.dumps),
    sample_like.map(json.dumps),
    st.builds(deep, st.integers(100, 300_000), st.sampled_from(["array", "object"])),
    st.integers(60_000, 2_000_000).map(lambda n: json.dumps({"message": "x" * n})),
    st.just('{"message": "\\u0000"}'),
    st.just('{"a": "\\ud800"}'),
    text,
    st.none(),
)
uuid_text = st.one_of(
    st.uuids().map(str),
    st.just(str(USER_ID)),
    text,
    st.none(),
    st.just("00000000-0000-0000-0000-00000000000g"),
)
int_text = st.one_of(
    st.integers(-(2**40), 2**40).map(str),
    st.integers(-3, 20).map(str),
    text,
    st.none(),
)
bigint_text = st.one_of(st.integers(-(2**70), 2**70).map(str), text, st.none())
job_type = st.one_of(st.sampled_from(KNOWN_TYPES), text, st.none(), st.just("x" * 10_000))


def arrays(elements: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.lists(elements, max_size=4))


# -- the oracle of sample_task's parameters ----------------------------------------------


def sample_task_accepts(params: Any) -> bool:
    """sample_task's rules, read independently of the SQL: a JSON object (NULL
    is {}) with optional message (string of at most 1000 characters),
    duration_ms (an integer 0..60000) and fail (a boolean)."""
    if params is None:
        return True
    if not isinstance(params, dict):
        return False
    for key, value in params.items():
        if key == "message":
            ok = isinstance(value, str) and len(value) <= 1000
        elif key == "duration_ms":
            ok = (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and float(value).is_integer()
                and 0 <= value <= 60000
            )
        elif key == "fail":
            ok = isinstance(value, bool)
        else:
            ok = False
        if not ok:
            return False
    return True


# -- calling ------------------------------------------------------------------------------


class Caller:
    """Makes one call at a time and checks what it answered and wrote."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.states: Counter[str] = Counter()
        self.calls = 0
        self.accepted_jobs = 0
        self.unclear: list[str] = []

    def fingerprint(self) -> tuple[Any, ...]:
        row = self.conn.execute(
            """
            select (select count(*) from jobs),
                (select max(updated_at) from jobs),
                (select count(*) from jobqueue.queue_messages),
                (select max(msg_id) from jobqueue.queue_messages),
                (select max(vt) from jobqueue.queue_messages),
                (select count(*) from pgmq.a_job_queue),
                (select count(*) from chaos.transitions)
            """
        ).fetchone()
        assert row is not None
        return tuple(row)

    def call(
        self,
        query: str,
        params: tuple[Any, ...],
        *,
        role: str | None = None,
        claims: str | None = None,
    ) -> tuple[str | None, list[Any]]:
        """Runs the call (as `role` with `claims` when given); its SQLSTATE
        (None: accepted) and rows. A refused call must change nothing."""
        before = self.fingerprint()
        self.calls += 1
        state, rows = None, []
        try:
            with self.conn.transaction():
                if role:
                    self.conn.execute(
                        psycopg.sql.SQL("set local role {}").format(psycopg.sql.Identifier(role))
                    )
                if claims is not None:
                    self.conn.execute(
                        "select set_config('request.jwt.claims', %s, true)", (claims,)
                    )
                cur = self.conn.execute(query, params)
                rows = cur.fetchall() if cur.description else []
        except psycopg.Error as exc:
            state = exc.sqlstate
            message = exc.diag.message_primary or ""
            if state == "22023" and not any(f in message for f in FIELDS):
                self.unclear.append(message)
        self.states[state or "accepted"] += 1
        if state is not None:
            assert state in DOCUMENTED | TYPE_INPUT, f"{query} {params!r:.300}: SQLSTATE {state}"
            assert self.fingerprint() == before, f"a refused call wrote: {query} {params!r:.300}"
        return state, rows


@pytest.fixture
def caller(chaos_db: str):
    c = Caller(chaos_db)
    with c.conn.cursor() as cur:
        # A few jobs in each state, for the calls that name a job.
        cur.execute(
            "select submit_job('chaos_task', '{}', %s) from generate_series(1, 6)", (USER_ID,)
        )
        cur.execute("select dequeue_jobs(3, 3600)")
        rows = cur.execute("select id, status from jobs").fetchall()
    c.job_ids = [str(r[0]) for r in rows]  # type: ignore[attr-defined]
    yield c
    c.conn.close()


def _settings(scale) -> Callable[[Any], Any]:
    return settings(
        max_examples=scale.fuzz_examples,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
        print_blob=True,
    )


def test_fuzzed_submissions_get_documented_errors_and_write_nothing(caller, scale, report):
    began = time.monotonic()

    @_settings(scale)
    @given(jt=job_type, params=json_text, user=uuid_text, many=st.booleans())
    def submit(jt: str | None, params: str | None, user: str | None, many: bool) -> None:
        before = caller.fingerprint()
        if many:
            state, rows = caller.call(
                "select submit_jobs(%s::text, array[%s::jsonb, '{}'::jsonb], %s::uuid)",
                (jt, params, user),
            )
        else:
            state, rows = caller.call(
                "select submit_job(%s::text, %s::jsonb, %s::uuid)", (jt, params, user)
            )
        if state is not None:
            return
        caller.accepted_jobs += len(rows)
        assert jt in KNOWN_TYPES, f"job_type {jt!r} was accepted"
        assert user is not None
        if jt == "sample_task":
            try:
                parsed = json.loads(params) if params is not None else None
            except RecursionError:  # nested deeper than Python parses: no sample_task's
                parsed = "too deep"
            assert sample_task_accepts(parsed), f"sample_task accepted {params!r:.200}"
        else:
            kind, size = caller.conn.execute(
                "select jsonb_typeof(%s::jsonb), octet_length(coalesce(%s::jsonb, '{}')::text)",
                (params, params),
            ).fetchone()
            assert kind in ("object", None) and size <= 65536, (kind, size)
        after = caller.fingerprint()
        assert after[0] == before[0] + len(rows) and after[2] == before[2] + len(rows)

    @_settings(scale)
    @given(jt=st.sampled_from(["sample_task"]), params=sample_like)
    def sample_task_rules(jt: str, params: dict) -> None:
        state, _ = caller.call(
            "select validate_job_parameters(%s, %s::jsonb)", (jt, json.dumps(params))
        )
        if "\\u0000" in json.dumps(params):
            assert state == "22P05", (params, state)  # jsonb cannot hold NUL
        else:
            assert (state is None) == sample_task_accepts(params), (params, state)

    submit()
    sample_task_rules()
    _report(caller, "6a. bad input: submit", began, report)


def test_fuzzed_calls_on_jobs_get_documented_errors_and_write_nothing(caller, scale, report):
    began = time.monotonic()
    ids = st.one_of(uuid_text, st.sampled_from(caller.job_ids))

    calls = st.one_of(
        st.tuples(st.just("select get_job(%s::uuid)"), st.tuples(ids)),
        st.tuples(st.just("select cancel_job(%s::uuid)"), st.tuples(ids)),
        st.tuples(
            st.just("select complete_job(%s::uuid, %s::jsonb, %s::bigint)"),
            st.tuples(ids, json_text, bigint_text),
        ),
        st.tuples(
            st.just("select fail_job(%s::uuid, %s::text, %s::text, %s::jsonb, %s::bigint)"),
            st.tuples(
                ids, st.one_of(text, st.none()), st.one_of(text, st.none()), json_text, bigint_text
            ),
        ),
        st.tuples(
            st.just("select extend_job_lease(%s::uuid, %s::bigint, %s::integer)"),
            st.tuples(ids, bigint_text, int_text),
        ),
        st.tuples(
            st.just("select * from dequeue_jobs(%s::integer, %s::integer)"),
            st.tuples(int_text, int_text),
        ),
        st.tuples(
            st.just(
                "select * from complete_jobs(%s::text[]::uuid[], %s::text[]::jsonb[],"
                " %s::text[]::bigint[])"
            ),
            st.tuples(arrays(ids), arrays(json_text), arrays(bigint_text)),
        ),
        st.tuples(
            st.just(
                "select * from fail_jobs(%s::text[]::uuid[], %s::text[], %s::text[],"
                " %s::text[]::jsonb[], %s::text[]::bigint[])"
            ),
            st.tuples(
                arrays(ids), arrays(text), arrays(text), arrays(json_text), arrays(bigint_text)
            ),
        ),
    )

    @_settings(scale)
    @given(call=calls)
    def on_jobs(call: tuple[str, tuple[Any, ...]]) -> None:
        query, params = call
        caller.call(query, params)

    on_jobs()
    assert transition_problems(caller.conn) == []
    _report(caller, "6b. bad input: calls on jobs", began, report)


def test_fuzzed_calls_as_the_application_role_get_documented_errors(caller, scale, report):
    began = time.monotonic()
    claims = st.one_of(
        st.none(),
        text,
        st.builds(lambda sub: json.dumps({"sub": sub}), uuid_text),
        json_values.map(json.dumps),
    )
    queries = st.sampled_from(
        [
            ("select submit_job('sample_task', '{}', %s::uuid)", "uuid"),
            ("select submit_job('sample_task', '{}')", None),
            ("select get_job(%s::uuid)", "id"),
            ("select cancel_job(%s::uuid)", "id"),
            ("select * from dequeue_jobs(1, 30)", None),
            ("select recover_orphans()", None),
        ]
    )

    @_settings(scale)
    @given(query=queries, claim=claims, user=uuid_text, job=st.sampled_from(caller.job_ids))
    def as_app(
        query: tuple[str, str | None], claim: str | None, user: str | None, job: str
    ) -> None:
        sql, arg = query
        params = (user,) if arg == "uuid" else (job,) if arg == "id" else ()
        caller.call(sql, params, role="jobqueue_app", claims=claim)

    as_app()
    assert caller.states["42501"] > 0
    _report(caller, "6c. bad input: application role", began, report)


def _report(caller: Caller, name: str, began: float, report: Callable[[Figures], None]) -> None:
    row = caller.conn.execute(
        """
        select count(*) filter (where status = 'completed'),
            count(*) filter (where status = 'failed'),
            (select count(*) from jobqueue.queue_messages as m
             where not exists (select from jobs as j where j.id::text = m.message ->> 'job_id'))
        from jobs
        """
    ).fetchone()
    assert row is not None
    broken = invariant_violations(caller.conn)
    refused = sum(n for s, n in caller.states.items() if s != "accepted")
    fig = Figures(
        name,
        submitted=caller.accepted_jobs,
        faults=refused,
        fault_kind=f"{caller.calls} fuzzed calls, {refused} refused",
        completed=row[0],
        failed=row[1],
        seconds=time.monotonic() - began,
        notes={"sqlstates": dict(caller.states), "unclear_22023": caller.unclear[:5]},
    )
    # Messages of no job, and jobs out of step with their messages.
    fig.messages_left = row[2]
    fig.problems = broken
    report(fig)
    assert broken == [] and row[2] == 0
    assert caller.unclear == [], f"22023 without the field's name: {caller.unclear[:5]}"
