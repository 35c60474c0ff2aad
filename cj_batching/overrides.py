"""Per-batch overrides, read from an event envelope, and the flag-free effective-mode helper."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cj_batching._text import short_repr
from cj_batching.bounds import (
    BatchSize,
    MaxComparisons,
    MaxConcurrentBatches,
    PartialCompletionThreshold,
)
from cj_batching.modes import LLMBatchingMode
from cj_batching.settings import Settings

__all__ = [
    "BATCH_CONFIG_KEY",
    "MAX_COMPARISONS_KEY",
    "MODE_HINT_KEY",
    "BatchConfigOverrides",
    "get_effective_batching_mode",
    "overrides_from_envelope_metadata",
]

_log = logging.getLogger(__name__)

MODE_HINT_KEY: Final = "llm_batching_mode_hint"
"""The event-envelope metadata key upstream (e.g. the ENG5 runner) sets a mode with."""
BATCH_CONFIG_KEY: Final = "batch_config_overrides"
"""The envelope key of a dict of per-batch knobs (`batch_size`, ...)."""
MAX_COMPARISONS_KEY: Final = "max_comparisons"
"""The envelope key of a cap on the batch's comparisons."""
_BATCH_CONFIG_FIELDS: Final = (
    "batch_size",
    "max_concurrent_batches",
    "partial_completion_threshold",
)


class BatchConfigOverrides(BaseModel):
    """Per-batch knobs a caller (BOS, ELS, the ENG5 runner) may set for one CJ batch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch_size: BatchSize | None = None
    max_concurrent_batches: MaxConcurrentBatches | None = None
    partial_completion_threshold: PartialCompletionThreshold | None = None
    max_comparisons: MaxComparisons | None = Field(
        None, description="A cap on the batch's comparisons."
    )
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
    """The overrides an event envelope's metadata asks for, or None when it asks none.

    Read: `llm_batching_mode_hint` (stripped, any case, aliases such as
    `provider_serial_bundle`), `batch_config_overrides` (a dict whose `batch_size`,
    `max_concurrent_batches` and `partial_completion_threshold` get the usual bounds;
    other keys are ignored, logged at DEBUG) and `max_comparisons` (a positive int). A
    bad value is ignored with one WARNING naming it: it must not fail the batch, and it
    must not vanish silently either.
    """
    if not isinstance(metadata, Mapping):
        return None
    values: dict[str, Any] = {}
    mode = _mode_hint(metadata.get(MODE_HINT_KEY))
    if mode is not None:
        values["llm_batching_mode_override"] = mode
    config = metadata.get(BATCH_CONFIG_KEY)
    if config is not None:
        values.update(_batch_config(config))
    if metadata.get(MAX_COMPARISONS_KEY) is not None:
        values.update(_checked({"max_comparisons": metadata[MAX_COMPARISONS_KEY]}))
    return BatchConfigOverrides(**values) if values else None


def _mode_hint(hint: object) -> LLMBatchingMode | None:
    if hint is None or (isinstance(hint, str) and not hint.strip()):
        return None
    mode = LLMBatchingMode.lookup(hint)
    if mode is None:
        _ignored(MODE_HINT_KEY, hint, f"allowed: {LLMBatchingMode.allowed()}")
    return mode


def _batch_config(config: object) -> dict[str, Any]:
    if not isinstance(config, Mapping):
        _ignored(BATCH_CONFIG_KEY, config, "it must be a JSON object")
        return {}
    unknown = sorted(str(key) for key in config if key not in _BATCH_CONFIG_FIELDS)
    if unknown:
        _log.debug(
            "ignoring unknown %s keys %s",
            BATCH_CONFIG_KEY,
            short_repr(unknown),
            extra={"ignored_keys": unknown},
        )
    known = {key: config[key] for key in _BATCH_CONFIG_FIELDS if config.get(key) is not None}
    return _checked(known, where=f"{BATCH_CONFIG_KEY}.")


def _checked(values: dict[str, Any], *, where: str = "") -> dict[str, Any]:
    """The values that pass their bounds, each checked alone; each bad one logged once."""
    kept: dict[str, Any] = {}
    for name, value in values.items():
        try:
            model = BatchConfigOverrides.model_validate({name: value})
        except ValidationError as exc:
            reason = "; ".join(str(e["msg"]) for e in exc.errors(include_url=False))
            _ignored(f"{where}{name}", value, reason)
        else:
            kept[name] = getattr(model, name)
    return kept


def _ignored(name: str, value: object, reason: str) -> None:
    _log.warning(
        "ignoring %s %s from the event envelope: %s",
        name,
        short_repr(value),
        reason,
        extra={"envelope_key": name, "envelope_value": short_repr(value)},
    )
