"""acting_for(user): the user's claims last for one call, whatever the
connection's transaction mode, and the claims in place before the call
come back after it, whether it succeeded or was refused."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from jobqueue import InvalidParameters, JobQueueService

USER = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
OTHER = uuid.UUID("00000000-0000-4000-8000-0000000000bb")


def claims(conn: psycopg.Connection) -> str | None:
    row = conn.execute("select current_setting('request.jwt.claims', true)").fetchone()
    assert row is not None
    return row[0]


def no_claims(conn: psycopg.Connection) -> bool:
    return claims(conn) in (None, "")


def test_an_acting_call_that_starts_the_callers_transaction_leaves_no_identity_behind(new_db):
    with psycopg.connect(new_db) as conn:  # not autocommit, no transaction yet
        service = JobQueueService(conn)

        job_id = service.acting_for(USER).submit_job("sample_task", {})

        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert no_claims(conn)
        with pytest.raises(InvalidParameters, match="user_id"):
            service.submit_job("sample_task", {})
        assert service.get_job(job_id).user_id == USER


def test_an_acting_call_inside_the_callers_transaction_leaves_no_identity_behind(new_db):
    with psycopg.connect(new_db) as conn:
        service = JobQueueService(conn)
        first = service.submit_job("sample_task", {}, user_id=OTHER)  # starts the transaction

        mine = service.acting_for(USER).submit_jobs("sample_task", [{}, {}])

        assert no_claims(conn)
        with pytest.raises(InvalidParameters, match="user_id"):
            service.submit_job("sample_task", {})
        # The refused call rolled back to its savepoint; the rest stays.
        assert service.get_job(first).user_id == OTHER
        assert {service.get_job(job_id).user_id for job_id in mine} == {USER}
        conn.commit()
    with psycopg.connect(new_db, autocommit=True) as check:
        assert check.execute("select count(*) from jobs").fetchone() == (3,)


def test_a_refused_acting_call_leaves_no_identity_behind(new_db):
    with psycopg.connect(new_db) as conn:
        service = JobQueueService(conn)
        service.submit_job("sample_task", {}, user_id=OTHER)

        with pytest.raises(InvalidParameters, match="colour"):
            service.acting_for(USER).submit_job("sample_task", {"colour": "red"})

        assert no_claims(conn)
        with pytest.raises(InvalidParameters, match="user_id"):
            service.submit_job("sample_task", {})


def test_the_callers_own_claims_come_back_after_an_acting_call(new_db):
    own = json.dumps({"sub": str(OTHER)})
    with psycopg.connect(new_db) as conn:
        conn.execute("select set_config('request.jwt.claims', %s, true)", (own,))
        service = JobQueueService(conn)

        as_user = service.acting_for(USER).submit_job("sample_task", {})
        as_caller = service.submit_job("sample_task", {})

        assert claims(conn) == own
        assert service.get_job(as_user).user_id == USER
        assert service.get_job(as_caller).user_id == OTHER


def test_an_acting_call_on_an_autocommit_connection_leaves_no_identity_behind(db):
    service = JobQueueService(db)

    service.acting_for(USER).submit_job("sample_task", {})

    assert no_claims(db)
    with pytest.raises(InvalidParameters, match="user_id"):
        service.submit_job("sample_task", {})
