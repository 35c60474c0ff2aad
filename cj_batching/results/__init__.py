"""Result callbacks from LPS: the event models, their parsing, and the arm of a result.

LPS answers every queued comparison on Kafka with an event envelope around an
`LLMComparisonResultV1`, echoing the request metadata CJ sent; from that metadata a
result's experiment arm is known (`ResultArm`).
"""

from cj_batching.results.arm import UNKNOWN, ResultArm, arm_of
from cj_batching.results.dedup import DEFAULT_DEDUP_MAXSIZE, RecentIds
from cj_batching.results.models import (
    ErrorDetail,
    LLMComparisonResultV1,
    ResultEnvelope,
    TokenUsage,
    Winner,
)
from cj_batching.results.outcome import (
    ERROR_CODES,
    OTHER_ERROR,
    OUTCOMES,
    SUCCESS,
    outcome_label,
)
from cj_batching.results.parse import (
    MAX_EVENT_BYTES,
    REASONS,
    ResultEventError,
    parse_result_event,
)

__all__ = [
    "DEFAULT_DEDUP_MAXSIZE",
    "ERROR_CODES",
    "MAX_EVENT_BYTES",
    "OTHER_ERROR",
    "OUTCOMES",
    "REASONS",
    "SUCCESS",
    "UNKNOWN",
    "ErrorDetail",
    "LLMComparisonResultV1",
    "RecentIds",
    "ResultArm",
    "ResultEnvelope",
    "ResultEventError",
    "TokenUsage",
    "Winner",
    "arm_of",
    "outcome_label",
    "parse_result_event",
]
