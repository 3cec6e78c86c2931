"""The machinery of the fault-injection scenarios.

Processes and threads that act on a database while faults are injected
(runners, the recovery sweep, submitters, a canceller, a backend
terminator), the local cluster that some scenarios crash, and the check of
the promise at the end (`check_promise`), which only believes what the
database and the handlers' execution logs say.

Nothing here sleeps to let time pass: waits are on a condition with a
deadline (support.waiting.wait_for), and loops are paced by `Event.wait`,
which a stop request ends at once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from support.jobs import value
from support.processes import python_env

# The handler modules the runners of the scenarios load (--handlers jq_chaos_handlers).
HANDLER_MODULES = Path(__file__).resolve().parent / "support"
USER_ID = uuid.UUID("00000000-0000-4000-8000-00000000c4a0")


# -- connections ----------------------------------------------------------------


def is_connection_loss(exc: BaseException) -> bool:
    """A lost or refused connection, or a server shutting down or starting up."""
    if not isinstance(exc, psycopg.Error):
        return False
    state = exc.sqlstate
    if state is None:
        return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return state.startswith("08") or state in {"57P01", "57P02", "57P03"}


class Reconnecting:
    """One autocommit connection that comes back after a loss."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self._conn: psycopg.Connection | None = None

    def get(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self.url, autocommit=True, application_name=self.name, connect_timeout=5
            )
        return self._conn

    def drop(self) -> None:
        if self._conn is not None:
            with suppress(Exception):
                self._conn.close()
        self._conn = None

    def call(self, fn: Callable[[psycopg.Connection], Any], timeout: float = 60) -> Any:
        """fn(connection), retried across connection losses for `timeout` s."""
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while True:
            try:
                return fn(self.get())
            except psycopg.Error as exc:
                if not is_connection_loss(exc) or time.monotonic() > deadline:
                    raise
                self.drop()
                pause.wait(0.1)


# -- the database of a scenario ------------------------------------------------------

# An audit of every change of a job's status or retry_count, written by a
# trigger in the changing transaction: the scenarios check each change
# against the state machine without trusting the package's own trigger.
AUDIT_SQL = """
create schema chaos;
create table chaos.transitions (
    id bigserial primary key,
    job_id uuid not null,
    old_status text,
    new_status text not null,
    old_retry integer,
    new_retry integer not null
);
create index on chaos.transitions (job_id, id);
create function chaos.tg_audit() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into chaos.transitions (job_id, new_status, new_retry)
        values (new.id, new.status, new.retry_count);
    elsif new.status is distinct from old.status or new.retry_count <> old.retry_count then
        insert into chaos.transitions (job_id, old_status, new_status, old_retry, new_retry)
        values (new.id, old.status, new.status, old.retry_count, new.retry_count);
    end if;
    return null;
end;
$$;
create trigger jobs_990_chaos_audit after insert or update on public.jobs
for each row execute function chaos.tg_audit();
"""

# chaos_task: retried up to 8 times, so that a job survives the faults and
# a flaky one succeeds in the end. chaos_fail: never retried (jobs that fail
# on purpose). chaos_hang: attempts may run 2 s only. Backoffs are capped at
# 2 s so that retries come back within a scenario's time.
JOB_TYPES_SQL = """
insert into job_types (name, max_retries, timeout_seconds, retry_backoff_seconds)
values ('chaos_task', 8, 120, 1), ('chaos_fail', 0, 120, 1), ('chaos_hang', 1, 2, 1);
update jobqueue.settings set max_backoff_seconds = 2;
"""


def prepare_database(url: str) -> None:
    """Adds the audit and the scenarios' job types to a fresh clone."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(AUDIT_SQL)
        conn.execute(JOB_TYPES_SQL)


# -- the local cluster ------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """The project's own local cluster, which a scenario may crash and restart."""

    data_dir: Path
    bin_dir: Path

    @property
    def _as_postgres(self) -> list[str]:
        # pg_ctl refuses to run as root.
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _pg_ctl(self, *args: str, timeout: float = 90) -> None:
        cmd = [*self._as_postgres, str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)

    def crash(self) -> None:
        """pg_ctl stop -m immediate: every backend killed, no checkpoint."""
        self._pg_ctl("stop", "-m", "immediate", "-w")

    def start(self) -> None:
        log = self.data_dir.parent / "postgresql.log"
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(log))


def local_cluster(url: str) -> tuple[Cluster | None, str]:
    """The cluster behind `url` when it is the project's own local cluster
    (JOBQUEUE_LOCAL_CLUSTER, JOBQUEUE_PG_BIN), else None and the reason."""
    data = os.environ.get("JOBQUEUE_LOCAL_CLUSTER")
    bin_dir = os.environ.get("JOBQUEUE_PG_BIN")
    if not data or not bin_dir:
        return None, (
            "JOBQUEUE_LOCAL_CLUSTER and JOBQUEUE_PG_BIN are not set (DATABASE_URL names a "
            "server that is not the project's local cluster): a scenario that stops "
            "PostgreSQL runs only against the local cluster"
        )
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("select current_setting('data_directory')").fetchone()
    served = Path(row[0]).resolve() if row else None
    if served != Path(data).resolve():
        return None, (
            f"the server at DATABASE_URL serves {served}, not JOBQUEUE_LOCAL_CLUSTER={data}: "
            "refusing to stop a cluster that is not the project's own"
        )
    return Cluster(Path(data), Path(bin_dir)), ""


# -- runners ------------------------------------------------------------------------------


class RunnerProc:
    """A `jobqueue run` process loading the chaos handlers, its log in a file."""

    def __init__(self, url: str, workdir: Path, name: str, *args: str) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        env = python_env(HANDLER_MODULES, JQ_CHAOS_EXEC_DIR=str(workdir))
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jobqueue",
                "run",
                "--database-url",
                url,
                "--handlers",
                "jq_chaos_handlers",
                *args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self, timeout: float = 60, *, signalled: bool = False) -> int:
        """SIGTERM (unless sent already), and the exit code once it has gone.
        One signal only: a second one ends the shutdown grace at once."""
        if not signalled and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def ensure_dead(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


class Runners:
    """The runners of a scenario; whatever is left is killed at the end."""

    def __init__(self, url: str, workdir: Path, *args: str) -> None:
        self.url = url
        self.workdir = workdir
        self.args = args
        self.all: list[RunnerProc] = []
        self.killed: list[RunnerProc] = []

    def start(self, count: int = 1) -> list[RunnerProc]:
        started = [
            RunnerProc(self.url, self.workdir, f"runner-{len(self.all) + i}", *self.args)
            for i in range(count)
        ]
        self.all.extend(started)
        return started

    @property
    def live(self) -> list[RunnerProc]:
        return [r for r in self.all if r not in self.killed]

    def kill(self, runner: RunnerProc) -> None:
        runner.kill()
        self.killed.append(runner)

    def stop_all(self) -> dict[str, int]:
        """SIGTERM to every live runner at once; their exit codes."""
        live = self.live
        for runner in live:
            if runner.alive():
                runner.proc.send_signal(signal.SIGTERM)
        return {runner.name: runner.stop(signalled=True) for runner in live}

    def cleanup(self) -> None:
        for runner in self.all:
            runner.ensure_dead()

    def died(self) -> list[str]:
        """Runners that exited although nobody stopped them."""
        return [r.name for r in self.live if not r.alive()]


# -- background actors --------------------------------------------------------------


class Actor(threading.Thread):
    """A thread that repeats `turn` until stopped; errors that are not a lost
    connection are kept in `unexpected`, and the actor carries on."""

    pace: float = 0.1

    def __init__(self, url: str, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.db = Reconnecting(url, name)
        self.halt = threading.Event()
        self.unexpected: list[str] = []
        self.outages = 0

    def turn(self, conn: psycopg.Connection) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                self.turn(self.db.get())
            except psycopg.Error as exc:
                if is_connection_loss(exc):
                    self.outages += 1
                    self.db.drop()
                else:
                    self.unexpected.append(f"[{exc.sqlstate}] {exc}".strip())
            self.halt.wait(self.pace)
        self.db.drop()

    def stop(self) -> None:
        self.halt.set()
        self.join(timeout=60)


class Sweeper(Actor):
    """Calls recover_orphans() in a loop, as pg_cron would, only much more often."""

    pace = 0.5

    def __init__(self, url: str) -> None:
        super().__init__(url, "chaos-sweep")
        self.totals: Counter[str] = Counter()
        self.sweeps = 0

    def turn(self, conn: psycopg.Connection) -> None:
        row = conn.execute("select recover_orphans()").fetchone()
        assert row is not None
        self.sweeps += 1
        for key, count in row[0].items():
            if isinstance(count, int) and not isinstance(count, bool):
                self.totals[key] += count


@dataclass
class Submitted:
    """What a submitter knows: ids whose transaction committed, and how many
    jobs were in transactions whose commit nobody saw the end of."""

    committed: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    in_doubt: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> set[uuid.UUID]:
        with self.lock:
            return set(self.committed)


class Submitter(Actor):
    """Submits jobs in batches (one transaction each) until `total` have
    committed or it is stopped; `make_job(rng)` draws each job's type and
    parameters."""

    def __init__(
        self,
        url: str,
        submitted: Submitted,
        make_job: Callable[[random.Random], tuple[str, dict[str, Any]]],
        *,
        total: int | None,
        batch: int,
        pace: float,
        seed: int,
        name: str = "chaos-submit",
    ) -> None:
        super().__init__(url, name)
        self.submitted = submitted
        self.make_job = make_job
        self.total = total
        self.batch = batch
        self.pace = pace
        self.rng = random.Random(seed)
        self.done = threading.Event()

    def turn(self, conn: psycopg.Connection) -> None:
        with self.submitted.lock:
            count = len(self.submitted.committed)
        if self.total is not None and count >= self.total:
            self.done.set()
            self.halt.set()
            return
        size = self.batch if self.total is None else min(self.batch, self.total - count)
        jobs = [self.make_job(self.rng) for _ in range(size)]
        try:
            with conn.transaction():
                rows = conn.execute(
                    "select submit_job(j.job_type, j.params, %s)"
                    " from unnest(%s::text[], %s::jsonb[]) with ordinality"
                    " as j (job_type, params, n) order by j.n",
                    (USER_ID, [t for t, _ in jobs], [Jsonb(p) for _, p in jobs]),
                ).fetchall()
        except psycopg.Error as exc:
            if is_connection_loss(exc):
                # The commit may or may not have happened: in doubt.
                with self.submitted.lock:
                    self.submitted.in_doubt += size
            raise
        with self.submitted.lock:
            for (job_id,), (_, p) in zip(rows, jobs, strict=True):
                self.submitted.committed[job_id] = p


class Canceller(Actor):
    """Cancels a random job among those submitted, now and then."""

    def __init__(self, url: str, submitted: Submitted, pace: float, seed: int) -> None:
        super().__init__(url, "chaos-cancel")
        self.submitted = submitted
        self.pace = pace
        self.rng = random.Random(seed)
        self.cancelled: set[uuid.UUID] = set()
        self.refused = 0

    def turn(self, conn: psycopg.Connection) -> None:
        with self.submitted.lock:
            recent = list(self.submitted.committed)[-200:]
        if not recent:
            return
        job_id = self.rng.choice(recent)
        row = conn.execute("select cancel_job(%s)", (job_id,)).fetchone()
        if row and row[0]:
            self.cancelled.add(job_id)
        else:
            self.refused += 1


class Terminator(Actor):
    """pg_terminate_backend on every runner connection of the database, now
    and then; counts the connections it ended."""

    def __init__(self, url: str, pace: float) -> None:
        super().__init__(url, "chaos-terminate")
        self.pace = pace
        self.terminated = 0
        self.rounds = 0

    def turn(self, conn: psycopg.Connection) -> None:
        row = conn.execute(
            "select count(*) filter (where pg_terminate_backend(pid)) from pg_stat_activity"
            " where datname = current_database() and application_name like 'jobqueue-runner%%'"
        ).fetchone()
        if row and row[0]:
            self.terminated += row[0]
            self.rounds += 1


class Checker(Actor):
    """Checks the invariant and the audited state changes while a scenario
    runs, once a second; keeps whatever it finds wrong."""

    pace = 1.0

    def __init__(self, url: str) -> None:
        super().__init__(url, "chaos-check")
        self.checks = 0
        self.violations: list[str] = []

    def turn(self, conn: psycopg.Connection) -> None:
        found = invariant_violations(conn) + transition_problems(conn)
        self.checks += 1
        self.violations += found[: max(0, 50 - len(self.violations))]


class Locker(Actor):
    """Holds row locks on running jobs for a while, as a long report or a
    hand-written transaction would: a runner with a lock_timeout then has
    its calls refused (55P03) until the locks go."""

    def __init__(self, url: str, pace: float, hold: float, seed: int) -> None:
        super().__init__(url, "chaos-lock")
        self.pace = pace
        self.hold = hold
        self.rng = random.Random(seed)
        self.rounds = 0
        self.locked = 0

    def turn(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            rows = conn.execute(
                "select id from jobs where status in ('pending', 'processing')"
                " order by random() limit 20 for update skip locked"
            ).fetchall()
            self.halt.wait(self.hold * self.rng.uniform(0.5, 1.5))
        self.rounds += 1
        self.locked += len(rows)


class Poisoner(Actor):
    """Sends messages that are no job's: not an object, no job_id, a job_id
    that is no uuid, the id of a job that does not exist."""

    KINDS = ('"just a string"', "[1, 2, 3]", '{"no": "job id"}', '{"job_id": "not-a-uuid"}')

    def __init__(self, url: str, pace: float, seed: int) -> None:
        super().__init__(url, "chaos-poison")
        self.pace = pace
        self.rng = random.Random(seed)
        self.poison = 0
        self.stale = 0

    def turn(self, conn: psycopg.Connection) -> None:
        if self.rng.random() < 0.25:
            message = Jsonb({"job_id": str(uuid.uuid4()), "job_type": "chaos_task"})
            self.stale += 1
        else:
            message = Jsonb(psycopg.types.json.json.loads(self.rng.choice(self.KINDS)))
            self.poison += 1
        conn.execute("select pgmq.send(jobqueue.queue_name(), %s)", (message,))


def job_mix(
    ms: tuple[int, int],
    *,
    flaky: float = 0.0,
    fail: float = 0.0,
    hang: float = 0.0,
) -> Callable[[random.Random], tuple[str, dict[str, Any]]]:
    """Draws jobs: chaos_task lasting ms[0]..ms[1] ms, of which a share fails
    its first attempt (flaky), a share of chaos_fail jobs that always fail,
    and a share of chaos_hang jobs that outlive their type's 2 s timeout."""

    def draw(rng: random.Random) -> tuple[str, dict[str, Any]]:
        x = rng.random()
        if x < hang:
            return "chaos_hang", {"ms": 3000}
        if x < hang + fail:
            return "chaos_fail", {"ms": rng.randint(*ms), "fail": True}
        params: dict[str, Any] = {"ms": rng.randint(*ms)}
        if x < hang + fail + flaky:
            params["flaky"] = 1
        return "chaos_task", params

    return draw


def submit_now(
    url: str,
    submitted: Submitted,
    make_job: Callable[[random.Random], tuple[str, dict[str, Any]]],
    count: int,
    seed: int,
) -> None:
    """Submits `count` jobs at once, in batches, before a scenario starts."""
    submitter = Submitter(url, submitted, make_job, total=count, batch=200, pace=0.0, seed=seed)
    submitter.start()
    submitter.join(timeout=120)
    assert submitter.done.is_set(), f"submitting failed: {submitter.unexpected[:3]}"


def in_flight(folder: Path, pid: int) -> int:
    """Handlers of process `pid` that have started and not yet ended."""
    path = folder / f"exec-{pid}.log"
    if not path.exists():
        return 0
    events = Counter(line.split(" ", 1)[0] for line in path.read_text().splitlines())
    return events["start"] - events["ok"] - events["fail"]


@contextmanager
def running(*actors: Actor) -> Iterator[None]:
    for actor in actors:
        actor.start()
    try:
        yield
    finally:
        for actor in actors:
            actor.stop()


# -- the handlers' execution logs ---------------------------------------------------------


@dataclass
class Execution:
    job_id: uuid.UUID
    msg_id: int
    pid: int
    started: float
    ended: str | None = None  # ok, fail, or None: the process died first


def read_executions(folder: Path) -> list[Execution]:
    runs: list[Execution] = []
    open_runs: dict[tuple[uuid.UUID, int, int], Execution] = {}
    for path in sorted(folder.glob("exec-*.log")):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) != 6:
                continue  # a line cut short by SIGKILL cannot happen (one write), but be safe
            event, job, msg, _retry, pid, when = parts
            key = (uuid.UUID(job), int(msg), int(pid))
            if event == "start":
                run = Execution(key[0], key[1], key[2], float(when))
                runs.append(run)
                open_runs[key] = run
            elif key in open_runs:
                open_runs.pop(key).ended = event
    return runs


# -- the promise -------------------------------------------------------------------------


@dataclass
class Figures:
    """A scenario's figures, as docs/reliability.md shows them."""

    scenario: str
    submitted: int = 0
    faults: int = 0
    fault_kind: str = ""
    completed: int = 0
    failed: int = 0
    lost: int = 0
    duplicated: int = 0
    messages_left: int = 0
    reexecuted: int = 0
    failed_by_type: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def invariant_violations(conn: psycopg.Connection) -> list[str]:
    """The invariant in one snapshot: an unfinished job has exactly one
    message, a finished job none. Messages of no job are left out (poison,
    or jobs deleted by hand: the sweep removes them)."""
    rows = conn.execute(
        """
        select j.id, j.status, count(m.msg_id)
        from jobs as j
        left join jobqueue.queue_messages as m on m.message ->> 'job_id' = j.id::text
        group by j.id, j.status
        having count(m.msg_id)
            <> case when j.status in ('pending', 'processing') then 1 else 0 end
        limit 20
        """
    ).fetchall()
    return [f"job {job_id} is {status} with {n} message(s)" for job_id, status, n in rows]


def transition_problems(conn: psycopg.Connection) -> list[str]:
    """Every audited change checked against the state machine, and each job's
    changes checked to form one chain ending in at most one terminal state."""
    problems = []
    illegal = conn.execute(
        """
        select job_id, old_status, new_status, old_retry, new_retry
        from chaos.transitions
        where not (
            (old_status is null and new_status = 'pending' and new_retry = 0)
            or (old_status, new_status) in (
                ('pending', 'processing'), ('processing', 'completed'),
                ('processing', 'failed'), ('pending', 'failed')
            )
            or (old_status = 'processing' and new_status = 'pending' and new_retry > old_retry)
            or (old_status = 'pending' and new_status = 'pending' and new_retry > old_retry)
        )
        limit 20
        """
    ).fetchall()
    problems += [
        f"illegal change {r[1]} -> {r[2]} (retry {r[3]} -> {r[4]}) of job {r[0]}" for r in illegal
    ]
    broken = value(
        conn,
        """
        select count(*) from (
            select old_status, lag(new_status) over (partition by job_id order by id) as before
            from chaos.transitions
        ) as t
        where t.before is not null and t.before is distinct from t.old_status
        """,
    )
    if broken:
        problems.append(f"{broken} change(s) do not follow the job's previous state")
    terminal_twice = value(
        conn,
        """
        select count(*) from (
            select job_id from chaos.transitions
            where new_status in ('completed', 'failed')
            group by job_id having count(*) > 1
        ) as t
        """,
    )
    if terminal_twice:
        problems.append(f"{terminal_twice} job(s) reached a terminal state twice")
    return problems


def check_promise(
    url: str,
    scenario: str,
    submitted: Submitted,
    exec_dir: Path,
    *,
    cancelled: Iterable[uuid.UUID] = (),
) -> Figures:
    """Counts what the database holds against what was submitted and what the
    handlers ran; every broken promise goes into Figures.problems."""
    fig = Figures(scenario)
    committed = submitted.ids()
    fig.submitted = len(committed)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "select id, status, error_type, data_references, job_parameters from jobs"
        ).fetchall()
        jobs = {r[0]: r for r in rows}
        fig.messages_left = value(conn, "select count(*) from jobqueue.queue_messages")
        fig.problems += transition_problems(conn)
        terminal_twice = value(
            conn,
            "select count(*) from (select job_id from chaos.transitions"
            " where new_status in ('completed', 'failed') group by job_id"
            " having count(*) > 1) as t",
        )
    extra = set(jobs) - committed
    if len(extra) > submitted.in_doubt:
        fig.problems.append(
            f"{len(extra)} job(s) nobody submitted (in doubt: {submitted.in_doubt})"
        )
    fig.submitted += len(extra)  # committed after all, though nobody saw the commit
    fig.notes["in_doubt_committed"] = len(extra)
    missing = committed - set(jobs)
    unfinished = [i for i, r in jobs.items() if r[1] not in ("completed", "failed")]
    fig.lost = len(missing) + len(unfinished)
    if missing:
        fig.problems.append(f"{len(missing)} committed job(s) are missing")
    if unfinished:
        fig.problems.append(f"{len(unfinished)} job(s) never finished")
    by_type: Counter[str] = Counter()
    for r in jobs.values():
        if r[1] == "completed":
            fig.completed += 1
        elif r[1] == "failed":
            fig.failed += 1
            by_type[r[2] or "None"] += 1
    fig.failed_by_type = dict(sorted(by_type.items()))
    if fig.messages_left:
        fig.problems.append(f"{fig.messages_left} message(s) left in the queue")

    runs = read_executions(exec_dir)
    per_attempt: Counter[tuple[uuid.UUID, int]] = Counter((r.job_id, r.msg_id) for r in runs)
    per_job: dict[uuid.UUID, list[Execution]] = defaultdict(list)
    for r in runs:
        per_job[r.job_id].append(r)
    twice = [k for k, n in per_attempt.items() if n > 1]
    if twice:
        fig.problems.append(f"{len(twice)} attempt(s) (msg_id) ran in two runners: {twice[:5]}")
    not_last = 0
    wrong = 0
    cancelled_ids = set(cancelled)
    for job_id, r in jobs.items():
        params = r[4] or {}
        if r[1] == "completed":
            if params.get("fail") or params.get("hostile"):
                wrong += 1
            result = r[3] or {}
            attempts = per_job.get(job_id, [])
            last = max((a.msg_id for a in attempts), default=None)
            by_msg = [a for a in attempts if a.msg_id == result.get("msg_id") and a.ended == "ok"]
            if last is None or result.get("msg_id") != last or not by_msg:
                not_last += 1
        asked_to_fail = params.get("fail") or params.get("hostile") or params.get("hostile_result")
        if r[1] == "failed" and not asked_to_fail:
            # Only a fault may fail a job that was not asked to fail: its
            # attempts timed out (a hung handler, or no retry left), or it
            # was cancelled.
            allowed = {"JobTimeout", "Cancelled"} if job_id in cancelled_ids else {"JobTimeout"}
            wrong += r[2] not in allowed
        if job_id in cancelled_ids and r[1] != "failed":
            wrong += 1
    if not_last:
        fig.problems.append(f"{not_last} completed job(s) hold a result not from their last run")
    if wrong:
        fig.problems.append(f"{wrong} job(s) with the wrong outcome for their parameters")
    fig.duplicated = len(twice) + terminal_twice + not_last
    # Runs of a job after a run that did not fail (it succeeded, or its
    # process died): the at-least-once re-executions after a lost lease.
    fig.reexecuted = sum(
        1
        for attempts in per_job.values()
        if any(a.ended != "fail" for a in sorted(attempts, key=lambda a: a.msg_id)[:-1])
    )
    fig.notes["executions"] = len(runs)
    return fig


def runner_log_problems(runners: Iterable[RunnerProc]) -> list[str]:
    """A runner must not crash, print a traceback of its own, or log an
    outage more than once."""
    problems = []
    for runner in runners:
        text = runner.log()
        for marker in ("Traceback", "Exception in thread", "CRITICAL"):
            if marker in text:
                at = text.index(marker)
                problems.append(f"{runner.name}: {marker!s}: {text[at : at + 800]}")
        longest = max((len(line) for line in text.splitlines()), default=0)
        if longest > 4000:
            problems.append(f"{runner.name}: a log line of {longest} characters")
        down = text.count("database unreachable")
        up = text.count("reachable again")
        if down - up not in (0, 1):
            problems.append(f"{runner.name}: {down} outage line(s) for {up} recoveries")
    return problems


def outage_lines(runners: Iterable[RunnerProc]) -> int:
    return sum(r.log().count("database unreachable") for r in runners)


def count_by_status(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return dict(conn.execute("select status, count(*) from jobs group by status").fetchall())


def all_finished(db: Reconnecting, expected: int) -> bool:
    """True once at least `expected` jobs exist and every one is finished."""

    def probe(conn: psycopg.Connection) -> bool:
        row = conn.execute(
            "select count(*), count(*) filter (where status in ('pending', 'processing')) from jobs"
        ).fetchone()
        assert row is not None
        return row[0] >= expected and row[1] == 0

    try:
        return db.call(probe, timeout=1)
    except psycopg.Error as exc:
        if is_connection_loss(exc):
            return False
        raise
