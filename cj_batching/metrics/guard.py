"""What the rollout guard did: arms it tripped, and which arms are tripped now."""

from __future__ import annotations

from prometheus_client import Gauge
from prometheus_client.registry import Collector

from cj_batching.metrics._families import FailureGuard, counter
from cj_batching.metrics.labels import SOURCE_LABELS, source_label
from cj_batching.modes import LLMBatchingMode

__all__ = ["GuardMetrics"]


class GuardMetrics:
    """`cj_llm_batching_guard_trips_total` and `cj_llm_batching_guard_tripped`, by
    `batching_mode` (the arm) and `cj_source`."""

    _failure: FailureGuard

    def _guard_families(self) -> list[Collector]:
        trips = counter(
            "cj_llm_batching_guard_trips",
            "Arms the rollout guard pulled back to the control mode.",
            "batching_mode",
            "cj_source",
        )
        tripped = Gauge(
            "cj_llm_batching_guard_tripped",
            "1 while the rollout guard diverts this arm to the control mode, else 0.",
            ("batching_mode", "cj_source"),
            registry=None,
        )
        arms = [(mode, source) for mode in LLMBatchingMode for source in SOURCE_LABELS]
        self._guard_trips = {arm: trips.labels(arm[0].value, arm[1]) for arm in arms}
        self._guard_tripped = {arm: tripped.labels(arm[0].value, arm[1]) for arm in arms}
        return [trips, tripped]

    def record_guard_trip(self, mode: LLMBatchingMode, cj_source: str) -> None:
        """+1 `cj_llm_batching_guard_trips_total`; the arm's `..._guard_tripped` = 1."""
        try:
            arm = (mode, source_label(cj_source))
            self._guard_trips[arm].inc()
            self._guard_tripped[arm].set(1)
        except Exception:
            self._failure()

    def record_guard_reset(self) -> None:
        """Every `cj_llm_batching_guard_tripped` back to 0 (a new flag set version)."""
        try:
            for gauge in self._guard_tripped.values():
                gauge.set(0)
        except Exception:
            self._failure()
