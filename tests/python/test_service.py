"""JobQueueService: thin calls of the SQL API, SQLSTATEs mapped to exceptions."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from jobqueue import (
    InvalidParameters,
    JobNotFound,
    JobQueueService,
    JobRecord,
    LeaseLost,
    NotAllowed,
    ValidationError,
    WrongState,
    errors,
)

USER = uuid.UUID("00000000-0000-4000-8000-0000000000aa")


@pytest.fixture
def service(db):
    return JobQueueService(db)


def count_jobs(db) -> int:
    row = db.execute("select count(*) from jobs").fetchone()
    assert row is not None
    return row[0]


def test_submit_job_returns_the_id_of_a_pending_job(service):
    job_id = service.submit_job("sample_task", {"message": "hello"}, user_id=USER)

    record = service.get_job(job_id)
    assert isinstance(record, JobRecord)
    assert (record.id, record.status, record.user_id) == (job_id, "pending", USER)
    assert record.job_parameters == {"message": "hello"}
    assert record.retry_count == 0 and record.completed_at is None


def test_submit_jobs_returns_ids_in_order(service):
    ids = service.submit_jobs("sample_task", [{"message": str(i)} for i in range(5)], user_id=USER)

    assert [service.get_job(i).job_parameters for i in ids] == [
        {"message": str(i)} for i in range(5)
    ]


def test_submit_jobs_writes_nothing_when_one_element_is_invalid(service, db):
    with pytest.raises(InvalidParameters, match="duration_ms"):
        service.submit_jobs("sample_task", [{}, {"duration_ms": -1}], user_id=USER)

    assert count_jobs(db) == 0


def test_invalid_parameters_raise_a_22023_error_naming_the_field(service, db):
    with pytest.raises(ValidationError) as caught:
        service.submit_job("sample_task", {"colour": "red"}, user_id=USER)

    error = caught.value
    assert isinstance(error, InvalidParameters)
    assert error.sqlstate == "22023"
    assert "colour" in error.message
    assert error.hint and "message" in error.hint
    assert "[22023]" in error.describe()
    assert count_jobs(db) == 0


def test_an_unknown_job_type_is_invalid(service):
    with pytest.raises(InvalidParameters, match="job_type"):
        service.submit_job("no_such_type", {}, user_id=USER)


def test_validate_job_parameters_accepts_good_and_refuses_bad_parameters(service, db):
    assert service.validate_job_parameters("sample_task", {"duration_ms": 5}) is None
    assert service.validate_job_parameters("sample_task", None) is None
    with pytest.raises(InvalidParameters, match="duration_ms"):
        service.validate_job_parameters("sample_task", {"duration_ms": "soon"})
    assert count_jobs(db) == 0


def test_get_job_of_an_unknown_id_raises_job_not_found(service):
    with pytest.raises(JobNotFound) as caught:
        service.get_job(uuid.uuid4())
    assert caught.value.sqlstate == "P0002"


def test_cancel_job_fails_a_pending_or_running_job_and_refuses_finished_ones(service, db):
    taken = service.submit_job("sample_task", None, user_id=USER)
    db.execute("select dequeue_jobs(1)")  # `taken` is processing now
    pending = service.submit_job("sample_task", None, user_id=USER)

    assert service.cancel_job(taken) is True
    assert service.cancel_job(pending) is True
    for job_id in (taken, pending):
        record = service.get_job(job_id)
        assert (record.status, record.error_type) == ("failed", "Cancelled")
    assert service.cancel_job(pending) is False
    with pytest.raises(JobNotFound):
        service.cancel_job(uuid.uuid4())


def test_a_user_id_is_required_without_an_acting_user(service):
    with pytest.raises(InvalidParameters, match="user_id"):
        service.submit_job("sample_task", {})


def test_acting_for_a_user_takes_the_user_id_from_the_request_claims(service, db):
    as_user = service.acting_for(USER)

    job_id = as_user.submit_job("sample_task", {"message": "mine"})
    ids = as_user.submit_jobs("sample_task", [{}, {}])

    assert service.get_job(job_id).user_id == USER
    assert {service.get_job(i).user_id for i in ids} == {USER}
    # The claims were set for that transaction only.
    assert db.execute("select current_setting('request.jwt.claims', true)").fetchone() in (
        (None,),
        ("",),
    )


def test_calls_join_the_callers_transaction(new_db):
    with psycopg.connect(new_db) as conn:  # not autocommit: the caller's transaction
        service = JobQueueService(conn)
        with pytest.raises(InvalidParameters):
            service.submit_job("sample_task", {"bad": 1}, user_id=USER)
        # A refused first call leaves no aborted transaction behind.
        job_id = service.submit_job("sample_task", {}, user_id=USER)
        with pytest.raises(InvalidParameters):
            service.submit_job("sample_task", {"bad": 1}, user_id=USER)
        # The refused call rolled back to its savepoint: the transaction goes on.
        assert service.get_job(job_id).status == "pending"
        conn.rollback()
        with pytest.raises(JobNotFound):
            service.get_job(job_id)


def test_a_service_opened_from_a_url_closes_its_connection(new_db):
    with JobQueueService.connect(new_db) as service:
        job_id = service.submit_job("sample_task", {}, user_id=USER)
        assert service.get_job(job_id).status == "pending"
    assert service.connection.closed


# -- errors.from_psycopg on errors the database really raises -------------------


def database_error(db, query: str, *params) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as caught:
        db.execute(query, params)
    return caught.value


def test_55000_maps_to_wrong_state_and_to_lease_lost_for_calls_with_a_msg_id(service, db):
    job_id = service.submit_job("sample_task", {}, user_id=USER)
    exc = database_error(db, "select complete_job(%s, null, 12345)", job_id)

    assert type(errors.from_psycopg(exc)) is WrongState
    lost = errors.from_psycopg(exc, lease=True)
    assert isinstance(lost, LeaseLost) and isinstance(lost, WrongState)
    assert lost.sqlstate == "55000" and lost.hint


def test_42501_maps_to_not_allowed(db):
    exc = database_error(
        db, "do $$ begin raise exception 'not yours' using errcode = '42501'; end $$"
    )
    error = errors.from_psycopg(exc)
    assert isinstance(error, NotAllowed)
    assert error.message == "not yours"


def test_other_sqlstates_keep_their_code(db):
    error = errors.from_psycopg(database_error(db, "select 1/0"))
    assert type(error) is errors.DatabaseError
    assert error.sqlstate == "22012"


def test_only_lost_connections_serialization_failures_and_deadlocks_are_retryable(db, connect):
    victim = connect()
    pid = victim.info.backend_pid
    db.execute("select pg_terminate_backend(%s)", (pid,))
    with pytest.raises(psycopg.OperationalError) as lost:
        victim.execute("select 1")

    assert errors.is_retryable(lost.value)
    assert errors.is_connection_loss(lost.value)
    for code in ("40001", "40P01"):
        exc = database_error(
            db, f"do $$ begin raise exception 'x' using errcode = '{code}'; end $$"
        )
        assert errors.is_retryable(exc) and not errors.is_connection_loss(exc)
    assert not errors.is_retryable(database_error(db, "select 1/0"))
    assert not errors.is_retryable(ValueError("not a database error"))


def test_submit_options_reach_the_job_and_a_key_returns_the_holder(service):
    run_at = datetime.now(timezone.utc) + timedelta(hours=1)
    job_id = service.submit_job(
        "sample_task", {}, user_id=USER, run_at=run_at, priority=5, dedup_key="nightly"
    )

    record = service.get_job(job_id)
    assert (record.run_at, record.priority, record.dedup_key) == (run_at, 5, "nightly")
    assert service.submit_job("sample_task", {}, user_id=USER, dedup_key="nightly") == job_id
    ids = service.submit_jobs("sample_task", [{}, {}], user_id=USER, dedup_keys=["a", "a"])
    assert ids[0] == ids[1]


def test_retry_job_submits_a_cancelled_job_again(service):
    job_id = service.submit_job("sample_task", None, user_id=USER)
    service.cancel_job(job_id)

    retried = service.retry_job(job_id)

    assert service.get_job(retried).retry_of == job_id
    with pytest.raises(WrongState):
        service.retry_job(retried)
