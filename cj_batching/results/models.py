"""The result callback LPS publishes per comparison: the event envelope and its data.

Field for field what the CJ/LPS contract lists (`LLMComparisonResultV1` inside the
platform's event envelope). Unknown keys are ignored: the platform's metadata changes
are additive. Beyond the contract, three checks keep a corrupt message from turning
into nonsense downstream: no NaN or infinity, integers at most 2**53 - 1 (exact as a
JSON number anywhere), a cost of at most 1 000 000 USD; a datetime without a zone is
read as UTC, so `completed_at - requested_at` always works.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from cj_batching.modes import LLMProviderType
from cj_batching.results.arm import ResultArm, arm_of
from cj_batching.results.outcome import outcome_label

__all__ = [
    "MAX_COST_USD",
    "MAX_COUNT",
    "ErrorDetail",
    "LLMComparisonResultV1",
    "ResultEnvelope",
    "TokenUsage",
    "Winner",
]

MAX_COUNT: Final = 2**53 - 1
"""The largest token count or response time accepted (JSON's exact integer range)."""
MAX_COST_USD: Final = 1_000_000.0
"""The largest `cost_estimate` accepted: no single comparison costs more."""

Winner = Literal["Essay A", "Essay B"]


def _utc_if_naive(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


Timestamp = Annotated[datetime, AfterValidator(_utc_if_naive)]
_Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]

_SUCCESS_FIELDS: Final = ("winner", "justification", "confidence")
_CONFIG: Final = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)


class TokenUsage(BaseModel):
    """Tokens one comparison used."""

    model_config = _CONFIG

    prompt_tokens: _Count = 0
    completion_tokens: _Count = 0
    total_tokens: _Count = 0


class ErrorDetail(BaseModel):
    """Why a comparison failed; `error_code` is the platform's `ErrorCode` value."""

    model_config = _CONFIG

    error_code: str = Field(min_length=1)
    message: str
    correlation_id: UUID
    timestamp: Timestamp
    service: str
    operation: str
    details: dict[str, Any] = Field(default_factory=dict)
    stack_trace: str | None = None
    trace_id: str | None = None
    span_id: str | None = None


class LLMComparisonResultV1(BaseModel):
    """One comparison's answer: a success (winner, justification, confidence all set)
    or an error (`error_detail`), never both, never neither."""

    model_config = _CONFIG

    request_id: str
    correlation_id: UUID
    winner: Winner | None = None
    justification: str | None = Field(None, max_length=500)
    confidence: float | None = Field(None, ge=1.0, le=5.0)
    error_detail: ErrorDetail | None = None
    provider: LLMProviderType
    model: str
    response_time_ms: _Count
    token_usage: TokenUsage
    cost_estimate: float = Field(ge=0.0, le=MAX_COST_USD)
    requested_at: Timestamp
    completed_at: Timestamp
    trace_id: str | None = None
    request_metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _success_or_error(self) -> LLMComparisonResultV1:
        # Written out rather than looped: this runs for every result a report reads.
        if self.error_detail is None:
            if self.winner is None or self.justification is None or self.confidence is None:
                missing = [name for name in _SUCCESS_FIELDS if getattr(self, name) is None]
                raise ValueError(
                    f"a success needs winner, justification and confidence (missing: "
                    f"{', '.join(missing)}); an error needs error_detail"
                )
        elif (
            self.winner is not None or self.justification is not None or self.confidence is not None
        ):
            raise ValueError(
                "an error result (error_detail set) may not carry winner, justification "
                "or confidence: a result is a success or an error, not both"
            )
        return self

    @property
    def is_success(self) -> bool:
        """Whether the comparison succeeded."""
        return self.error_detail is None

    @property
    def error_code(self) -> str | None:
        """The error code as sent (None for a success)."""
        return None if self.error_detail is None else self.error_detail.error_code

    @property
    def outcome(self) -> str:
        """`success`, a known error code, or `other_error` (a bounded label)."""
        return outcome_label(self.error_code)

    @cached_property
    def arm(self) -> ResultArm:
        """The experiment arm, from the echoed `request_metadata` (read once: the metrics
        and the guard both ask)."""
        return arm_of(self.request_metadata)

    @property
    def turnaround_seconds(self) -> float:
        """`completed_at - requested_at` in seconds (0 when the clocks disagree)."""
        return max(0.0, (self.completed_at - self.requested_at).total_seconds())


class _EnvelopeFields(BaseModel):
    """The platform's event envelope, every field but `data`."""

    model_config = _CONFIG

    event_id: UUID
    event_type: str
    event_timestamp: Timestamp
    source_service: str
    schema_version: Literal[1] = 1
    correlation_id: UUID
    data_schema_uri: str | None = None
    metadata: dict[str, Any] | None = None


class ResultEnvelope(_EnvelopeFields):
    """The platform's event envelope around an `LLMComparisonResultV1`."""

    data: LLMComparisonResultV1
