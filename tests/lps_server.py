"""A real loopback LLM Provider Service for tests and benchmarks (on `tests.loopback`).

`running_lps_server()` yields an `LPSServer` on 127.0.0.1; leaving the block stops it.
It answers `POST {base_path}/comparison` (404 elsewhere) and records every request,
whatever its path.

Each answer is decided, in this order, by: replies queued with `script(...)` (FIFO), then
the `policy` (a function of the `RecordedRequest` returning a `Reply` or None), then the
`default` (a `Reply` or such a function; by default a fresh 202 with a queue_id).
`RecordedRequest.attempt` counts requests per correlation_id, so a policy can fail the
first N attempts of each comparison. Reply helpers give the shapes of the deployed LPS
(`../shared/reference/cj-lps-contracts.md`): `accepted`, `queue_full` (a 202 with a
`REQUEST_QUEUED` error), `bad_request` (flat), `nested_error`, `configuration_error`,
`too_many_requests`, `server_error`, and faults: `ok_200`, `retryable_error`, `slow`,
`drip`, `oversized`, `endless`, `drop_connection`, `raw`.

    with running_lps_server() as lps:
        lps.script(server_error(503), accepted())
        client = LPSClient(lps.base_url)
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from . import loopback
from .loopback import LoopbackServer, Reply

__all__ = [
    "LPSServer",
    "Policy",
    "RecordedRequest",
    "Reply",
    "accepted",
    "bad_request",
    "configuration_error",
    "drip",
    "drop_connection",
    "endless",
    "nested_error",
    "ok_200",
    "oversized",
    "queue_full",
    "raw",
    "retryable_error",
    "running_lps_server",
    "server_error",
    "slow",
    "too_many_requests",
]


@dataclass(frozen=True)
class RecordedRequest(loopback.RecordedRequest):
    """One request as LPS received it; `attempt` counts per correlation id."""

    @property
    def correlation_id(self) -> str | None:
        cid = self.body.get("correlation_id") if isinstance(self.body, dict) else None
        return cid if isinstance(cid, str) else None


Policy = Callable[[RecordedRequest], Reply | None]
Behaviour = Reply | Callable[[RecordedRequest], Reply]


def accepted(queue_id: str | None = None, **extra: Any) -> Reply:
    body = {
        "queue_id": queue_id or str(uuid.uuid4()),
        "status": "queued",
        "message": "Request queued for processing",
        "estimated_wait_minutes": None,
    }
    return Reply(202, {**body, **extra})


def nested_error(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    **error: Any,
) -> Reply:
    """The platform's nested error shape (`{"error": {"code", "message", ...}}`)."""
    body = {
        "code": code,
        "message": message,
        "correlation_id": str(uuid.uuid4()),
        "service": "llm_provider_service",
        "timestamp": "2026-02-01T00:00:00Z",
        "details": details if details is not None else {},
        **error,
    }
    return Reply(status, {"error": body})


def queue_full(retry_after_seconds: float | None = 300, queue_size: int = 1000) -> Reply:
    """LPS at capacity: a 202 whose body is a `REQUEST_QUEUED` error; nothing was queued."""
    inner: dict[str, Any] = {"provider": "openai", "queue_usage_percent": 100.0}
    if retry_after_seconds is not None:
        inner["retry_after_seconds"] = retry_after_seconds
    return nested_error(
        202,
        "REQUEST_QUEUED",
        "Service temporarily at capacity. Please retry later.",
        {"queue_size": queue_size, "details": inner},
    )


def configuration_error(message: str = "Provider 'google' not found") -> Reply:
    """A permanent 500: the provider is not configured in that LPS."""
    return nested_error(500, "CONFIGURATION_ERROR", message)


def ok_200() -> Reply:
    """A 200 carrying a queued-looking body: a protocol violation for this endpoint."""
    return replace(accepted(), status=200)


def bad_request(error: str = "Invalid request", details: str = "user_prompt is empty") -> Reply:
    """LPS's flat 400."""
    return Reply(400, {"error": error, "details": details})


def too_many_requests(retry_after: str | None = "1") -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Reply(429, {"error": "Rate limit exceeded"}, headers)


def server_error(status: int = 500, message: str = "Internal server error") -> Reply:
    """A flat 5xx (`{"error", "details"}`)."""
    return Reply(status, {"error": message, "details": "see the LPS logs"})


def retryable_error(status: int = 400, message: str = "Provider busy") -> Reply:
    return Reply(status, {"error": message, "is_retryable": True})


def slow(seconds: float, then: Reply | None = None) -> Reply:
    return replace(then if then is not None else accepted(), delay_seconds=seconds)


def drip(seconds_per_byte: float, then: Reply | None = None) -> Reply:
    """The whole answer, head included, one byte per `seconds_per_byte`."""
    return replace(then if then is not None else accepted(), drip_seconds=seconds_per_byte)


def oversized(status: int = 202, size: int = 100_000) -> Reply:
    """A JSON answer of exactly `size` bytes (a real 202 is under 300)."""
    head, tail = b'{"queue_id": "q-big", "status": "queued", "p": "', b'"}'
    return Reply(status, head + b"x" * max(0, size - len(head) - len(tail)) + tail)


def endless(status: int = 202) -> Reply:
    """An answer whose chunked body never ends."""
    return Reply(status, endless=True)


def drop_connection() -> Reply:
    return Reply(202, drop=True)


def raw(status: int, content: bytes, content_type: str = "text/plain") -> Reply:
    return Reply(status, content, content_type=content_type)


def _default_behaviour(_request: RecordedRequest) -> Reply:
    return accepted()


class LPSServer(LoopbackServer[RecordedRequest]):
    """The scriptable LPS; create it with `running_lps_server()`. Policies run on the
    server's thread."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        base_path: str = "/api/v1",
        default: Behaviour = _default_behaviour,
        policy: Policy | None = None,
    ) -> None:
        super().__init__(RecordedRequest, host=host, name="lps")
        self.base_path = base_path.rstrip("/")
        self._default = default
        self._policy = policy
        self._script: deque[Reply] = deque()
        self._script_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """The URL to give `LPSClient` (no trailing slash)."""
        return f"{self.origin}{self.base_path}"

    @property
    def comparison_path(self) -> str:
        return f"{self.base_path}/comparison"

    # --- scripting ----------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order, ahead of policy and default."""
        with self._script_lock:
            self._script.extend(replies)

    def set_policy(self, policy: Policy | None) -> None:
        with self._script_lock:
            self._policy = policy

    def set_default(self, default: Behaviour) -> None:
        with self._script_lock:
            self._default = default

    def reset(self) -> None:
        """Forget recorded requests, errors, scripted replies and the policy."""
        with self._script_lock:
            self._script.clear()
            self._policy = None
        self._clear_recording()

    def requests_for(self, cid: object) -> list[RecordedRequest]:
        return [r for r in self.requests if r.correlation_id == str(cid)]

    # --- answering (on the server's thread) ---------------------------------------------

    def _key(self, method: str, path: str, body: Any) -> object:
        cid = body.get("correlation_id") if isinstance(body, dict) else None
        return cid if isinstance(cid, str) else None

    def _decide(self, request: RecordedRequest) -> Reply:
        if request.method != "POST" or request.path != self.comparison_path:
            return Reply(404, {"error": f"no route for {request.method} {request.path}"})
        with self._script_lock:
            if self._script:
                return self._script.popleft()
            policy, default = self._policy, self._default
        reply = policy(request) if policy is not None else None
        if reply is not None:
            return reply
        return default if isinstance(default, Reply) else default(request)


@contextlib.contextmanager
def running_lps_server(
    *,
    default: Behaviour = _default_behaviour,
    policy: Policy | None = None,
    base_path: str = "/api/v1",
    host: str = "127.0.0.1",
    stop_timeout: float = 5.0,
) -> Iterator[LPSServer]:
    """Run a loopback LPS for the duration of the block."""
    server = LPSServer(host=host, base_path=base_path, default=default, policy=policy)
    server.start()
    try:
        yield server
    finally:
        server.stop(stop_timeout)
