"""Runtime-configurable LLM batching mode control for the CJ Assessment Service.

Resolution chain: per-batch override, then the OpenFeature flag, then the env default,
with a provider guardrail for `provider_batch_api` and a rollout guard for flag arms.

`import cj_batching` loads what a resolve needs (`configure` and the resolution chain);
every other public name loads on first use (PEP 562), so the LPS client (httpx), the
metrics (prometheus_client), their server and the experiment report load only when used.
docs/performance.md ("Import time") has the figure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cj_batching._lazy import lazy_exports

# `configure` is also its module's name: importing cj_batching.configure (the CLI does)
# would replace a lazy `configure` with the module, so it is imported here. It is what a
# resolve needs anyway, and costs the start-up that docs/performance.md measures.
from cj_batching.configure import DOMAIN, configure, provider_for

if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from cj_batching.context import BatchContext as BatchContext
    from cj_batching.flag_checks import batching_flag_checks as batching_flag_checks
    from cj_batching.guard import ArmResult as ArmResult
    from cj_batching.guard import GuardPolicy as GuardPolicy
    from cj_batching.guard import GuardTrip as GuardTrip
    from cj_batching.guard import RolloutGuard as RolloutGuard
    from cj_batching.interaction import LLMInteraction as LLMInteraction
    from cj_batching.lps import QUEUE_FULL as QUEUE_FULL
    from cj_batching.lps import Backpressure as Backpressure
    from cj_batching.lps import LLMComparisonRequest as LLMComparisonRequest
    from cj_batching.lps import LLMConfigOverrides as LLMConfigOverrides
    from cj_batching.lps import LPSClient as LPSClient
    from cj_batching.lps import LPSError as LPSError
    from cj_batching.lps import QueuedComparison as QueuedComparison
    from cj_batching.lps import classify_answer as classify_answer
    from cj_batching.metadata import build_request_metadata as build_request_metadata
    from cj_batching.metrics import BatchingMetrics as BatchingMetrics
    from cj_batching.metrics_server import MetricsServer as MetricsServer
    from cj_batching.metrics_server import serve_metrics as serve_metrics
    from cj_batching.modes import LLMBatchingMode as LLMBatchingMode
    from cj_batching.modes import LLMProviderType as LLMProviderType
    from cj_batching.modes import parse_mode as parse_mode
    from cj_batching.modes import parse_provider as parse_provider
    from cj_batching.overrides import BatchConfigOverrides as BatchConfigOverrides
    from cj_batching.overrides import get_effective_batching_mode as get_effective_batching_mode
    from cj_batching.overrides import (
        overrides_from_envelope_metadata as overrides_from_envelope_metadata,
    )
    from cj_batching.report import ExperimentReport as ExperimentReport
    from cj_batching.report import ReportBuilder as ReportBuilder
    from cj_batching.report import ReportOptions as ReportOptions
    from cj_batching.resolution import Resolution as Resolution
    from cj_batching.resolver import BatchingModeResolver as BatchingModeResolver
    from cj_batching.results import LLMComparisonResultV1 as LLMComparisonResultV1
    from cj_batching.results import ResultArm as ResultArm
    from cj_batching.results import ResultEnvelope as ResultEnvelope
    from cj_batching.results import ResultEventError as ResultEventError
    from cj_batching.results import parse_result_event as parse_result_event
    from cj_batching.settings import Settings as Settings
    from cj_batching.settings import SettingsError as SettingsError
    from cj_batching.submission import BatchSubmission as BatchSubmission
    from cj_batching.submission import ComparisonSubmission as ComparisonSubmission
    from cj_batching.submission import ComparisonTask as ComparisonTask

# Public name -> the module that defines it (imported on first use). A new export is an
# entry here and its typed import above; tests/test_imports.py checks they agree.
_EXPORTS = {
    "BatchContext": "cj_batching.context",
    "batching_flag_checks": "cj_batching.flag_checks",
    "ArmResult": "cj_batching.guard",
    "GuardPolicy": "cj_batching.guard",
    "GuardTrip": "cj_batching.guard",
    "RolloutGuard": "cj_batching.guard",
    "BatchSubmission": "cj_batching.submission",
    "ComparisonSubmission": "cj_batching.submission",
    "ComparisonTask": "cj_batching.submission",
    "LLMInteraction": "cj_batching.interaction",
    "Backpressure": "cj_batching.lps",
    "LLMComparisonRequest": "cj_batching.lps",
    "LLMConfigOverrides": "cj_batching.lps",
    "LPSClient": "cj_batching.lps",
    "LPSError": "cj_batching.lps",
    "QUEUE_FULL": "cj_batching.lps",
    "QueuedComparison": "cj_batching.lps",
    "classify_answer": "cj_batching.lps",
    "build_request_metadata": "cj_batching.metadata",
    "BatchingMetrics": "cj_batching.metrics",
    "MetricsServer": "cj_batching.metrics_server",
    "serve_metrics": "cj_batching.metrics_server",
    "LLMBatchingMode": "cj_batching.modes",
    "LLMProviderType": "cj_batching.modes",
    "parse_mode": "cj_batching.modes",
    "parse_provider": "cj_batching.modes",
    "BatchConfigOverrides": "cj_batching.overrides",
    "get_effective_batching_mode": "cj_batching.overrides",
    "overrides_from_envelope_metadata": "cj_batching.overrides",
    "ExperimentReport": "cj_batching.report",
    "ReportBuilder": "cj_batching.report",
    "ReportOptions": "cj_batching.report",
    "Resolution": "cj_batching.resolution",
    "BatchingModeResolver": "cj_batching.resolver",
    "LLMComparisonResultV1": "cj_batching.results",
    "ResultArm": "cj_batching.results",
    "ResultEnvelope": "cj_batching.results",
    "ResultEventError": "cj_batching.results",
    "parse_result_event": "cj_batching.results",
    "Settings": "cj_batching.settings",
    "SettingsError": "cj_batching.settings",
}

__all__ = ["DOMAIN", "configure", "provider_for", *_EXPORTS]  # noqa: PLE0604

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
