"""Submitting a CJ batch's comparisons to LPS: resolve once, tag, count, post, account."""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

from cj_batching.context import BatchContext
from cj_batching.lps_client import LPSClient, LPSError
from cj_batching.lps_models import LLMComparisonRequest, LLMConfigOverrides
from cj_batching.metadata import build_request_metadata, merge_extra
from cj_batching.metrics import BatchingMetrics
from cj_batching.modes import LLMBatchingMode
from cj_batching.resolution import Resolution
from cj_batching.resolver import BatchingModeResolver
from cj_batching.settings import Settings

__all__ = ["BatchSubmission", "ComparisonSubmission", "ComparisonTask", "LLMInteraction"]

_log = logging.getLogger(__name__)
_TASK_KEYS: Final = frozenset({"essay_a_id", "essay_b_id"})


@dataclass(frozen=True, slots=True)
class ComparisonTask:
    """One essay pair to compare."""

    essay_a_id: str
    essay_b_id: str
    user_prompt: str
    prompt_blocks: list[dict[str, Any]] | None = None
    llm_config_overrides: LLMConfigOverrides | None = None


@dataclass(frozen=True, slots=True)
class ComparisonSubmission:
    """What became of one task: queued at LPS (`queue_id`) or failed (`error`).

    `correlation_id` is the id the result callback will carry. An error with
    `attempts == 0` means the request was refused before sending (never counted).
    """

    task: ComparisonTask
    correlation_id: uuid.UUID
    queue_id: str | None = None
    error: LPSError | None = None

    @property
    def queued(self) -> bool:
        """Whether LPS accepted the comparison."""
        return self.queue_id is not None


@dataclass(frozen=True, slots=True)
class BatchSubmission:
    """A submitted wave: the resolution every request carried and each task's fate."""

    resolution: Resolution
    submissions: list[ComparisonSubmission] = field(default_factory=list)

    @property
    def queued(self) -> int:
        """How many comparisons LPS queued."""
        return sum(1 for s in self.submissions if s.queued)

    @property
    def failed(self) -> list[ComparisonSubmission]:
        """The submissions that did not reach the LPS queue."""
        return [s for s in self.submissions if not s.queued]


class LLMInteraction:
    """The CJ service's path to LPS: every wave, first or retry, goes through here so it
    gets the batch's override and flag decision, and is counted exactly once."""

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
        # LPS_MAX_CONCURRENCY bounds the POSTs in flight across every wave sent through
        # this object, not per wave: concurrent batches must not multiply it. One gate per
        # event loop (an asyncio.Semaphore belongs to the loop it first waits on).
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._gates = weakref.WeakKeyDictionary()

    async def submit_batch(
        self,
        context: BatchContext,
        tasks: Sequence[ComparisonTask],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> BatchSubmission:
        """Submit a wave for async processing (`request_type` from the context).

        Counts `cj_llm_batches_started_total` for a `cj_comparison` wave only (one that
        sends at least one comparison); a continuation or retry wave is the same context
        with `request_type="cj_retry"`.
        `metadata` is added to every request (e.g. `{"bos_batch_id": ...}`).
        """
        resolution = await self._resolver.aresolve(context)
        _log.info(
            "submitting %d comparisons of CJ batch %s in %s mode (decided by %s)",
            len(tasks),
            context.batch_key,
            resolution.mode.value,
            resolution.decided_by,
            extra={
                **resolution.log_extra(),
                "cj_batch_id": context.batch_key,
                "cj_source": context.cj_source,
                "cj_request_type": context.request_type,
                "comparisons": len(tasks),
            },
        )
        prepared, sendable = self._prepare_wave(tasks, context, resolution, None, metadata)
        # An empty wave, or one refused before sending, started nothing at LPS.
        if context.request_type == "cj_comparison" and sendable:
            self._metrics.record_batch_started(resolution.mode)
        submissions = await self._send(prepared, sendable, resolution.mode)
        return BatchSubmission(resolution, submissions)

    async def perform_comparisons(
        self,
        tasks: Sequence[ComparisonTask],
        context: BatchContext,
        *,
        resolution: Resolution | None = None,
        request_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> list[ComparisonSubmission]:
        """POST every task with bounded concurrency; each comes back once, in input order.

        The mode is resolved once (or `resolution` is used) and every request's metadata
        and the `cj_llm_requests_total` increments carry that same mode. One failing
        comparison never stops the others.
        """
        if resolution is None:
            resolution = await self._resolver.aresolve(context)
        prepared, sendable = self._prepare_wave(tasks, context, resolution, request_type, metadata)
        return await self._send(prepared, sendable, resolution.mode)

    def _prepare_wave(
        self,
        tasks: Sequence[ComparisonTask],
        context: BatchContext,
        resolution: Resolution,
        request_type: str | None,
        metadata: Mapping[str, Any] | None,
    ) -> tuple[list[_Ready | ComparisonSubmission], int]:
        """Every task's request (or its refusal) and how many can be sent; a bad `metadata`
        raises `ValueError` before anything is counted or sent."""
        if metadata and not _TASK_KEYS.isdisjoint(metadata):
            raise ValueError("metadata may not set essay_a_id or essay_b_id: they are per task")
        base = build_request_metadata(
            context,
            resolution,
            request_type=request_type,
            preferred_bundle_size=_bundle_hint(resolution.mode, len(tasks)),
            extra=metadata,
        )
        default_overrides = LLMConfigOverrides(provider_override=resolution.llm_provider)
        prepared = [self._prepare(task, base, default_overrides) for task in tasks]
        return prepared, sum(1 for item in prepared if isinstance(item, _Ready))

    async def _send(
        self, prepared: list[_Ready | ComparisonSubmission], sendable: int, mode: LLMBatchingMode
    ) -> list[ComparisonSubmission]:
        self._metrics.record_requests(mode, sendable)
        return await self._post_all(prepared, sendable)

    def _prepare(
        self, task: ComparisonTask, base: dict[str, Any], default_overrides: LLMConfigOverrides
    ) -> _Ready | ComparisonSubmission:
        correlation_id = uuid.uuid4()
        try:
            request = LLMComparisonRequest(
                user_prompt=task.user_prompt,
                prompt_blocks=task.prompt_blocks,
                callback_topic=self._settings.LLM_PROVIDER_CALLBACK_TOPIC,
                llm_config_overrides=_overrides_for(task, default_overrides),
                correlation_id=correlation_id,
                metadata=merge_extra(
                    base, {"essay_a_id": task.essay_a_id, "essay_b_id": task.essay_b_id}
                ),
            )
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            error = LPSError(
                f"not sent: {exc}",
                status_code=None,
                retryable=False,
                attempts=0,
                correlation_id=correlation_id,
            )
            _log.warning("%s", error, extra={"correlation_id": str(correlation_id)})
            return ComparisonSubmission(task, correlation_id, error=error)
        return _Ready(task, request)

    async def _post_all(
        self, prepared: list[_Ready | ComparisonSubmission], sendable: int
    ) -> list[ComparisonSubmission]:
        results: list[ComparisonSubmission | None] = [None] * len(prepared)
        indexes = iter(range(len(prepared)))  # shared by the workers: each index once

        gate = self._gate()

        async def worker() -> None:
            for index in indexes:
                item = prepared[index]
                if isinstance(item, _Ready):
                    async with gate:
                        results[index] = await self._post(item)
                else:
                    results[index] = item

        workers = max(1, min(self._settings.LPS_MAX_CONCURRENCY, sendable))
        await asyncio.gather(*(worker() for _ in range(workers)))
        return cast(list[ComparisonSubmission], results)  # every index was filled once

    def _gate(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            gate = self._gates[loop] = asyncio.Semaphore(self._settings.LPS_MAX_CONCURRENCY)
        return gate

    async def _post(self, item: _Ready) -> ComparisonSubmission:
        correlation_id = item.request.correlation_id
        try:
            queued = await self._lps.submit(item.request)
        except LPSError as exc:
            return ComparisonSubmission(item.task, correlation_id, error=exc)
        except Exception as exc:  # a client bug must cost one comparison, not the wave
            _log.exception(
                "LPS submit raised unexpectedly", extra={"correlation_id": str(correlation_id)}
            )
            error = LPSError(
                f"{type(exc).__name__}: {exc}",
                status_code=None,
                retryable=False,
                attempts=1,
                correlation_id=correlation_id,
            )
            return ComparisonSubmission(item.task, correlation_id, error=error)
        return ComparisonSubmission(item.task, correlation_id, queue_id=queued.queue_id)


@dataclass(frozen=True, slots=True)
class _Ready:
    task: ComparisonTask
    request: LLMComparisonRequest


def _overrides_for(task: ComparisonTask, default: LLMConfigOverrides) -> LLMConfigOverrides:
    """The task's LLM overrides, else `default`; the provider must be the batch's (the
    provider the guardrail judged)."""
    overrides = task.llm_config_overrides
    if overrides is None:
        return default
    if overrides.provider_override is not default.provider_override:
        raise ValueError(
            f"llm_config_overrides.provider_override: {overrides.provider_override.value!r} "
            f"differs from the batch's provider {default.provider_override.value!r}; the "
            "batching mode was resolved for the batch's provider"
        )
    return overrides


def _bundle_hint(mode: LLMBatchingMode, wave_size: int) -> int | None:
    """The wave size as LPS's bundle hint, for the serial-bundle mode only."""
    return wave_size if mode is LLMBatchingMode.SERIAL_BUNDLE else None
