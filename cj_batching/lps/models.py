"""Pydantic models of the LLM Provider Service (LPS) wire format.

`LLMComparisonRequest` is the JSON body of `POST {base}/comparison`; `QueuedComparison`
is the body of its only success answer, a 202.

What goes on the wire is `LLMComparisonRequest.wire_body()`: null fields are left out
and so are empty `prompt_blocks`, as the deployed CJ client sends them (LPS reads an
absent field and a null alike); `metadata` is sent exactly as given, nulls included,
because LPS echoes it back in the result callback.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cj_batching.bounds import (
    DEFAULT_CALLBACK_TOPIC,
    CallbackTopic,
    LLMModelName,
    LLMTemperature,
    MaxTokens,
)
from cj_batching.modes import LLMProviderType

__all__ = [
    "DEFAULT_CALLBACK_TOPIC",
    "LLMComparisonRequest",
    "LLMConfigOverrides",
    "OutputVerbosity",
    "QueuedComparison",
    "ReasoningEffort",
]

ReasoningEffort = Literal["none", "low", "medium", "high"]
OutputVerbosity = Literal["low", "medium", "high"]


class LLMConfigOverrides(BaseModel):
    """Per-request LLM settings; LPS answers 400 to a request without `provider_override`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider_override: LLMProviderType
    model_override: LLMModelName | None = None
    temperature_override: LLMTemperature | None = None
    system_prompt_override: str | None = None
    max_tokens_override: MaxTokens | None = None
    reasoning_effort: ReasoningEffort | None = None
    output_verbosity: OutputVerbosity | None = None


class LLMComparisonRequest(BaseModel):
    """The body of `POST {base}/comparison`: one comparison to queue at LPS.

    `metadata` values must be JSON-serialisable; an empty `prompt_blocks` reads as None.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_prompt: str = Field(min_length=1)
    prompt_blocks: list[dict[str, Any]] | None = None
    callback_topic: CallbackTopic
    llm_config_overrides: LLMConfigOverrides
    correlation_id: UUID
    user_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("prompt_blocks")
    @classmethod
    def _empty_blocks_are_none(cls, value: list[dict[str, Any]] | None) -> Any:
        return value or None

    def wire_body(self) -> bytes:
        """The JSON body to post: null fields and empty `prompt_blocks` left out."""
        # exclude_none drops None *fields* of the models only; None values inside the
        # metadata dict are kept (measured with pydantic 2), so the echo is faithful.
        return self.model_dump_json(exclude_none=True).encode()


class QueuedComparison(BaseModel):
    """The 202 answer: the comparison is queued; its result arrives on the callback topic.

    Unknown keys are ignored (LPS may add fields). `queue_id` is LPS's UUID string; it is
    only checked to be non-empty, and the other fields read as None when malformed, so
    that a 202 whose work LPS did queue is never turned into a failure over its form.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    queue_id: str = Field(min_length=1)
    status: str | None = None
    message: str | None = None
    estimated_wait_minutes: float | None = None

    @field_validator("status", "message", "estimated_wait_minutes", mode="wrap")
    @classmethod
    def _informative_only(cls, value: Any, handler: Any) -> Any:
        # LPS queued the work once there is a queue_id: a malformed extra field must not
        # turn it into a failure (the CJ service would post the pair a second time).
        try:
            return handler(value)
        except ValueError:
            return None
