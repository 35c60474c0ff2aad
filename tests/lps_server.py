"""A real loopback LLM Provider Service for tests and benchmarks.

`running_lps_server()` starts an HTTP/1.1 server (keep-alive; asyncio, in a daemon thread)
on 127.0.0.1 with an ephemeral port and yields an `LPSServer`; leaving the block stops it
with bounded waits. It answers `POST {base_path}/comparison` (404 elsewhere) and records
every request, whatever its path.

Each answer is decided, in this order, by: replies queued with `script(...)` (FIFO), then
the `policy` (a function of the `RecordedRequest` returning a `Reply` or None), then the
`default` (a `Reply` or such a function; by default a fresh 202 with a queue_id).
`RecordedRequest.attempt` counts requests per correlation_id, so a policy can fail the
first N attempts of each comparison. Reply helpers cover the contract's shapes: `accepted`,
`queue_full`, `ok_200`, `bad_request`, `bad_request_nested`, `too_many_requests`,
`server_error`, `retryable_error`, `slow`, `drop_connection`, `raw`.

    with running_lps_server() as lps:
        lps.script(server_error(503), accepted())
        client = LPSClient(lps.base_url)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any

__all__ = [
    "LPSServer",
    "Policy",
    "RecordedRequest",
    "Reply",
    "accepted",
    "bad_request",
    "bad_request_nested",
    "drop_connection",
    "ok_200",
    "queue_full",
    "raw",
    "retryable_error",
    "running_lps_server",
    "server_error",
    "slow",
    "too_many_requests",
]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    index: int  # 0-based arrival order
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes
    body: Any  # parsed JSON, or None when the body is not JSON
    attempt: int  # 1-based count of requests seen with this correlation_id
    received_at: float  # time.monotonic()

    @property
    def correlation_id(self) -> str | None:
        cid = self.body.get("correlation_id") if isinstance(self.body, dict) else None
        return cid if isinstance(cid, str) else None


@dataclass(frozen=True)
class Reply:
    """What to answer: `body` bytes are sent raw, anything else as JSON (None: empty)."""

    status: int = 202
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0  # sleep before answering (other requests are not blocked)
    drop: bool = False  # close the connection without answering
    content_type: str = "application/json"

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


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


def queue_full(message: str = "Queue at capacity") -> Reply:
    """The contract's "queue full" shape: a 202 without queue_id."""
    return Reply(202, {"status": "rejected", "error": message})


def ok_200() -> Reply:
    """A 200 carrying a queued-looking body: a protocol violation for this endpoint."""
    return replace(accepted(), status=200)


def bad_request(error: str = "Invalid request", details: str = "user_prompt is empty") -> Reply:
    return Reply(400, {"error": error, "details": details})


def bad_request_nested(
    code: str = "VALIDATION_ERROR", message: str = "provider_override is required"
) -> Reply:
    return Reply(
        400,
        {
            "error": {
                "code": code,
                "message": message,
                "correlation_id": str(uuid.uuid4()),
                "service": "llm_provider_service",
                "timestamp": "2025-01-01T00:00:00Z",
                "details": {"field": "llm_config_overrides.provider_override"},
            }
        },
    )


def too_many_requests(retry_after: str | None = "1") -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Reply(429, {"error": "Rate limit exceeded"}, headers)


def server_error(status: int = 500, message: str = "Internal server error") -> Reply:
    return Reply(status, {"error": message})


def retryable_error(status: int = 400, message: str = "Provider busy") -> Reply:
    return Reply(status, {"error": message, "is_retryable": True})


def slow(seconds: float, then: Reply | None = None) -> Reply:
    return replace(then if then is not None else accepted(), delay_seconds=seconds)


def drop_connection() -> Reply:
    return Reply(drop=True)


def raw(status: int, content: bytes, content_type: str = "text/plain") -> Reply:
    return Reply(status, content, content_type=content_type)


def _default_behaviour(_request: RecordedRequest) -> Reply:
    return accepted()


class LPSServer:
    """The scriptable server's state; create it with `running_lps_server()`.

    The server runs an asyncio loop in its own daemon thread: one thread serves every
    connection, so slow replies (`asyncio.sleep`) never block other requests and the
    server competes little for the GIL with the code under test. Policies run on that
    thread; recording and scripting are guarded by a lock.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        base_path: str = "/api/v1",
        default: Behaviour = _default_behaviour,
        policy: Policy | None = None,
    ) -> None:
        self.host = host
        self.base_path = base_path.rstrip("/")
        self._default = default
        self._policy = policy
        self._script: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._attempts: dict[str | None, int] = {}
        self._errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._port = 0

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """The URL to give `LPSClient` (no trailing slash)."""
        return f"http://{self.host}:{self.port}{self.base_path}"

    @property
    def comparison_path(self) -> str:
        return f"{self.base_path}/comparison"

    # --- scripting ----------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order, ahead of policy and default."""
        with self._lock:
            self._script.extend(replies)

    def set_policy(self, policy: Policy | None) -> None:
        with self._lock:
            self._policy = policy

    def set_default(self, default: Behaviour) -> None:
        with self._lock:
            self._default = default

    def reset(self) -> None:
        """Forget recorded requests, errors, scripted replies and the policy."""
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self._attempts.clear()
            self._errors.clear()
            self._policy = None

    # --- inspection ---------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by policies or while serving (connection resets excluded)."""
        with self._lock:
            return list(self._errors)

    def requests_for(self, correlation_id: object) -> list[RecordedRequest]:
        return [r for r in self.requests if r.correlation_id == str(correlation_id)]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least `count` requests arrived or `timeout` passed."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self._requests) >= count, timeout)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self, timeout: float = 5.0) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self._port = future.result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, cut open connections (waking slow replies); bounded waits."""
        deadline = time.monotonic() + timeout
        if self._loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
            with contextlib.suppress(Exception):
                future.result(timeout)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if not self._thread.is_alive():
            self._loop.close()

    async def _listen(self) -> int:
        self._server = await asyncio.start_server(
            self._serve_connection, self.host, 0, backlog=1024
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    # --- serving ------------------------------------------------------------------------

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while await self._serve_one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # the client went away or sent garbage: just close
        except asyncio.CancelledError:
            pass  # shutdown; ending normally avoids 3.11's noisy "cancelled callback" log
        except Exception as exc:
            self._note_error(exc)
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must close."""
        head = await reader.readuntil(b"\r\n\r\n")
        method, path, version, headers = _parse_head(head)
        length = int(headers.get("content-length") or 0)
        raw_body = await reader.readexactly(length) if length > 0 else b""
        request = self._record(method, path, headers, raw_body)
        reply = self._decide(request)
        if reply.delay_seconds > 0:
            await asyncio.sleep(reply.delay_seconds)
        if reply.drop:
            return False
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        writer.write(_encode(reply, keep_alive))
        await writer.drain()
        return keep_alive

    def _record(
        self, method: str, path: str, headers: dict[str, str], raw_body: bytes
    ) -> RecordedRequest:
        body = _parse_json(raw_body)
        cid = body.get("correlation_id") if isinstance(body, dict) else None
        key = cid if isinstance(cid, str) else None
        with self._arrived:
            self._attempts[key] = attempt = self._attempts.get(key, 0) + 1
            request = RecordedRequest(
                len(self._requests),
                method,
                path,
                headers,
                raw_body,
                body,
                attempt,
                time.monotonic(),
            )
            self._requests.append(request)
            self._arrived.notify_all()
        return request

    def _decide(self, request: RecordedRequest) -> Reply:
        if request.method != "POST" or request.path != self.comparison_path:
            return Reply(404, {"error": f"no route for {request.method} {request.path}"})
        try:
            return self._scripted_or_policy(request)
        except Exception as exc:  # a broken test policy: answer 500 and keep the error
            self._note_error(exc)
            return Reply(500, {"error": f"test policy raised {exc!r}"})

    def _scripted_or_policy(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if self._script:
                return self._script.popleft()
            policy, default = self._policy, self._default
        reply = policy(request) if policy is not None else None
        if reply is not None:
            return reply
        return default if isinstance(default, Reply) else default(request)

    def _note_error(self, error: BaseException) -> None:
        with self._lock:
            self._errors.append(error)


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    method, path, version = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, path, version, headers


def _encode(reply: Reply, keep_alive: bool) -> bytes:
    payload = reply.payload()
    try:
        phrase = HTTPStatus(reply.status).phrase
    except ValueError:
        phrase = "Unknown"
    lines = [f"HTTP/1.1 {reply.status} {phrase}", f"Content-Length: {len(payload)}"]
    if payload:
        lines.append(f"Content-Type: {reply.content_type}")
    if not keep_alive:
        lines.append("Connection: close")
    lines.extend(f"{name}: {value}" for name, value in reply.headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def _parse_json(raw_body: bytes) -> Any:
    try:
        return json.loads(raw_body) if raw_body else None
    except ValueError:
        return None


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
