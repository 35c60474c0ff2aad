"""How an edit of the flags moves batches between arms: the old and the new version
resolved for the same consecutive batch ids, through the real chain."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from cj_batching.context import BatchContext
from cj_batching.modes import LLMBatchingMode, LLMProviderType
from cj_batching.resolver import BatchingModeResolver
from cj_batching.rollout import Progress, resolve_consecutive

__all__ = ["Move", "count_moves"]


@dataclass(frozen=True, slots=True)
class Move:
    """`count` batch ids of `source` that get `from_mode` under the old flags and
    `to_mode` under the new ones."""

    source: str
    from_mode: LLMBatchingMode
    to_mode: LLMBatchingMode
    count: int

    def to_dict(self) -> dict[str, Any]:
        """`{"source", "from", "to", "count"}`."""
        return {
            "source": self.source,
            "from": self.from_mode.value,
            "to": self.to_mode.value,
            "count": self.count,
        }


def count_moves(
    old: BatchingModeResolver,
    new: BatchingModeResolver,
    *,
    source: str,
    provider: LLMProviderType | str | None,
    batches: int,
    first_batch_id: int = 1,
    request_type: str = "cj_comparison",
    progress: Progress | None = None,
) -> list[Move]:
    """The moves of `batches` consecutive ids, in mode order (ids that keep their mode
    are not moves). Both resolvers decide without their cache, so each id is evaluated
    once per version; the mode is the one LPS would get (guardrail included)."""
    options: dict[str, Any] = {
        "source": source,
        "provider": provider,
        "batches": batches,
        "first_batch_id": first_batch_id,
        "request_type": request_type,
        "progress": progress,
    }
    before = resolve_consecutive(old, **options)
    after = resolve_consecutive(new, **options)
    pairs = Counter(
        (a.mode, b.mode) for a, b in zip(before, after, strict=True) if a.mode is not b.mode
    )
    label = BatchContext(first_batch_id, source).cj_source
    order = list(LLMBatchingMode)
    return [
        Move(label, from_mode, to_mode, count)
        for (from_mode, to_mode), count in sorted(
            pairs.items(), key=lambda item: (order.index(item[0][0]), order.index(item[0][1]))
        )
    ]
