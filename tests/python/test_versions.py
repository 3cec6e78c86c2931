"""Which database versions a runner works with: the same major, and the same
or a later minor."""

from __future__ import annotations

import pytest
from jobqueue import versions


@pytest.mark.parametrize(
    ("runner", "database"),
    [
        ("0.2.0", "0.2.0"),
        ("0.2.1", "0.2.0"),
        ("0.2.0", "0.2.7"),
        ("0.2.3", "0.3.0"),
        ("1.4.0", "1.9.2"),
        ("0.2.0.dev1", "0.2.0"),
        ("0.2.0+local", "0.2.0"),
    ],
)
def test_a_database_of_the_same_major_and_a_minor_at_least_the_runners_fits(runner, database):
    assert versions.refusal(runner, database) is None


@pytest.mark.parametrize(
    ("runner", "database", "advice"),
    [
        ("0.2.0", "0.1.0", "upgrade the database first (jobqueue migrate)"),
        ("1.0.0", "0.9.0", "upgrade the database first (jobqueue migrate)"),
        ("0.2.0", "1.0.0", "upgrade the runner to a 1.x release"),
        ("0.2.0", None, "upgrade the database first (jobqueue migrate)"),
    ],
)
def test_an_older_minor_another_major_or_no_version_is_refused(runner, database, advice):
    refusal = versions.refusal(runner, database)

    assert refusal is not None and refusal.endswith(advice)
    assert f"this runner is {runner}" in refusal
    assert "\n" not in refusal


def test_the_refusal_names_both_versions():
    assert versions.refusal("0.2.0", "0.1.0") == (
        "database has jobqueue 0.1.0, this runner is 0.2.0: "
        "upgrade the database first (jobqueue migrate)"
    )


def test_a_version_without_major_and_minor_is_refused():
    refusal = versions.refusal("unknown", "0.1.0")

    assert refusal is not None and "'unknown' is not a MAJOR.MINOR.PATCH version" in refusal
