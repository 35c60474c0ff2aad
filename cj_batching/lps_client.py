"""An async client for the LLM Provider Service (LPS) comparison endpoint, on httpx.

`LPSClient.submit` posts one `LLMComparisonRequest` to `POST {base_url}/comparison` and
returns the `QueuedComparison` of the 202 answer; the result itself arrives later on the
callback topic. Failures raise `LPSError`.

Retries (at most `max_retries` of them): 429, 500, 502, 503, 504, a 202 without
`queue_id` (LPS's "queue full" shape), any JSON body with `"is_retryable": true`,
timeouts and connection errors. Every other answer is final: 400 and the other 4xx,
any other 2xx (the endpoint must answer 202: a 200 is a protocol error), and a 202 whose
body cannot be read (LPS probably queued the work, so a retry could duplicate it).

Waits between attempts use exponential backoff with *equal jitter*: the n-th retry waits
`c/2 + U(0, c/2)` with `c = min(backoff_max, backoff_initial * 2**(n-1))`, so a wait is
never shorter than half its step yet clients still spread out. A `Retry-After` header
(delay-seconds or an HTTP-date) replaces that wait, capped at `backoff_max_seconds`.

Each attempt re-sends the same body, hence the same `correlation_id`: LPS has no
idempotency key, so a retry after a timeout or a dropped connection may queue the
comparison twice; the callbacks carry the same correlation id and can be deduplicated.

The auth token is held as `SecretStr` and appears only in the `Authorization` header:
never in logs, reprs or errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import httpx
from pydantic import SecretStr, ValidationError

from cj_batching.lps_models import LLMComparisonRequest, QueuedComparison
from cj_batching.settings import Settings

__all__ = ["LPSClient", "LPSError"]

logger = logging.getLogger(__name__)

SleepFunction = Callable[[float], Awaitable[object]]

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_ERROR_CHARS = 500
_MAX_RETRIES_LIMIT = 100
_MAX_EXPONENT = 60


class LPSError(Exception):
    """A comparison submission that failed for good.

    `status_code` is the last HTTP status (None for a transport error), `error` the LPS
    error text (or the transport error), `retryable` whether the last failure was of a
    retryable kind (True once retries are exhausted), `attempts` the attempts made.
    """

    def __init__(
        self,
        error: str,
        *,
        status_code: int | None,
        retryable: bool,
        attempts: int,
        correlation_id: UUID | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status_code = status_code
        self.retryable = retryable
        self.attempts = attempts
        self.correlation_id = correlation_id

    def __str__(self) -> str:
        source = "transport error" if self.status_code is None else f"HTTP {self.status_code}"
        kind = "retryable" if self.retryable else "not retryable"
        text = f"LPS submit failed after {self.attempts} attempt(s) ({kind}): {source}: "
        suffix = f" [correlation_id={self.correlation_id}]" if self.correlation_id else ""
        return f"{text}{self.error}{suffix}"

    def __repr__(self) -> str:
        return (
            f"LPSError(error={self.error!r}, status_code={self.status_code!r}, "
            f"retryable={self.retryable!r}, attempts={self.attempts!r}, "
            f"correlation_id={self.correlation_id!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {
            "status_code": self.status_code,
            "retryable": self.retryable,
            "attempts": self.attempts,
            "correlation_id": self.correlation_id,
        }
        return (_rebuild_error, (self.error, kwargs))


def _rebuild_error(error: str, kwargs: dict[str, Any]) -> LPSError:
    return LPSError(error, **kwargs)


@dataclass(frozen=True, slots=True)
class _Failure:
    """One failed attempt: what went wrong and whether another attempt may help."""

    status_code: int | None
    error: str
    retryable: bool
    retry_after: float | None = None


class LPSClient:
    """Submits comparisons to LPS with bounded, jittered retries.

    Use as `async with LPSClient(url) as lps: await lps.submit(request)`. A client created
    here is closed by `aclose()`; an `http` client passed in stays open (its owner closes
    it). `timeout_seconds` is applied to every request, also on a passed-in client; it is
    httpx's per-phase timeout (connect, write, each read, pool wait), not a total deadline.
    """

    def __init__(
        self,
        base_url: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout_seconds: float = 60.0,
        max_retries: int = 3,
        backoff_initial_seconds: float = 0.5,
        backoff_max_seconds: float = 10.0,
        auth_token: str | SecretStr | None = None,
        sleep: SleepFunction = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._endpoint = _endpoint_url(base_url)
        self._timeout = _positive_seconds("timeout_seconds", timeout_seconds)
        self._max_retries = _retry_count(max_retries)
        self._backoff_initial = _seconds("backoff_initial_seconds", backoff_initial_seconds)
        self._backoff_max = _backoff_cap(backoff_max_seconds, self._backoff_initial)
        self._token = _secret_token(auth_token)
        _check_type("http", http, httpx.AsyncClient | None, "an httpx.AsyncClient or None")
        _check_type("rng", rng, random.Random | None, "a random.Random or None")
        if not callable(sleep):
            raise ValueError(f"sleep: {sleep!r} is not callable; allowed: an async sleep(s)")
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter only
        self._owns_http = http is None
        self._http = http if http is not None else _default_http(self._timeout)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> Self:
        """A client for `settings.LLM_PROVIDER_SERVICE_URL` with the LPS_* settings."""
        return cls(
            settings.LLM_PROVIDER_SERVICE_URL,
            timeout_seconds=settings.LPS_TIMEOUT_SECONDS,
            max_retries=settings.LPS_MAX_RETRIES,
            auth_token=settings.LPS_AUTH_TOKEN,
            **kwargs,
        )

    @property
    def endpoint(self) -> str:
        """The full URL comparisons are posted to."""
        return self._endpoint

    def __repr__(self) -> str:
        auth = "set" if self._token is not None else "none"
        return (
            f"LPSClient(endpoint={self._endpoint!r}, timeout_seconds={self._timeout}, "
            f"max_retries={self._max_retries}, auth_token={auth})"
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

    async def submit(self, request: LLMComparisonRequest) -> QueuedComparison:
        """Queue one comparison at LPS; raise `LPSError` once it failed for good."""
        if not isinstance(request, LLMComparisonRequest):
            raise TypeError(f"request: expected LLMComparisonRequest, got {type(request)!r}")
        body = request.model_dump_json().encode()
        headers = self._headers()
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(body, headers)
            if isinstance(outcome, QueuedComparison):
                return outcome
            if not outcome.retryable or attempt > self._max_retries:
                raise self._final_error(outcome, attempt, request.correlation_id)
            await self._wait_before_retry(outcome, attempt, request.correlation_id)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        return headers

    async def _attempt(self, body: bytes, headers: dict[str, str]) -> QueuedComparison | _Failure:
        try:
            response = await self._http.post(
                self._endpoint, content=body, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            return _Failure(None, f"timeout after {self._timeout:g} s: {_describe(exc)}", True)
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            return _Failure(None, _describe(exc), True)
        except httpx.HTTPError as exc:
            return _Failure(None, _describe(exc), False)
        return _classify(response)

    async def _wait_before_retry(self, failure: _Failure, attempt: int, cid: UUID) -> None:
        delay = self._retry_delay(attempt, failure.retry_after)
        logger.info(
            "LPS submit attempt %d failed (status %s: %s); retrying in %.2f s [correlation_id=%s]",
            attempt,
            failure.status_code,
            failure.error,
            delay,
            cid,
            extra={
                "correlation_id": str(cid),
                "attempt": attempt,
                "status": failure.status_code,
                "lps_error": failure.error,
                "retry_in_seconds": delay,
            },
        )
        await self._sleep(delay)

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        """The wait after the `attempt`-th attempt: Retry-After, else equal-jitter backoff."""
        if retry_after is not None:
            return min(retry_after, self._backoff_max)
        step = self._backoff_initial * 2.0 ** min(attempt - 1, _MAX_EXPONENT)
        half = min(step, self._backoff_max) / 2.0
        return half + half * self._rng.random()

    def _final_error(self, failure: _Failure, attempts: int, cid: UUID) -> LPSError:
        error = LPSError(
            failure.error,
            status_code=failure.status_code,
            retryable=failure.retryable,
            attempts=attempts,
            correlation_id=cid,
        )
        logger.warning(
            "%s",
            error,
            extra={
                "correlation_id": str(cid),
                "attempt": attempts,
                "status": failure.status_code,
                "lps_error": failure.error,
                "retryable": failure.retryable,
            },
        )
        return error


# --- response classification ------------------------------------------------------------


class _NotJSON:
    """Marks a body that is not JSON (or is empty)."""


_NOT_JSON = _NotJSON()


def _classify(response: httpx.Response) -> QueuedComparison | _Failure:
    payload = _parse_json(response.content)
    status = response.status_code
    if status == httpx.codes.ACCEPTED:
        return _accepted(payload, response)
    if 200 <= status < 300:
        body = _error_text(payload, response)
        return _Failure(status, f"protocol error: expected 202, got {status}; body: {body}", False)
    retryable = status in RETRYABLE_STATUSES or _flags_retryable(payload)
    retry_after = _retry_after_seconds(response.headers.get("Retry-After")) if retryable else None
    return _Failure(status, _error_text(payload, response), retryable, retry_after)


def _accepted(payload: object, response: httpx.Response) -> QueuedComparison | _Failure:
    if not isinstance(payload, dict):
        error = f"protocol error: 202 body is not a JSON object: {_error_text(payload, response)}"
        return _Failure(202, error, False)
    if not payload.get("queue_id"):
        text = _error_text(payload, response)
        retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
        return _Failure(202, f"queue full (202 without queue_id): {text}", True, retry_after)
    try:
        return QueuedComparison.model_validate(payload)
    except ValidationError as exc:
        error = f"protocol error: malformed 202 body: {_short(str(exc))}"
        return _Failure(202, error, False)


def _parse_json(content: bytes) -> object:
    if not content.strip():
        return _NOT_JSON
    try:
        return json.loads(content)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return _NOT_JSON


def _flags_retryable(payload: object) -> bool:
    if not isinstance(payload, dict):
        return False
    nested = payload.get("error")
    return payload.get("is_retryable") is True or (
        isinstance(nested, dict) and nested.get("is_retryable") is True
    )


def _error_text(payload: object, response: httpx.Response) -> str:
    """The LPS error text from either error shape, or a readable summary of the body."""
    if isinstance(payload, _NotJSON):
        return _non_json_text(response)
    if not isinstance(payload, dict):
        return _short(f"unexpected JSON body: {_compact(payload)}")
    error = payload.get("error")
    if isinstance(error, dict):
        return _short(_nested_error_text(error))
    message = error if error is not None else payload.get("message", payload.get("detail"))
    if message is None:
        return _short(f"JSON body: {_compact(payload)}")
    return _short(_with_details(_as_text(message), payload.get("details")))


def _nested_error_text(error: dict[str, Any]) -> str:
    code = error.get("code")
    message = _as_text(error.get("message", _compact(error)))
    text = f"[{_as_text(code)}] {message}" if code is not None else message
    return _with_details(text, error.get("details"))


def _with_details(text: str, details: object) -> str:
    return f"{text} (details: {_as_text(details)})" if details not in (None, "", {}, []) else text


def _non_json_text(response: httpx.Response) -> str:
    if not response.content.strip():
        return "empty body"
    content_type = response.headers.get("Content-Type", "unknown content type")
    snippet = response.content[:200].decode("utf-8", errors="replace")
    return _short(f"non-JSON body ({content_type}): {snippet!r}")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else _compact(value)


def _compact(value: object) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _short(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_CHARS else f"{text[: _MAX_ERROR_CHARS - 3]}..."


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After value (delay-seconds or HTTP-date); None if unusable.

    A date in the past means "now" (0 s); a negative or non-finite delay is unusable.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        until = _seconds_until_http_date(text)
        return None if until is None else max(0.0, until)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _seconds_until_http_date(text: str) -> float | None:
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()


# --- argument validation ------------------------------------------------------------------


def _endpoint_url(base_url: object) -> str:
    allowed = "an absolute http(s) URL with a host, no query, fragment or credentials"
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError(f"base_url: {base_url!r} is not valid; allowed: {allowed}")
    try:
        url = httpx.URL(base_url.strip())
    except (httpx.InvalidURL, TypeError, ValueError):
        raise ValueError(f"base_url: {base_url!r} is not a valid URL; allowed: {allowed}") from None
    bad = url.scheme not in ("http", "https") or not url.host or url.query or url.fragment
    if bad or url.userinfo:
        shown = base_url if not url.userinfo else "<URL with credentials>"
        raise ValueError(f"base_url: {shown!r} is not valid; allowed: {allowed}")
    return str(url.copy_with(path=url.path.rstrip("/") + "/comparison"))


def _number(name: str, value: object, allowed: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: {value!r} is not valid; allowed: {allowed}")
    return float(value)


def _seconds(name: str, value: object) -> float:
    allowed = "a finite number >= 0"
    seconds = _number(name, value, allowed)
    if seconds < 0:
        raise ValueError(f"{name}: {value!r} is not valid; allowed: {allowed}")
    return seconds


def _positive_seconds(name: str, value: object) -> float:
    allowed = "a finite number > 0"
    seconds = _number(name, value, allowed)
    if seconds <= 0:
        raise ValueError(f"{name}: {value!r} is not valid; allowed: {allowed}")
    return seconds


def _backoff_cap(value: object, initial: float) -> float:
    cap = _seconds("backoff_max_seconds", value)
    if cap < initial:
        raise ValueError(
            f"backoff_max_seconds: {value!r} is not valid; allowed: a finite number >= "
            f"backoff_initial_seconds ({initial})"
        )
    return cap


def _retry_count(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_RETRIES_LIMIT:
        return value
    raise ValueError(
        f"max_retries: {value!r} is not valid; allowed: an int in 0..{_MAX_RETRIES_LIMIT}"
    )


def _secret_token(value: object) -> SecretStr | None:
    """The token as SecretStr; errors never show its value."""
    if value is None:
        return None
    if not isinstance(value, str | SecretStr):
        raise ValueError(
            f"auth_token: a {type(value).__name__} is not valid; allowed: str, SecretStr or None"
        )
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not text or text != text.strip() or not text.isascii() or not text.isprintable():
        raise ValueError(
            "auth_token: the given value (hidden) is not valid; allowed: a non-empty printable "
            "ASCII string without surrounding whitespace, or None for no token"
        )
    return SecretStr(text)


def _check_type(name: str, value: object, kind: Any, allowed: str) -> None:
    if not isinstance(value, kind):
        raise ValueError(f"{name}: {value!r} is not valid; allowed: {allowed}")


def _default_http(timeout: float) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout), limits=limits)
