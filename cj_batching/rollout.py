"""Rollout previews: which arm consecutive batch ids land in, next to the declared weights."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from cj_batching.context import BatchContext
from cj_batching.modes import LLMBatchingMode, LLMProviderType
from cj_batching.resolution import DECIDED_BY
from cj_batching.resolver import BatchingModeResolver

__all__ = ["RolloutPreview", "preview_rollout"]


@dataclass(frozen=True, slots=True)
class RolloutPreview:
    """How `batches` consecutive batch ids of one source and provider resolve."""

    source: str
    provider: LLMProviderType
    first_batch_id: int
    batches: int
    modes: dict[LLMBatchingMode, int]
    decided_by: dict[str, int]
    declared_weights: dict[str, int] | None

    def share(self, mode: LLMBatchingMode) -> float:
        """The fraction of batches resolved to `mode`."""
        return self.modes[mode] / self.batches if self.batches else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The `--json` shape: counts and shares per mode, counts per decided_by."""
        return {
            "source": self.source,
            "provider": self.provider.value,
            "batches": self.batches,
            "modes": {
                mode.value: {"count": count, "share": round(self.share(mode), 6)}
                for mode, count in self.modes.items()
            },
            "decided_by": self.decided_by,
            "declared_weights": self.declared_weights,
        }


def preview_rollout(
    resolver: BatchingModeResolver,
    *,
    source: str,
    provider: LLMProviderType | str | None,
    batches: int,
    first_batch_id: int = 1,
    request_type: str = "cj_comparison",
    declared_weights: dict[str, int] | None = None,
) -> RolloutPreview:
    """Resolve ids `first_batch_id ..` through the real chain, each once (no cache)."""
    if batches < 0:
        raise ValueError(f"batches: {batches} must be >= 0")
    modes: Counter[LLMBatchingMode] = Counter()
    decided: Counter[str] = Counter()
    context = BatchContext(first_batch_id, source, provider, request_type)
    for batch_id in range(first_batch_id, first_batch_id + batches):
        resolution = resolver.resolve_uncached(
            BatchContext(batch_id, context.cj_source, context.provider, context.request_type)
        )
        modes[resolution.mode] += 1
        decided[resolution.decided_by] += 1
    return RolloutPreview(
        source=context.cj_source,
        provider=context.provider or resolver.settings.DEFAULT_LLM_PROVIDER,
        first_batch_id=first_batch_id,
        batches=batches,
        modes={mode: modes[mode] for mode in LLMBatchingMode},
        decided_by={name: decided[name] for name in DECIDED_BY},
        declared_weights=declared_weights,
    )
