"""What a report reads and how it computes: filters, the control arm, the bootstrap."""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cj_batching.bounds import MAX_REPLICATES, MIN_REPLICATES, ReportReplicates, ResultDedupMaxsize
from cj_batching.modes import LLMBatchingMode
from cj_batching.report.statistics import DEFAULT_REPLICATES, DEFAULT_SEED
from cj_batching.results import DEFAULT_DEDUP_MAXSIZE
from cj_batching.results.models import Timestamp
from cj_batching.settings import Settings

__all__ = ["MAX_REPLICATES", "MIN_REPLICATES", "ReportOptions"]

_ENV_DEFAULT_MODE: Final[LLMBatchingMode] = Settings.model_fields["LLM_BATCHING_MODE"].default


class ReportOptions(BaseModel):
    """Options of an `ExperimentReport`, validated once (errors name the option).

    `control`: the arm every randomised arm is compared with (default: the shipped env
    default mode; the CLI uses `CJ_ASSESSMENT_SERVICE_LLM_BATCHING_MODE`). `sources`:
    only these `cj_source` values (None: all). `since`/`until`: only comparisons
    requested in [since, until) (by `requested_at`, when the arm was chosen: cutting by
    completion time would drop the slow arm's late answers and bias the comparison).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    control: LLMBatchingMode = _ENV_DEFAULT_MODE
    sources: frozenset[str] | None = None
    since: Timestamp | None = None
    until: Timestamp | None = None
    replicates: ReportReplicates = DEFAULT_REPLICATES
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = DEFAULT_SEED
    dedup_maxsize: ResultDedupMaxsize = DEFAULT_DEDUP_MAXSIZE
    bad_line_examples: Annotated[int, Field(ge=0, le=1000)] = 5

    @field_validator("sources", mode="before")
    @classmethod
    def _normalised_sources(cls, value: Any) -> Any:
        if value is None or isinstance(value, str):
            value = None if value is None else value.split(",")
        if value is None:
            return None
        sources = frozenset(str(item).strip().lower() for item in value if str(item).strip())
        if not sources:
            raise ValueError("give at least one source, e.g. els")
        return sources

    @model_validator(mode="after")
    def _since_before_until(self) -> ReportOptions:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(
                f"since ({self.since.isoformat()}) must be before until ({self.until.isoformat()})"
            )
        return self
