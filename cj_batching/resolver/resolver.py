"""`BatchingModeResolver`: the cached resolution chain, kept in step with the flags."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from openfeature.client import OpenFeatureClient
from openfeature.event import EventDetails, ProviderEvent
from openfeature.provider import ProviderStatus

from cj_batching.context import BatchContext
from cj_batching.guard import ArmResult, RolloutGuard
from cj_batching.modes import LLMBatchingMode
from cj_batching.resolution import Resolution
from cj_batching.resolver.cache import ResolutionCache
from cj_batching.resolver.chain import ResolutionChain
from cj_batching.resolver.trouble import FlagTrouble
from cj_batching.results.dedup import RecentIds
from cj_batching.settings import Settings
from flags.evaluation import FlagEvaluator

if TYPE_CHECKING:
    from cj_batching.metrics import BatchingMetrics
    from cj_batching.results import ResultEnvelope

__all__ = ["BatchingModeResolver"]

_log = logging.getLogger("cj_batching.resolver")


class BatchingModeResolver:
    """Resolves a batch's batching mode; thread-safe, cached, never raises for flags.

    Answers are cached per (batch id, source, provider, request type, override, pin)
    for `RESOLUTION_CACHE_TTL_SECONDS`, and the cache is dropped whenever the client's
    provider announces new flags or the rollout `guard` trips an arm, so either applies
    to the next resolution.
    """

    def __init__(
        self,
        settings: Settings,
        client: OpenFeatureClient,
        *,
        metrics: BatchingMetrics | None = None,
        guard: RolloutGuard | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._guard = guard
        self._evaluator = FlagEvaluator(
            client, timeout_seconds=settings.FLAGS_EVALUATION_TIMEOUT_SECONDS
        )
        self._trouble = FlagTrouble(metrics)
        # Without metrics (which remember recent event ids), the resolver does.
        self._recent_results = RecentIds(settings.RESULT_DEDUP_MAXSIZE) if metrics is None else None
        self._chain = ResolutionChain(settings, self._evaluator, self._trouble, guard)
        self._cache = ResolutionCache(
            settings.RESOLUTION_CACHE_MAXSIZE, settings.RESOLUTION_CACHE_TTL_SECONDS
        )
        # New flags (or a provider back from an error) make every cached answer suspect.
        # OpenFeature also calls the READY handler when it is registered on a ready
        # provider, later, on its event thread: that echo must not wipe the answers
        # cached meanwhile, so READY clears only after ERROR/STALE or a start not ready.
        self._degraded = client.get_provider_status() is not ProviderStatus.READY
        self._handlers = {
            ProviderEvent.PROVIDER_CONFIGURATION_CHANGED: self._on_flags_changed,
            ProviderEvent.PROVIDER_READY: self._on_ready,
            ProviderEvent.PROVIDER_ERROR: self._on_degraded,
            ProviderEvent.PROVIDER_STALE: self._on_degraded,
        }
        for event, handler in self._handlers.items():
            client.add_handler(event, handler)

    @property
    def settings(self) -> Settings:
        """The settings this resolver falls back to."""
        return self._settings

    @property
    def guard(self) -> RolloutGuard | None:
        """The rollout guard consulted on every fresh resolution (None: no guard)."""
        return self._guard

    @property
    def client(self) -> OpenFeatureClient:
        """The OpenFeature client the flags are evaluated on."""
        return self._evaluator.client

    def resolve(self, context: BatchContext) -> Resolution:
        """The batch's resolution: cached, else decided through the chain."""
        resolution = self._cache.get(context.cache_key)
        return resolution if resolution is not None else self._resolve_fresh(context)

    async def aresolve(self, context: BatchContext) -> Resolution:
        """`resolve` for async code: remote providers are evaluated off the event loop."""
        resolution = self._cache.get(context.cache_key)
        if resolution is not None:
            return resolution
        if self._evaluator.in_process:
            return self._resolve_fresh(context)
        return await asyncio.to_thread(self._resolve_fresh, context)

    def resolve_uncached(self, context: BatchContext) -> Resolution:
        """Decide through the chain without reading or filling the cache (for previews
        such as `cj-batching rollout`, where every batch id is evaluated once)."""
        resolution = self._chain.decide(context)
        self._record(resolution, context)
        return resolution

    def observe_result(
        self, event: ResultEnvelope | bytes | bytearray | str | Mapping[str, Any]
    ) -> bool:
        """Feed one LPS result callback (parsed, or the raw Kafka message) to the outcome
        metrics and the rollout guard: the CJ service's callback consumer calls this for
        every message. True when the event was new and usable; a bad event is counted
        (`cj_llm_comparison_results_invalid_total`) and a redelivered one ignored.
        Never raises."""
        # Loaded on first use: a service that only resolves never needs the models.
        from cj_batching.results import ResultEnvelope, ResultEventError, parse_result_event

        try:
            envelope = event if isinstance(event, ResultEnvelope) else parse_result_event(event)
        except ResultEventError as exc:  # the only exception it raises, whatever the input
            if self._metrics is not None:
                self._metrics.record_invalid_result(exc)
            return False
        if not self._first_delivery(envelope):
            return False
        guard = self._guard
        if guard is not None:
            self._feed_guard(guard, envelope)
        return True

    def clear_cache(self) -> None:
        """Forget every cached resolution (new flags apply to the next resolve)."""
        self._cache.clear()

    def close(self) -> None:
        """Stop listening to flag events and release the evaluation threads (idempotent, in
        any order with the provider's shutdown and `openfeature.api.shutdown()`)."""
        handlers, self._handlers = self._handlers, {}
        for event, handler in handlers.items():
            # api.shutdown() and api.clear_providers() have dropped every handler already.
            with contextlib.suppress(ValueError):
                self.client.remove_handler(event, handler)
        self._evaluator.close()

    def _first_delivery(self, envelope: ResultEnvelope) -> bool:
        """Count `envelope` in the metrics (which remember recent event ids); without
        metrics, remember them here: Kafka delivers at least once."""
        metrics, recent = self._metrics, self._recent_results
        if metrics is not None:
            return metrics.record_result(envelope)
        return recent is not None and recent.first_time(envelope.event_id.int)

    def _feed_guard(self, guard: RolloutGuard, envelope: ResultEnvelope) -> None:
        result = envelope.data
        arm = result.arm
        if not arm.randomised:  # only flag-decided results take part in the comparison
            return
        # Results of one wave fail together (LPS fails a serial bundle as a whole): the
        # guard measures that clustering by wave.
        wave = arm.cj_batch_id
        if wave is not None and arm.comparison_iteration is not None:
            wave = f"{wave}:{arm.comparison_iteration}"
        try:
            mode = LLMBatchingMode(arm.mode)  # a randomised arm has a known mode
            observed = ArmResult(arm.cj_source, mode, arm.decided_by, not result.is_success, wave)
        except ValueError:
            return
        if guard.observe(observed):
            self.clear_cache()  # cached answers of the tripped arm must not outlive it

    def _on_ready(self, _details: EventDetails) -> None:
        if self._degraded:
            self._degraded = False
            self.clear_cache()

    def _on_degraded(self, _details: EventDetails) -> None:
        self._degraded = True

    def _on_flags_changed(self, _details: EventDetails) -> None:
        self.clear_cache()
        self._trouble.forget()

    def _resolve_fresh(self, context: BatchContext) -> Resolution:
        # A flag change while we evaluate bumps the generation: then `put` drops an
        # answer that may come from the old flags.
        generation = self._cache.generation
        resolution = self.resolve_uncached(context)
        self._cache.put(context.cache_key, resolution, generation)
        return resolution

    def _record(self, resolution: Resolution, context: BatchContext) -> None:
        if self._metrics is not None:
            self._metrics.record_resolution(resolution, context.cj_source)
            if resolution.guardrail_applied:
                self._metrics.record_guardrail_downgrade(resolution.llm_provider)
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug(
                "batching mode resolved",
                extra={"cj_batch_id": context.batch_key, **resolution.log_extra()},
            )
