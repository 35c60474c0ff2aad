"""Per-batch overrides and the flag-free effective-mode helper."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from cj_batching._text import short_repr
from cj_batching.modes import LLMBatchingMode
from cj_batching.settings import Settings

__all__ = [
    "MODE_HINT_KEY",
    "BatchConfigOverrides",
    "get_effective_batching_mode",
    "overrides_from_envelope_metadata",
]

_log = logging.getLogger(__name__)

MODE_HINT_KEY: Final = "llm_batching_mode_hint"
"""The event-envelope metadata key upstream (e.g. the ENG5 runner) sets a mode with."""


class BatchConfigOverrides(BaseModel):
    """Per-batch knobs a caller (BOS, ELS, the ENG5 runner) may set for one CJ batch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_size: int | None = Field(None, ge=10, le=200)
    max_concurrent_batches: int | None = Field(None, ge=1, le=5)
    partial_completion_threshold: float | None = Field(None, ge=0.5, le=1.0)
    llm_batching_mode_override: LLMBatchingMode | None = Field(
        None, description="Forces this batch's mode; the first link of the resolution chain."
    )


def get_effective_batching_mode(
    settings: Settings, overrides: BatchConfigOverrides | None
) -> LLMBatchingMode:
    """The override when present, else the env default (no flags, no guardrail)."""
    if overrides is not None and overrides.llm_batching_mode_override is not None:
        return overrides.llm_batching_mode_override
    return settings.LLM_BATCHING_MODE


def overrides_from_envelope_metadata(
    metadata: Mapping[str, Any] | None,
) -> BatchConfigOverrides | None:
    """Overrides from an event envelope's `llm_batching_mode_hint`, or None.

    The hint is stripped and lower-cased and may use aliases (`serial_bundle`). An
    unknown or non-string hint is ignored with a WARNING naming it: a bad hint must not
    fail the batch, but it must not vanish silently either.
    """
    hint = metadata.get(MODE_HINT_KEY) if isinstance(metadata, Mapping) else None
    if hint is None or (isinstance(hint, str) and not hint.strip()):
        return None
    mode = LLMBatchingMode.lookup(hint)
    if mode is None:
        _log.warning(
            "ignoring unknown %s %s; allowed: %s",
            MODE_HINT_KEY,
            short_repr(hint),
            LLMBatchingMode.allowed(),
            extra={"llm_batching_mode_hint": short_repr(hint)},
        )
        return None
    return BatchConfigOverrides(llm_batching_mode_override=mode)
