"""Scenario 5, scale: the cost of submit_job, dequeue_jobs, complete_job and
recover_orphans() with few versus many finished jobs in public.jobs (and
the same number pending), in two databases of their own, one per state,
measured alternately so that the machine's drift falls on both alike.

Cost is the server's execution time per call and the shared buffers it
touched, from EXPLAIN (ANALYZE, BUFFERS) around each call: neither the
commit's fsync nor the network blurs it, and the median over many calls
shrugs off a neighbour's burst. Then one call of each runs under
auto_explain (ANALYZE, BUFFERS, nested statements), and the plans of the
statements inside are kept to show which index each one uses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg

from bench import db, queries
from bench.settings import Settings
from bench.stats import median

STATEMENTS = ("submit_job", "dequeue_jobs", "complete_job", "recover_orphans")
_LOAD_CHUNK = 250_000
# recover_orphans() calls a helper per queue message; under auto_explain
# only its statements slower than this are kept (the helper takes ~5 us).
_RECOVER_EXPLAIN_MIN_MS = 0.2


@dataclass(frozen=True)
class Cost:
    ms: float  # median execution time per call
    blocks: float  # median shared buffers hit or read per call


def count_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def build(url: str, finished: int, pending: int, *, stale: bool = False) -> None:
    """`finished` completed or failed jobs (older), then `pending` jobs
    submitted through submit_jobs() (newer, each with its message). With
    `stale`, the statistics are taken before the pending jobs arrive and
    autovacuum is off for the table, as after a burst of submissions that
    has not yet reached the auto-analyze threshold; analyze() ends that."""
    with db.connection(url) as conn:
        conn.execute(queries.get("jobs_reset"))
        conn.execute(queries.get("queue_purge"))
        conn.execute(queries.get("replica_role_on"))
        for first in range(1, finished + 1, _LOAD_CHUNK):
            last = min(finished, first + _LOAD_CHUNK - 1)
            conn.execute(queries.get("scale_finished_insert"), {"first": first, "last": last})
        conn.execute(queries.get("replica_role_off"))
        if stale:
            conn.execute(queries.get("vacuum_jobs"))
            conn.execute(queries.get("jobs_autovacuum_off"))
    db.submit_many(url, pending, chunk=10_000, analyze=not stale)


def analyze(url: str) -> None:
    """Fresh statistics, and autovacuum back on."""
    with db.connection(url) as conn:
        conn.execute(queries.get("jobs_autovacuum_reset"))
        conn.execute(queries.get("vacuum_jobs"))


# Untimed calls first on each new connection, as a runner's long-lived one
# has made them: the first calls compile the functions and plan their
# statements, which the measure of the main states leaves out too.
WARM_UP = 10


def _submit() -> tuple[str, dict[str, Any]]:
    params = {"job_type": "sample_task", "job_parameters": "{}", "user_id": db.USER_ID}
    return queries.product("job_submit"), params


def _dequeue(batch_size: int) -> tuple[str, dict[str, Any]]:
    params = {"batch_size": batch_size, "visibility_timeout": db.VISIBILITY_TIMEOUT}
    return queries.product("job_dequeue"), params


def _complete(job_id: Any, msg_id: int) -> tuple[str, dict[str, Any]]:
    params = {"job_id": job_id, "data_references": None, "msg_id": msg_id}
    return queries.product("job_complete"), params


def _recover() -> tuple[str, None]:
    return queries.get("jobs_recover"), None


def stale_dequeue(url: str, calls: int) -> Cost:
    """dequeue_jobs(1) while the statistics predate the pending jobs."""
    with db.connection(url) as conn:
        for _ in range(WARM_UP):
            conn.execute(*_dequeue(1)).fetchall()
        costs = [_timed(conn, *_dequeue(1)) for _ in range(calls)]
    return Cost(median([c.ms for c in costs]), median([c.blocks for c in costs]))


IN_FLIGHT = 2000


def complete_in_flight(url: str, calls: int, in_flight: int = IN_FLIGHT) -> Cost:
    """complete_job while `in_flight` other jobs are processing (taken with
    dequeue_jobs(100), untimed), then the rest completed, untimed."""
    with db.connection(url) as conn:
        for _ in range(in_flight // 100):
            conn.execute(*_dequeue(100)).fetchall()
        taken = conn.execute(queries.get("scale_processing")).fetchall()
        for job_id, msg_id in taken[:WARM_UP]:
            conn.execute(*_complete(job_id, msg_id))
        costs = [
            _timed(conn, *_complete(job_id, msg_id))
            for job_id, msg_id in taken[WARM_UP : WARM_UP + calls]
        ]
        for job_id, msg_id in taken[WARM_UP + calls :]:
            conn.execute(*_complete(job_id, msg_id))
    return Cost(median([c.ms for c in costs]), median([c.blocks for c in costs]))


def _timed(conn: psycopg.Connection[Any], query: str, params: dict[str, Any] | None) -> Cost:
    """The call `query`, run under EXPLAIN ANALYZE: its cost by the server."""
    explained = f"{queries.get('explain_analyze')}\n{query}"
    (doc,) = conn.execute(explained, params).fetchone()  # type: ignore[misc]
    top = doc[0]
    plan = top["Plan"]
    return Cost(top["Execution Time"], plan["Shared Hit Blocks"] + plan["Shared Read Blocks"])


def measure(url: str, s: Settings) -> dict[str, Cost]:
    """The median cost per call of each statement."""
    samples: dict[str, list[Cost]] = {name: [] for name in STATEMENTS}
    with db.connection(url) as conn:
        for _ in range(s.scale_calls):
            samples["submit_job"].append(_timed(conn, *_submit()))
        for _ in range(s.scale_calls):
            samples["dequeue_jobs"].append(_timed(conn, *_dequeue(1)))
        for job_id, msg_id in conn.execute(queries.get("scale_processing")).fetchall():
            samples["complete_job"].append(_timed(conn, *_complete(job_id, msg_id)))
        for _ in range(s.scale_recover_calls):
            samples["recover_orphans"].append(_timed(conn, *_recover()))
    return {
        name: Cost(median([c.ms for c in costs]), median([c.blocks for c in costs]))
        for name, costs in samples.items()
    }


def explain(url: str) -> dict[str, list[str]]:
    """One call of each statement under auto_explain: the plans of the
    statements inside, innermost first, the call itself last."""
    plans: dict[str, list[str]] = {}
    notices: list[str] = []
    with db.connection(url) as conn:
        # Warm the session first (catalog caches, cached plans), so that the
        # plans show a call as every call but a session's first runs.
        conn.execute(*_submit())
        for job_id, msg_id, *_ in conn.execute(*_dequeue(1)).fetchall():
            conn.execute(*_complete(job_id, msg_id))
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        conn.execute(queries.get("auto_explain_load"))
        conn.execute(queries.get("auto_explain_on"), {"min_ms": "0"})

        def run(name: str, call: tuple[str, dict[str, Any] | None]) -> list[tuple[Any, ...]]:
            notices.clear()
            cur = conn.execute(*call)
            rows = cur.fetchall() if cur.description else []
            plans[name] = [n for n in notices if "plan:" in n]
            return rows

        run("submit_job", _submit())
        taken = run("dequeue_jobs", _dequeue(1))
        for job_id, msg_id, *_ in taken[:1]:
            run("complete_job", _complete(job_id, msg_id))
        conn.execute(queries.get("auto_explain_on"), {"min_ms": str(_RECOVER_EXPLAIN_MIN_MS)})
        run("recover_orphans", _recover())
        conn.execute(queries.get("auto_explain_off"))
    return plans


_DURATION = re.compile(r"duration: ([0-9.]+) ms")
_NODE = re.compile(
    r"^(?P<indent>\s*)(?:->\s+)?(?P<node>[^(]+?)\s+\(cost=[^)]*\)\s+"
    r"\(actual (?:time=[0-9.]+\.\.[0-9.]+ )?rows=(?P<rows>\d+) loops=(?P<loops>\d+)\)"
)
_BUFFERS = re.compile(r"^\s*Buffers: (?P<buffers>.*)$")
# Nodes that read or write a table or an index.
_TABLE_NODE = re.compile(
    r"^(?:Seq|Index|Index Only|Bitmap Heap|Bitmap Index|Tid|Tid Range) Scan"
    r"|^(?:Insert|Update|Delete) on |^LockRows"
)


def plan_query(plan: str) -> str:
    """The Query Text of an auto_explain plan, on one line."""
    lines = plan.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Query Text:"):
            rest = [line[len("Query Text:") :]]
            for more in lines[i + 1 :]:
                if _NODE.match(more):
                    break
                rest.append(more)
            return " ".join(" ".join(rest).split())
    return ""


def key_lines(
    plan: str, width: int = 96, calls: int = 1, total_ms: float | None = None, top: bool = False
) -> list[str]:
    """The lines worth printing of one auto_explain plan: its duration and
    query, then each node that reads or writes a table, with its rows and
    buffers. Empty when the plan touches no table, unless it is the `top`
    call itself (then its first node, which carries the call's totals)."""
    lines = plan.splitlines()
    duration = _DURATION.search(plan)
    ms = total_ms if total_ms is not None else float(duration[1]) if duration else 0.0
    query = plan_query(plan)
    count = f" (x{calls})" if calls > 1 else ""
    room = width - 14 - len(count)
    if len(query) > room:
        query = query[: room - 3] + "..."
    nodes = []
    for i, line in enumerate(lines):
        node = _NODE.match(line)
        if not node or not (_TABLE_NODE.search(node["node"].strip()) or (top and not nodes)):
            continue
        buffers = ""
        for follow in lines[i + 1 : i + 6]:
            if _NODE.match(follow):
                break
            found = _BUFFERS.match(follow)
            if found:
                buffers = "  " + found["buffers"]
                break
        loops = f" x{node['loops']}" if node["loops"] != "1" else ""
        nodes.append(f"{'':13}{node['node'].strip()}  rows={node['rows']}{loops}{buffers}")
    if not nodes:
        return []
    return [f"{ms:8.3f} ms  {query}{count}", *nodes]


def summarize(plans: list[str]) -> list[str]:
    """key_lines of each distinct statement (by query text), in first-seen
    order, with its number of calls and their total duration."""
    groups: dict[str, list[str]] = {}
    for plan in plans:
        groups.setdefault(plan_query(plan), []).append(plan)
    out = []
    last = len(groups) - 1
    for i, same in enumerate(groups.values()):
        total = sum(float(m[1]) for p in same if (m := _DURATION.search(p)))
        out.extend(key_lines(same[0], calls=len(same), total_ms=total, top=i == last))
    return out


def run(server_url: str, s: Settings) -> dict[str, Any]:
    """Builds both states, measures them alternately s.runs times; returns
    {state label: {"costs": ..., "plans": ...}}, and under "extra" two more
    looks at the large state: dequeue_jobs while its statistics predate the
    pending jobs (measured first), and complete_job with IN_FLIGHT jobs
    processing (measured last)."""
    urls: dict[int, str] = {}
    for finished in (s.scale_small, s.scale_large):
        url = db.recreate(server_url, s.scale_database(finished))
        db.install(url)
        build(url, finished, s.scale_pending, stale=finished == s.scale_large)
        urls[finished] = url
    large = urls[s.scale_large]
    stale = [stale_dequeue(large, max(5, s.scale_calls // 10)) for _ in range(s.runs)]
    analyze(large)
    runs: dict[int, list[dict[str, Cost]]] = {finished: [] for finished in urls}
    for _ in range(s.runs):
        for finished, url in urls.items():
            runs[finished].append(measure(url, s))
    in_flight = [complete_in_flight(large, max(10, s.scale_calls // 4)) for _ in range(s.runs)]
    states: dict[str, Any] = {}
    for finished, url in urls.items():
        got = runs[finished]
        states[count_label(finished)] = {
            "finished": finished,
            "pending": s.scale_pending,
            "samples_ms": {name: [r[name].ms for r in got] for name in STATEMENTS},
            "costs": {
                name: {
                    "ms": median([r[name].ms for r in got]),
                    "blocks": median([r[name].blocks for r in got]),
                }
                for name in STATEMENTS
            },
            "plans": {name: summarize(plans) for name, plans in explain(url).items()},
        }
    if not s.keep:
        for finished in urls:
            db.drop(server_url, s.scale_database(finished))
    states["extra"] = {
        "stale_dequeue": {
            "label": f"dequeue_jobs @{count_label(s.scale_large)} finished, statistics older "
            f"than the {s.scale_pending:,} pending jobs",
            "samples_ms": [c.ms for c in stale],
            "blocks": median([c.blocks for c in stale]),
        },
        "complete_in_flight": {
            "label": f"complete_job @{count_label(s.scale_large)} finished, "
            f"{IN_FLIGHT:,} jobs processing",
            "samples_ms": [c.ms for c in in_flight],
            "blocks": median([c.blocks for c in in_flight]),
        },
    }
    return states
