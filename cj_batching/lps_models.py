"""Pydantic models for the LLM Provider Service (LPS) wire format.

`LLMComparisonRequest` is the JSON body of `POST {base}/comparison`; `QueuedComparison`
is the body of its only success answer, a 202. See the LPS HTTP contract for the fields.

Serialisation decision: `model_dump(mode="json")` (and `model_dump_json()`) keep fields
whose value is None as JSON `null`; we do not use `exclude_none`. The contract types
every optional field as "X or null" (`prompt_blocks`, `user_id`, the override fields),
so an explicit null is a valid value that means the same as "not set", and sending
every key keeps the body shape fixed and easy to assert on. The enum field is emitted
as its string value and `correlation_id` as the canonical hyphenated UUID string.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from cj_batching.modes import LLMProviderType

__all__ = [
    "DEFAULT_CALLBACK_TOPIC",
    "LLMComparisonRequest",
    "LLMConfigOverrides",
    "QueuedComparison",
]

DEFAULT_CALLBACK_TOPIC = "huleedu.llm_provider.comparison_result.v1"
"""The contract's default Kafka topic for comparison results."""

ReasoningEffort = Literal["none", "low", "medium", "high"]
OutputVerbosity = Literal["low", "medium", "high"]


class LLMConfigOverrides(BaseModel):
    """Per-request LLM settings; LPS rejects a request without `provider_override`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider_override: LLMProviderType
    model_override: str | None = None
    temperature_override: float | None = Field(default=None, ge=0.0, le=2.0)
    system_prompt_override: str | None = None
    max_tokens_override: int | None = Field(default=None, gt=0)
    reasoning_effort: ReasoningEffort | None = None
    output_verbosity: OutputVerbosity | None = None


class LLMComparisonRequest(BaseModel):
    """The body of `POST {base}/comparison`: one comparison to queue at LPS.

    `metadata` is sent as given (LPS echoes it back in the result callback); its values
    must be JSON-serialisable.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_prompt: str = Field(min_length=1)
    prompt_blocks: list[dict[str, Any]] | None = None
    callback_topic: str = Field(min_length=1)
    llm_config_overrides: LLMConfigOverrides
    correlation_id: UUID
    user_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class QueuedComparison(BaseModel):
    """The 202 answer: the comparison is queued; its result arrives on the callback topic.

    Unknown keys are ignored (LPS may add fields). `queue_id` is LPS's UUID string; it is
    only checked to be non-empty, so that a 202 whose work LPS did queue is not turned
    into a failure over its formatting.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    queue_id: str = Field(min_length=1)
    status: str
    message: str | None = None
    estimated_wait_minutes: int | None = None
