"""What CJ sent to LPS: comparisons and batches started per mode, LPS's queue-full answers."""

from __future__ import annotations

from prometheus_client.registry import Collector

from cj_batching.metrics._families import FailureGuard, bind, counter
from cj_batching.modes import LLMBatchingMode

__all__ = ["SubmissionMetrics"]


class SubmissionMetrics:
    """`cj_llm_requests_total` and `cj_llm_batches_started_total` by `batching_mode`, and
    `cj_llm_lps_backpressure_total`."""

    _failure: FailureGuard

    def _submission_families(self) -> list[Collector]:
        requests = counter("cj_llm_requests", "Comparisons sent to LPS.", "batching_mode")
        batches = counter(
            "cj_llm_batches_started", "CJ batches started (first wave).", "batching_mode"
        )
        backpressure = counter(
            "cj_llm_lps_backpressure",
            "Queue-full answers from LPS (each holds back new comparisons for a cooldown).",
        )
        self._requests = bind(requests, LLMBatchingMode)
        self._batches = bind(batches, LLMBatchingMode)
        self._backpressure = backpressure
        return [requests, batches, backpressure]

    def record_batch_started(self, mode: LLMBatchingMode) -> None:
        """+1 `cj_llm_batches_started_total` (call for `cj_comparison` submissions only)."""
        try:
            self._batches[mode].inc()
        except Exception:
            self._failure()

    def record_requests(self, mode: LLMBatchingMode, count: int = 1) -> None:
        """+count `cj_llm_requests_total`: one per comparison whose first POST went out."""
        try:
            self._requests[mode].inc(count)
        except Exception:
            self._failure()

    def record_backpressure(self) -> None:
        """+1 `cj_llm_lps_backpressure_total`: LPS answered that its queue is full."""
        try:
            self._backpressure.inc()
        except Exception:
            self._failure()
