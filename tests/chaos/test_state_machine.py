"""Scenario 5: random sequences of every operation, against the real database.

A hypothesis state machine submits, dequeues, completes, fails, extends,
cancels, recovers, purges the queue, sends poison, lets leases and backoffs
run out (by moving a message's vt, as time would), and changes and deletes
jobs by hand. After every step it reads every job and message back and
checks that:

* each job changed only as the step allows (the state machine, the retry
  rules, the sweep's rules), and every other job did not change at all;
* a call carrying a lease succeeds only for the job's current attempt,
  and otherwise answers 55000 (or P0002 for a job deleted by hand);
* an unfinished job has exactly one message and a finished job none, except
  where the step itself broke that (a purge, a job deleted by hand), until
  the sweep has put it right;
* the audited changes of every job form one legal chain.

Each example ends by draining what is left (the sweep, dequeue, complete) and
checks that every job reached a terminal state and no message is left.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from psycopg.types.json import Jsonb

from .harness import USER_ID, Figures, transition_problems

MAX_RETRIES = {"sm_retry": 2, "sm_once": 0}
ORPHAN_MAX_REQUEUES = 3
STATUSES = ["pending", "processing", "completed", "failed", "bogus"]
HAND_LEGAL = {
    ("pending", "processing"),
    ("processing", "completed"),
    ("processing", "failed"),
    ("pending", "failed"),
}


@dataclass(frozen=True)
class View:
    """A job as the database holds it, with its messages (msg_id, visible)."""

    status: str
    retry: int
    error_type: str | None
    job_type: str
    messages: tuple[tuple[int, bool], ...]

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")

    @property
    def visible(self) -> bool:
        return any(v for _, v in self.messages)


def observe(conn: psycopg.Connection) -> tuple[dict[uuid.UUID, View], dict[int, bool]]:
    """Every job with its messages, and the messages of no job (msg_id -> visible)."""
    jobs: dict[uuid.UUID, View] = {}
    rows = conn.execute(
        """
        select j.id, j.status, j.retry_count, j.error_type, j.job_type,
            coalesce(
                array_agg(array[m.msg_id, (m.vt <= clock_timestamp())::int] order by m.msg_id)
                filter (where m.msg_id is not null),
                '{}'
            )
        from jobs as j
        left join jobqueue.queue_messages as m on m.message ->> 'job_id' = j.id::text
        group by j.id
        """
    ).fetchall()
    for job_id, status, retry, error_type, job_type, msgs in rows:
        messages = tuple((int(m), bool(v)) for m, v in msgs)
        jobs[job_id] = View(status, retry, error_type, job_type, messages)
    loose = dict(
        conn.execute(
            """
            select m.msg_id, m.vt <= clock_timestamp()
            from jobqueue.queue_messages as m
            where not exists (select from jobs as j where j.id::text = m.message ->> 'job_id')
            """
        ).fetchall()
    )
    return jobs, loose


def sqlstate_of(conn: psycopg.Connection, query: str, params: Any = None) -> tuple[str | None, Any]:
    """Runs one statement; its SQLSTATE (None when it succeeded) and first row."""
    try:
        cur = conn.execute(query, params)
        return None, cur.fetchone() if cur.description else None
    except psycopg.Error as exc:
        return exc.sqlstate, None


def timeout_ok(before: View, after: View, error_type: str = "JobTimeout") -> bool:
    """An attempt ended by the sweep or a dequeue: a retry or a failure."""
    if before.retry < MAX_RETRIES[before.job_type]:
        return (
            after.status == "pending"
            and after.retry == before.retry + 1
            and after.error_type == error_type
            and len(after.messages) == 1
        )
    return after.status == "failed" and after.error_type == error_type and not after.messages


def without_visible(view: View) -> View:
    return replace(view, messages=tuple(m for m in view.messages if not m[1]))


def make_machine(url: str, stats: Counter[str]) -> type[RuleBasedStateMachine]:
    class JobMachine(RuleBasedStateMachine):
        """The package's state machine, driven at random."""

        def __init__(self) -> None:
            super().__init__()
            self.conn = psycopg.connect(url, autocommit=True)
            self.jobs: dict[uuid.UUID, View] = {}
            self.loose: dict[int, bool] = {}
            self.leases: dict[uuid.UUID, int] = {}  # the attempts this "runner" holds
            self.old_leases: list[tuple[uuid.UUID, int]] = []  # attempts since ended
            self.broken: set[uuid.UUID] = set()  # may lack their message until a sweep
            self.deleted: set[uuid.UUID] = set()
            self.order: list[uuid.UUID] = []  # every job, in the order submitted

        def known(
            self, status: str | None = None, include_deleted: bool = False
        ) -> list[uuid.UUID]:
            """Jobs in the order submitted (ids are random, so never sorted: hypothesis
            must draw the same choices when it replays a sequence)."""
            return [
                j
                for j in self.order
                if (j in self.jobs and (status is None or self.jobs[j].status == status))
                or (include_deleted and j in self.deleted)
            ]

        # -- set-up and the check after every step ------------------------------------

        @initialize()
        def start_empty(self) -> None:
            self.conn.execute("delete from jobs")
            self.conn.execute("select pgmq.purge_queue(jobqueue.queue_name())")
            self.conn.execute("truncate chaos.transitions")
            stats["examples"] += 1

        def teardown(self) -> None:
            try:
                self.drain()
            finally:
                self.conn.close()

        def refresh(self) -> tuple[dict[uuid.UUID, View], dict[int, bool]]:
            before = (self.jobs, self.loose)
            self.jobs, self.loose = observe(self.conn)
            stats["steps"] += 1
            return before

        def expect_only(self, before: dict[uuid.UUID, View], allowed: dict[uuid.UUID, Any]):
            """Jobs not in `allowed` are unchanged; allowed[j](old, new) holds for the rest."""
            for job_id in set(before) | set(self.jobs):
                old, new = before.get(job_id), self.jobs.get(job_id)
                check = allowed.get(job_id)
                if check is None:
                    assert old == new, f"job {job_id} changed: {old} -> {new}"
                else:
                    assert check(old, new), f"job {job_id}: {old} -> {new} is not allowed here"

        @invariant()
        def one_message_per_unfinished_job(self) -> None:
            for job_id, view in self.jobs.items():
                if job_id in self.broken:
                    assert len(view.messages) <= 1, f"{job_id}: {view}"
                elif view.finished:
                    assert view.messages == (), f"finished job {job_id} has messages: {view}"
                else:
                    assert len(view.messages) == 1, f"job {job_id}: {view}"

        @invariant()
        def every_change_is_legal(self) -> None:
            assert transition_problems(self.conn) == []

        @invariant()
        def leases_are_current(self) -> None:
            for job_id, msg_id in self.leases.items():
                view = self.jobs[job_id]
                assert view.status == "processing"
                assert job_id in self.broken or view.messages[0][0] == msg_id

        def end_lease(self, job_id: uuid.UUID) -> None:
            if job_id in self.leases:
                self.old_leases.append((job_id, self.leases.pop(job_id)))

        def settle_leases(self) -> None:
            """Leases whose job is no longer processing, or whose message went, are over."""
            for job_id, msg_id in sorted(self.leases.items(), key=lambda lease: lease[1]):
                view = self.jobs.get(job_id)
                held = view is not None and msg_id in [m for m, _ in view.messages]
                if not held or view.status != "processing":
                    self.end_lease(job_id)

        # -- the API ---------------------------------------------------------------------------

        @rule(job_type=st.sampled_from(sorted(MAX_RETRIES)), n=st.integers(1, 3))
        def submit(self, job_type: str, n: int) -> None:
            new_ids = []
            for i in range(n):
                state, row = sqlstate_of(
                    self.conn, "select submit_job(%s, %s, %s)", (job_type, Jsonb({"i": i}), USER_ID)
                )
                assert state is None
                new_ids.append(row[0])
                self.order.append(row[0])
            before, _ = self.refresh()
            stats["submitted"] += n
            self.expect_only(
                before,
                {
                    j: lambda old, new: (
                        old is None
                        and new.status == "pending"
                        and new.retry == 0
                        and len(new.messages) == 1
                    )
                    for j in new_ids
                },
            )

        @rule(batch=st.integers(1, 4))
        def dequeue(self, batch: int) -> None:
            rows = self.conn.execute(
                "select job_id, msg_id from dequeue_jobs(%s, 30)", (batch,)
            ).fetchall()
            before, _ = self.refresh()
            returned = dict(rows)
            assert len(rows) <= batch and len(returned) == len(rows)
            allowed: dict[uuid.UUID, Any] = {}
            for job_id, old in before.items():
                if not old.visible:
                    continue
                if job_id in returned:
                    msg_id = returned[job_id]
                    allowed[job_id] = lambda old, new, m=msg_id: (
                        old.status == "pending"
                        and new.status == "processing"
                        and new.retry == old.retry
                        and (m, True) in old.messages
                        and [x for x, _ in new.messages] == [m]
                    )
                elif old.status == "processing":
                    # A visible message while processing: an abandoned attempt.
                    allowed[job_id] = lambda old, new: new == old or timeout_ok(old, new)
                elif old.finished:
                    allowed[job_id] = lambda old, new: new in (old, without_visible(old))
                else:
                    # A pending job not taken: only when the batch was full.
                    allowed[job_id] = lambda old, new: new == old and len(rows) == batch
            self.expect_only(before, allowed)
            for job_id, msg_id in returned.items():
                self.leases[job_id] = msg_id
            self.settle_leases()
            if len(rows) < batch:
                # A short answer means no visible message of a pending job is left.
                assert not [j for j, v in self.jobs.items() if v.status == "pending" and v.visible]
                assert not any(self.loose.values()), "a visible message of no job was left"
            stats["dequeued"] += len(rows)

        def lease_target(self, data: st.DataObject) -> tuple[uuid.UUID, int] | None:
            # In msg_id order: dequeue_jobs returns a batch in no set order,
            # and a replayed sequence must draw the same choices.
            choices = sorted(self.leases.items(), key=lambda lease: lease[1])
            choices += self.old_leases[-5:]
            if not choices:
                return None
            return data.draw(st.sampled_from(choices))

        def lease_is_current(self, job_id: uuid.UUID, msg_id: int) -> bool:
            view = self.jobs.get(job_id)
            return (
                view is not None
                and view.status == "processing"
                and msg_id in [m for m, _ in view.messages]
            )

        def refused_state(self, job_id: uuid.UUID) -> str:
            return "P0002" if job_id not in self.jobs else "55000"

        @precondition(lambda self: self.leases or self.old_leases)
        @rule(data=st.data())
        def complete(self, data: st.DataObject) -> None:
            target = self.lease_target(data)
            assert target is not None
            job_id, msg_id = target
            current = self.lease_is_current(job_id, msg_id)
            state, _ = sqlstate_of(
                self.conn, "select complete_job(%s, %s, %s)", (job_id, Jsonb({"ok": 1}), msg_id)
            )
            before, _ = self.refresh()
            if current:
                assert state is None
                self.expect_only(
                    before,
                    {job_id: lambda old, new: new.status == "completed" and new.messages == ()},
                )
                stats["completed_by_lease"] += 1
            else:
                assert state == self.refused_state(job_id), (state, job_id, msg_id)
                self.expect_only(before, {})
                stats["stale_lease_refused"] += 1
            self.end_lease(job_id)

        @precondition(lambda self: self.leases or self.old_leases)
        @rule(data=st.data())
        def fail(self, data: st.DataObject) -> None:
            target = self.lease_target(data)
            assert target is not None
            job_id, msg_id = target
            current = self.lease_is_current(job_id, msg_id)
            state, row = sqlstate_of(
                self.conn, "select fail_job(%s, 'boom', 'Boom', null, %s)", (job_id, msg_id)
            )
            before, _ = self.refresh()
            if current:
                assert state is None
                self.expect_only(
                    before, {job_id: lambda old, new: timeout_ok(old, new, error_type="Boom")}
                )
                assert row[0] == self.jobs[job_id].status
            else:
                assert state == self.refused_state(job_id), (state, job_id, msg_id)
                self.expect_only(before, {})
            self.end_lease(job_id)

        @precondition(lambda self: self.leases or self.old_leases)
        @rule(data=st.data(), complete=st.booleans(), mixed=st.booleans())
        def record_batch(self, data: st.DataObject, complete: bool, mixed: bool) -> None:
            """complete_jobs or fail_jobs for a few attempts at once; when
            `mixed`, each job is sent any of the batch's msg_ids: an element
            is recorded only when its msg_id is its own job's current message."""
            targets: dict[uuid.UUID, int] = {}
            for _ in range(data.draw(st.integers(1, 3))):
                target = self.lease_target(data)
                assert target is not None
                targets.setdefault(*target)
            job_ids = list(targets)
            msg_ids = list(targets.values())
            if mixed:
                msg_ids = [data.draw(st.sampled_from(list(targets.values()))) for _ in job_ids]
            current = {
                j: self.lease_is_current(j, m) for j, m in zip(job_ids, msg_ids, strict=True)
            }
            if complete:
                query = "select job_id, outcome from complete_jobs(%s, null, %s)"
            else:
                query = (
                    "select job_id, outcome from fail_jobs(%s, array_fill('boom'::text,"
                    " array[cardinality(%s::uuid[])]), array_fill('Boom'::text,"
                    " array[cardinality(%s::uuid[])]), null, %s)"
                )
            params = (job_ids, msg_ids) if complete else (job_ids, job_ids, job_ids, msg_ids)
            rows = self.conn.execute(query, params).fetchall()
            before, _ = self.refresh()
            assert [r[0] for r in rows] == job_ids
            allowed: dict[uuid.UUID, Any] = {}
            for (job_id, outcome), msg_id in zip(rows, msg_ids, strict=True):
                if not current[job_id]:
                    expected = "not_found" if job_id not in before else "lease_lost"
                    assert outcome == expected, (job_id, msg_id, outcome, before.get(job_id))
                elif complete:
                    assert outcome == "completed", (job_id, msg_id, outcome)
                    allowed[job_id] = lambda old, new: (
                        new.status == "completed" and new.messages == ()
                    )
                else:
                    allowed[job_id] = lambda old, new: timeout_ok(old, new, error_type="Boom")
            self.expect_only(before, allowed)
            for job_id in job_ids:
                if current[job_id]:
                    self.end_lease(job_id)
            stats["batches"] += 1

        @precondition(lambda self: self.leases or self.old_leases)
        @rule(data=st.data())
        def extend(self, data: st.DataObject) -> None:
            target = self.lease_target(data)
            assert target is not None
            job_id, msg_id = target
            current = self.lease_is_current(job_id, msg_id)
            state, _ = sqlstate_of(
                self.conn, "select extend_job_lease(%s, %s, 30)", (job_id, msg_id)
            )
            before, _ = self.refresh()
            if current:
                assert state is None
                self.expect_only(
                    before,
                    {
                        job_id: lambda old, new: (
                            new.status == old.status and new.messages == ((msg_id, False),)
                        )
                    },
                )
            else:
                assert state == self.refused_state(job_id), (state, job_id, msg_id)
                self.expect_only(before, {})

        @precondition(lambda self: self.jobs or self.deleted)
        @rule(data=st.data())
        def cancel(self, data: st.DataObject) -> None:
            job_id = data.draw(st.sampled_from(self.known(include_deleted=True)))
            state, row = sqlstate_of(self.conn, "select cancel_job(%s)", (job_id,))
            before, _ = self.refresh()
            old = before.get(job_id)
            if old is None:
                assert state == "P0002"
                self.expect_only(before, {})
            elif old.status in ("pending", "processing"):
                # A running job is cancelled too: its attempt's lease ends.
                assert state is None and row[0] is True
                self.expect_only(
                    before,
                    {
                        job_id: lambda old, new: (
                            new.status == "failed"
                            and new.error_type == "Cancelled"
                            and new.messages == ()
                        )
                    },
                )
                self.broken.discard(job_id)
                self.end_lease(job_id)
            else:
                assert state is None and row[0] is False
                self.expect_only(before, {})

        @rule()
        def recover(self) -> None:
            state, row = sqlstate_of(self.conn, "select recover_orphans()")
            assert state is None and "skipped" not in row[0]
            before, _ = self.refresh()
            allowed: dict[uuid.UUID, Any] = {}
            for job_id, old in before.items():
                if old.status == "processing" and (old.visible or not old.messages):
                    allowed[job_id] = timeout_ok
                elif old.status == "pending" and not old.messages:
                    allowed[job_id] = lambda old, new: (
                        new.status == "pending"
                        and new.retry == old.retry + 1
                        and len(new.messages) == 1
                        if old.retry < ORPHAN_MAX_REQUEUES
                        else new.status == "failed" and new.error_type == "OrphanedJob"
                    )
                elif old.finished and old.visible:
                    allowed[job_id] = lambda old, new: new == without_visible(old)
            self.expect_only(before, allowed)
            self.broken = {
                j
                for j in self.broken
                if j in self.jobs and not self.jobs[j].finished and not self.jobs[j].messages
            }
            self.settle_leases()
            assert not any(self.loose.values()), "the sweep left a visible message of no job"
            stats["sweeps"] += 1

        # -- faults: purge, poison, time, hand-written SQL ---------------------------------------

        @rule()
        def purge_queue(self) -> None:
            self.conn.execute("select pgmq.purge_queue(jobqueue.queue_name())")
            before, _ = self.refresh()
            for job_id, view in before.items():
                if not view.finished:
                    self.broken.add(job_id)
            self.expect_only(
                before, {j: lambda old, new: new == replace(old, messages=()) for j in before}
            )
            stats["faults"] += 1

        @rule(message=st.sampled_from(['"text"', "[1]", '{"job_id": "nope"}', "{}", "null"]))
        def send_poison(self, message: str) -> None:
            self.conn.execute("select pgmq.send(jobqueue.queue_name(), %s::jsonb)", (message,))
            before, _ = self.refresh()
            self.expect_only(before, {})
            stats["faults"] += 1

        @precondition(lambda self: any(v.status == "processing" for v in self.jobs.values()))
        @rule(data=st.data())
        def lease_runs_out(self, data: st.DataObject) -> None:
            job_id = data.draw(st.sampled_from(self.known(status="processing")))
            self._make_visible(job_id)

        @precondition(lambda self: any(v.status == "pending" for v in self.jobs.values()))
        @rule()
        def backoffs_run_out(self) -> None:
            for job_id in [j for j, v in self.jobs.items() if v.status == "pending"]:
                self._make_visible(job_id)

        def _make_visible(self, job_id: uuid.UUID) -> None:
            # What time would do: the message's vt passes.
            self.conn.execute(
                "update pgmq.q_job_queue set vt = clock_timestamp() - interval '1 second'"
                " where message ->> 'job_id' = %s",
                (str(job_id),),
            )
            before, _ = self.refresh()
            self.expect_only(
                before,
                {
                    job_id: lambda old, new: (
                        new == replace(old, messages=tuple((m, True) for m, _ in old.messages))
                    )
                },
            )

        @precondition(lambda self: self.jobs)
        @rule(data=st.data(), status=st.sampled_from(STATUSES))
        def hand_update_status(self, data: st.DataObject, status: str) -> None:
            job_id = data.draw(st.sampled_from(self.known()))
            state, _ = sqlstate_of(
                self.conn, "update jobs set status = %s where id = %s", (status, job_id)
            )
            before, _ = self.refresh()
            old = before[job_id]
            if status == old.status:
                assert state is None
                self.expect_only(before, {})
            elif (old.status, status) in HAND_LEGAL:
                assert state is None
                finishing = status in ("completed", "failed")
                self.expect_only(
                    before,
                    {
                        job_id: lambda old, new: (
                            new.status == status
                            and new.retry == old.retry
                            and (new.messages == () if finishing else new.messages == old.messages)
                        )
                    },
                )
                self.end_lease(job_id)
                if finishing:
                    self.broken.discard(job_id)
            else:
                assert state == "55000", (old.status, status, state)
                self.expect_only(before, {})
            stats["faults"] += 1

        @precondition(lambda self: self.jobs)
        @rule(data=st.data())
        def hand_retry(self, data: st.DataObject) -> None:
            job_id = data.draw(st.sampled_from(self.known()))
            state, _ = sqlstate_of(
                self.conn,
                "update jobs set status = 'pending', retry_count = retry_count + 1 where id = %s",
                (job_id,),
            )
            before, _ = self.refresh()
            old = before[job_id]
            if old.status == "processing":
                assert state is None
                # The old lease ends: its message goes, a new one is sent.
                self.expect_only(
                    before,
                    {
                        job_id: lambda old, new: (
                            new.status == "pending"
                            and new.retry == old.retry + 1
                            and len(new.messages) == 1
                            and new.messages[0][0] not in [m for m, _ in old.messages]
                        )
                    },
                )
                self.end_lease(job_id)
                self.broken.discard(job_id)
            elif old.status == "pending":
                assert state is None
                self.expect_only(
                    before, {job_id: lambda old, new: new == replace(old, retry=old.retry + 1)}
                )
            else:
                assert state == "55000"
                self.expect_only(before, {})
            stats["faults"] += 1

        @precondition(lambda self: self.jobs)
        @rule(data=st.data(), valid=st.booleans())
        def hand_update_parameters(self, data: st.DataObject, valid: bool) -> None:
            job_id = data.draw(st.sampled_from(self.known()))
            value = Jsonb({"changed": True}) if valid else Jsonb([1, 2])
            state, _ = sqlstate_of(
                self.conn, "update jobs set job_parameters = %s where id = %s", (value, job_id)
            )
            before, _ = self.refresh()
            assert state == (None if valid else "22023")
            self.expect_only(before, {})

        @precondition(lambda self: self.jobs)
        @rule(data=st.data())
        def hand_delete(self, data: st.DataObject) -> None:
            job_id = data.draw(st.sampled_from(self.known()))
            self.conn.execute("delete from jobs where id = %s", (job_id,))
            before, _ = self.refresh()
            self.expect_only(before, {job_id: lambda old, new: new is None})
            self.deleted.add(job_id)
            self.broken.discard(job_id)
            self.end_lease(job_id)
            stats["faults"] += 1

        # -- the end of an example -------------------------------------------------------

        def drain(self) -> None:
            """Time passes, the sweep and a runner finish everything."""
            for _ in range(20):
                self.conn.execute(
                    "update pgmq.q_job_queue set vt = clock_timestamp() - interval '1 second'"
                )
                self.conn.execute("select recover_orphans()")
                for job_id, msg_id in self.conn.execute(
                    "select job_id, msg_id from dequeue_jobs(100, 30)"
                ).fetchall():
                    self.conn.execute("select complete_job(%s, null, %s)", (job_id, msg_id))
                self.jobs, self.loose = observe(self.conn)
                if all(v.finished for v in self.jobs.values()) and not self.loose:
                    break
            counts = Counter(v.status for v in self.jobs.values())
            stats["completed"] += counts["completed"]
            stats["failed"] += counts["failed"]
            stats["deleted_by_hand"] += len(self.deleted)
            unfinished = [j for j, v in self.jobs.items() if not v.finished]
            stats["lost"] += len(unfinished)
            left = sum(len(v.messages) for v in self.jobs.values()) + len(self.loose)
            stats["messages_left"] += left
            assert unfinished == [], f"jobs left unfinished: {unfinished}"
            assert left == 0, f"{left} message(s) left"
            assert transition_problems(self.conn) == []

    return JobMachine


@pytest.fixture
def machine_db(chaos_db: str) -> str:
    with psycopg.connect(chaos_db, autocommit=True) as conn:
        conn.execute(
            "insert into job_types (name, max_retries, retry_backoff_seconds)"
            " values ('sm_retry', %s, 3600), ('sm_once', %s, 3600)",
            (MAX_RETRIES["sm_retry"], MAX_RETRIES["sm_once"]),
        )
        # Backoffs end only when a step says so (backoffs_run_out), never
        # while a sequence runs: hypothesis replays sequences, and they must
        # behave the same every time.
        conn.execute("update jobqueue.settings set max_backoff_seconds = 3600")
        row = conn.execute("select orphan_max_requeues from jobqueue.settings").fetchone()
        assert row == (ORPHAN_MAX_REQUEUES,)
    return chaos_db


def test_random_operations_keep_the_state_machine_and_the_queue_in_step(machine_db, scale, report):
    began = time.monotonic()
    stats: Counter[str] = Counter()
    machine = make_machine(machine_db, stats)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=scale.machine_examples,
            stateful_step_count=scale.machine_steps,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            print_blob=True,
        ),
    )
    fig = Figures(
        "5. state machine (hypothesis)",
        submitted=stats["submitted"],
        faults=stats["faults"],
        fault_kind=(
            f"{stats['examples']} random sequences, {stats['steps']} steps: purges, poison,"
            " hand-written updates and deletes"
        ),
        completed=stats["completed"],
        failed=stats["failed"],
        lost=stats["lost"],
        messages_left=stats["messages_left"],
        seconds=time.monotonic() - began,
        notes={k: v for k, v in stats.items() if k not in ("completed", "failed")},
    )
    report(fig)
