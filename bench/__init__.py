"""jobqueue's benchmark suite: `python -m bench` (or `make bench`).

Creates its own databases on the server of DATABASE_URL, measures the
baselines with pgbench and every scenario against them in the same run, and
writes bench/results.json and a chart. See docs/performance.md.
"""
