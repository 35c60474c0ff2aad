"""What CJ sent to LPS: comparisons per mode, and batches started per mode."""

from __future__ import annotations

from prometheus_client.registry import Collector

from cj_batching.metrics._families import FailureGuard, bind, counter
from cj_batching.modes import LLMBatchingMode

__all__ = ["SubmissionMetrics"]


class SubmissionMetrics:
    """`cj_llm_requests_total` and `cj_llm_batches_started_total`, by `batching_mode`."""

    _failure: FailureGuard

    def _submission_families(self) -> list[Collector]:
        requests = counter("cj_llm_requests", "Comparisons sent to LPS.", "batching_mode")
        batches = counter(
            "cj_llm_batches_started", "CJ batches started (first wave).", "batching_mode"
        )
        self._requests = bind(requests, LLMBatchingMode)
        self._batches = bind(batches, LLMBatchingMode)
        return [requests, batches]

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
