"""Helpers for tests of flag-driven code: bounded waits, event capture, atomic writes."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from openfeature.client import OpenFeatureClient
from openfeature.event import EventDetails, ProviderEvent

__all__ = ["EventRecorder", "wait_until", "write_atomically"]

_T = TypeVar("_T")


def wait_until(
    probe: Callable[[], _T], *, timeout: float = 5.0, interval: float = 0.002, what: str = ""
) -> _T:
    """Poll `probe` until it returns something truthy; raise TimeoutError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"not within {timeout}s: {what or probe!r}")
        time.sleep(interval)


class EventRecorder:
    """Records a client's provider events so a test can wait for one (events arrive on
    OpenFeature's thread pool, later than the emit)."""

    def __init__(self, client: OpenFeatureClient) -> None:
        self._condition = threading.Condition()
        self._events: list[tuple[ProviderEvent, EventDetails]] = []
        for event in ProviderEvent:
            client.add_handler(event, self._handler(event))

    def _handler(self, event: ProviderEvent) -> Callable[[EventDetails], None]:
        def record(details: EventDetails) -> None:
            with self._condition:
                self._events.append((event, details))
                self._condition.notify_all()

        return record

    @property
    def events(self) -> list[tuple[ProviderEvent, EventDetails]]:
        """Every event so far, oldest first."""
        with self._condition:
            return list(self._events)

    def mark(self) -> int:
        """A position to wait from: `wait_for(..., after=recorder.mark())`."""
        with self._condition:
            return len(self._events)

    def wait_for(
        self,
        event: ProviderEvent,
        *,
        after: int = 0,
        where: Callable[[EventDetails], bool] = lambda _: True,
        timeout: float = 5.0,
    ) -> EventDetails:
        """The first `event` at index >= `after` matching `where`; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                for kind, details in self._events[after:]:
                    if kind is event and where(details):
                        return details
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [kind.value for kind, _ in self._events[after:]]
                    raise TimeoutError(f"no {event.value} within {timeout}s; saw {seen}")
                self._condition.wait(remaining)


def write_atomically(path: Path, content: str | bytes, *, mtime_ns: int | None = None) -> None:
    """Replace `path` by write-then-rename, so readers see the old or the new file whole.

    `mtime_ns` stamps the new file with a given mtime (to mimic `cp -p`/`rsync -a`).
    """
    data = content.encode() if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if mtime_ns is not None:
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
