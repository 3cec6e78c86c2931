"""What the runner relies on in psycopg, checked so that an upgrade cannot
silently change it."""

from __future__ import annotations

import psycopg
import pytest


def test_statements_pipelined_without_a_sync_form_one_transaction(db):
    # The runner sends a batch's complete_job and fail_job statements and the
    # next dequeue_jobs in one pipeline: one implicit transaction, one commit.
    db.execute("create table pipelined (x integer)")
    with pytest.raises(psycopg.errors.DivisionByZero), db.pipeline():
        db.execute("insert into pipelined values (1)")
        db.execute("select 1 / 0")

    assert db.execute("select count(*) from pipelined").fetchone() == (0,)
    assert db.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
