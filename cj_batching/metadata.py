"""The batching keys CJ adds to every LPS request's metadata (additive; LPS echoes them)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, NoReturn

from cj_batching._text import short_repr
from cj_batching.context import BatchContext
from cj_batching.resolution import Resolution

__all__ = [
    "LPS_KEYS",
    "LPS_KEY_PREFIX",
    "MAX_BUNDLE_SIZE",
    "RESERVED_KEYS",
    "TASK_KEYS",
    "build_request_metadata",
    "check_extra",
    "comparison_metadata",
    "merge_extra",
]

MAX_BUNDLE_SIZE: Final = 64
"""LPS accepts `preferred_bundle_size` only in 1..64 and ignores anything else."""

RESERVED_KEYS: Final = frozenset(
    {
        "cj_batch_id",
        "cj_source",
        "cj_llm_batching_mode",
        "cj_request_type",
        "cj_llm_batching_decided_by",
        "cj_llm_batching_pinned",
        "comparison_iteration",
        "preferred_bundle_size",
        "reasoning_effort",
        "output_verbosity",
    }
)
"""The keys the batching strategy writes."""

TASK_KEYS: Final = frozenset({"essay_a_id", "essay_b_id"})
"""The keys each comparison carries for itself."""

LPS_KEYS: Final = frozenset(
    {"resolved_provider", "resolved_model", "queue_processing_mode", "prompt_sha256", "usage"}
)
LPS_KEY_PREFIX: Final = "cache_"
"""LPS writes `LPS_KEYS` and every `cache_*` key into the metadata it echoes, over
whatever CJ sent: CJ must not use them."""

_OWNED: Final = RESERVED_KEYS | TASK_KEYS | LPS_KEYS


def build_request_metadata(
    context: BatchContext,
    resolution: Resolution,
    *,
    preferred_bundle_size: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata every comparison of one wave shares.

    Always `cj_batch_id` (a string), `cj_source`, `cj_llm_batching_mode`,
    `cj_request_type`, `cj_llm_batching_decided_by` (lets experiment readouts split by
    how the mode was chosen) and `comparison_iteration`, all from the context and the
    resolution; `cj_llm_batching_pinned: true` when the mode came from the batch's pin;
    `preferred_bundle_size` when given and > 0, capped at 64. `extra` (e.g.
    `bos_batch_id`) is merged but may set none of those keys nor a key LPS writes: that
    raises `ValueError` naming the key.
    """
    metadata: dict[str, Any] = {
        "cj_batch_id": context.batch_key,
        "cj_source": context.cj_source,
        "cj_llm_batching_mode": resolution.mode.value,
        "cj_request_type": context.request_type,
        "cj_llm_batching_decided_by": resolution.decided_by,
        "comparison_iteration": context.comparison_iteration,
    }
    if resolution.pinned:
        metadata["cj_llm_batching_pinned"] = True
    if isinstance(preferred_bundle_size, bool) or not isinstance(preferred_bundle_size, int | None):
        raise ValueError(f"preferred_bundle_size: {preferred_bundle_size!r} must be an int")
    if preferred_bundle_size is not None and preferred_bundle_size > 0:
        metadata["preferred_bundle_size"] = min(preferred_bundle_size, MAX_BUNDLE_SIZE)
    return merge_extra(metadata, extra) if extra else metadata


def comparison_metadata(
    base: Mapping[str, Any],
    essay_a_id: str,
    essay_b_id: str,
    *,
    reasoning_effort: str | None = None,
    output_verbosity: str | None = None,
) -> dict[str, Any]:
    """One comparison's metadata: the wave's `base` plus its essay ids, and the reasoning
    effort and output verbosity its overrides set (the deployed CJ copies them here too).

    `base` comes from `build_request_metadata`, which kept these keys out of it.
    """
    metadata = {**base, "essay_a_id": essay_a_id, "essay_b_id": essay_b_id}
    if reasoning_effort is not None:
        metadata["reasoning_effort"] = reasoning_effort
    if output_verbosity is not None:
        metadata["output_verbosity"] = output_verbosity
    return metadata


def merge_extra(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`extra` plus `base`, refusing any `extra` key that `base`, the batching, a task or
    LPS owns. The size test and one set test are the common path's only cost."""
    merged = {**extra, **base}
    if len(merged) != len(extra) + len(base) or _owned(extra):
        _refuse(base, extra)
    return merged


def check_extra(extra: Mapping[str, Any] | None) -> None:
    """Refuse, with a `ValueError` naming the key, caller metadata that cannot go out: a
    key that is not a string, a value that is not JSON (LPS receives JSON and echoes it),
    or a key the batching, a task or LPS owns. Run once per wave, before anything is
    resolved, counted or sent."""
    if not extra:
        return
    if not isinstance(extra, Mapping):
        raise ValueError(f"metadata: {short_repr(extra)} must be a mapping or None")
    for key, value in extra.items():
        if not isinstance(key, str):
            raise ValueError(f"metadata: key {short_repr(key)} must be a string")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError, RecursionError):
            raise ValueError(
                f"metadata[{key!r}]: {short_repr(value)} is not JSON (str, number, bool, "
                "None, or lists and string-keyed dicts of them; no NaN or infinity)"
            ) from None
    if _owned(extra):
        _refuse({}, extra)


def _owned(extra: Mapping[str, Any]) -> bool:
    return not _OWNED.isdisjoint(extra) or any(str(key).startswith(LPS_KEY_PREFIX) for key in extra)


def _refuse(base: Mapping[str, Any], extra: Mapping[str, Any]) -> NoReturn:
    ours = sorted((RESERVED_KEYS | base.keys()) & extra.keys())
    if ours:
        raise ValueError(
            f"extra metadata may not set {', '.join(ours)}: these keys belong to the "
            f"batching strategy (reserved: {', '.join(sorted(RESERVED_KEYS))})"
        )
    per_task = sorted(TASK_KEYS & extra.keys())
    if per_task:
        raise ValueError(
            f"extra metadata may not set {', '.join(per_task)}: each comparison carries "
            "its own (ComparisonTask)"
        )
    lps = sorted(
        str(key) for key in extra if key in LPS_KEYS or str(key).startswith(LPS_KEY_PREFIX)
    )
    raise ValueError(
        f"extra metadata may not set {', '.join(lps)}: LPS writes these keys itself and "
        f"would overwrite them in the echo (LPS keys: {', '.join(sorted(LPS_KEYS))}, "
        f"{LPS_KEY_PREFIX}*)"
    )
