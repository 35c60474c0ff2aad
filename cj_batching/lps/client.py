"""`LPSClient`: posts comparisons to `POST {base_url}/comparison` on httpx.

`submit` returns the `QueuedComparison` of the 202 answer (the result arrives later on
the callback topic) or raises `LPSError`. Each attempt goes through the `Transport`
(total deadline, capped read), its answer is classified by `classify_answer`, retried by
the `RetryPolicy`, and a queue-full answer closes the shared `Backpressure` instead of
being retried. At most `max_concurrency` POSTs are in flight across every caller of one
client, and the connection pool never makes a request wait beyond that.

Every attempt re-sends the same body, hence the same `correlation_id`: LPS has no
idempotency key, so a retry after a timeout may queue a comparison twice; both results
carry the correlation id and can be deduplicated. The bearer token is sent only in the
`Authorization` header and is redacted from every error text, log line and repr, even
when LPS or a proxy echoes the request headers.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import httpx
from pydantic import SecretStr
from tenacity import RetryCallState

from cj_batching import bounds
from cj_batching.lps.answers import Answer
from cj_batching.lps.backpressure import Backpressure, Pass, Refusal
from cj_batching.lps.errors import QUEUE_FULL, LPSError
from cj_batching.lps.models import LLMComparisonRequest, QueuedComparison
from cj_batching.lps.retry import RetryPolicy, SleepFunction
from cj_batching.lps.transport import Transport, pooled_http
from cj_batching.settings import Settings

__all__ = ["LPSClient"]

logger = logging.getLogger(__name__)


class LPSClient:
    """Submits comparisons to LPS: bounded concurrency, deadlines, retries, back-pressure.

    Use as `async with LPSClient(url) as lps: await lps.submit(request)`, on one event
    loop. A client created here is closed by `aclose()`; an `http` client passed in stays
    open (its owner closes it; give it a pool of at least `max_concurrency`). Argument
    bounds are those of the settings of the same name (`cj_batching.bounds`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout_seconds: float = bounds.DEFAULT_LPS_TIMEOUT_SECONDS,
        max_retries: int = bounds.DEFAULT_LPS_MAX_RETRIES,
        max_concurrency: int = bounds.DEFAULT_LPS_MAX_CONCURRENCY,
        backoff_initial_seconds: float = bounds.DEFAULT_LPS_BACKOFF_INITIAL_SECONDS,
        backoff_max_seconds: float = bounds.DEFAULT_LPS_BACKOFF_MAX_SECONDS,
        queue_full_cooldown_seconds: float = bounds.DEFAULT_LPS_QUEUE_FULL_COOLDOWN_SECONDS,
        auth_token: str | SecretStr | None = None,
        sleep: SleepFunction = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check = bounds.check
        base = check(bounds.LPSBaseURL, "base_url", base_url)
        self._endpoint: str = base.rstrip("/") + "/comparison"
        self._timeout = float(check(bounds.LPSTimeoutSeconds, "timeout_seconds", timeout_seconds))
        self._max_concurrency: int = check(
            bounds.LPSMaxConcurrency, "max_concurrency", max_concurrency
        )
        initial = float(
            check(bounds.BackoffSeconds, "backoff_initial_seconds", backoff_initial_seconds)
        )
        cap = float(check(bounds.BackoffSeconds, "backoff_max_seconds", backoff_max_seconds))
        if cap < initial:
            raise ValueError(
                f"backoff_max_seconds: {backoff_max_seconds!r} is not valid: it must be >= "
                f"backoff_initial_seconds ({backoff_initial_seconds!r})"
            )
        cooldown = check(
            bounds.QueueFullCooldownSeconds,
            "queue_full_cooldown_seconds",
            queue_full_cooldown_seconds,
        )
        token = check(bounds.LPSAuthToken, "auth_token", auth_token, secret=True)
        secrets = () if token is None else (token.get_secret_value(),)
        _check_type("http", http, httpx.AsyncClient | None, "an httpx.AsyncClient or None")
        _check_type("rng", rng, random.Random | None, "a random.Random or None")
        for name, function in (("sleep", sleep), ("clock", clock)):
            if not callable(function):
                raise ValueError(f"{name}: {function!r} is not callable")
        self._policy = RetryPolicy(
            max_retries=check(bounds.LPSMaxRetries, "max_retries", max_retries),
            backoff_initial_seconds=initial,
            backoff_max_seconds=cap,
            sleep=sleep,
            rng=rng if rng is not None else random.Random(),  # noqa: S311 - jitter only
        )
        self._backpressure = Backpressure(float(cooldown), clock=clock)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": "identity",  # an answer is < 300 bytes: nothing to inflate
        }
        if token is not None:
            headers["Authorization"] = f"Bearer {token.get_secret_value()}"
        self._owns_http = http is None
        self._http = http if http is not None else pooled_http(self._max_concurrency)
        self._transport = Transport(self._http, self._endpoint, headers, self._timeout, secrets)
        # Bound to the event loop it first waits on (lazily, since Python 3.10), as the
        # back-pressure probe and the HTTP pool are: a client serves one loop.
        self._gate = asyncio.Semaphore(self._max_concurrency)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Self:
        """A client for `LLM_PROVIDER_SERVICE_URL` with the `LPS_*` settings (`kwargs` win)."""
        options: dict[str, Any] = {
            "timeout_seconds": settings.LPS_TIMEOUT_SECONDS,
            "max_retries": settings.LPS_MAX_RETRIES,
            "max_concurrency": settings.LPS_MAX_CONCURRENCY,
            "queue_full_cooldown_seconds": settings.LPS_QUEUE_FULL_COOLDOWN_SECONDS,
            "auth_token": settings.LPS_AUTH_TOKEN,
        }
        return cls(settings.LLM_PROVIDER_SERVICE_URL, **{**options, **kwargs})

    @property
    def endpoint(self) -> str:
        """The full URL comparisons are posted to."""
        return self._endpoint

    @property
    def max_concurrency(self) -> int:
        """POSTs in flight at most, across every caller of this client."""
        return self._max_concurrency

    @property
    def backpressure(self) -> Backpressure:
        """The queue-full state every comparison sent through this client shares."""
        return self._backpressure

    def __repr__(self) -> str:
        auth = "set" if self._transport.secrets else "none"
        return (
            f"LPSClient(endpoint={self._endpoint!r}, timeout_seconds={self._timeout:g}, "
            f"max_retries={self._policy.max_retries}, max_concurrency={self._max_concurrency}, "
            f"auth_token={auth})"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it; idempotent."""
        if self._owns_http:
            await self._http.aclose()

    async def submit(
        self,
        request: LLMComparisonRequest,
        *,
        on_first_attempt: Callable[[], object] | None = None,
    ) -> QueuedComparison:
        """Queue one comparison at LPS; raise `LPSError` once it failed for good.

        `on_first_attempt` is called once, just before the first POST goes out (never
        for a comparison held back by back-pressure): the moment it counts as sent.
        """
        if not isinstance(request, LLMComparisonRequest):
            raise TypeError(f"request: expected LLMComparisonRequest, got {type(request)!r}")
        body = request.wire_body()
        attempts = 0

        async def attempt() -> Answer:
            nonlocal attempts
            admitted = await self._backpressure.admit()
            if isinstance(admitted, Refusal):
                return _held_back(admitted, attempts)
            try:
                async with self._gate:
                    # The queue may have filled while this attempt waited for a slot.
                    refused = self._backpressure.refusal() if admitted is Pass.SEND else None
                    if refused is not None:
                        return _held_back(refused, attempts)
                    attempts += 1
                    if attempts == 1 and on_first_attempt is not None:
                        on_first_attempt()
                    answer = await self._transport.post(body)
            except BaseException:
                self._backpressure.abandon(admitted)
                raise
            queue_full = answer.kind == "queue_full"
            self._backpressure.record(
                admitted, queue_full=queue_full, retry_after=answer.retry_after_seconds
            )
            return answer

        cid = request.correlation_id
        answer: Answer = await self._policy.retrying(self._log_retry(cid))(attempt)
        if answer.queued is not None:
            return answer.queued
        raise self._final_error(answer, attempts, cid)

    def _log_retry(self, cid: UUID) -> Callable[[RetryCallState], None]:
        def log(state: RetryCallState) -> None:
            answer = state.outcome.result() if state.outcome is not None else None
            if not isinstance(answer, Answer):
                return
            delay = state.upcoming_sleep
            logger.info(
                "LPS submit attempt %d failed (%s %s: %s); retrying in %.2f s [correlation_id=%s]",
                state.attempt_number,
                answer.status,
                answer.code,
                answer.message,
                delay,
                cid,
                extra={
                    "correlation_id": str(cid),
                    "attempt": state.attempt_number,
                    "status": answer.status,
                    "lps_error_code": answer.code,
                    "lps_error": answer.message,
                    "retry_in_seconds": delay,
                },
            )

        return log

    def _final_error(self, answer: Answer, attempts: int, cid: UUID) -> LPSError:
        error = LPSError(
            answer.message,
            status=answer.status,
            code=answer.code,
            retryable=answer.kind in ("retryable", "queue_full"),
            retry_after_seconds=answer.retry_after_seconds,
            attempts=attempts,
            correlation_id=cid,
        )
        # Queue full ends up to a whole wave of comparisons at once: Backpressure logs
        # the episode once (WARNING), each comparison only at DEBUG.
        logger.log(
            logging.DEBUG if answer.code == QUEUE_FULL else logging.WARNING,
            "%s",
            error,
            extra={
                "correlation_id": str(cid),
                "attempt": attempts,
                "status": answer.status,
                "lps_error_code": answer.code,
                "lps_error": answer.message,
                "retryable": error.retryable,
            },
        )
        return error


def _held_back(refusal: Refusal, attempts: int) -> Answer:
    what = "held back" if attempts == 0 else "retry held back"
    message = f"{what}: LPS's queue is full; re-submit after the retry-after"
    return Answer("queue_full", None, QUEUE_FULL, message, refusal.retry_after_seconds)


def _check_type(name: str, value: object, kind: Any, allowed: str) -> None:
    if not isinstance(value, kind):
        raise ValueError(f"{name}: {value!r} is not valid; allowed: {allowed}")
