"""The batch forms and the msg_id lease: a msg_id is a lease on its own job
only, even when that job is in the same batch."""

from __future__ import annotations

import pytest
from support.jobs import job, submit

from .support import check_invariant, msg_ids, take

BATCH_CALLS = {
    "complete_jobs": "select * from complete_jobs(%s, null, %s)",
    "fail_jobs": "select * from fail_jobs(%s, array['boom', 'boom'], null, null, %s)",
}


@pytest.mark.parametrize("call", sorted(BATCH_CALLS))
def test_another_jobs_msg_id_in_the_same_batch_is_no_lease(tx, call):
    mine, other = submit(tx), submit(tx)
    take(tx, mine)
    other_msg = take(tx, other)

    got = [
        tuple(r)
        for r in tx.execute(BATCH_CALLS[call], ([mine, other], [other_msg, other_msg])).fetchall()
    ]

    assert got[0] == (mine, "lease_lost")
    assert got[1][1] != "lease_lost"
    assert job(tx, mine)["status"] == "processing"
    assert len(msg_ids(tx, mine)) == 1
    assert job(tx, other)["status"] in ("completed", "failed")
    check_invariant(tx)
