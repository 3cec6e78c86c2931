"""The `jobqueue` command: migrate, run, submit, status.

Every subcommand takes --database-url (default: $DATABASE_URL). A refused
call prints one line, ``jobqueue: error: [SQLSTATE] message; hint: ...``,
and exits 1; bad usage exits 2. `run` exits 1 with one log line, taking no
job, when the database's jobqueue version does not fit the runner's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg

from . import errors, queries
from .handlers import HandlerRegistry, default_registry, split_module_list
from .migrate import Notice, bundle, migrate
from .runner import RunnerConfig
from .runner import run as run_runner
from .service import JobQueueService

EXIT_ERROR = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A failure to report on one line, without a traceback."""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {value}")
    return value


_DURATION = re.compile(r"^(?P<amount>\d+(?:\.\d+)?)(?P<unit>[smhd]?)$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> timedelta:
    """'30s', '5m', '2h', '1d' or '90' (seconds) as a timedelta."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a duration such as 30s, 5m, 2h or 1d")
    return timedelta(seconds=float(match["amount"]) * _SECONDS[match["unit"]])


def _timestamp(text: str) -> datetime:
    """An ISO 8601 time; one without a time zone is taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an ISO 8601 time") from exc
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobqueue", description="PostgreSQL-native background jobs."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="PostgreSQL URL (default: $DATABASE_URL)",
    )
    common.add_argument(
        "--log-level",
        default=os.environ.get("JOBQUEUE_LOG_LEVEL", "INFO"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="log level (default: INFO, or $JOBQUEUE_LOG_LEVEL)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "migrate", parents=[common], help="install or upgrade the SQL package (sql/install.sql)"
    )
    p.add_argument(
        "--queue-name",
        help="PGMQ queue name, fixed at the first install (default: job_queue)",
    )
    for role in ("app", "runner", "service"):
        p.add_argument(
            f"--{role}-role",
            help=f"name of the package's {role} role, fixed at the first install "
            "(default: see sql/install.sql)",
        )
    p.add_argument(
        "-v",
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other variable of install.sql, as psql -v NAME=VALUE",
    )
    p.add_argument(
        "--bundle",
        action="store_true",
        help="print the install as one plain SQL script (for SQL editors) instead of applying it",
    )

    p = sub.add_parser("run", parents=[common], help="run jobs: the runner sidecar")
    p.add_argument(
        "--concurrency", type=_positive_int, default=4, help="handlers run at once (default: 4)"
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="most jobs taken per dequeue_jobs call, never more than free slots "
        "(default: the concurrency)",
    )
    p.add_argument(
        "--visibility-timeout",
        type=_positive_int,
        default=30,
        help="seconds a taken job stays hidden; running jobs are extended every half of it "
        "(default: 30)",
    )
    p.add_argument(
        "--burst",
        action="store_true",
        help="exit 0 once no job is left and nothing is in flight",
    )
    p.add_argument(
        "--handlers",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module of job handlers (repeatable; also $JOBQUEUE_HANDLERS, "
        "comma-separated)",
    )
    p.add_argument(
        "--poll-interval",
        type=_positive_float,
        default=1.0,
        help="seconds between polls when no notification arrives (default: 1)",
    )
    p.add_argument(
        "--shutdown-grace",
        type=_non_negative_float,
        default=30.0,
        help="seconds running jobs get to finish after SIGTERM/SIGINT (default: 30)",
    )
    p.add_argument(
        "--no-listen",
        action="store_true",
        help="do not LISTEN for notifications; poll only (behind a transaction pooler)",
    )

    p = sub.add_parser("submit", parents=[common], help="submit one job; prints its id")
    p.add_argument("job_type", metavar="TYPE", help="job type, e.g. sample_task")
    p.add_argument(
        "parameters", metavar="JSON", nargs="?", default=None, help="job parameters (JSON object)"
    )
    p.add_argument("--user-id", help="the job's owner (uuid)")
    when = p.add_mutually_exclusive_group()
    when.add_argument(
        "--run-at",
        type=_timestamp,
        metavar="TIME",
        help="run it at this ISO 8601 time (with a time zone, else UTC), e.g. 2027-01-01T09:00",
    )
    when.add_argument(
        "--delay",
        type=_duration,
        metavar="DURATION",
        help="run it after this long: 30s, 5m, 2h or 1d (a number alone is seconds)",
    )
    p.add_argument(
        "--priority",
        type=int,
        default=0,
        help="from -100 to 100, higher first (default: 0)",
    )
    p.add_argument(
        "--dedup-key",
        help="while a pending or running job of the type holds this key, print its id instead",
    )

    p = sub.add_parser("status", parents=[common], help="jobs per status and queue depth")
    p.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.database_url and not getattr(args, "bundle", False):
        print(
            "jobqueue: error: no database: pass --database-url or set DATABASE_URL",
            file=sys.stderr,
        )
        return EXIT_USAGE
    command = {"migrate": cmd_migrate, "run": cmd_run, "submit": cmd_submit, "status": cmd_status}
    try:
        return command[args.command](args)
    except errors.JobQueueError as exc:
        print(f"jobqueue: error: {exc.describe()}", file=sys.stderr)
    except psycopg.Error as exc:
        print(f"jobqueue: error: {errors.from_psycopg(exc).describe()}", file=sys.stderr)
    except CommandError as exc:
        print(f"jobqueue: error: {exc}", file=sys.stderr)
    return EXIT_ERROR


def cmd_migrate(args: argparse.Namespace) -> int:
    if args.bundle:
        sys.stdout.write(bundle())
        return 0

    def on_notice(notice: Notice) -> None:
        print(str(notice), file=sys.stderr)

    variables: dict[str, str] = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise CommandError(f"--set {item!r}: expected NAME=VALUE")
        variables[name] = value
    for name in ("queue_name", "app_role", "runner_role", "service_role"):
        if getattr(args, name) is not None:
            variables[name] = getattr(args, name)
    try:
        versions = migrate(args.database_url, variables=variables, on_notice=on_notice)
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    print(f"jobqueue: package installed (versions: {', '.join(versions)})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    registry = default_registry
    modules = [*split_module_list(os.environ.get("JOBQUEUE_HANDLERS")), *args.handlers]
    try:
        load_handlers(registry, modules)
        config = RunnerConfig(
            database_url=args.database_url,
            concurrency=args.concurrency,
            batch_size=args.batch_size,
            visibility_timeout=args.visibility_timeout,
            burst=args.burst,
            poll_interval=args.poll_interval,
            shutdown_grace=args.shutdown_grace,
            listen=not args.no_listen,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    return run_runner(config, registry)


def load_handlers(registry: HandlerRegistry, modules: Sequence[str]) -> None:
    for name in dict.fromkeys(modules):  # in order, each once
        try:
            registry.load_module(name)
        except ImportError as exc:
            raise CommandError(f"cannot import handler module {name!r}: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise CommandError(f"handler module {name!r}: {exc}") from exc


def cmd_submit(args: argparse.Namespace) -> int:
    parameters: Any = None
    if args.parameters is not None:
        try:
            parameters = json.loads(args.parameters)
        except json.JSONDecodeError as exc:
            raise CommandError(f"JSON: not valid JSON ({exc})") from exc
    run_at = args.run_at
    if args.delay is not None:
        run_at = datetime.now(timezone.utc) + args.delay
    with JobQueueService.connect(args.database_url) as service:
        job_id = service.submit_job(
            args.job_type,
            parameters,
            user_id=args.user_id,
            run_at=run_at,
            priority=args.priority,
            dedup_key=args.dedup_key,
        )
    print(job_id)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        counts: dict[str, int] = dict(conn.execute(queries.get("job_count_by_status")).fetchall())
        metrics = conn.execute(queries.get("queue_metrics")).fetchone()
    assert metrics is not None
    queue_name, length, oldest_age, total = metrics
    if args.json:
        report = {
            "jobs": counts,
            "queue": {
                "name": queue_name,
                "depth": length,
                "oldest_message_age_seconds": oldest_age,
                "messages_ever_sent": total,
            },
        }
        print(json.dumps(report))
        return 0
    width = max(len(status) for status in counts)
    for status, count in counts.items():
        print(f"{status:<{width}}  {count}")
    age = f", oldest {oldest_age} s old" if oldest_age is not None else ""
    print(f"queue {queue_name}: {length} message(s){age}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
