"""Slots: the attempts whose handlers hold this runner's worker threads.

There is one slot per worker thread (--concurrency). An attempt holds its
slot from the moment dequeue_jobs hands it out until its handler returns,
also after its lease is lost: a hung handler still holds its thread, and
the runner never starts more handler threads than --concurrency.

Attempts are told apart by their lease (the msg_id), not by their job: when
a hung handler's job is retried and this runner takes the retry, the two
attempts of one job hold a slot and a lease each, and the hung handler's
return frees its own slot only.
"""

from __future__ import annotations

import logging

from .attempts import Attempt

log = logging.getLogger("jobqueue.runner")


class Slots:
    """The attempts in flight, and how many more this runner may take."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._held: dict[int, Attempt] = {}  # msg_id -> attempt
        self._warned_all_hung = False

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, attempt: Attempt) -> bool:
        return self._held.get(attempt.job.msg_id) is attempt

    def free(self) -> int:
        return self.concurrency - len(self._held)

    def take(self, attempt: Attempt) -> None:
        self._held[attempt.job.msg_id] = attempt

    def release(self, attempt: Attempt) -> None:
        """The attempt's handler returned: its slot is free again."""
        if attempt in self:
            del self._held[attempt.job.msg_id]

    def leased(self) -> list[Attempt]:
        """The attempts in flight whose lease this runner still holds."""
        return [a for a in self._held.values() if not a.lost]

    def hung(self) -> list[Attempt]:
        """The attempts whose handler outlived the lease."""
        return [a for a in self._held.values() if a.lost]

    def warn_if_all_hung(self) -> None:
        """Says so, once, when every slot is held by a hung handler."""
        hung = len(self.hung())
        if hung == self.concurrency and not self._warned_all_hung:
            self._warned_all_hung = True
            log.error(
                "all %d slots are held by handlers that outlived their lease: "
                "this runner takes no work until one returns",
                hung,
            )
        elif hung < self.concurrency:
            self._warned_all_hung = False
