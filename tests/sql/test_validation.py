"""validate_job_parameters() and the refusals of submit_job(): 22023 naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb
from support.jobs import USER, add_job_type, counts, raises, submit, value

# NULL parameters mean {}; every other accepted value is an object.
SAMPLE_VALID = [
    None,
    {},
    {"message": ""},
    {"message": "x" * 1000},
    {"message": "é" * 1000},  # characters, not bytes
    {"duration_ms": 0},
    {"duration_ms": 60000},
    {"duration_ms": 10.0},  # a whole number is an integer in JSON Schema
    {"fail": True},
    {"fail": False},
    {"message": "hello", "duration_ms": 250, "fail": False},
]

# (parameters, a word the message must name)
SAMPLE_INVALID = [
    ({"message": "x" * 1001}, "message"),
    ({"message": 42}, "message"),
    ({"message": None}, "message"),
    ({"message": ["a"]}, "message"),
    ({"duration_ms": -1}, "duration_ms"),
    ({"duration_ms": 60001}, "duration_ms"),
    ({"duration_ms": 1.5}, "duration_ms"),
    ({"duration_ms": "10"}, "duration_ms"),
    ({"duration_ms": True}, "duration_ms"),
    ({"fail": "true"}, "fail"),
    ({"fail": 1}, "fail"),
    ({"fail": None}, "fail"),
    ({"colour": "red"}, "colour"),
    ({"message": "ok", "Message": "case matters"}, "Message"),
    ([], "job_parameters"),
    ([{"message": "hi"}], "job_parameters"),
    ("a string", "job_parameters"),
    (7, "job_parameters"),
    (True, "job_parameters"),
]


def validate(conn, job_type: str | None, params: Any) -> None:
    conn.execute(
        "select validate_job_parameters(%s, %s)",
        (job_type, None if params is None else Jsonb(params)),
    )


@pytest.mark.parametrize("params", SAMPLE_VALID, ids=repr)
def test_sample_task_accepts(tx, params):
    validate(tx, "sample_task", params)
    submit(tx, "sample_task", params)

    assert counts(tx) == (1, 1)


@pytest.mark.parametrize(("params", "field"), SAMPLE_INVALID, ids=repr)
def test_sample_task_refuses_and_names_the_field(tx, params, field):
    with raises(tx, "22023", field):
        validate(tx, "sample_task", params)
    with raises(tx, "22023", field):
        submit(tx, "sample_task", params)

    assert counts(tx) == (0, 0)


def test_json_null_parameters_are_not_an_object(tx):
    with raises(tx, "22023", "job_parameters", "object"):
        tx.execute("select validate_job_parameters('sample_task', 'null'::jsonb)")
    with raises(tx, "22023", "job_parameters"):
        tx.execute("select submit_job('sample_task', 'null'::jsonb, %s)", (USER,))

    assert counts(tx) == (0, 0)


def test_an_unknown_key_is_named_with_the_allowed_ones_in_the_hint(tx):
    with raises(tx, "22023", '"colour"') as info:
        validate(tx, "sample_task", {"colour": "red"})

    assert info.value.diag.message_hint == "Allowed keys: duration_ms, fail, message."


def test_an_unknown_job_type_is_refused(tx):
    with raises(tx, "22023", "job_type", "no_such_type"):
        validate(tx, "no_such_type", {})
    with raises(tx, "22023", "job_type"):
        submit(tx, "no_such_type", {})

    assert counts(tx) == (0, 0)


def test_a_null_job_type_is_refused(tx):
    with raises(tx, "22023", "job_type"):
        validate(tx, None, {})
    with raises(tx, "22023", "job_type"):
        submit(tx, None, {})

    assert counts(tx) == (0, 0)


def test_job_types_are_case_sensitive(tx):
    with raises(tx, "22023", "job_type"):
        submit(tx, "Sample_Task", {})


def test_validate_job_parameters_writes_nothing(tx):
    validate(tx, "sample_task", {"message": "m"})

    assert counts(tx) == (0, 0)


def test_a_type_registered_with_one_insert_accepts_any_json_object(tx):
    tx.execute("insert into job_types (name, max_retries) values ('x', 2)")
    anything = {
        "a": 1,
        "b": [1, "two", None, {"c": False}],
        "nested": {"deeper": {"deepest": 1.25}},
        "unicode": "日本語 ✓",
    }

    for params in (None, {}, anything, {"message": 5, "duration_ms": -9}):
        validate(tx, "x", params)
        submit(tx, "x", params)

    assert counts(tx) == (4, 4)


@pytest.mark.parametrize("params", [[], "text", 1, False], ids=repr)
def test_a_type_without_schema_still_wants_an_object(tx, params):
    add_job_type(tx, "x")

    with raises(tx, "22023", "job_parameters"):
        submit(tx, "x", params)

    assert counts(tx) == (0, 0)


def test_parameters_up_to_64_kib_are_accepted(tx):
    add_job_type(tx, "x")

    submit(tx, "x", {"blob": "x" * 60_000})

    assert counts(tx) == (1, 1)


def test_parameters_over_64_kib_are_refused(tx):
    add_job_type(tx, "x")
    big = {"blob": "x" * 70_000}

    with raises(tx, "22023", "job_parameters", "too large"):
        validate(tx, "x", big)
    with raises(tx, "22023", "job_parameters", "too large"):
        submit(tx, "x", big)
    with raises(tx, "22023", "job_parameters"):
        tx.execute(
            "insert into jobs (job_type, user_id, job_parameters) values ('x', %s, %s)",
            (USER, Jsonb(big)),
        )

    assert counts(tx) == (0, 0)


def test_the_size_cap_holds_for_compressible_values_read_from_a_table(tx):
    # A value read from a table is stored compressed; the cap is on its real size.
    add_job_type(tx, "x")
    tx.execute("create temp table big (p jsonb) on commit drop")
    tx.execute("insert into big select jsonb_build_object('blob', repeat('x', 200000))")

    with raises(tx, "22023", "job_parameters", "too large"):
        tx.execute(
            "insert into jobs (job_type, user_id, job_parameters) select 'x', %s, p from big",
            (USER,),
        )

    assert counts(tx) == (0, 0)


SCHEMA = {
    "type": "object",
    "required": ["url"],
    "additionalProperties": {"type": "integer"},
    "properties": {
        "url": {"type": "string", "minLength": 8},
        "mode": {"enum": ["fast", "slow"]},
        "sizes": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {"type": "integer", "minimum": 1},
        },
        "ratio": {"type": ["number", "null"], "maximum": 1},
    },
}


@pytest.mark.parametrize(
    "params",
    [
        {"url": "https://x"},
        {"url": "https://x", "mode": "slow", "sizes": [1, 2, 3], "ratio": None, "extra": 3},
        {"url": "https://x", "ratio": 0.5},
    ],
    ids=repr,
)
def test_a_type_schema_accepts(tx, params):
    add_job_type(tx, "fetch", parameters_schema=SCHEMA)

    submit(tx, "fetch", params)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "job_parameters.url"),
        ({"url": "short"}, "job_parameters.url"),
        ({"url": "https://x", "mode": "medium"}, "job_parameters.mode"),
        ({"url": "https://x", "sizes": []}, "job_parameters.sizes"),
        ({"url": "https://x", "sizes": [1, 2, 3, 4]}, "job_parameters.sizes"),
        ({"url": "https://x", "sizes": [1, 0]}, "job_parameters.sizes[1]"),
        ({"url": "https://x", "ratio": 2}, "job_parameters.ratio"),
        ({"url": "https://x", "ratio": "1"}, "job_parameters.ratio"),
        ({"url": "https://x", "extra": "not an integer"}, "job_parameters.extra"),
    ],
    ids=repr,
)
def test_a_type_schema_refuses_with_the_path_of_the_field(tx, params, field):
    add_job_type(tx, "fetch", parameters_schema=SCHEMA)

    with raises(tx, "22023", field):
        submit(tx, "fetch", params)

    assert counts(tx) == (0, 0)


def sample_task_accepts(params: Any) -> bool:
    """The documented rules of sample_task's parameters, as an oracle."""
    if params is None:
        return True
    if not isinstance(params, dict) or not set(params) <= {"message", "duration_ms", "fail"}:
        return False
    if "message" in params and not (
        isinstance(params["message"], str) and len(params["message"]) <= 1000
    ):
        return False
    if "duration_ms" in params:
        d = params["duration_ms"]
        if (
            isinstance(d, bool)
            or not isinstance(d, (int, float))
            or d != int(d)
            or not 0 <= d <= 60000
        ):
            return False
    return "fail" not in params or isinstance(params["fail"], bool)


# PostgreSQL's jsonb holds no \u0000: its input refuses it before any function runs.
text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=5)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(-1e6, 1e6, allow_nan=False)
    | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=5,
)
sample_params = (
    st.none()
    | json_values
    | st.fixed_dictionaries(
        {},
        optional={
            "message": text
            | st.text(min_size=999, max_size=1002).map(lambda s: s.replace("\x00", "."))
            | json_values,
            "duration_ms": st.integers(-5, 60005)
            | st.sampled_from([59999.5, 0.0, 60000.0])
            | json_values,
            "fail": st.booleans() | json_values,
            "extra": json_values,
        },
    )
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(params=sample_params)
def test_sample_task_validation_matches_its_documented_rules(tx, params):
    try:
        with tx.transaction():
            validate(tx, "sample_task", params)
        accepted = True
    except Exception as error:
        assert getattr(error, "sqlstate", None) == "22023", error
        accepted = False

    assert accepted == sample_task_accepts(params), params
    assert value(tx, "select count(*) from jobs") == 0
