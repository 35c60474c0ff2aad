"""`BatchingMetrics`: every metric group of the batching control on one registry."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry

from cj_batching.metrics._families import FailureGuard, register_all
from cj_batching.metrics.flag_set import FlagSetMetrics
from cj_batching.metrics.guard import GuardMetrics
from cj_batching.metrics.resolution import ResolutionMetrics
from cj_batching.metrics.results import ResultMetrics
from cj_batching.metrics.submission import SubmissionMetrics
from cj_batching.results import DEFAULT_DEDUP_MAXSIZE, RecentIds

__all__ = ["BatchingMetrics"]


class BatchingMetrics(
    SubmissionMetrics, ResolutionMetrics, GuardMetrics, ResultMetrics, FlagSetMetrics
):
    """The CJ batching metrics on one registry (default: the global one).

    Each base class is one concept (its module says which families); this class only
    defines them all and registers them at once. Every label value comes from a bounded
    set (modes, decided_by, the known sources plus `other`, error codes, providers,
    provider statuses), never from a batch id; the flag-set version label has one
    series at a time. Recording never raises into the caller.
    `result_dedup_maxsize` is how many recent result event ids `record_result`
    remembers (`Settings.RESULT_DEDUP_MAXSIZE`).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        result_dedup_maxsize: int = DEFAULT_DEDUP_MAXSIZE,
    ) -> None:
        self._failure = FailureGuard()
        self._recent_results = RecentIds(result_dedup_maxsize)
        families = [
            *self._submission_families(),
            *self._resolution_families(),
            *self._guard_families(),
            *self._result_families(),
            *self._flag_set_families(),
        ]
        register_all(REGISTRY if registry is None else registry, families)
