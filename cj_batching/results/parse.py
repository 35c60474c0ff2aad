"""`parse_result_event`: raw callback bytes, text or mapping in, a `ResultEnvelope` out.

Two phases, as the platform's consumers do: the envelope first (its `data` left a
plain object), then `data` as an `LLMComparisonResultV1`. Whatever goes wrong, the one
exception is `ResultEventError`, whose `reason` says which phase failed, so a consumer
can dead-letter the message, count it and go on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal
from uuid import UUID

from pydantic import ValidationError

from cj_batching._text import short_repr
from cj_batching.results.models import LLMComparisonResultV1, ResultEnvelope, _EnvelopeFields

__all__ = ["MAX_EVENT_BYTES", "REASONS", "Reason", "ResultEventError", "parse_result_event"]

MAX_EVENT_BYTES: Final = 1024 * 1024
"""The largest event accepted (Kafka's default message limit is about 1 MB; a real
result is 1-3 KB). Anything larger is refused before it is parsed."""

Reason = Literal["not_json", "not_envelope", "invalid_data"]
REASONS: Final[tuple[Reason, ...]] = ("not_json", "not_envelope", "invalid_data")
_PHRASES: Final[dict[Reason, str]] = {
    "not_json": "not JSON",
    "not_envelope": "not an event envelope",
    "invalid_data": "invalid LLMComparisonResultV1 data",
}
_SHOWN_ERRORS: Final = 3
_NOT_JSON_TYPES: Final = frozenset({"json_invalid", "json_type", "string_unicode"})


class ResultEventError(ValueError):
    """A result event that cannot be used; `reason` is the phase that failed.

    `not_json`: not text, not JSON, or too large; `not_envelope`: JSON but not an event
    envelope; `invalid_data`: an envelope whose `data` is not a valid
    `LLMComparisonResultV1` (`event_id` is then known, for the dead-letter log).
    """

    def __init__(self, reason: Reason, message: str, *, event_id: UUID | None = None) -> None:
        super().__init__(f"{_PHRASES[reason]}: {message}")
        self.reason: Reason = reason
        self.event_id = event_id


class _RawEnvelope(_EnvelopeFields):
    """Phase one: the envelope with `data` still a plain object."""

    data: dict[str, Any]


_ENVELOPE_FIELDS: Final = tuple(_EnvelopeFields.model_fields)


def parse_result_event(
    raw: bytes | bytearray | memoryview | str | Mapping[str, Any],
) -> ResultEnvelope:
    """The envelope and its comparison result; `ResultEventError` for anything unusable.

    `raw` is one Kafka message value (bytes or text, JSON) or an already decoded
    mapping. Never raises another exception type, whatever `raw` is.
    """
    try:
        return _parse(raw)
    except ResultEventError:
        raise
    except Exception as exc:  # a hostile Mapping can raise anything from its methods
        raise ResultEventError(
            "not_envelope", f"unreadable input ({type(exc).__name__}: {short_repr(str(exc))})"
        ) from None


def _parse(raw: object) -> ResultEnvelope:
    # A valid event takes one pass that makes both phases' checks at once (about a third
    # faster than two, measured: docs/performance.md); only an event that fails it is
    # parsed phase by phase, so that the error names the phase that failed.
    if isinstance(raw, bytes | bytearray | memoryview | str):
        size = raw.nbytes if isinstance(raw, memoryview) else len(raw)
        if size > MAX_EVENT_BYTES:
            raise ResultEventError(
                "not_json", f"{size:,} bytes is more than the {MAX_EVENT_BYTES:,} an event may have"
            )
        text = bytes(raw) if isinstance(raw, memoryview) else raw
        try:
            return ResultEnvelope.model_validate_json(text)
        except ValidationError:
            pass
        try:
            envelope = _RawEnvelope.model_validate_json(text)
        except ValidationError as exc:
            raise _envelope_error(exc) from None
    elif isinstance(raw, Mapping):
        value = raw if isinstance(raw, dict) else dict(raw)
        try:
            return ResultEnvelope.model_validate(value)
        except ValidationError:
            pass
        try:
            envelope = _RawEnvelope.model_validate(value)
        except ValidationError as exc:
            raise _envelope_error(exc) from None
    else:
        raise ResultEventError(
            "not_json", f"expected bytes, str or a mapping, got {type(raw).__name__}"
        )
    try:
        result = LLMComparisonResultV1.model_validate(envelope.data)
    except ValidationError as exc:
        raise ResultEventError(
            "invalid_data", _describe(exc, prefix="data"), event_id=envelope.event_id
        ) from None
    # Valid phase by phase (JSON and Python validation differ in corner cases): accept.
    fields = {name: getattr(envelope, name) for name in _ENVELOPE_FIELDS}
    return ResultEnvelope.model_construct(**fields, data=result)


def _envelope_error(exc: ValidationError) -> ResultEventError:
    errors = exc.errors(include_url=False)
    if any(error["type"] in _NOT_JSON_TYPES for error in errors):
        return ResultEventError("not_json", _describe(exc))
    return ResultEventError("not_envelope", _describe(exc))


def _describe(exc: ValidationError, *, prefix: str = "") -> str:
    """The first few problems, each as `where: what (got value)`, inputs cut short."""
    errors = exc.errors(include_url=False)
    parts = []
    for error in errors[:_SHOWN_ERRORS]:
        where = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        text = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"] and error["type"] != "missing":
            text = f"{text} (got {short_repr(error['input'], 60)})"
        parts.append(f"{where}: {text}" if where else text)
    more = len(errors) - _SHOWN_ERRORS
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
