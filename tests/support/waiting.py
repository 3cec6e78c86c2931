"""Waiting for a condition, never for a guessed delay."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# Polls start fast, for conditions that hold almost at once, and slow down
# to this pace, for long waits whose predicate queries many rows.
_MAX_PAUSE = 0.05


def wait_for(
    predicate: Callable[[], Any], what: str = "a condition", *, timeout: float = 30
) -> Any:
    """Polls `predicate` until it returns something truthy, and returns that;
    AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, _MAX_PAUSE)
