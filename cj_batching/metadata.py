"""The batching keys CJ adds to every LPS request's metadata (additive; LPS echoes them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cj_batching.context import BatchContext
from cj_batching.resolution import Resolution

__all__ = [
    "LPS_KEYS",
    "LPS_KEY_PREFIX",
    "MAX_BUNDLE_SIZE",
    "RESERVED_KEYS",
    "TASK_KEYS",
    "build_request_metadata",
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
    metadata = {"essay_a_id": essay_a_id, "essay_b_id": essay_b_id, **base}
    if reasoning_effort is not None:
        metadata["reasoning_effort"] = reasoning_effort
    if output_verbosity is not None:
        metadata["output_verbosity"] = output_verbosity
    return metadata


def merge_extra(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`extra` plus `base`, refusing any `extra` key that `base`, the batching or LPS owns.

    The collision is detected by size and set tests first and only then explained.
    """
    merged = {**extra, **base}
    if (
        len(merged) != len(extra) + len(base)
        or not RESERVED_KEYS.isdisjoint(extra)
        or not LPS_KEYS.isdisjoint(extra)
        or any(str(key).startswith(LPS_KEY_PREFIX) for key in extra)
    ):
        _refuse(base, extra)
    return merged


def _refuse(base: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
    ours = sorted((RESERVED_KEYS | base.keys()) & extra.keys())
    if ours:
        raise ValueError(
            f"extra metadata may not set {', '.join(ours)}: these keys belong to the "
            f"batching strategy (reserved: {', '.join(sorted(RESERVED_KEYS))})"
        )
    lps = sorted(
        str(key) for key in extra if key in LPS_KEYS or str(key).startswith(LPS_KEY_PREFIX)
    )
    raise ValueError(
        f"extra metadata may not set {', '.join(lps)}: LPS writes these keys itself and "
        f"would overwrite them in the echo (LPS keys: {', '.join(sorted(LPS_KEYS))}, "
        f"{LPS_KEY_PREFIX}*)"
    )
