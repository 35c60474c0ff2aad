"""At-least-once delivery: remembering recent event ids so a redelivery counts once."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable

from cj_batching.bounds import DEFAULT_DEDUP_MAXSIZE, ResultDedupMaxsize, check

__all__ = ["DEFAULT_DEDUP_MAXSIZE", "RecentIds"]


class RecentIds:
    """The last `maxsize` ids seen, oldest forgotten first; thread-safe.

    `first_time(id)` answers whether an id is new and remembers it, atomically, so two
    threads handed the same redelivered event count it once between them.
    """

    def __init__(self, maxsize: int = DEFAULT_DEDUP_MAXSIZE) -> None:
        self.maxsize: int = check(ResultDedupMaxsize, "maxsize", maxsize)
        # A set for membership and a deque for the order of arrival: both O(1), where a
        # dict's "pop the oldest" degrades as deleted slots pile up at its front.
        self._ids: set[Hashable] = set()
        self._order: deque[Hashable] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ids)

    def first_time(self, event_id: Hashable) -> bool:
        """True (and remembered) for an id not among the last `maxsize`; else False."""
        with self._lock:
            if event_id in self._ids:
                return False
            if len(self._order) >= self.maxsize:
                self._ids.discard(self._order.popleft())
            self._ids.add(event_id)
            self._order.append(event_id)
            return True
