"""The answer of the resolution chain for one batch, with how it was reached."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from cj_batching.modes import LLMBatchingMode, LLMProviderType

__all__ = ["DECIDED_BY", "AllowListSource", "DecidedBy", "Resolution"]

DecidedBy = Literal["override", "flag", "default"]
DECIDED_BY: tuple[DecidedBy, ...] = ("override", "flag", "default")
AllowListSource = Literal["flag", "settings"]


@dataclass(frozen=True, slots=True)
class Resolution:
    """The effective batching mode of a batch and every link that led to it.

    `requested_mode` is what override, flag or env default asked for; `mode` is what
    is sent after the provider guardrail (they differ exactly when `guardrail_applied`).
    The `flag_*` fields describe the mode-flag evaluation (None when it was not
    consulted, e.g. an override decided); `flag_error` is the OpenFeature error code,
    or `INVALID_MODE` when the flag returned a value that is not a mode.
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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (enum members as their values)."""
        data = asdict(self)
        for name in ("mode", "requested_mode", "llm_provider"):
            data[name] = data[name].value
        if self.allowed_providers is not None:
            data["allowed_providers"] = [p.value for p in self.allowed_providers]
        return data

    def log_extra(self) -> dict[str, Any]:
        """The fields a log line about this batch carries (`extra=`)."""
        return {
            "llm_batching_mode": self.mode.value,
            "decided_by": self.decided_by,
            "requested_mode": self.requested_mode.value,
            "guardrail_applied": self.guardrail_applied,
            "flag_set_version": self.flag_set_version,
            "flag_error": self.flag_error,
        }
