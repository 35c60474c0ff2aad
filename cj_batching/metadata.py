"""The batching keys CJ adds to every LPS request's metadata (additive, LPS echoes them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cj_batching.context import BatchContext, normalise_token
from cj_batching.resolution import Resolution

__all__ = ["MAX_BUNDLE_SIZE", "RESERVED_KEYS", "build_request_metadata", "merge_extra"]

MAX_BUNDLE_SIZE: Final = 64
"""LPS accepts `preferred_bundle_size` only in 1..64 and ignores anything else."""

RESERVED_KEYS: Final = frozenset(
    {
        "cj_batch_id",
        "cj_source",
        "cj_llm_batching_mode",
        "cj_request_type",
        "cj_llm_batching_decided_by",
        "preferred_bundle_size",
    }
)


def build_request_metadata(
    context: BatchContext,
    resolution: Resolution,
    *,
    request_type: str | None = None,
    preferred_bundle_size: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata of one comparison request.

    Always `cj_batch_id` (a string), `cj_source`, `cj_llm_batching_mode`,
    `cj_request_type` and `cj_llm_batching_decided_by` (lets experiment readouts split by
    how the mode was chosen); `preferred_bundle_size` when given and > 0, capped at 64.
    `extra` (e.g. `essay_a_id`, `essay_b_id`, `bos_batch_id`) is merged but may not set
    any of those keys: that raises `ValueError`.
    """
    metadata: dict[str, Any] = {
        "cj_batch_id": context.batch_key,
        "cj_source": context.cj_source,
        "cj_llm_batching_mode": resolution.mode.value,
        "cj_request_type": (
            context.request_type
            if request_type is None
            else normalise_token("request_type", request_type, empty=None)
        ),
        "cj_llm_batching_decided_by": resolution.decided_by,
    }
    if isinstance(preferred_bundle_size, bool) or not isinstance(preferred_bundle_size, int | None):
        raise ValueError(f"preferred_bundle_size: {preferred_bundle_size!r} must be an int")
    if preferred_bundle_size is not None and preferred_bundle_size > 0:
        metadata["preferred_bundle_size"] = min(preferred_bundle_size, MAX_BUNDLE_SIZE)
    return merge_extra(metadata, extra) if extra else metadata


def merge_extra(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`extra` plus `base`, refusing any `extra` key that `base` or the batching owns.

    Called once per comparison with a `base` built once per wave, so the common path is a
    single dict merge; the collision is detected by size and only then explained.
    """
    merged = {**extra, **base}
    if len(merged) != len(extra) + len(base) or not RESERVED_KEYS.isdisjoint(extra):
        clashes = sorted((RESERVED_KEYS | base.keys()) & extra.keys())
        raise ValueError(
            f"extra metadata may not set {', '.join(clashes)}: these keys belong to the "
            f"batching strategy (reserved: {', '.join(sorted(RESERVED_KEYS))})"
        )
    return merged
