"""A wave's comparisons and what became of them: `ComparisonTask` in, `ComparisonSubmission`
per task and `BatchSubmission` per wave out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from cj_batching.lps import LLMConfigOverrides, LPSError
from cj_batching.resolution import Resolution

__all__ = ["BatchSubmission", "ComparisonSubmission", "ComparisonTask"]


@dataclass(frozen=True, slots=True)
class ComparisonTask:
    """One essay pair to compare.

    `correlation_id` is the id the result callback will carry: give the one the pair was
    stored with before posting (a UUID or its text), or leave it None for a fresh one.
    """

    essay_a_id: str
    essay_b_id: str
    user_prompt: str
    prompt_blocks: list[dict[str, Any]] | None = None
    llm_config_overrides: LLMConfigOverrides | None = None
    correlation_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        cid: object = self.correlation_id  # the type says UUID; callers may pass its text
        if cid is None or isinstance(cid, uuid.UUID):
            return
        try:
            parsed = uuid.UUID(cid) if isinstance(cid, str) else None
        except ValueError:
            parsed = None
        if parsed is None:
            raise ValueError(f"correlation_id: {cid!r} is not a UUID (or None for a fresh one)")
        object.__setattr__(self, "correlation_id", parsed)


@dataclass(frozen=True, slots=True)
class ComparisonSubmission:
    """What became of one task: queued at LPS (`queue_id`) or failed (`error`).

    `correlation_id` is the id the result callback will carry. An error with
    `attempts == 0` was never sent (and never counted): refused before sending
    (`NOT_SENT`) or held back because LPS's queue is full (`QUEUE_FULL`).
    """

    task: ComparisonTask
    correlation_id: uuid.UUID
    queue_id: str | None = None
    error: LPSError | None = None

    @property
    def queued(self) -> bool:
        """Whether LPS accepted the comparison."""
        return self.queue_id is not None


@dataclass(frozen=True, slots=True)
class BatchSubmission:
    """A submitted wave: the resolution every request carried, each task's fate, and
    whether a first POST went out (`started`: for a `cj_comparison` wave, whether the
    batch was counted as started; a wave LPS's full queue held back whole was not, so
    re-submit it as `cj_comparison`)."""

    resolution: Resolution
    submissions: list[ComparisonSubmission] = field(default_factory=list)
    started: bool = False

    @property
    def queued(self) -> int:
        """How many comparisons LPS queued."""
        return sum(1 for s in self.submissions if s.queued)

    @property
    def failed(self) -> list[ComparisonSubmission]:
        """The submissions that did not reach the LPS queue."""
        return [s for s in self.submissions if not s.queued]
