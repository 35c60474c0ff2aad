"""The LLM Provider Service (LPS) side, one concept per module: wire models, errors,
answer classification, retry policy, back-pressure, the HTTP transport and the client."""

from cj_batching.lps.answers import PERMANENT_CODES, Answer, AnswerKind, classify_answer
from cj_batching.lps.backpressure import Backpressure
from cj_batching.lps.client import LPSClient
from cj_batching.lps.errors import (
    CLIENT_ERROR,
    CONNECTION_ERROR,
    NOT_SENT,
    PROTOCOL_ERROR,
    QUEUE_FULL,
    TIMEOUT,
    LPSError,
)
from cj_batching.lps.models import (
    DEFAULT_CALLBACK_TOPIC,
    LLMComparisonRequest,
    LLMConfigOverrides,
    OutputVerbosity,
    QueuedComparison,
    ReasoningEffort,
)
from cj_batching.lps.retry import RetryPolicy
from cj_batching.lps.transport import MAX_BODY_BYTES, Transport

__all__ = [
    "CLIENT_ERROR",
    "CONNECTION_ERROR",
    "DEFAULT_CALLBACK_TOPIC",
    "MAX_BODY_BYTES",
    "NOT_SENT",
    "PERMANENT_CODES",
    "PROTOCOL_ERROR",
    "QUEUE_FULL",
    "TIMEOUT",
    "Answer",
    "AnswerKind",
    "Backpressure",
    "LLMComparisonRequest",
    "LLMConfigOverrides",
    "LPSClient",
    "LPSError",
    "OutputVerbosity",
    "QueuedComparison",
    "ReasoningEffort",
    "RetryPolicy",
    "Transport",
    "classify_answer",
]
