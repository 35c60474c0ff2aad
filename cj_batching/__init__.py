"""Runtime-configurable LLM batching mode control for the CJ Assessment Service.

Resolution chain: per-batch override, then the OpenFeature flag, then the env default,
with a provider guardrail for `provider_batch_api` and a rollout guard for flag arms.
"""

from cj_batching.configure import DOMAIN, configure, provider_for
from cj_batching.context import BatchContext
from cj_batching.flag_checks import batching_flag_checks
from cj_batching.guard import ArmResult, GuardPolicy, GuardTrip, RolloutGuard
from cj_batching.interaction import (
    BatchSubmission,
    ComparisonSubmission,
    ComparisonTask,
    LLMInteraction,
)
from cj_batching.lps import (
    QUEUE_FULL,
    Backpressure,
    LLMComparisonRequest,
    LLMConfigOverrides,
    LPSClient,
    LPSError,
    QueuedComparison,
    classify_answer,
)
from cj_batching.metadata import build_request_metadata
from cj_batching.metrics import BatchingMetrics
from cj_batching.metrics_server import MetricsServer, serve_metrics
from cj_batching.modes import LLMBatchingMode, LLMProviderType, parse_mode, parse_provider
from cj_batching.overrides import (
    BatchConfigOverrides,
    get_effective_batching_mode,
    overrides_from_envelope_metadata,
)
from cj_batching.report import ExperimentReport, ReportBuilder, ReportOptions
from cj_batching.resolution import Resolution
from cj_batching.resolver import BatchingModeResolver
from cj_batching.results import (
    LLMComparisonResultV1,
    ResultArm,
    ResultEnvelope,
    ResultEventError,
    parse_result_event,
)
from cj_batching.settings import Settings, SettingsError

__all__ = [
    "DOMAIN",
    "QUEUE_FULL",
    "ArmResult",
    "Backpressure",
    "BatchConfigOverrides",
    "BatchContext",
    "BatchSubmission",
    "BatchingMetrics",
    "BatchingModeResolver",
    "ComparisonSubmission",
    "ComparisonTask",
    "ExperimentReport",
    "GuardPolicy",
    "GuardTrip",
    "LLMBatchingMode",
    "LLMComparisonRequest",
    "LLMComparisonResultV1",
    "LLMConfigOverrides",
    "LLMInteraction",
    "LLMProviderType",
    "LPSClient",
    "LPSError",
    "MetricsServer",
    "QueuedComparison",
    "ReportBuilder",
    "ReportOptions",
    "Resolution",
    "ResultArm",
    "ResultEnvelope",
    "ResultEventError",
    "RolloutGuard",
    "Settings",
    "SettingsError",
    "batching_flag_checks",
    "build_request_metadata",
    "classify_answer",
    "configure",
    "get_effective_batching_mode",
    "overrides_from_envelope_metadata",
    "parse_mode",
    "parse_provider",
    "parse_result_event",
    "provider_for",
    "serve_metrics",
]
