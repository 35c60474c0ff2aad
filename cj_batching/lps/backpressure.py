"""Back-pressure: once LPS says its queue is full, stop sending, cool down, probe once.

LPS answers a full queue with a 202 carrying `REQUEST_QUEUED` and asks callers to come
back in `retry_after_seconds` (300 s). Retrying at once would only hammer it, so one
`Backpressure` is shared by every comparison sent through one client:

- **open**: every attempt goes.
- **closed**: after a queue-full answer at time t with retry-after r (the cooldown when
  LPS gave none), for `min(r, cooldown)` every attempt is refused at once, without a
  request, reporting the time left until t + r.
- **probing**: after that, the first attempt is a probe; the others wait for its answer
  (bounded by the probe's own deadline). A queue-full probe closes again; any other
  answer opens. A probe that ends without an answer (cancelled) hands the probe on.

It belongs to one event loop, like the HTTP client it guards.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backpressure", "Pass", "Refusal"]

_log = logging.getLogger(__name__)


class Pass(enum.Enum):
    """An admitted attempt: a plain one, or the probe that decides whether to reopen."""

    SEND = "send"
    PROBE = "probe"


@dataclass(frozen=True, slots=True)
class Refusal:
    """An attempt held back: LPS asked callers to wait `retry_after_seconds` from now."""

    retry_after_seconds: float


class Backpressure:
    """The queue-full state of one client (see the module docstring)."""

    def __init__(
        self, cooldown_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._closed_until: float | None = None  # None: open
        self._retry_at = 0.0
        self._probe: asyncio.Future[None] | None = None

    @property
    def cooldown_seconds(self) -> float:
        """The longest time new attempts fail fast after a queue-full answer."""
        return self._cooldown

    @property
    def is_open(self) -> bool:
        """Whether the last word was not "queue full" (or a probe has since succeeded)."""
        return self._closed_until is None

    def refusal(self) -> Refusal | None:
        """The refusal an attempt gets now, without waiting; None when it may go."""
        until = self._closed_until
        if until is None:
            return None
        now = self._clock()
        return Refusal(max(0.0, self._retry_at - now)) if now < until else None

    async def admit(self) -> Pass | Refusal:
        """Let an attempt go, make it the probe, or refuse it; waits only on a probe."""
        while True:
            refused = self.refusal()
            if refused is not None:
                return refused
            if self._closed_until is None:
                return Pass.SEND
            if self._probe is None:
                self._probe = asyncio.get_running_loop().create_future()
                return Pass.PROBE
            # Shielded: a waiter that is cancelled must not cancel the probe's future.
            await asyncio.shield(self._probe)

    def record(self, admitted: Pass, *, queue_full: bool, retry_after: float | None) -> None:
        """After an answered attempt: queue full closes; the probe's other answers open."""
        if queue_full:
            self._close(retry_after, probe=admitted is Pass.PROBE)
        elif admitted is Pass.PROBE:
            self._closed_until = None
            _log.info("LPS accepted the probe after a full queue: sending again")
        if admitted is Pass.PROBE:
            self._end_probe()

    def abandon(self, admitted: Pass) -> None:
        """After an attempt that got no answer (cancelled, crashed): a probe hands over."""
        if admitted is Pass.PROBE:
            self._end_probe()

    def _close(self, retry_after: float | None, *, probe: bool) -> None:
        now = self._clock()
        window = self._cooldown if retry_after is None else retry_after
        was_open = self._closed_until is None
        self._closed_until = now + min(window, self._cooldown)
        self._retry_at = now + window
        if was_open or probe:  # once per episode, not once per refused comparison
            _log.warning(
                "LPS queue full (asks to retry after %s s): new comparisons fail fast for "
                "%g s, then one probe decides",
                "?" if retry_after is None else f"{retry_after:g}",
                min(window, self._cooldown),
                extra={
                    "retry_after_seconds": retry_after,
                    "cooldown_seconds": min(window, self._cooldown),
                    "probe": probe,
                },
            )

    def _end_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None and not probe.done():
            probe.set_result(None)
