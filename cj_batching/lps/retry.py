"""The retry policy of one comparison: bounded attempts, exponential backoff with jitter,
LPS's own hint honoured up to the cap. The loop is tenacity's, as in the platform's client.

The n-th retry waits `c/2 + U(0, c/2)` with `c = min(backoff_max, backoff_initial *
2**(n-1))` (*equal jitter*: never shorter than half its step, yet clients spread out). A
retry-after from the answer (`Retry-After`, or the body's `retry_after_seconds`) replaces
that wait, capped at `backoff_max`: a hint of minutes is for re-submission later, not for
a task to sit on.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt

from cj_batching.lps.answers import Answer

__all__ = ["RetryPolicy", "SleepFunction"]

SleepFunction = Callable[[float], Awaitable[None]]
BeforeSleep = Callable[[RetryCallState], None]
_MAX_EXPONENT: Final = 60


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait; `sleep` and `rng` are injectable for tests."""

    max_retries: int
    backoff_initial_seconds: float
    backoff_max_seconds: float
    sleep: SleepFunction
    rng: random.Random

    def delay(self, retry: int, hint: float | None = None) -> float:
        """The wait before the `retry`-th retry (1-based): the hint capped, else jitter."""
        if hint is not None:
            return min(hint, self.backoff_max_seconds)
        step = self.backoff_initial_seconds * 2.0 ** min(retry - 1, _MAX_EXPONENT)
        half = min(step, self.backoff_max_seconds) / 2.0
        return half + half * self.rng.random()

    def retrying(self, before_sleep: BeforeSleep) -> AsyncRetrying:
        """A fresh loop for one comparison: attempts return an `Answer`; the loop retries
        the retryable ones and ends with the last answer (exceptions pass through).

        Fresh per comparison because tenacity keeps its run state on the object (in a
        thread-local), which concurrent comparisons on one event loop would share.
        """
        return AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_result(_retry_now),
            sleep=self.sleep,
            before_sleep=before_sleep,
            retry_error_callback=_last_answer,
        )

    def _wait(self, state: RetryCallState) -> float:
        answer = _last_answer(state)
        return self.delay(state.attempt_number, answer.retry_after_seconds)


def _retry_now(answer: object) -> bool:
    return isinstance(answer, Answer) and answer.retry_now


def _last_answer(state: RetryCallState) -> Answer:
    assert state.outcome is not None  # tenacity calls these after an attempt
    answer = state.outcome.result()
    assert isinstance(answer, Answer)
    return answer
