"""How modes were decided: fresh resolutions, flag errors and guardrail downgrades."""

from __future__ import annotations

from prometheus_client.registry import Collector

from cj_batching.metrics._families import FailureGuard, bind, counter
from cj_batching.metrics.labels import FLAG_ERROR_CODES, SOURCE_LABELS, source_label
from cj_batching.modes import LLMBatchingMode, LLMProviderType
from cj_batching.resolution import DECIDED_BY, Resolution

__all__ = ["ResolutionMetrics"]


class ResolutionMetrics:
    """`cj_llm_batching_resolutions_total`, `..._flag_errors_total` and
    `..._guardrail_downgrades_total`."""

    _failure: FailureGuard

    def _resolution_families(self) -> list[Collector]:
        resolutions = counter(
            "cj_llm_batching_resolutions",
            "Fresh (non-cached) batching-mode resolutions.",
            "batching_mode",
            "decided_by",
            "cj_source",
        )
        errors = counter(
            "cj_llm_batching_flag_errors",
            "Flag evaluations that fell back because of an error.",
            "error_code",
        )
        downgrades = counter(
            "cj_llm_batching_guardrail_downgrades",
            "provider_batch_api requests refused by the provider guardrail.",
            "llm_provider",
        )
        self._errors = bind(errors, FLAG_ERROR_CODES)
        self._downgrades = bind(downgrades, LLMProviderType)
        self._resolutions = {
            (mode, decided_by, source): resolutions.labels(mode.value, decided_by, source)
            for mode in LLMBatchingMode
            for decided_by in DECIDED_BY
            for source in SOURCE_LABELS
        }
        return [resolutions, errors, downgrades]

    def record_resolution(self, resolution: Resolution, cj_source: str) -> None:
        """+1 `cj_llm_batching_resolutions_total` for a fresh resolution."""
        try:
            key = (resolution.mode, resolution.decided_by, source_label(cj_source))
            self._resolutions[key].inc()
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
