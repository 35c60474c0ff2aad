"""`LPSError`, the codes this client adds to LPS's own, and secret redaction."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final
from uuid import UUID

__all__ = [
    "CLIENT_ERROR",
    "CONNECTION_ERROR",
    "NOT_SENT",
    "PROTOCOL_ERROR",
    "QUEUE_FULL",
    "TIMEOUT",
    "LPSError",
    "redact",
]

# Codes for failures LPS did not name itself. QUEUE_FULL also replaces LPS's own
# REQUEST_QUEUED (a misleading name for "nothing was queued"), so that one code means
# "re-submit after retry_after_seconds", whether LPS answered or the client held back.
QUEUE_FULL: Final = "QUEUE_FULL"
TIMEOUT: Final = "TIMEOUT"
CONNECTION_ERROR: Final = "CONNECTION_ERROR"
PROTOCOL_ERROR: Final = "PROTOCOL_ERROR"
NOT_SENT: Final = "NOT_SENT"
CLIENT_ERROR: Final = "CLIENT_ERROR"

_REDACTED: Final = "[REDACTED]"
# Any bearer credential, not only ours: a proxy may echo a token it rewrote or cut.
_BEARER: Final = re.compile(r"(?i)\b(bearer)(\s+|\\u0020|%20)[^\s\"',;}\]\\]+")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every given secret and every `Bearer <credential>` replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, _REDACTED)
    return _BEARER.sub(rf"\1\2{_REDACTED}", text)


class LPSError(Exception):
    """A comparison that did not reach the LPS queue.

    `status` is the last HTTP status (None when no answer came); `code` LPS's error code
    when it sent one, else one of this module's (`QUEUE_FULL`, `TIMEOUT`, ...) or None;
    `message` the error text (secrets redacted, at most 500 characters); `retryable`
    whether a later re-submission may succeed; `retry_after_seconds` how long LPS asked
    callers to wait (from `Retry-After` or the body), if it said; `attempts` the POSTs
    made (0: never sent).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retryable: bool,
        retry_after_seconds: float | None = None,
        attempts: int,
        correlation_id: UUID | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retryable = retryable
        self.retry_after_seconds = retry_after_seconds
        self.attempts = attempts
        self.correlation_id = correlation_id

    @property
    def queue_full(self) -> bool:
        """Whether LPS's queue was full: re-submit after `retry_after_seconds`."""
        return self.code == QUEUE_FULL

    def __str__(self) -> str:
        if self.attempts == 0:
            source = "not sent"
        else:
            source = "no answer" if self.status is None else f"HTTP {self.status}"
        kind = "retryable" if self.retryable else "not retryable"
        code = f"{self.code}: " if self.code else ""
        wait = (
            f" [retry after {self.retry_after_seconds:g} s]"
            if self.retry_after_seconds is not None
            else ""
        )
        cid = f" [correlation_id={self.correlation_id}]" if self.correlation_id else ""
        return (
            f"LPS submit failed after {self.attempts} attempt(s) ({kind}): {source}: "
            f"{code}{self.message}{wait}{cid}"
        )

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._fields().items())
        return f"LPSError(message={self.message!r}, {fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.message, self._fields()))

    def _fields(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "retryable": self.retryable,
            "retry_after_seconds": self.retry_after_seconds,
            "attempts": self.attempts,
            "correlation_id": self.correlation_id,
        }


def _rebuild(message: str, fields: dict[str, Any]) -> LPSError:
    return LPSError(message, **fields)
