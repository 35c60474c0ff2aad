"""`BatchingMetrics`: every metric group of the batching control on one registry."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry

from cj_batching.metrics._families import FailureGuard, register_all
from cj_batching.metrics.flag_set import FlagSetMetrics
from cj_batching.metrics.guard import GuardMetrics
from cj_batching.metrics.resolution import ResolutionMetrics
from cj_batching.metrics.submission import SubmissionMetrics

__all__ = ["BatchingMetrics"]


class BatchingMetrics(SubmissionMetrics, ResolutionMetrics, GuardMetrics, FlagSetMetrics):
    """The CJ batching metrics on one registry (default: the global one).

    Each base class is one concept (its module says which families); this class only
    defines them all and registers them at once. Every label value comes from a bounded
    set (modes, decided_by, the known sources plus `other`, error codes, providers,
    provider statuses), never from a batch id; the flag-set version label has one
    series at a time. Recording never raises into the caller.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._failure = FailureGuard()
        families = [
            *self._submission_families(),
            *self._resolution_families(),
            *self._guard_families(),
            *self._flag_set_families(),
        ]
        register_all(REGISTRY if registry is None else registry, families)
