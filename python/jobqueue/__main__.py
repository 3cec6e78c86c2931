"""python -m jobqueue: the same as the `jobqueue` command."""

from .cli import main

raise SystemExit(main())
