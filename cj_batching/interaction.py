"""Submitting a CJ batch's comparisons to LPS: resolve once, tag, post, count, account."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from cj_batching.context import BatchContext
from cj_batching.lps import (
    CLIENT_ERROR,
    NOT_SENT,
    QUEUE_FULL,
    LLMComparisonRequest,
    LLMConfigOverrides,
    LPSClient,
    LPSError,
)
from cj_batching.metadata import build_request_metadata, check_extra, comparison_metadata
from cj_batching.metrics import BatchingMetrics
from cj_batching.resolution import Resolution
from cj_batching.resolver import BatchingModeResolver
from cj_batching.settings import Settings
from cj_batching.submission import BatchSubmission, ComparisonSubmission, ComparisonTask

__all__ = ["LLMInteraction"]

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Wave:
    """One wave ready to send: each task's request (or its refusal) and the counting."""

    context: BatchContext
    resolution: Resolution
    items: list[_Ready | ComparisonSubmission]
    sendable: int
    started: bool = False  # whether a first POST of this wave went out
    # LPS's queue-full answer to one comparison of the wave: the ones not yet posted are
    # held back with it, however short the client's cooldown (a retry-after of 0 too).
    held: LPSError | None = None


@dataclass(frozen=True, slots=True)
class _Ready:
    task: ComparisonTask
    request: LLMComparisonRequest


class LLMInteraction:
    """The CJ service's path to LPS: every wave, first or retry, goes through here, so it
    gets the batch's override and flag decision and is counted exactly once.

    Concurrency (`LPS_MAX_CONCURRENCY` via the client) and back-pressure belong to the
    `LPSClient`: they hold across every wave sent through it.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        resolver: BatchingModeResolver,
        lps: LPSClient,
        metrics: BatchingMetrics,
    ) -> None:
        self._settings = settings
        self._resolver = resolver
        self._lps = lps
        self._metrics = metrics

    async def submit_batch(
        self,
        context: BatchContext,
        tasks: Sequence[ComparisonTask],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> BatchSubmission:
        """Submit a wave; the result keeps the `Resolution` every request carried (store it
        with the batch and pass it back as the next wave's `pinned`).

        The context says which wave it is: `request_type="cj_comparison"` for a batch's
        first, `"cj_retry"` for continuation and retry waves, and `comparison_iteration`.
        `cj_llm_batches_started_total` counts a `cj_comparison` wave once its first POST
        goes out (`BatchSubmission.started`). `metadata` is added to every request (e.g.
        `{"bos_batch_id": ...}`). Each comparison comes back once, in input order; one
        failing never stops the others, but a queue-full answer holds back every one not
        yet sent (failed with `QUEUE_FULL`, uncounted). Bad `metadata` or two tasks with
        one correlation id raise `ValueError` before anything is resolved, sent or counted.
        """
        check_extra(metadata)
        _refuse_duplicate_ids(tasks)
        resolution = await self._resolver.aresolve(context)
        _log.info(
            "submitting %d comparisons of CJ batch %s (wave %d) in %s mode (decided by %s)",
            len(tasks),
            context.batch_key,
            context.comparison_iteration,
            resolution.mode.value,
            resolution.decided_by,
            extra={
                **resolution.log_extra(),
                "cj_batch_id": context.batch_key,
                "cj_source": context.cj_source,
                "cj_request_type": context.request_type,
                "comparison_iteration": context.comparison_iteration,
                "comparisons": len(tasks),
            },
        )
        wave = self._prepare_wave(tasks, context, resolution, metadata)
        submissions = await self._send(wave)
        return BatchSubmission(resolution, submissions, started=wave.started)

    async def perform_comparisons(
        self,
        tasks: Sequence[ComparisonTask],
        context: BatchContext,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> list[ComparisonSubmission]:
        """`submit_batch` for a caller that wants only the submissions, in input order."""
        return (await self.submit_batch(context, tasks, metadata=metadata)).submissions

    def _prepare_wave(
        self,
        tasks: Sequence[ComparisonTask],
        context: BatchContext,
        resolution: Resolution,
        metadata: Mapping[str, Any] | None,
    ) -> _Wave:
        base = build_request_metadata(
            context, resolution, preferred_bundle_size=len(tasks), extra=metadata
        )
        settings = self._settings
        default = LLMConfigOverrides(
            provider_override=resolution.llm_provider,
            model_override=settings.DEFAULT_LLM_MODEL,
            temperature_override=settings.DEFAULT_LLM_TEMPERATURE,
        )
        items = [self._prepare(task, base, default) for task in tasks]
        sendable = sum(1 for item in items if isinstance(item, _Ready))
        return _Wave(context, resolution, items, sendable)

    def _prepare(
        self, task: ComparisonTask, base: dict[str, Any], default: LLMConfigOverrides
    ) -> _Ready | ComparisonSubmission:
        correlation_id = task.correlation_id or uuid.uuid4()
        try:
            overrides = _overrides_for(task, default)
            request = LLMComparisonRequest(
                user_prompt=task.user_prompt,
                prompt_blocks=task.prompt_blocks,
                callback_topic=self._settings.LLM_PROVIDER_CALLBACK_TOPIC,
                llm_config_overrides=overrides,
                correlation_id=correlation_id,
                metadata=comparison_metadata(
                    base,
                    task.essay_a_id,
                    task.essay_b_id,
                    reasoning_effort=overrides.reasoning_effort,
                    output_verbosity=overrides.output_verbosity,
                ),
            )
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            error = LPSError(
                f"not sent: {exc}",
                code=NOT_SENT,
                retryable=False,
                attempts=0,
                correlation_id=correlation_id,
            )
            _log.warning("%s", error, extra={"correlation_id": str(correlation_id)})
            return ComparisonSubmission(task, correlation_id, error=error)
        return _Ready(task, request)

    async def _send(self, wave: _Wave) -> list[ComparisonSubmission]:
        items = wave.items
        results: list[ComparisonSubmission | None] = [None] * len(items)
        indexes = iter(range(len(items)))  # shared by the workers: each index once

        async def worker() -> None:
            for index in indexes:
                item = items[index]
                results[index] = await self._post(item, wave) if isinstance(item, _Ready) else item

        workers = max(1, min(self._lps.max_concurrency, wave.sendable))
        await asyncio.gather(*(worker() for _ in range(workers)))
        return cast(list[ComparisonSubmission], results)  # every index was filled once

    async def _post(self, item: _Ready, wave: _Wave) -> ComparisonSubmission:
        correlation_id = item.request.correlation_id
        if wave.held is not None:
            return ComparisonSubmission(item.task, correlation_id, error=_held(wave.held, item))
        attempted = False

        def sent() -> None:  # the first POST of this comparison is going out
            nonlocal attempted
            attempted = True
            self._metrics.record_requests(wave.resolution.mode)
            if not wave.started:
                wave.started = True
                if wave.context.request_type == "cj_comparison":
                    self._metrics.record_batch_started(wave.resolution.mode)

        try:
            queued = await self._lps.submit(item.request, on_first_attempt=sent)
        except LPSError as exc:
            if exc.queue_full and exc.status is not None:  # LPS itself said so
                self._metrics.record_backpressure()
                wave.held = wave.held or exc
            return ComparisonSubmission(item.task, correlation_id, error=exc)
        except Exception as exc:  # a client bug must cost one comparison, not the wave
            _log.exception(
                "LPS submit raised unexpectedly", extra={"correlation_id": str(correlation_id)}
            )
            error = LPSError(
                f"{type(exc).__name__}: {exc}",
                code=CLIENT_ERROR,
                retryable=False,
                attempts=int(attempted),  # at least; the client did not say how many
                correlation_id=correlation_id,
            )
            return ComparisonSubmission(item.task, correlation_id, error=error)
        return ComparisonSubmission(item.task, correlation_id, queue_id=queued.queue_id)


def _held(answer: LPSError, item: _Ready) -> LPSError:
    """The failure of a comparison held back with its wave after `answer` (queue full)."""
    return LPSError(
        "held back: LPS's queue is full; re-submit after the retry-after",
        code=QUEUE_FULL,
        retryable=True,
        retry_after_seconds=answer.retry_after_seconds,
        attempts=0,
        correlation_id=item.request.correlation_id,
    )


def _refuse_duplicate_ids(tasks: Sequence[ComparisonTask]) -> None:
    given = [task.correlation_id for task in tasks if task.correlation_id is not None]
    if len(set(given)) != len(given):
        twice = sorted(str(cid) for cid, n in Counter(given).items() if n > 1)
        raise ValueError(
            f"correlation_id: {', '.join(twice[:5])} given to more than one task of the wave; "
            "each comparison needs its own (LPS's result callback is matched on it)"
        )


def _overrides_for(task: ComparisonTask, default: LLMConfigOverrides) -> LLMConfigOverrides:
    """The task's LLM overrides over the wave's defaults (provider, model, temperature).

    The provider must be the batch's: the mode was resolved and guarded for it.
    """
    overrides = task.llm_config_overrides
    if overrides is None:
        return default
    if overrides.provider_override is not default.provider_override:
        raise ValueError(
            f"llm_config_overrides.provider_override: {overrides.provider_override.value!r} "
            f"differs from the batch's provider {default.provider_override.value!r}; the "
            "batching mode was resolved for the batch's provider"
        )
    missing: dict[str, Any] = {}
    if overrides.model_override is None:
        missing["model_override"] = default.model_override
    if overrides.temperature_override is None:
        missing["temperature_override"] = default.temperature_override
    return overrides.model_copy(update=missing) if missing else overrides
