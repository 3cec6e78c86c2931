"""What-if: each proposed change to the SQL package, prototyped in
bench/sql/whatif.sql and applied on top of a fresh install in a database of
its own. The measure is the backend's CPU per job (bench.cpu), taken in
pairs: each workload runs on the installed package and on the variant back
to back, and the change is the median of the pairs' ratios, so that the
load of a shared machine, which drifts over minutes, falls on both sides
alike. The one-row INSERT, which no variant touches, shows what is left of
the noise. These numbers say what each change would buy; they are not the
package's figures."""

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
        "no SET search_path on the package's non-definer functions (bodies are schema-qualified)",
        ("reset_search_path",),
    ),
    Variant(
        "complete_job_direct",
        "complete_job in two statements (DELETE the message, UPDATE the job) rather than "
        "through complete_jobs()",
        ("complete_job_direct",),
    ),
    Variant(
        "submit_job_direct",
        "submit_job as one INSERT with the same checks, rather than through submit_jobs()",
        ("submit_job_direct",),
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
        ("complete_job_direct", "submit_job_direct", "reset_search_path"),
    ),
)

HOT = "hot_jobs"


def _prepare(server_url: str, name: str, variant: Variant) -> str:
    url = db.recreate(server_url, name)
    db.install(url)
    baselines.prepare(url)
    with db.connection(url) as conn:
        for block in variant.blocks:
            conn.execute(queries.whatif_block(block))
    return url


def _hot_share(url: str, s: Settings, work: cpu.Workload) -> tuple[float, float]:
    """(CPU us per job, HOT share of the updates on public.jobs) of one workload."""
    before = db.update_stats(url)
    us = cpu.measure(url, s, work)
    time.sleep(0.5)  # the measuring backend has exited and flushed its counters
    after = db.update_stats(url)
    upd = after["jobs"][0] - before.get("jobs", (0, 0))[0]
    hot = after["jobs"][1] - before.get("jobs", (0, 0))[1]
    return us, (hot / upd if upd else 0.0)


def run(server_url: str, s: Settings, progress: Any = print) -> dict[str, Any]:
    works = [w for w in cpu.workloads(s) if w.key != "claim_finish"]
    metrics = {w.key: f"{w.label}, backend CPU us/job" for w in works}
    metrics[HOT] = "HOT share of the updates on public.jobs during drain_1"
    base_name, variant_name = f"{s.database}_whatif_base", f"{s.database}_whatif"
    base_url = _prepare(server_url, base_name, VARIANTS[0])
    # Per variant and metric: the variant's values, the paired installed values, the ratios.
    got: dict[str, dict[str, dict[str, list[float]]]] = {
        v.name: {m: {"value": [], "base": [], "ratio": []} for m in metrics} for v in VARIANTS[1:]
    }
    errors: dict[str, str] = {}
    chosen = [v for v in VARIANTS[1:] if v.name in s.whatif]
    for i in range(s.runs):
        for variant in chosen:
            if variant.name in errors:
                continue
            progress(f"what-if {variant.name} (run {i + 1} of {s.runs})")
            try:
                url = _prepare(server_url, variant_name, variant)
                for work in works:
                    if work.key == "drain_1":
                        base, base_hot = _hot_share(base_url, s, work)
                        value, hot = _hot_share(url, s, work)
                        got[variant.name][HOT]["value"].append(hot)
                        got[variant.name][HOT]["base"].append(base_hot)
                    else:
                        base = cpu.measure(base_url, s, work)
                        value = cpu.measure(url, s, work)
                    entry = got[variant.name][work.key]
                    entry["value"].append(value)
                    entry["base"].append(base)
                    entry["ratio"].append(value / base if base else 0.0)
            except Exception as exc:  # a stale prototype is reported, not fatal
                errors[variant.name] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    if not s.keep:
        db.drop(server_url, variant_name)
        db.drop(server_url, base_name)
    out: dict[str, Any] = {"metrics": metrics, "variants": []}
    installed: dict[str, list[float]] = {m: [] for m in metrics}
    for entries in got.values():
        for m, entry in entries.items():
            installed[m].extend(entry["base"])
    out["variants"].append(
        {
            "name": VARIANTS[0].name,
            "description": VARIANTS[0].description,
            "blocks": [],
            "error": None,
            "median": {m: median(v) if v else None for m, v in installed.items()},
            "change": {},
        }
    )
    for variant in chosen:
        entries = got[variant.name]
        out["variants"].append(
            {
                "name": variant.name,
                "description": variant.description,
                "blocks": list(variant.blocks),
                "error": errors.get(variant.name),
                "median": {
                    m: median(e["value"]) if e["value"] else None for m, e in entries.items()
                },
                "change": {
                    m: median(e["ratio"]) - 1 for m, e in entries.items() if e["ratio"] and m != HOT
                },
                "samples": entries,
            }
        )
    return out
