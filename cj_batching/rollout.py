"""Rollout previews: which arm consecutive batch ids land in, next to the declared weights."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Final

from cj_batching.context import BatchContext
from cj_batching.modes import LLMBatchingMode, LLMProviderType
from cj_batching.resolution import DECIDED_BY, Resolution
from cj_batching.resolver import BatchingModeResolver, flag_evaluation_context
from flags import FlagdEvaluatingProvider, flag_outcome

__all__ = [
    "MAX_PREVIEW_BATCHES",
    "PROGRESS_STEP",
    "Progress",
    "RolloutPreview",
    "evaluated_document",
    "preview_rollout",
    "resolve_consecutive",
]

MAX_PREVIEW_BATCHES: Final = 10_000_000
"""The most batch ids one preview resolves (per source): ~30 s per million here."""
Progress = Callable[[int], None]
"""Told how many more batch ids are done (a progress bar's `update`)."""
PROGRESS_STEP: Final = 1000


@dataclass(frozen=True, slots=True)
class RolloutPreview:
    """How `batches` consecutive batch ids of one source and provider resolve."""

    source: str
    provider: LLMProviderType
    first_batch_id: int
    batches: int
    modes: dict[LLMBatchingMode, int]
    decided_by: dict[str, int]
    declared_weights: dict[str, int] | None  # per mode value; None: no split applies
    guardrail_downgrades: int = 0  # batch-API requests the guardrail refused

    def share(self, mode: LLMBatchingMode) -> float:
        """The fraction of batches resolved to `mode`."""
        return self.modes[mode] / self.batches if self.batches else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The `--json` shape: counts and shares per mode, counts per decided_by, the
        declared weights and the guardrail downgrades."""
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
            "guardrail_downgrades": self.guardrail_downgrades,
        }


def resolve_consecutive(
    resolver: BatchingModeResolver,
    *,
    source: str,
    provider: LLMProviderType | str | None,
    batches: int,
    first_batch_id: int = 1,
    request_type: str = "cj_comparison",
    progress: Progress | None = None,
) -> Iterator[Resolution]:
    """Resolve ids `first_batch_id ..` through the real chain, each once (no cache).

    When no flag the chain reads looks at the batch id for this source, provider and
    request type (proven by `flags.flag_outcome`, not sampled), one resolution stands
    for every id: it is resolved (and counted in the resolver's metrics) once.

    `progress(n)` is told every `PROGRESS_STEP` ids (and at the end) how many more are
    done, for a progress bar. Bad input (source, provider, an id out of range) raises
    `ValueError` before anything is resolved.
    """
    if batches < 0:
        raise ValueError(f"batches: {batches} must be >= 0")
    context = BatchContext(first_batch_id, source, provider, request_type)
    BatchContext(first_batch_id + max(batches - 1, 0))  # the last id must be usable too
    document = evaluated_document(resolver)
    if batches and document is not None and _same_for_every_id(document, resolver, context):
        resolution = resolver.resolve_uncached(context)
        if evaluated_document(resolver) is document:  # no reload in between: it holds for all
            for start in range(0, batches, PROGRESS_STEP):
                if progress is not None:
                    progress(min(PROGRESS_STEP, batches - start))
            yield from repeat(resolution, batches)
            return
    done = 0
    for batch_id in range(first_batch_id, first_batch_id + batches):
        yield resolver.resolve_uncached(
            BatchContext(batch_id, context.cj_source, context.provider, context.request_type)
        )
        done += 1
        if progress is not None and done == PROGRESS_STEP:
            progress(done)
            done = 0
    if progress is not None and done:
        progress(done)


def evaluated_document(resolver: BatchingModeResolver) -> Mapping[str, Any] | None:
    """The document the resolver's in-process provider evaluates (None for remote
    flags): what a preview reads declared weights from, the version it resolved."""
    provider = resolver.client.provider
    return provider.document if isinstance(provider, FlagdEvaluatingProvider) else None


def _same_for_every_id(
    document: Mapping[str, Any], resolver: BatchingModeResolver, context: BatchContext
) -> bool:
    settings = resolver.settings
    provider = context.provider or settings.DEFAULT_LLM_PROVIDER
    attributes = flag_evaluation_context(context, provider).attributes
    for key in (settings.LLM_BATCHING_FLAG_KEY, settings.LLM_BATCH_API_ALLOWED_PROVIDERS_FLAG_KEY):
        outcome = flag_outcome(document, key, attributes)
        if outcome is not None and not outcome.same_for_every_key:
            return False
    return True


def preview_rollout(
    resolver: BatchingModeResolver,
    *,
    source: str,
    provider: LLMProviderType | str | None,
    batches: int,
    first_batch_id: int = 1,
    request_type: str = "cj_comparison",
    declared_weights: dict[str, int] | None = None,
    progress: Progress | None = None,
) -> RolloutPreview:
    """Resolve ids `first_batch_id ..` through the real chain, each once (no cache), and
    count the modes, how they were decided and the guardrail downgrades."""
    modes: Counter[LLMBatchingMode] = Counter()
    decided: Counter[str] = Counter()
    downgrades = 0
    for resolution in resolve_consecutive(
        resolver,
        source=source,
        provider=provider,
        batches=batches,
        first_batch_id=first_batch_id,
        request_type=request_type,
        progress=progress,
    ):
        modes[resolution.mode] += 1
        decided[resolution.decided_by] += 1
        downgrades += resolution.guardrail_applied
    context = BatchContext(first_batch_id, source, provider, request_type)
    return RolloutPreview(
        source=context.cj_source,
        provider=context.provider or resolver.settings.DEFAULT_LLM_PROVIDER,
        first_batch_id=first_batch_id,
        batches=batches,
        modes={mode: modes[mode] for mode in LLMBatchingMode},
        decided_by={name: decided[name] for name in DECIDED_BY},
        declared_weights=declared_weights,
        guardrail_downgrades=downgrades,
    )
