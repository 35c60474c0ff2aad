"""A real loopback OFREP (OpenFeature Remote Evaluation Protocol) server for tests.

`running_ofrep_server()` starts an HTTP/1.1 server (keep-alive; `ThreadingHTTPServer`, one
thread per connection, in daemon threads) on 127.0.0.1 with an ephemeral port and yields
an `OFREPServer`; leaving the block stops it with bounded waits. It answers
`POST /ofrep/v1/evaluate/flags/{key}` (404 elsewhere) and records every request,
whatever its path, with its headers (Authorization included) and JSON body.

Each evaluation is answered, in this order, by: replies queued for the key with
`script(key, ...)` (FIFO, one request each), the standing `answer(key, ...)` for the key
(a `Reply` or a function of the `RecordedRequest`), the flagd-format document given to
`serve_document(...)` (evaluated by `flags.FlagdMemoryProvider`, so the rules of
`flags.yaml` apply, with flagd's OFREP mapping: no variant -> 200 without value/variant,
DISABLED -> 404 FLAG_NOT_FOUND), and otherwise 404 FLAG_NOT_FOUND.

Reply helpers cover the protocol's shapes: `evaluated`, `code_default`, `flag_not_found`,
`evaluation_error`, `unauthorized`, `too_many_requests`, `server_error`, `slow`, `raw`.
A `slow` reply sleeps server-side on its own connection thread (other requests are served
meanwhile) until its delay passes, `release()` is called or the server stops.

    with running_ofrep_server(document) as ofrep:
        ofrep.script("llm-batching-mode", server_error())
        provider = make_provider("ofrep", url=ofrep.url)
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails

from flags import FlagdMemoryProvider

__all__ = [
    "EVALUATE_PREFIX",
    "OFREPServer",
    "RecordedRequest",
    "Reply",
    "code_default",
    "evaluated",
    "evaluation_error",
    "flag_not_found",
    "raw",
    "running_ofrep_server",
    "server_error",
    "slow",
    "too_many_requests",
    "unauthorized",
]

EVALUATE_PREFIX = "/ofrep/v1/evaluate/flags/"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    index: int  # 0-based arrival order
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes
    body: Any  # parsed JSON, or None when the body is not JSON
    received_at: float  # time.monotonic()

    @property
    def flag_key(self) -> str | None:
        """The flag key of an evaluation request, else None."""
        if self.method != "POST" or not self.path.startswith(EVALUATE_PREFIX):
            return None
        return unquote(self.path.removeprefix(EVALUATE_PREFIX)) or None

    @property
    def context(self) -> dict[str, Any]:
        """The request's evaluation context (`{}` when absent)."""
        context = self.body.get("context") if isinstance(self.body, dict) else None
        return dict(context) if isinstance(context, dict) else {}


@dataclass(frozen=True)
class Reply:
    """What to answer: `body` bytes are sent raw, anything else as JSON (None: empty)."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0  # sleep before answering (other requests are not blocked)
    content_type: str = "application/json"

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


Answer = Reply | Callable[[RecordedRequest], Reply]


def evaluated(
    value: Any,
    variant: str | None = None,
    *,
    reason: str = "STATIC",
    metadata: Mapping[str, Any] | None = None,
    key: str = "",
) -> Reply:
    """200: a successful evaluation (`variant` defaults to the value's text)."""
    body: dict[str, Any] = {
        "key": key,
        "value": value,
        "reason": reason,
        "variant": str(value) if variant is None else variant,
        "metadata": dict(metadata or {}),
    }
    return Reply(200, body)


def code_default(
    *, reason: str = "DEFAULT", metadata: Mapping[str, Any] | None = None, key: str = ""
) -> Reply:
    """200 without value and variant: "use your code default" (flagd's answer when no
    rule matched and the flag has no default variant)."""
    return Reply(200, {"key": key, "reason": reason, "metadata": dict(metadata or {})})


def flag_not_found(key: str = "", details: str | None = None) -> Reply:
    return Reply(
        404,
        {
            "key": key,
            "errorCode": "FLAG_NOT_FOUND",
            "errorDetails": details or f"flag `{key}` does not exist",
        },
    )


def evaluation_error(code: str, details: str = "evaluation failed", key: str = "") -> Reply:
    """400 with an OFREP error code (PARSE_ERROR, TARGETING_KEY_MISSING, ...)."""
    return Reply(400, {"key": key, "errorCode": code, "errorDetails": details})


def unauthorized(status: int = 401) -> Reply:
    return Reply(status, {"errorDetails": "unauthorized" if status == 401 else "forbidden"})


def too_many_requests(retry_after: str | None = "60") -> Reply:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Reply(429, {"errorDetails": "rate limited"}, headers)


def server_error(status: int = 500, details: str = "internal server error") -> Reply:
    return Reply(status, {"errorDetails": details})


def slow(seconds: float, then: Reply | None = None) -> Reply:
    return replace(then if then is not None else server_error(), delay_seconds=seconds)


def raw(status: int, content: bytes, content_type: str = "text/plain") -> Reply:
    return Reply(status, content, content_type=content_type)


class OFREPServer:
    """The scriptable server's state; create it with `running_ofrep_server()`.

    Answers are decided on the connection's thread; recording and scripting are
    guarded by a lock, so tests may script and inspect while requests are in flight.
    """

    def __init__(
        self, document: Mapping[str, Any] | None = None, *, host: str = "127.0.0.1"
    ) -> None:
        self.host = host
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._scripts: defaultdict[str, deque[Reply]] = defaultdict(deque)
        self._answers: dict[str, Answer] = {}
        self._flags: FlagdMemoryProvider | None = None
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._release = threading.Event()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._handlers: set[threading.Thread] = set()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if document is not None:
            self.serve_document(document)

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to give an OFREP provider (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    # --- scripting ----------------------------------------------------------------------

    def serve_document(self, document: Mapping[str, Any] | None) -> None:
        """Answer flags from this flagd-format document (validated; None: no document)."""
        flags = None if document is None else FlagdMemoryProvider(document, name="ofrep-test")
        with self._lock:
            self._flags = flags

    def answer(self, key: str, answer: Answer | None) -> None:
        """Answer every evaluation of `key` with `answer` (None: forget it)."""
        with self._lock:
            if answer is None:
                self._answers.pop(key, None)
            else:
                self._answers[key] = answer

    def script(self, key: str, *replies: Reply) -> None:
        """Queue one-shot replies for the next evaluations of `key`, in order."""
        with self._lock:
            self._scripts[key].extend(replies)

    def release(self) -> None:
        """Wake every slow reply now (they answer at once)."""
        with self._lock:
            released, self._release = self._release, threading.Event()
        released.set()

    # --- inspection ---------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    def requests_for(self, key: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.flag_key == key]

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions raised by answer functions or while serving (disconnects excluded)."""
        with self._lock:
            return list(self._errors)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least `count` requests arrived or `timeout` passed."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self._requests) >= count, timeout)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        handler = type("_BoundHandler", (_Handler,), {"ofrep": self})
        self._httpd = _HTTPServer((self.host, 0), handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="ofrep-test-server",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, wake slow replies, cut open connections; bounded waits."""
        deadline = time.monotonic() + timeout
        self._stopping.set()
        self.release()
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        if thread.is_alive():
            # shutdown() waits for serve_forever without a timeout: guard it.
            stopper = threading.Thread(target=httpd.shutdown, daemon=True)
            stopper.start()
            stopper.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            connections, handlers = list(self._connections), list(self._handlers)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        thread.join(max(0.0, deadline - time.monotonic()))
        for handler_thread in handlers:
            handler_thread.join(max(0.0, deadline - time.monotonic()))

    # --- serving (called on connection threads) -----------------------------------------

    def _record(
        self, method: str, path: str, headers: dict[str, str], raw_body: bytes
    ) -> RecordedRequest:
        with self._arrived:
            request = RecordedRequest(
                len(self._requests),
                method,
                path,
                headers,
                raw_body,
                _parse_json(raw_body),
                time.monotonic(),
            )
            self._requests.append(request)
            self._arrived.notify_all()
        return request

    def _decide(self, request: RecordedRequest) -> Reply:
        key = request.flag_key
        if key is None:
            return Reply(404, {"errorDetails": f"no route for {request.method} {request.path}"})
        if request.raw_body and request.body is None:
            return evaluation_error("PARSE_ERROR", "the request body is not JSON", key)
        try:
            return self._answer(key, request)
        except Exception as exc:  # a broken answer function: 500, and keep the error
            self._note_error(exc)
            return server_error(500, f"test answer raised {exc!r}")

    def _answer(self, key: str, request: RecordedRequest) -> Reply:
        with self._lock:
            script = self._scripts.get(key)
            if script:
                return script.popleft()
            answer, flags = self._answers.get(key), self._flags
        if answer is not None:
            return answer if isinstance(answer, Reply) else answer(request)
        if flags is not None:
            return _evaluate_document(flags, key, request.context)
        return flag_not_found(key)

    def _wait(self, seconds: float) -> None:
        with self._lock:
            release = self._release
        if not self._stopping.is_set():
            release.wait(seconds)

    def _note_error(self, error: BaseException) -> None:
        with self._lock:
            self._errors.append(error)

    def _track(self, connection: socket.socket, thread: threading.Thread, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
                self._handlers.add(thread)
            else:
                self._connections.discard(connection)
                self._handlers.discard(thread)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() joins the connection threads itself, with a bound

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], ofrep: OFREPServer
    ) -> None:
        self.ofrep = ofrep
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, ConnectionError | TimeoutError):
            self.ofrep._note_error(error)


class _Handler(BaseHTTPRequestHandler):
    ofrep: OFREPServer
    protocol_version = "HTTP/1.1"  # keep-alive, as a real OFREP server
    timeout = 30  # an idle keep-alive connection is dropped after this
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def setup(self) -> None:
        super().setup()
        self.ofrep._track(self.connection, threading.current_thread(), add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.ofrep._track(self.connection, threading.current_thread(), add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read `requests` instead

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length > 0 else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        request = self.ofrep._record(self.command, self.path, headers, raw_body)
        reply = self.ofrep._decide(request)
        if reply.delay_seconds > 0:
            self.ofrep._wait(reply.delay_seconds)
        payload = reply.payload()
        self.send_response(reply.status)
        self.send_header("Content-Length", str(len(payload)))
        if payload:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _evaluate_document(flags: FlagdMemoryProvider, key: str, context: dict[str, Any]) -> Reply:
    """Answer as flagd's OFREP service does, from the in-memory flagd document."""
    targeting_key = context.pop("targetingKey", None)
    evaluation = EvaluationContext(
        targeting_key=None if targeting_key is None else str(targeting_key),
        attributes=context,
    )
    details = _resolve_any_type(flags, key, evaluation)
    metadata = dict(details.flag_metadata or {})
    code = None if details.error_code is None else details.error_code.value
    if code == "FLAG_NOT_FOUND":
        return flag_not_found(key)
    if code is not None:
        return evaluation_error(code, details.error_message or code, key)
    reason = str(details.reason or "UNKNOWN")  # a StrEnum: "STATIC", "TARGETING_MATCH"...
    if reason == "DISABLED":  # flagd's OFREP maps a disabled flag to FLAG_NOT_FOUND
        return flag_not_found(key, f"flag `{key}` is disabled")
    if details.variant is None:
        return code_default(reason="DEFAULT", metadata=metadata, key=key)
    return evaluated(details.value, details.variant, reason=reason, metadata=metadata, key=key)


def _resolve_any_type(
    flags: FlagdMemoryProvider, key: str, evaluation: EvaluationContext
) -> FlagResolutionDetails[Any]:
    """OFREP requests carry no type: try each OpenFeature type until one fits."""
    resolvers: list[tuple[Callable[..., FlagResolutionDetails[Any]], Any]] = [
        (flags.resolve_boolean_details, False),
        (flags.resolve_string_details, ""),
        (flags.resolve_integer_details, 0),
        (flags.resolve_float_details, 0.0),
        (flags.resolve_object_details, {}),
    ]
    details: FlagResolutionDetails[Any] | None = None
    for resolve, default in resolvers:
        details = resolve(key, default, evaluation)
        if details.error_code is None or details.error_code.value != "TYPE_MISMATCH":
            return details
    assert details is not None
    return details


def _parse_json(raw_body: bytes) -> Any:
    try:
        return json.loads(raw_body) if raw_body else None
    except ValueError:
        return None


@contextlib.contextmanager
def running_ofrep_server(
    document: Mapping[str, Any] | None = None,
    *,
    host: str = "127.0.0.1",
    stop_timeout: float = 5.0,
) -> Iterator[OFREPServer]:
    """Run a loopback OFREP server for the duration of the block."""
    server = OFREPServer(document, host=host)
    server.start()
    try:
        yield server
    finally:
        server.stop(stop_timeout)
