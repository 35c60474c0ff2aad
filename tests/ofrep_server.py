"""A real loopback OFREP (OpenFeature Remote Evaluation Protocol) server for tests.

`running_ofrep_server()` yields an `OFREPServer` on 127.0.0.1 (`tests.loopback`, the
server stack the LPS test server uses too); leaving the block stops it with bounded
waits. It answers `POST /ofrep/v1/evaluate/flags/{key}` (404 elsewhere) and records every
request, whatever its path, with its headers (Authorization included) and JSON body.

Each evaluation is answered, in this order, by: replies queued for the key with
`script(key, ...)` (FIFO, one request each), the standing `answer(key, ...)` for the key
(a `Reply` or a function of the `RecordedRequest`), the flagd-format document given to
`serve_document(...)` (evaluated by `flags.FlagdMemoryProvider`, so the rules of
`flags.yaml` apply, with flagd's OFREP mapping: no variant -> 200 without value/variant,
DISABLED -> 404 FLAG_NOT_FOUND), and otherwise 404 FLAG_NOT_FOUND.

Reply helpers cover the protocol's shapes: `evaluated`, `code_default`, `flag_not_found`,
`evaluation_error`, `unauthorized`, `too_many_requests`, `server_error`, `slow`, `raw`.
A `slow` reply waits server-side (other requests are served meanwhile) until its delay
passes, `release()` is called or the server stops.

    with running_ofrep_server(document) as ofrep:
        ofrep.script("llm-batching-mode", server_error())
        provider = make_provider("ofrep", url=ofrep.url)
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote

from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails

from flags import FlagdMemoryProvider

from . import loopback
from .loopback import LoopbackServer, Reply

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
class RecordedRequest(loopback.RecordedRequest):
    """One request as the OFREP server received it."""

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


class OFREPServer(LoopbackServer[RecordedRequest]):
    """The scriptable server's state; create it with `running_ofrep_server()`.

    Answers are decided on the server's thread; recording and scripting are guarded by
    locks, so tests may script and inspect while requests are in flight.
    """

    def __init__(
        self, document: Mapping[str, Any] | None = None, *, host: str = "127.0.0.1"
    ) -> None:
        super().__init__(RecordedRequest, host=host, name="ofrep")
        self._answers_lock = threading.Lock()
        self._scripts: defaultdict[str, deque[Reply]] = defaultdict(deque)
        self._answers: dict[str, Answer] = {}
        self._flags: FlagdMemoryProvider | None = None
        if document is not None:
            self.serve_document(document)

    @property
    def url(self) -> str:
        """The base URL to give an OFREP provider (no trailing slash)."""
        return self.origin

    # --- scripting ----------------------------------------------------------------------

    def serve_document(self, document: Mapping[str, Any] | None) -> None:
        """Answer flags from this flagd-format document (validated; None: no document)."""
        flags = None if document is None else FlagdMemoryProvider(document, name="ofrep-test")
        with self._answers_lock:
            self._flags = flags

    def answer(self, key: str, answer: Answer | None) -> None:
        """Answer every evaluation of `key` with `answer` (None: forget it)."""
        with self._answers_lock:
            if answer is None:
                self._answers.pop(key, None)
            else:
                self._answers[key] = answer

    def script(self, key: str, *replies: Reply) -> None:
        """Queue one-shot replies for the next evaluations of `key`, in order."""
        with self._answers_lock:
            self._scripts[key].extend(replies)

    # --- inspection ---------------------------------------------------------------------

    def requests_for(self, key: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.flag_key == key]

    # --- answering (on the server's thread) ---------------------------------------------

    def _key(self, method: str, path: str, body: Any) -> object:
        return path

    def _decide(self, request: RecordedRequest) -> Reply:
        key = request.flag_key
        if key is None:
            return Reply(404, {"errorDetails": f"no route for {request.method} {request.path}"})
        if request.raw_body and request.body is None:
            return evaluation_error("PARSE_ERROR", "the request body is not JSON", key)
        with self._answers_lock:
            script = self._scripts.get(key)
            if script:
                return script.popleft()
            answer, flags = self._answers.get(key), self._flags
        if answer is not None:
            return answer if isinstance(answer, Reply) else answer(request)
        if flags is not None:
            return _evaluate_document(flags, key, request.context)
        return flag_not_found(key)


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
