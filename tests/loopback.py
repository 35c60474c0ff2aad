"""The loopback HTTP/1.1 server every test server here is built on (LPS, OFREP).

`LoopbackServer` listens on 127.0.0.1 (an ephemeral port), serves keep-alive connections
on an asyncio loop in one daemon thread, records every request as a `RecordedRequest`
and answers with the `Reply` its subclass decides (`_decide`). One thread serves every
connection, so slow replies never block other requests and the server competes little
for the GIL with the code under test. Recording and scripting are guarded by a lock, so
tests may script and inspect while requests are in flight; `stop()` cuts open
connections (waking slow replies) with bounded waits.

A `Reply` can be delayed (`delay_seconds`; `release()` wakes every delayed reply at
once), dropped (the connection closes without an answer), dripped (`drip_seconds`
before each byte of the whole answer, head included: a client with per-read timeouts
never notices) or endless (a chunked body that never ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final, Generic, TypeVar

__all__ = ["LoopbackServer", "RecordedRequest", "Reply"]

_ENDLESS_CHUNK: Final = b"x" * 4096


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    index: int  # 0-based arrival order
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes
    body: Any  # parsed JSON, or None when the body is not JSON
    attempt: int  # 1-based count of requests with the same key (the server's `_key`)
    received_at: float  # time.monotonic()


@dataclass(frozen=True)
class Reply:
    """What to answer: `body` bytes are sent raw, anything else as JSON (None: empty)."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0  # wait before answering (other requests are not blocked)
    drop: bool = False  # close the connection without answering
    content_type: str = "application/json"
    drip_seconds: float = 0.0  # pause before each byte of the answer, head included
    endless: bool = False  # a chunked body that never ends

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


R = TypeVar("R", bound=RecordedRequest)


class LoopbackServer(Generic[R]):
    """The shared server machinery; subclasses decide answers (`_decide`) and may key
    attempts (`_key`); requests are recorded as `record_type` (a `RecordedRequest`
    subclass with the protocol's own accessors)."""

    def __init__(self, record_type: type[R], *, host: str = "127.0.0.1", name: str) -> None:
        self.host = host
        self._record_type = record_type
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._requests: list[R] = []
        self._attempts: dict[object, int] = {}
        self._errors: list[BaseException] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"{name}-test-server", daemon=True
        )
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._release = asyncio.Event()
        self._port = 0

    # --- hooks for subclasses -----------------------------------------------------------

    def _decide(self, request: R) -> Reply:
        raise NotImplementedError

    def _key(self, method: str, path: str, body: Any) -> object:
        """What `RecordedRequest.attempt` counts requests by (default: all alike)."""
        return None

    # --- addresses and inspection -------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._port, "the server is not started"
        return self._port

    @property
    def origin(self) -> str:
        """`http://host:port`, no trailing slash."""
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[R]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by answer functions or while serving (disconnects excluded)."""
        with self._lock:
            return list(self._errors)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least `count` requests arrived or `timeout` passed."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self._requests) >= count, timeout)

    def release(self) -> None:
        """Wake every delayed reply now (they answer at once)."""
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._wake)

    def _clear_recording(self) -> None:
        with self._lock:
            self._requests.clear()
            self._attempts.clear()
            self._errors.clear()

    def _note_error(self, error: BaseException) -> None:
        with self._lock:
            self._errors.append(error)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self, timeout: float = 5.0) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self._port = future.result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and cut open connections (ending slow replies); bounded waits."""
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
        # Cancel until every connection has ended: a connection may be between two awaits
        # that each absorb one cancellation (stop() bounds the whole wait).
        while self._connections:
            for task in list(self._connections):
                task.cancel()
            await asyncio.wait(list(self._connections), timeout=0.2)

    def _wake(self) -> None:
        released, self._release = self._release, asyncio.Event()
        released.set()

    # --- serving (on the server's loop) -------------------------------------------------

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
        try:
            reply = self._decide(request)
        except Exception as exc:  # a broken test answer: 500, and keep the error
            self._note_error(exc)
            reply = Reply(500, {"error": f"test answer raised {exc!r}"})
        if reply.delay_seconds > 0:
            await self._pause(reply.delay_seconds)
        if reply.drop:
            return False
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        if reply.endless:
            await self._write_endless(writer, reply)
            return False
        answer = _encode(reply, keep_alive)
        if reply.drip_seconds > 0:
            for offset in range(len(answer)):
                writer.write(answer[offset : offset + 1])
                await writer.drain()
                await asyncio.sleep(reply.drip_seconds)
        else:
            writer.write(answer)
            await writer.drain()
        return keep_alive

    async def _pause(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: 3.11's wait_for swallows a cancellation that
        # arrives as the release does, and the connection would then outlive stop().
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._release.wait()

    async def _write_endless(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        writer.write(_head(reply, keep_alive=False, length=None))
        frame = f"{len(_ENDLESS_CHUNK):x}\r\n".encode() + _ENDLESS_CHUNK + b"\r\n"
        while True:  # until the client hangs up (ConnectionError) or the server stops
            writer.write(frame)
            await writer.drain()
            await asyncio.sleep(0)

    def _record(self, method: str, path: str, headers: dict[str, str], raw_body: bytes) -> R:
        body = _parse_json(raw_body)
        key = self._key(method, path, body)
        with self._arrived:
            self._attempts[key] = attempt = self._attempts.get(key, 0) + 1
            request = self._record_type(
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


def _parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    request_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    method, path, version = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, path, version, headers


def _head(reply: Reply, *, keep_alive: bool, length: int | None) -> bytes:
    try:
        phrase = HTTPStatus(reply.status).phrase
    except ValueError:
        phrase = "Unknown"
    lines = [f"HTTP/1.1 {reply.status} {phrase}"]
    lines.append("Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}")
    if length != 0:
        lines.append(f"Content-Type: {reply.content_type}")
    if not keep_alive:
        lines.append("Connection: close")
    lines.extend(f"{name}: {value}" for name, value in reply.headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _encode(reply: Reply, keep_alive: bool) -> bytes:
    payload = reply.payload()
    return _head(reply, keep_alive=keep_alive, length=len(payload)) + payload


def _parse_json(raw_body: bytes) -> Any:
    try:
        return json.loads(raw_body) if raw_body else None
    except ValueError:
        return None
