"""jobqueue's benchmark suite: `python -m bench` (or `make bench`).

Creates its own databases on the server of DATABASE_URL, measures the
baselines with pgbench and every scenario against them in the same run, and
writes its results to bench/out/ (ignored by git) and the chart to
docs/img/bench.png. See docs/performance.md.
"""
