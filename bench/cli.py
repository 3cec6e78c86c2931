"""python -m bench: runs the scenarios, prints the table, writes the results."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import baselines, cpu, db, drain, latency, profile, report, scale, submit
from bench.results import Results, Target
from bench.settings import SCENARIOS, Settings
from bench.stats import median, percentile

RATIO_MIN = "ratio_min"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="jobqueue's benchmark: every scenario against pgbench baselines measured "
        "in the same run, on databases of its own on the server of DATABASE_URL.",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="the server to use (default $DATABASE_URL); its own database is not touched",
    )
    parser.add_argument(
        "--database",
        default="jobqueue_bench",
        help="name of the benchmark database (dropped and recreated, as are NAME_scale_N) "
        "(default %(default)s)",
    )
    parser.add_argument("--runs", type=int, help="runs per figure, the median is kept (default 3)")
    parser.add_argument("--seconds", type=float, help="length of one timed measurement (default 6)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    parser.add_argument(
        "--only",
        help=f"comma-separated scenarios to run, of: {', '.join(SCENARIOS)} (default all)",
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="also drain with 1, 2, 4 runner processes x concurrency 1, 2, 4, 8",
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    parser.add_argument(
        "--results",
        type=Path,
        help="where to write the JSON results (default bench/out/results.json)",
    )
    parser.add_argument(
        "--chart", type=Path, help="where to write the PNG chart (default docs/img/bench.png)"
    )
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    if not args.database_url:
        sys.exit("DATABASE_URL is not set (or pass --database-url)")
    s = Settings(server_url=args.database_url, database=args.database)
    if args.quick:
        s = s.quick_run()
        s = replace(
            s,
            results_path=s.out_dir / "results-quick.json",
            chart_path=s.out_dir / "bench-quick.png",
        )
    changes: dict[str, Any] = {"scaling": args.scaling, "keep": args.keep}
    if args.runs:
        changes["runs"] = args.runs
    if args.seconds:
        changes["seconds"] = args.seconds
    if args.only:
        wanted = tuple(x.strip() for x in args.only.split(",") if x.strip())
        unknown = sorted(set(wanted) - set(SCENARIOS))
        if unknown:
            sys.exit(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
        changes["scenarios"] = wanted
    if args.results:
        changes["results_path"] = args.results
    if args.chart:
        changes["chart_path"] = args.chart
    return replace(s, **changes)


class Bench:
    def __init__(self, s: Settings) -> None:
        self.s = s
        self.results = Results()
        self.t0 = time.monotonic()
        self.url = ""

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {text}", flush=True)

    def attempt(self, scenario: str, fn: Callable[[], Any]) -> Any:
        """Runs one measurement; a failure is reported and the run goes on."""
        try:
            return fn()
        except Exception as exc:  # one broken scenario must not sink the rest
            traceback.print_exc(file=sys.stderr)
            reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
            self.say(f"{scenario} failed: {reason}")
            self.results.skip(scenario, f"failed: {reason}")
            return None

    def measure(
        self, scenario: str, fn: Callable[[], float], key: str, label: str, unit: str, **kw: Any
    ) -> None:
        """One sample of figure `key`, unless the measurement failed."""
        v = self.attempt(scenario, fn)
        if v is not None:
            self.results.add(key, v, label, unit, **kw)

    def wants(self, scenario: str) -> bool:
        return scenario in self.s.scenarios

    # -- set-up ------------------------------------------------------------------

    def setup(self) -> None:
        s = self.s
        source = db.source_state()
        db.snapshot(s.out_dir / "snapshot")
        self.say(f"creating database {s.database} and installing sql/install.sql")
        self.url = db.recreate(s.server_url, s.database)
        db.install(self.url)
        baselines.prepare(self.url)
        db.execute(self.url, "bench_job_type")
        server = db.server_settings(self.url)
        self.results.meta = {
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "server": server,
            "runs": s.runs,
            "seconds_per_measurement": s.seconds,
            "quick": s.quick,
            "command": " ".join(["python -m bench", *sys.argv[1:]]),
            "source": source,
            "settings": {
                k: v
                for k, v in vars(s).items()
                if k not in ("server_url", "out_dir", "results_path", "chart_path")
            },
        }
        print(report.durability(server), flush=True)

    # -- the runs ------------------------------------------------------------------

    def one_run(self, i: int) -> None:
        s, r, url = self.s, self.results, self.url
        self.say(f"run {i + 1} of {s.runs}")
        need_a = self.wants("baselines") or self.wants("submit") or self.wants("batch")
        need_b = self.wants("baselines") or self.wants("drain")
        if need_a:
            self.say("  baseline (a): one-row INSERT per transaction")
            self.measure(
                "baseline (a)",
                lambda: baselines.insert_one(url, s),
                "baseline_a",
                "(a) INSERT one row per transaction, 1 client",
                "tx/s",
            )
        if self.wants("submit"):
            self.say("  1: submit_job from pgbench")
            self.measure(
                "1 submit_job (pgbench)",
                lambda: submit.submit_one_pgbench(url, s),
                "submit_pgbench",
                "1 submit_job, pgbench, 1 client",
                "jobs/s",
                baseline="baseline_a",
                target=Target(RATIO_MIN, 0.7),
            )
            self.say("  1: its floor, the two rows alone (no triggers, checks or functions)")
            self.measure(
                "1 floor",
                lambda: submit.floor_one(url, s),
                "submit_floor",
                "1 floor: job + message rows, plain INSERT, no triggers",
                "jobs/s",
                baseline="baseline_a",
                note="the data model's writes alone: no submit_job can be faster",
            )
            self.say("  1: submit_job from Python (JobQueueService)")
            self.measure(
                "1 submit_job (Python)",
                lambda: submit.submit_one_python(url, s),
                "submit_python",
                "1 submit_job, Python (JobQueueService), 1 client",
                "jobs/s",
                baseline="baseline_a",
                note="reported beside the pgbench figure; no target",
            )
        if self.wants("batch"):
            self.say(f"  2: submit_jobs, batches of {s.batch_size}")
            self.measure(
                "2 submit_jobs",
                lambda: submit.submit_batch(url, s),
                "submit_batch",
                f"2 submit_jobs x{s.batch_size}, 1 client",
                "jobs/s",
                baseline="baseline_a",
                target=Target(RATIO_MIN, 15),
            )
            self.say(f"  2: its floor, batches of {s.batch_size} rows alone")
            self.measure(
                "2 floor",
                lambda: submit.floor_batch(url, s),
                "submit_batch_floor",
                f"2 floor: x{s.batch_size} job + message rows, no triggers",
                "jobs/s",
                baseline="baseline_a",
                note="the data model's writes alone: no submit_jobs can be faster",
            )
        if need_b:
            clients, each = baselines.claim_jobs(s)
            self.say(f"  baseline (b): claim + finish, {clients} clients, {clients * each} jobs")
            self.measure(
                "baseline (b)",
                lambda: baselines.claim_finish(url, s),
                "baseline_b",
                f"(b) claim + finish, {clients} clients",
                "jobs/s",
            )
        if self.wants("drain"):
            self.drain_run()
        if self.wants("latency"):
            self.say(
                f"  4: pickup latency, {s.latency_jobs} jobs {s.latency_gap * 1000:.0f} ms apart"
            )
            got = self.attempt("4 pickup latency", lambda: latency.pickup(url, s, s.out_dir))
            if got is not None:
                self.record_pickup(got)
            self.say(
                "  4: pickup latency when polling (--no-listen, as behind a transaction pooler)"
            )
            got = self.attempt(
                "4 pickup latency, polling",
                lambda: latency.pickup(url, s, s.out_dir, listen=False),
            )
            if got is not None:
                r.add(
                    "pickup_poll_p50",
                    percentile(got.latencies_ms, 50),
                    "4 pickup latency p50, --no-listen (polling)",
                    "ms",
                    note="the fallback behind a transaction pooler: about half the poll interval",
                )
                r.add(
                    "pickup_poll_p95",
                    percentile(got.latencies_ms, 95),
                    "4 pickup latency p95, --no-listen (polling)",
                    "ms",
                )

    def drain_run(self) -> None:
        s, r, url = self.s, self.results, self.url
        c = s.drain_concurrency
        batch = 10
        self.say(f"  3: SQL API drain from pgbench, dequeue_jobs({batch}), {c} clients")
        got = self.attempt("3 SQL drain", lambda: drain.sql_drain(url, s, batch))
        if got is not None:
            r.add(
                "sql_drain",
                got.rate,
                f"3 SQL API drain (pgbench), dequeue_jobs({batch}), {c} clients",
                "jobs/s",
                baseline="baseline_b",
                note="no runner: the ceiling the SQL sets",
            )
            r.sections.setdefault("hot", {}).setdefault("sql_drain", []).append(
                {"jobs": got.hot_jobs, "queue": got.hot_queue}
            )
        self.say(f"  3: its floor, the writes alone in batches of {batch}, {c} clients")
        self.measure(
            "3 floor",
            lambda: drain.floor_drain(url, s, batch).rate,
            "drain_floor",
            f"3 floor: the drain's writes alone, batches of {batch}, {c} clients",
            "jobs/s",
            baseline="baseline_b",
            note="the data model's writes alone, no triggers: no drain can be faster",
        )
        self.say(f"  3: drain {s.drain_jobs} jobs with jobqueue run --burst --concurrency {c}")
        got = self.attempt(
            "3 drain (jobqueue run)",
            lambda: drain.runner_drain(url, s.drain_jobs, concurrency=c, log_dir=s.out_dir),
        )
        if got is None:
            return
        r.add(
            "drain",
            got.rate,
            f"3 drain, jobqueue run --concurrency {c}",
            "jobs/s",
            baseline="baseline_b",
            target=Target(RATIO_MIN, 3),
        )
        r.add(
            "busy_rss",
            got.max_rss_mb,
            "6 runner RSS, busy (peak)",
            "MB",
            target=Target("abs_max", 80),
        )
        r.add("runner_cpu", got.runner_cpu / got.jobs * 1000, "6 runner CPU per 1,000 jobs", "s")
        r.add(
            "db_cpu",
            got.backend_cpu / got.jobs * 1000,
            "6 its backends' CPU per 1,000 jobs",
            "s",
            note="sampled every 0.2 s from /proc: a slight undercount",
        )
        r.sections.setdefault("hot", {}).setdefault("drain", []).append(
            {"jobs": got.hot_jobs, "queue": got.hot_queue}
        )

    def record_pickup(self, got: latency.Pickup) -> None:
        r = self.results
        r.add(
            "pickup_p50",
            percentile(got.latencies_ms, 50),
            "4 pickup latency p50",
            "ms",
            target=Target("abs_max", 1),
        )
        r.add(
            "pickup_p95",
            percentile(got.latencies_ms, 95),
            "4 pickup latency p95",
            "ms",
            target=Target("abs_max", 2),
        )
        r.add(
            "idle_cpu",
            got.idle_cpu_pct,
            "4 idle runner CPU",
            "% of a core",
            target=Target("abs_max", 1),
            note="the runner process",
        )
        r.add(
            "idle_backend_cpu",
            got.idle_backend_cpu_pct,
            "4 idle runner's backends CPU",
            "% of a core",
        )
        r.add("idle_rss", got.idle_rss_mb, "6 runner RSS, idle", "MB", target=Target("abs_max", 80))
        section = r.sections.setdefault("latency", {"latencies_ms": [], "runs": []})
        section["latencies_ms"].extend(got.latencies_ms)
        section["runs"].append(
            {
                "to_dequeue_p50": percentile(got.to_dequeue_ms, 50),
                "dequeue_to_handler_p50": percentile(got.dequeue_to_handler_ms, 50),
                "p50": percentile(got.latencies_ms, 50),
                "p95": percentile(got.latencies_ms, 95),
                "max": max(got.latencies_ms),
            }
        )

    def scale(self) -> None:
        s, r = self.s, self.results
        self.say(
            f"5: scale, {scale.count_label(s.scale_small)} then {scale.count_label(s.scale_large)} "
            f"finished jobs, {s.scale_pending:,} pending (databases {s.database}_scale_*)"
        )
        states = self.attempt("5 scale", lambda: scale.run(s.server_url, s))
        if not states:
            return
        extra = states.pop("extra")
        r.sections["scale"] = states
        r.sections["scale_extra"] = extra
        small, large = list(states)
        for name in scale.STATEMENTS:
            r.figure(f"scale_{name}_small", f"5 {name} @{small} finished", "ms").samples.extend(
                states[small]["samples_ms"][name]
            )
            r.figure(
                f"scale_{name}_large",
                f"5 {name} @{large} finished",
                "ms",
                baseline=f"scale_{name}_small",
                target=Target("ratio_max", 1.3),
            ).samples.extend(states[large]["samples_ms"][name])

        for key, name in (
            ("stale_dequeue", "dequeue_jobs"),
            ("complete_in_flight", "complete_job"),
        ):
            r.figure(
                f"scale_{key}",
                f"5 {extra[key]['label']}",
                "ms",
                baseline=f"scale_{name}_small",
                target=Target("ratio_max", 1.3),
            ).samples.extend(extra[key]["samples_ms"])

    def profile(self) -> None:
        problem = profile.available(self.url)
        if problem:
            self.results.skip("profile", problem)
            return
        self.say("profile: pg_stat_statements (track = all) over one-client workloads")
        got = self.attempt("profile", lambda: profile.run(self.url, self.s))
        if got:
            self.results.sections["profile"] = got

    def cpu(self) -> None:
        s = self.s
        self.say("profile: backend CPU per job of each workload")
        section: dict[str, Any] = {}
        for _ in range(s.runs):
            for work in cpu.workloads(s):
                v = self.attempt(f"cpu {work.key}", lambda w=work: cpu.measure(self.url, s, w))
                if v is not None:
                    entry = section.setdefault(work.key, {"label": work.label, "samples": []})
                    entry["samples"].append(v)
        for entry in section.values():
            entry["median"] = median(entry["samples"])
        if section:
            self.results.sections["cpu"] = section

    def scaling(self) -> None:
        self.say("scaling: drain by runner processes x concurrency")
        got = self.attempt("scaling", lambda: drain.scaling(self.url, self.s, self.s.out_dir))
        if got:
            self.results.sections["scaling"] = got

    # -- output ------------------------------------------------------------------

    def finish(self) -> str:
        s, r = self.s, self.results
        r.meta["seconds_total"] = round(time.monotonic() - self.t0, 1)
        parts = [
            report.durability(r.meta.get("server", {})),
            report.source(r.meta.get("source", {})),
            f"Each figure is the median of {s.runs} run(s){' (quick run)' if s.quick else ''}; "
            f"{os.cpu_count()} CPUs; ratios matter more than absolute numbers on a shared machine.",
            "",
            report.summary(r),
        ]
        hot = r.sections.get("hot")
        if hot:
            parts.append("")
            parts.append(
                "HOT updates during the drains (share of all updates; jobs_status_idx makes "
                "every status change non-HOT):"
            )
            for key, samples in hot.items():
                jobs = sum(x["jobs"] for x in samples) / len(samples)
                queue = sum(x["queue"] for x in samples) / len(samples)
                parts.append(
                    f"  {key}: public.jobs {jobs * 100:.0f}%, queue table {queue * 100:.0f}%"
                )
        if r.skipped:
            parts.append("")
            parts.append("Not measured:")
            parts.extend(f"  {x['scenario']}: {x['reason']}" for x in r.skipped)
        for key, render in (
            ("latency", report.latency_detail),
            ("scale", report.scale_detail),
            ("cpu", report.cpu_detail),
            ("profile", report.profile_detail),
            ("scaling", report.scaling_detail),
        ):
            if key in r.sections:
                parts.append("")
                parts.append(render(r.sections[key]))
        text = "\n".join(parts)
        print("\n" + text, flush=True)
        report.write_json(r, s.results_path)
        s.out_dir.mkdir(parents=True, exist_ok=True)
        (s.out_dir / ("report-quick.txt" if s.quick else "report.txt")).write_text(text + "\n")
        problem = report.chart(r, s.chart_path)
        written = [str(s.results_path)] + ([] if problem else [str(s.chart_path)])
        print(f"\nwrote {', '.join(written)}" + (f"; no chart: {problem}" if problem else ""))
        print(f"total {r.meta['seconds_total']:.0f} s")
        return text

    def cleanup(self) -> None:
        if not self.s.keep and self.url:
            db.drop(self.s.server_url, self.s.database)


def main(argv: list[str] | None = None) -> int:
    s = settings_from(parse_args(argv))
    s.out_dir.mkdir(parents=True, exist_ok=True)
    bench = Bench(s)
    bench.setup()
    try:
        for i in range(s.runs):
            bench.one_run(i)
        if bench.wants("scale"):
            bench.scale()
        if bench.wants("profile"):
            bench.cpu()
            bench.profile()
        if s.scaling:
            bench.scaling()
    finally:
        bench.finish()
        bench.cleanup()
    return 0
