"""Prometheus counters for batching: what CJ sent, per mode, and how modes were decided."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final, TypeVar

from openfeature.exception import ErrorCode
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from cj_batching.context import KNOWN_SOURCES
from cj_batching.modes import LLMBatchingMode, LLMProviderType
from cj_batching.resolution import DECIDED_BY, Resolution

__all__ = ["FLAG_ERROR_CODES", "OTHER_LABEL", "BatchingMetrics"]

_log = logging.getLogger(__name__)
_K = TypeVar("_K", bound=str)

OTHER_LABEL: Final = "other"
# Error codes this package adds to OpenFeature's own, for the flag-error counter.
INVALID_MODE: Final = "INVALID_MODE"
INVALID_ALLOW_LIST: Final = "INVALID_ALLOW_LIST"
TIMEOUT: Final = "TIMEOUT"
FLAG_ERROR_CODES: Final = (
    *(code.value for code in ErrorCode),
    INVALID_MODE,
    INVALID_ALLOW_LIST,
    TIMEOUT,
    "OTHER",
)


class BatchingMetrics:
    """The CJ batching counters on one registry (default: the global one).

    Every label value comes from a bounded set (modes, decided_by, the known sources
    plus `other`, error codes, providers), never from a batch id. Children are bound
    up front: a pre-bound `.inc()` costs ~0.34 µs against ~1.2 µs for `.labels().inc()`
    (../shared/reference/openfeature-flagd-facts.md), and every series exists from 0.
    Recording never raises into the caller.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._failed = False
        counters = self._define()
        _register_all(REGISTRY if registry is None else registry, counters)

    def _define(self) -> list[Counter]:
        requests = _counter("cj_llm_requests", "Comparisons sent to LPS.", "batching_mode")
        batches = _counter(
            "cj_llm_batches_started", "CJ batches started (first wave).", "batching_mode"
        )
        resolutions = _counter(
            "cj_llm_batching_resolutions",
            "Fresh (non-cached) batching-mode resolutions.",
            "batching_mode",
            "decided_by",
            "cj_source",
        )
        errors = _counter(
            "cj_llm_batching_flag_errors",
            "Flag evaluations that fell back because of an error.",
            "error_code",
        )
        downgrades = _counter(
            "cj_llm_batching_guardrail_downgrades",
            "provider_batch_api requests refused by the provider guardrail.",
            "llm_provider",
        )
        sources = (*KNOWN_SOURCES, OTHER_LABEL)
        self._requests = _bind(requests, LLMBatchingMode)
        self._batches = _bind(batches, LLMBatchingMode)
        self._errors = _bind(errors, FLAG_ERROR_CODES)
        self._downgrades = _bind(downgrades, LLMProviderType)
        self._resolutions = {
            (mode, decided_by, source): resolutions.labels(mode.value, decided_by, source)
            for mode in LLMBatchingMode
            for decided_by in DECIDED_BY
            for source in sources
        }
        return [requests, batches, resolutions, errors, downgrades]

    def record_batch_started(self, mode: LLMBatchingMode) -> None:
        """+1 `cj_llm_batches_started_total` (call for `cj_comparison` submissions only)."""
        try:
            self._batches[mode].inc()
        except Exception:
            self._failure()

    def record_requests(self, mode: LLMBatchingMode, count: int = 1) -> None:
        """+count `cj_llm_requests_total`: one per comparison submitted to LPS."""
        try:
            self._requests[mode].inc(count)
        except Exception:
            self._failure()

    def record_resolution(self, resolution: Resolution, cj_source: str) -> None:
        """+1 `cj_llm_batching_resolutions_total` for a fresh resolution."""
        source = cj_source if cj_source in KNOWN_SOURCES else OTHER_LABEL
        try:
            self._resolutions[resolution.mode, resolution.decided_by, source].inc()
        except Exception:
            self._failure()

    def record_flag_error(self, error_code: str) -> None:
        """+1 `cj_llm_batching_flag_errors_total` (unknown codes count as OTHER)."""
        try:
            (self._errors.get(error_code) or self._errors["OTHER"]).inc()
        except Exception:
            self._failure()

    def record_guardrail_downgrade(self, provider: LLMProviderType) -> None:
        """+1 `cj_llm_batching_guardrail_downgrades_total` for `provider`."""
        try:
            self._downgrades[provider].inc()
        except Exception:
            self._failure()

    def _failure(self) -> None:
        # A metric must never break a submission: log the first failure, swallow all.
        if not self._failed:
            self._failed = True
            _log.exception("recording a batching metric failed; further failures are silent")


def _counter(name: str, doc: str, *labels: str) -> Counter:
    return Counter(name, doc, labels, registry=None)  # registered all at once, below


def _register_all(registry: CollectorRegistry, counters: list[Counter]) -> None:
    """Register every counter or none: a clash must not leave a half-filled registry."""
    done: list[Counter] = []
    try:
        for counter in counters:
            registry.register(counter)
            done.append(counter)
    except ValueError as exc:
        for counter in done:
            registry.unregister(counter)
        raise ValueError(
            f"BatchingMetrics: a cj_llm_* metric is already registered in {registry!r} "
            f"({exc}); create one BatchingMetrics per registry and share it"
        ) from exc


def _bind(counter: Counter, values: Iterable[_K]) -> dict[_K, Counter]:
    return {value: counter.labels(value) for value in values}
