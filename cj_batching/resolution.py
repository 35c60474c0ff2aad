"""The answer of the resolution chain for one batch, with how it was reached, and its
record: what the CJ service stores with the batch after each wave to pin its mode."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

from cj_batching._text import short_repr
from cj_batching.modes import LLMBatchingMode, LLMProviderType

__all__ = ["DECIDED_BY", "RECORD_VERSION", "AllowListSource", "DecidedBy", "Resolution"]

_log = logging.getLogger(__name__)

DecidedBy = Literal["override", "flag", "default", "guard"]
DECIDED_BY: Final[tuple[DecidedBy, ...]] = get_args(DecidedBy)
AllowListSource = Literal["flag", "settings"]

RECORD_VERSION: Final = 1
"""The shape of `Resolution.to_record()`; a record of another version is not restored."""

# Variant names and flag set versions come from a flag file and are logged: short,
# printable text only (a stored record is input like any other).
_RECORD_TEXT = re.compile(r"[^\x00-\x1f\x7f]{1,128}")


@dataclass(frozen=True, slots=True)
class Resolution:
    """The effective batching mode of a batch and every link that led to it.

    `requested_mode` is what override, pin, flag, guard or env default asked for; `mode`
    is what is sent after the provider guardrail (they differ exactly when
    `guardrail_applied`). The `flag_*` fields describe the mode-flag evaluation that
    decided (None when it was not consulted, e.g. an override decided; a pinned
    resolution keeps those of the wave that first decided). `flag_error` is the
    OpenFeature error code, or `INVALID_MODE` when the flag returned a value that is not
    a mode. `pinned` is True when the mode came from a stored record (`decided_by` then
    says how it was first decided, `decided_at` when).
    """

    mode: LLMBatchingMode
    decided_by: DecidedBy
    requested_mode: LLMBatchingMode
    llm_provider: LLMProviderType
    guardrail_applied: bool = False
    flag_variant: str | None = None
    flag_reason: str | None = None
    flag_error: str | None = None
    flag_set_version: str | None = None
    allowed_providers: tuple[LLMProviderType, ...] | None = None
    allowed_providers_source: AllowListSource | None = None
    pinned: bool = False
    decided_at: datetime = field(default_factory=lambda: datetime.now(UTC), compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (enum members as their values)."""
        data = asdict(self)
        for name in ("mode", "requested_mode", "llm_provider"):
            data[name] = data[name].value
        if self.allowed_providers is not None:
            data["allowed_providers"] = [p.value for p in self.allowed_providers]
        data["decided_at"] = _iso(self.decided_at)
        return data

    def to_record(self) -> dict[str, Any]:
        """What to store with the batch after every wave (JSON-safe; the same record again
        for a pinned wave) and pass back as `BatchContext(pinned=Resolution.from_record(
        record))` on the next: a batch the guard or a kill switch moved then stays moved."""
        return {
            "record_version": RECORD_VERSION,
            "mode": self.mode.value,
            "decided_by": self.decided_by,
            "llm_provider": self.llm_provider.value,
            "flag_variant": self.flag_variant,
            "flag_set_version": self.flag_set_version,
            "decided_at": _iso(self.decided_at),
        }

    @classmethod
    def from_record(cls, record: object) -> Resolution | None:
        """The resolution a stored record describes; None for no record (a batch's first
        wave) and, with one WARNING naming what is wrong, for an unusable record: a bad
        record must never fail a submission; the batch is then resolved afresh."""
        if record is None:
            return None
        try:
            return _from_record(record)
        # A stored record is input: a date at the edge of the calendar overflows, a
        # hostile mapping raises anything; none of it may reach the submission.
        except Exception as exc:
            _log.warning(
                "ignoring a stored batching resolution: %s",
                exc,
                extra={"resolution_record": short_repr(record, 200)},
            )
            return None

    def log_extra(self) -> dict[str, Any]:
        """The fields a log line about this batch carries (`extra=`)."""
        return {
            "llm_batching_mode": self.mode.value,
            "decided_by": self.decided_by,
            "requested_mode": self.requested_mode.value,
            "guardrail_applied": self.guardrail_applied,
            "pinned": self.pinned,
            "flag_set_version": self.flag_set_version,
            "flag_error": self.flag_error,
        }


def _from_record(record: object) -> Resolution:
    if not isinstance(record, Mapping):
        raise ValueError(f"a record must be a mapping; got {short_repr(record)}")
    version = record.get("record_version")
    if version != RECORD_VERSION or isinstance(version, bool):
        raise ValueError(f"record_version: {short_repr(version)}; allowed: {RECORD_VERSION}")
    mode = LLMBatchingMode.parse(record.get("mode"), field="mode")
    provider = LLMProviderType.parse(record.get("llm_provider"), field="llm_provider")
    decided_by = record.get("decided_by")
    if decided_by not in DECIDED_BY:
        allowed = ", ".join(DECIDED_BY)
        raise ValueError(f"decided_by: {short_repr(decided_by)} is not one of {allowed}")
    return Resolution(
        mode=mode,
        decided_by=decided_by,
        requested_mode=mode,
        llm_provider=provider,
        flag_variant=_optional_text(record, "flag_variant"),
        flag_set_version=_optional_text(record, "flag_set_version"),
        pinned=True,
        decided_at=_decided_at(record.get("decided_at")),
    )


def _optional_text(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not _RECORD_TEXT.fullmatch(value):
        raise ValueError(f"{name}: {short_repr(value)} must be 1-128 printable characters or null")
    return value


def _decided_at(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"decided_at: {short_repr(value)} must be an ISO-8601 time")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"decided_at: {short_repr(value)} is not an ISO-8601 time") from None
    if when.tzinfo is None:
        raise ValueError(f"decided_at: {short_repr(value)} has no time zone")
    return when.astimezone(UTC)


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
