"""What one LPS answer means: a pure function of (status, headers, body).

- **queued**: a 202 whose body carries a `queue_id`.
- **queue full**: a 202 whose body is an error with code `REQUEST_QUEUED` (LPS at
  capacity; nothing was queued). Back-pressure: not retried now, re-submitted later.
- **retryable**: 429; a 5xx unless its code is permanent (`PERMANENT_CODES`).
- **final**: 400 and the other 4xx; any other 2xx (the endpoint answers 202: a 200 is a
  protocol error); a 202 with neither a queue id nor a queue-full error; a 202 that
  cannot be read (LPS may have queued it, so a retry could duplicate it); a 5xx with a
  permanent code such as `CONFIGURATION_ERROR` (retrying cannot heal it).

An explicit `is_retryable` in the body (LPS sends none today; gateways and later versions
may) overrides the status for every failure but queue full. Both of LPS's error shapes
are read: flat `{"error": "...", "details": ...}` and nested `{"error": {"code",
"message", "details", ...}}`. The retry-after is the `Retry-After` header (seconds or an
HTTP-date), else the body's `retry_after_seconds` (LPS nests it in
`error.details.details`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal

from pydantic import ValidationError

from cj_batching.lps.errors import PROTOCOL_ERROR, QUEUE_FULL, redact
from cj_batching.lps.models import QueuedComparison

__all__ = [
    "MAX_MESSAGE_CHARS",
    "PERMANENT_CODES",
    "Answer",
    "AnswerKind",
    "classify_answer",
    "retry_after_seconds",
]

AnswerKind = Literal["queued", "queue_full", "retryable", "final"]

LPS_QUEUE_FULL_CODE: Final = "REQUEST_QUEUED"
PERMANENT_CODES: Final = frozenset(
    {
        "CONFIGURATION_ERROR",  # e.g. "Provider 'google' not found" in that LPS
        "AUTHENTICATION_ERROR",
        "AUTHORIZATION_ERROR",
        "VALIDATION_ERROR",
        "INVALID_REQUEST",
    }
)
"""LPS error codes no retry can heal, whatever the status."""
MAX_MESSAGE_CHARS: Final = 500
_CODE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_SEARCH_DEPTH: Final = 4


@dataclass(frozen=True, slots=True)
class Answer:
    """One classified answer (or transport failure) of one attempt."""

    kind: AnswerKind
    status: int | None
    code: str | None = None
    message: str = ""
    retry_after_seconds: float | None = None
    queued: QueuedComparison | None = None

    @property
    def retry_now(self) -> bool:
        """Whether another attempt of this comparison may follow at once (after backoff)."""
        return self.kind == "retryable"


def classify_answer(
    status: int, headers: Mapping[str, str], body: bytes, *, secrets: Iterable[str] = ()
) -> Answer:
    """The meaning of an answer; error texts have `secrets` (and bearer tokens) redacted."""
    payload = _parse_json(body)
    if status == 202:
        return _accepted(payload, headers, body, tuple(secrets))
    if 200 <= status < 300:
        text = _error_text(payload, headers, body, tuple(secrets))
        return _protocol_error(status, f"expected 202, got {status}; body: {text}")
    code = _error_code(payload)
    hint = _retryable_hint(payload)
    if hint is not None:
        retryable = hint
    elif status == 429:
        retryable = True
    else:
        retryable = status >= 500 and code not in PERMANENT_CODES
    return Answer(
        "retryable" if retryable else "final",
        status,
        code,
        _error_text(payload, headers, body, tuple(secrets)),
        _retry_after(headers, payload),
    )


def _accepted(
    payload: object, headers: Mapping[str, str], body: bytes, secrets: tuple[str, ...]
) -> Answer:
    if not isinstance(payload, dict):
        text = _error_text(payload, headers, body, secrets)
        return _protocol_error(202, f"202 body is not a JSON object: {text}")
    if payload.get("queue_id"):
        try:
            return Answer("queued", 202, queued=QueuedComparison.model_validate(payload))
        except ValidationError as exc:
            return _protocol_error(202, f"malformed 202 body: {_short(str(exc), secrets)}")
    text = _error_text(payload, headers, body, secrets)
    code = _error_code(payload)
    if code == LPS_QUEUE_FULL_CODE:
        text = f"LPS queue full ({LPS_QUEUE_FULL_CODE}): {text}"
        return Answer("queue_full", 202, QUEUE_FULL, text, _retry_after(headers, payload))
    if "error" in payload:
        return Answer("final", 202, code or PROTOCOL_ERROR, f"202 with an error: {text}")
    return _protocol_error(202, f"202 without queue_id or error: {text}")


def _protocol_error(status: int, message: str) -> Answer:
    return Answer("final", status, PROTOCOL_ERROR, f"protocol error: {message}")


def _parse_json(body: bytes) -> object:
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None


def _error_code(payload: object) -> str | None:
    """LPS's error code: `error.code` (nested shape), else a top-level `code`/`error_code`."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    if code is None:
        code = payload.get("code", payload.get("error_code"))
    if not isinstance(code, str) or not _CODE.fullmatch(code.strip()):
        return None
    return code.strip().upper()


def _retryable_hint(payload: object) -> bool | None:
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    for where in (error, payload) if isinstance(error, dict) else (payload,):
        hint = where.get("is_retryable")
        if isinstance(hint, bool):
            return hint
    return None


def _retry_after(headers: Mapping[str, str], payload: object) -> float | None:
    header = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    seconds = retry_after_seconds(header)
    return seconds if seconds is not None else _body_retry_after(payload, _SEARCH_DEPTH)


def _body_retry_after(payload: object, depth: int) -> float | None:
    """`retry_after_seconds` from the body, outermost first (LPS: error.details.details)."""
    if not isinstance(payload, dict) or depth == 0:
        return None
    value = payload.get("retry_after_seconds")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) if math.isfinite(value) and value >= 0 else None
    for key in ("error", "details"):
        found = _body_retry_after(payload.get(key), depth - 1)
        if found is not None:
            return found
    return None


def retry_after_seconds(value: str | None) -> float | None:
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


# --- error text -----------------------------------------------------------------------------


def _error_text(
    payload: object, headers: Mapping[str, str], body: bytes, secrets: tuple[str, ...]
) -> str:
    """The error message from either shape, or a readable summary of the body."""
    if payload is None:
        text = _non_json_text(headers, body)
    elif not isinstance(payload, dict):
        text = f"unexpected JSON body: {_compact(payload)}"
    else:
        error = payload.get("error")
        if isinstance(error, dict):
            text = _with_details(_as_text(error.get("message", _compact(error))), error)
        elif error is not None or "message" in payload or "detail" in payload:
            message = error if error is not None else payload.get("message", payload.get("detail"))
            text = _with_details(_as_text(message), payload)
        else:
            text = f"JSON body: {_compact(payload)}"
    return _short(text, secrets)


def _with_details(text: str, where: Mapping[str, Any]) -> str:
    details = where.get("details")
    return f"{text} (details: {_as_text(details)})" if details not in (None, "", {}, []) else text


def _non_json_text(headers: Mapping[str, str], body: bytes) -> str:
    if not body.strip():
        return "empty body"
    content_type = next(
        (v for k, v in headers.items() if k.lower() == "content-type"), "unknown content type"
    )
    snippet = body[: MAX_MESSAGE_CHARS * 2].decode("utf-8", errors="replace")
    return f"non-JSON body ({content_type}): {snippet!r}"


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else _compact(value)


def _compact(value: object) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _short(text: str, secrets: tuple[str, ...]) -> str:
    # Redact before cutting: a cut must not leave half a token behind.
    text = redact(text, secrets)
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return f"{text[: MAX_MESSAGE_CHARS - 3]}..."
