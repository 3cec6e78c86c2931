"""What-if: each proposed change to the SQL package, prototyped in
bench/sql/whatif.sql and applied on top of a fresh install in a database of
its own, measured with the same workloads as the installed package in the
same run, variants interleaved run by run. The measure is the backend's CPU
per job (bench.cpu), steady on a shared machine; the baselines' workloads,
which no variant touches, show how steady. These numbers say what each
change would buy; they are not the package's figures."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench import baselines, cpu, db, queries
from bench.settings import Settings
from bench.stats import median


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    blocks: tuple[str, ...]


VARIANTS = (
    Variant("installed", "sql/install.sql as it is", ()),
    Variant(
        "no_notify",
        "no NOTIFY trigger on the queue table (what the wake-up costs)",
        ("drop_notify",),
    ),
    Variant(
        "no_set_search_path",
        "no SET search_path on the package's functions (bodies are schema-qualified)",
        ("reset_search_path",),
    ),
    Variant(
        "validate_in_statement",
        "parameters validated in the statement-level trigger; row trigger only WHEN user_id "
        "is NULL or status is not pending",
        ("validate_triggers", "enqueue_validating"),
    ),
    Variant(
        "static_queue_sql",
        "messages sent, read and deleted with static SQL on the queue table (no EXECUTE format)",
        ("enqueue_static", "pgmq_static"),
    ),
    Variant(
        "lean_dequeue_complete",
        "dequeue: one UPDATE ... WHERE status = 'pending' per job; complete: DELETE the "
        "message, then UPDATE the job",
        ("lean_dequeue", "lean_complete"),
    ),
    Variant(
        "submit_job_direct", "submit_job as one INSERT, not via submit_jobs", ("submit_job_direct",)
    ),
    Variant(
        "no_status_idx",
        "for reference only (the data model requires jobs_status_idx): no index on status, "
        "fillfactor 80, so that status changes can be HOT",
        ("drop_status_idx", "jobs_fillfactor"),
    ),
    Variant(
        "proposed",
        "all proposed changes together (not no_notify, not no_status_idx)",
        (
            "validate_triggers",
            "enqueue_validating_static",
            "pgmq_static",
            "lean_dequeue",
            "lean_complete",
            "submit_job_direct",
            "reset_search_path",
        ),
    ),
)

HOT = "hot_jobs"


def _prepare(server_url: str, s: Settings, variant: Variant) -> str:
    url = db.recreate(server_url, f"{s.database}_whatif")
    db.install(url)
    baselines.prepare(url)
    with db.connection(url) as conn:
        for block in variant.blocks:
            conn.execute(queries.whatif_block(block))
    return url


def measure(url: str, s: Settings) -> dict[str, float]:
    """Backend CPU us per job of every workload, and the HOT share of the
    updates on public.jobs during drain_1."""
    out = {}
    for work in cpu.workloads(s):
        before = db.update_stats(url) if work.key == "drain_1" else None
        out[work.key] = cpu.measure(url, s, work)
        if before is not None:
            time.sleep(0.5)  # the measuring backend has exited and flushed its counters
            after = db.update_stats(url)
            upd = after["jobs"][0] - before.get("jobs", (0, 0))[0]
            hot = after["jobs"][1] - before.get("jobs", (0, 0))[1]
            out[HOT] = hot / upd if upd else 0.0
    return out


def run(server_url: str, s: Settings, progress: Any = print) -> dict[str, Any]:
    metrics = {w.key: f"{w.label}, backend CPU us/job" for w in cpu.workloads(s)}
    metrics[HOT] = "HOT share of the updates on public.jobs during drain_1"
    samples: dict[str, dict[str, list[float]]] = {
        v.name: {m: [] for m in metrics} for v in VARIANTS
    }
    errors: dict[str, str] = {}
    for i in range(s.runs):
        for variant in VARIANTS:
            if variant.name in errors:
                continue
            progress(f"what-if {variant.name} (run {i + 1} of {s.runs})")
            try:
                url = _prepare(server_url, s, variant)
                for metric, value in measure(url, s).items():
                    samples[variant.name][metric].append(value)
            except Exception as exc:  # a stale prototype is reported, not fatal
                errors[variant.name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    if not s.keep:
        db.drop(server_url, f"{s.database}_whatif")
    out: dict[str, Any] = {"metrics": metrics, "variants": []}
    for variant in VARIANTS:
        values = samples[variant.name]
        out["variants"].append(
            {
                "name": variant.name,
                "description": variant.description,
                "blocks": list(variant.blocks),
                "error": errors.get(variant.name),
                "median": {m: median(v) if v else None for m, v in values.items()},
                "samples": values,
            }
        )
    return out
