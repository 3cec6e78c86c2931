"""The run's output: the table on stdout, the JSON results, and the chart."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.results import Results
from bench.stats import median


def num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, ["-" * w for w in widths], *rows]:
        cells = [
            cell.ljust(widths[i]) if i == 0 or i == len(row) - 1 else cell.rjust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def summary(results: Results) -> str:
    rows = []
    for fig in results.figures.values():
        ratio = results.ratio(fig)
        base = results.figures.get(fig.baseline) if fig.baseline else None
        verdict = ""
        if fig.target:
            met = fig.target.met(fig.value, ratio)
            verdict = "met" if met else ("MISSED" if met is False else "?")
        rows.append(
            [
                fig.label,
                num(fig.value),
                fig.unit,
                str(len(fig.samples)),
                f"{num(base.value)} {base.unit}" if base else "",
                f"{ratio:.2f}x" if ratio is not None else "",
                fig.target.text() if fig.target else "",
                verdict,
            ]
        )
    return _table(rows, ["figure", "median", "unit", "runs", "baseline", "ratio", "target", ""])


def durability(settings: dict[str, str]) -> str:
    keys = ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
    shown = ", ".join(f"{k}={settings.get(k, '?')}" for k in keys)
    defaults = settings.get("fsync") == "on" and settings.get("synchronous_commit") == "on"
    return f"Durability: {shown} (read from the server)" + (
        ": PostgreSQL's defaults, every commit waits for its WAL flush."
        if defaults
        else ": NOT PostgreSQL's durable defaults, compare with care."
    )


def latency_detail(section: dict[str, Any]) -> str:
    runs = section.get("runs", [])
    if not runs:
        return ""
    first = median([r["to_dequeue_p50"] for r in runs])
    second = median([r["dequeue_to_handler_p50"] for r in runs])
    return (
        "Pickup latency split at the job's started_at (p50, median of runs): "
        f"commit -> the runner's dequeue_jobs begins {first:.2f} ms (NOTIFY, wake-up); "
        f"dequeue_jobs begins -> handler starts {second:.2f} ms (dequeue_jobs, hand-over "
        "to a worker thread)"
    )


def source(state: dict[str, Any]) -> str:
    changed = state.get("uncommitted") or []
    extra = f", with uncommitted changes to {', '.join(changed)}" if changed else ""
    return f"Measured: the working tree at commit {state.get('commit', '?')}{extra}."


def scale_detail(section: dict[str, Any]) -> str:
    states = list(section)
    if len(states) != 2:
        return ""
    small, large = (section[k] for k in states)
    rows = []
    for name in small["costs"]:
        a, b = small["costs"][name], large["costs"][name]
        rows.append(
            [
                name,
                f"{a['ms']:.3f}",
                f"{b['ms']:.3f}",
                f"{b['ms'] / a['ms']:.2f}x" if a["ms"] else "",
                f"{a['blocks']:.1f}",
                f"{b['blocks']:.1f}",
                f"{b['blocks'] / a['blocks']:.2f}x" if a["blocks"] else "",
            ]
        )
    out = [
        f"Scale: {states[0]} vs {states[1]} finished jobs, {small['pending']:,} pending "
        "(EXPLAIN ANALYZE per call: median server time and shared buffers)",
        _table(
            rows,
            [
                "statement",
                f"ms @{states[0]}",
                f"ms @{states[1]}",
                "ratio",
                f"buffers @{states[0]}",
                f"buffers @{states[1]}",
                "ratio",
            ],
        ),
    ]
    for state in states:
        out.append(
            f"\nKey plan lines @{state} finished "
            "(auto_explain: ANALYZE, BUFFERS, nested statements)"
        )
        for name, lines in section[state]["plans"].items():
            out.append(f"  {name}:")
            out.extend("    " + line for line in lines)
    return "\n".join(out)


def profile_detail(profiles: list[dict[str, Any]], limit: int = 10) -> str:
    out = ["Where the time goes (pg_stat_statements, track = all, one client; us = microseconds)"]
    for prof in profiles:
        out.append(
            f"\n  {prof['workload']}: {prof['server_us_per_job']:.0f} us of server time per job "
            f"({prof['jobs']} jobs)"
        )
        rows = []
        for st in prof["statements"][:limit]:
            query = st["query"]
            rows.append(
                [
                    f"{st['us_per_job']:.1f}",
                    f"{st['share'] * 100:.0f}%",
                    f"{st['calls_per_job']:.3g}",
                    ("" if st["toplevel"] else "  ")
                    + (query[:100] + ("..." if len(query) > 100 else "")),
                ]
            )
        table = _table(rows, ["us/job", "share", "calls/job", "statement (nested ones indented)"])
        out.extend("    " + line for line in table.splitlines())
    return "\n".join(out)


def cpu_detail(section: dict[str, Any]) -> str:
    rows = []
    base = {k: v["median"] for k, v in section.items()}
    for key, entry in section.items():
        ref = "insert_one" if key in ("submit_one", "submit_batch") else "claim_finish"
        ratio = ""
        if key not in ("insert_one", "claim_finish") and base.get(ref):
            ratio = f"{entry['median'] / base[ref]:.1f}x {'(a)' if ref == 'insert_one' else '(b)'}"
        rows.append([entry["label"], f"{entry['median']:.0f}", ratio])
    return (
        "Backend CPU per job (one connection, /proc/<backend>/stat; the SQL's own cost, "
        "fsync waits excluded)\n" + _table(rows, ["workload", "us/job", "vs baseline"])
    )


def scaling_detail(rows: list[dict[str, Any]]) -> str:
    concurrencies = sorted({r["concurrency"] for r in rows})
    processes = sorted({r["processes"] for r in rows})
    table = []
    for p in processes:
        cells = [f"{p} process{'es' if p > 1 else ''}"]
        for c in concurrencies:
            found = [r for r in rows if r["processes"] == p and r["concurrency"] == c]
            cells.append(num(median(found[0]["rates"])) if found else "")
        table.append(cells)
    return "Drain throughput (jobs/s) by runner processes and --concurrency\n" + _table(
        table, ["", *[f"c={c}" for c in concurrencies]]
    )


def write_json(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results.to_json(), indent=2, default=str) + "\n")


def chart(results: Results, path: Path) -> str | None:
    """Writes the PNG; returns why not when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]')"

    figs = results.figures
    fig, axes = plt.subplots(2, 2, figsize=(15, 9), layout="constrained")
    (ax_rate, ax_ratio), (ax_lat, ax_scale) = axes

    # Throughput, baselines beside the scenarios.
    rate_keys = [k for k in figs if figs[k].unit in ("tx/s", "jobs/s")]
    if rate_keys:
        values = [figs[k].value for k in rate_keys]
        colors = ["#9e9e9e" if k.startswith("baseline") else "#1f77b4" for k in rate_keys]
        ax_rate.barh([_short(figs[k].label) for k in rate_keys], values, color=colors)
        ax_rate.set_xscale("log")
        # Minor ticks unlabelled: their labels ran into each other.
        ax_rate.xaxis.set_minor_formatter(NullFormatter())
        ax_rate.invert_yaxis()
        ax_rate.set_title("Throughput, median (grey: pgbench baselines)")
        ax_rate.set_xlabel("per second (log scale)")
        for y, v in enumerate(values):
            if not math.isnan(v):
                ax_rate.text(v, y, f" {num(v)}", va="center", fontsize=8)
    else:
        _not_run(ax_rate, "Throughput: not run")

    # Ratio to baseline against target.
    ratio_keys = [
        k for k, f in figs.items() if f.target and f.target.kind == "ratio_min" and results.ratio(f)
    ]
    if ratio_keys:
        ratios = [results.ratio(figs[k]) or 0.0 for k in ratio_keys]
        targets = [figs[k].target.bound for k in ratio_keys]  # type: ignore[union-attr]
        labels = [_short(figs[k].label) for k in ratio_keys]
        met = [r >= t for r, t in zip(ratios, targets, strict=True)]
        ax_ratio.barh(labels, ratios, color=["#2ca02c" if m else "#d62728" for m in met])
        ax_ratio.scatter(
            targets, range(len(labels)), marker="D", color="black", zorder=3, label="target"
        )
        for y, (r, t) in enumerate(zip(ratios, targets, strict=True)):
            ax_ratio.text(max(r, t), y, f"  {r:.2f}x (target {t:g}x)", va="center", fontsize=8)
        ax_ratio.set_xscale("log")
        ax_ratio.invert_yaxis()
        ax_ratio.set_xlabel("ratio to its baseline (log scale)")
        ax_ratio.set_title("Ratio to baseline: bar (red: below target), target: diamond")
        ax_ratio.legend(loc="lower right", fontsize=8)
    else:
        _not_run(ax_ratio, "Ratios: not run")

    # Pickup latency.
    lat = results.sections.get("latency", {}).get("latencies_ms")
    if lat:
        ordered = sorted(max(x, 0.01) for x in lat)
        ax_lat.plot(
            ordered,
            [(i + 1) / len(ordered) * 100 for i in range(len(ordered))],
            label="jobs picked up",
        )
        ax_lat.axvline(1, linestyle="--", color="#2ca02c", label="p50 target, 1 ms")
        ax_lat.axvline(2, linestyle=":", color="#d62728", label="p95 target, 2 ms")
        ax_lat.axhline(50, color="grey", linewidth=0.5)
        ax_lat.axhline(95, color="grey", linewidth=0.5)
        ax_lat.set_xscale("log")
        ax_lat.set_xlabel("ms from the submit's commit to the handler's start (log scale)")
        ax_lat.set_ylabel("% of jobs")
        ax_lat.set_title("Pickup latency, idle runner (every job of every run)")
        ax_lat.legend(loc="lower right", fontsize=8)
    else:
        _not_run(ax_lat, "Pickup latency: not run")

    # Scale.
    scale = results.sections.get("scale")
    if scale and len(scale) == 2:
        states = list(scale)
        names = list(scale[states[0]]["costs"])
        width = 0.38
        for i, state in enumerate(states):
            ax_scale.bar(
                [n + (i - 0.5) * width for n in range(len(names))],
                [scale[state]["costs"][name]["ms"] for name in names],
                width,
                label=f"{state} finished jobs",
            )
        for n, name in enumerate(names):
            a, b = (scale[state]["costs"][name]["ms"] for state in states)
            if a:
                ax_scale.text(n, max(a, b) * 1.15, f"{b / a:.2f}x", ha="center", fontsize=8)
        ax_scale.set_xticks(range(len(names)), [n.replace("_", "_\n", 1) for n in names])
        ax_scale.set_yscale("log")
        ax_scale.set_ylabel("ms per call, server time (log scale)")
        ax_scale.set_title(
            f"Scale: cost per call with {states[0]} vs {states[1]} finished jobs (target < 1.3x)"
        )
        ax_scale.legend(fontsize=8, loc="upper left")
    else:
        _not_run(ax_scale, "Scale: not run")

    meta = results.meta
    server = meta.get("server", {})
    fig.suptitle(
        f"jobqueue benchmark - {meta.get('cpus')} CPUs, "
        f"PostgreSQL {server.get('server_version', '?')}, fsync={server.get('fsync')}, "
        f"synchronous_commit={server.get('synchronous_commit')}, median of {meta.get('runs')} runs"
        f"{' (quick)' if meta.get('quick') else ''}",
        fontsize=10,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def _short(label: str) -> str:
    return label if len(label) <= 44 else label[:42] + "..."


def _not_run(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
