"""What came back from LPS: outcomes, response and turnaround times, cost and tokens per arm."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from prometheus_client import Counter, Histogram
from prometheus_client.registry import Collector

from cj_batching.metrics._families import FailureGuard, bind, counter
from cj_batching.metrics.labels import SOURCE_LABELS, source_label
from cj_batching.modes import LLMBatchingMode
from cj_batching.resolution import DECIDED_BY
from cj_batching.results import (
    OTHER_ERROR,
    OUTCOMES,
    REASONS,
    SUCCESS,
    UNKNOWN,
    RecentIds,
    ResultEnvelope,
    ResultEventError,
    parse_result_event,
)

__all__ = [
    "MODE_LABELS",
    "RESPONSE_BUCKETS",
    "TOKEN_KINDS",
    "TURNAROUND_BUCKETS",
    "ResultMetrics",
]

_log = logging.getLogger("cj_batching.metrics")

MODE_LABELS: Final = (*(mode.value for mode in LLMBatchingMode), UNKNOWN)
_DECIDED_BY_LABELS: Final = (*DECIDED_BY, UNKNOWN)
TOKEN_KINDS: Final = ("prompt", "completion")

RESPONSE_BUCKETS: Final = (0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 300)
"""`cj_llm_comparison_response_seconds` buckets: one provider call, up to 5 minutes."""
TURNAROUND_BUCKETS: Final = (
    *(1, 5, 10, 30, 60, 120, 300, 600, 1800),
    *(3600, 2 * 3600, 4 * 3600, 8 * 3600, 12 * 3600, 24 * 3600),
)
"""`cj_llm_comparison_turnaround_seconds` buckets: up to 24 h (the batch API is slow by
design: providers promise its answers within a day)."""

_ResultKey = tuple[str, str, str, str]


class ResultMetrics:
    """`cj_llm_comparison_results_total`, `..._response_seconds`, `..._turnaround_seconds`,
    `..._cost_usd_total`, `..._tokens_total`, `..._results_invalid_total` and
    `..._results_duplicates_total`, from the result callbacks."""

    _failure: FailureGuard
    _recent_results: RecentIds

    def _result_families(self) -> list[Collector]:
        results = counter(
            "cj_llm_comparison_results",
            "Comparison results from LPS, by arm and outcome (success or the error code).",
            "batching_mode",
            "decided_by",
            "cj_source",
            "outcome",
        )
        response = Histogram(
            "cj_llm_comparison_response_seconds",
            "LPS-reported response time of a comparison (response_time_ms).",
            ["batching_mode"],
            buckets=RESPONSE_BUCKETS,
            registry=None,
        )
        turnaround = Histogram(
            "cj_llm_comparison_turnaround_seconds",
            "Time from request to result (completed_at - requested_at).",
            ["batching_mode"],
            buckets=TURNAROUND_BUCKETS,
            registry=None,
        )
        cost = counter("cj_llm_comparison_cost_usd", "Estimated LLM cost in USD.", "batching_mode")
        tokens = counter("cj_llm_comparison_tokens", "LLM tokens used.", "batching_mode", "kind")
        invalid = counter(
            "cj_llm_comparison_results_invalid",
            "Result events that could not be used: not_json, not_envelope, invalid_data.",
            "reason",
        )
        duplicates = counter(
            "cj_llm_comparison_results_duplicates",
            "Redelivered result events (an event_id seen recently), not counted again.",
        )
        self._results_family = results
        # Series exist from 0, so rate() counts the first result of each (a series born
        # at 1 loses it) and an error ratio reads 0, not "no data", before the first
        # error: every outcome for the randomised (flag-decided) arms the live experiment
        # view compares, success and other_error for the rest; other codes on first use.
        self._results: dict[_ResultKey, Counter] = {
            (mode.value, decided_by, source, outcome): results.labels(
                mode.value, decided_by, source, outcome
            )
            for mode in LLMBatchingMode
            for decided_by in _DECIDED_BY_LABELS
            for source in SOURCE_LABELS
            for outcome in (OUTCOMES if decided_by == "flag" else (SUCCESS, OTHER_ERROR))
        }
        for outcome in (SUCCESS, OTHER_ERROR):
            key = (UNKNOWN, UNKNOWN, source_label(UNKNOWN), outcome)
            self._results[key] = results.labels(*key)
        self._response = {mode: response.labels(mode) for mode in MODE_LABELS}
        self._turnaround = {mode: turnaround.labels(mode) for mode in MODE_LABELS}
        self._cost = bind(cost, MODE_LABELS)
        self._tokens = {
            (mode, kind): tokens.labels(mode, kind) for mode in MODE_LABELS for kind in TOKEN_KINDS
        }
        self._invalid = bind(invalid, REASONS)
        self._duplicates = duplicates
        self._invalid_logged: set[str] = set()
        return [results, response, turnaround, cost, tokens, invalid, duplicates]

    def record_result(
        self, event: ResultEnvelope | bytes | bytearray | memoryview | str | Mapping[str, Any]
    ) -> bool:
        """Count one result callback; True when counted, False for a duplicate or a bad event.

        `event` is a parsed envelope or the raw message (parsed here). A bad event is
        counted in `cj_llm_comparison_results_invalid_total{reason}` (the first of each
        reason is logged); an `event_id` among the recent ones is a Kafka redelivery and
        counted once. Never raises.
        """
        try:
            envelope = event if isinstance(event, ResultEnvelope) else parse_result_event(event)
        except ResultEventError as exc:
            self.record_invalid_result(exc)
            return False
        except Exception:
            self._failure()
            return False
        try:
            if not self._recent_results.first_time(envelope.event_id.int):
                self._duplicates.inc()
                return False
            result = envelope.data
            arm = result.arm
            mode = arm.mode
            key = (mode, arm.decided_by, source_label(arm.cj_source), result.outcome)
            child = self._results.get(key)
            if child is None:  # a bounded set: modes x decided_by x sources x outcomes
                child = self._results[key] = self._results_family.labels(*key)
            child.inc()
            self._response[mode].observe(result.response_time_ms / 1000)
            self._turnaround[mode].observe(result.turnaround_seconds)
            self._cost[mode].inc(result.cost_estimate)
            usage = result.token_usage
            self._tokens[mode, "prompt"].inc(usage.prompt_tokens)
            self._tokens[mode, "completion"].inc(usage.completion_tokens)
        except Exception:
            self._failure()
            return False
        return True

    def record_invalid_result(self, error: ResultEventError) -> None:
        """+1 `cj_llm_comparison_results_invalid_total{reason}` for an event that did not
        parse (the first of each reason is logged); never raises."""
        try:
            self._invalid[error.reason].inc()
            if error.reason not in self._invalid_logged:
                self._invalid_logged.add(error.reason)
                _log.warning(
                    "unusable result event (%s); further ones of this kind are only counted",
                    error,
                    extra={"reason": error.reason, "event_id": str(error.event_id or "")},
                )
        except Exception:
            self._failure()
