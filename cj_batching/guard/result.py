"""One comparison result as the rollout guard sees it: whose arm, and did it fail."""

from __future__ import annotations

from dataclasses import dataclass

from cj_batching._text import short_repr
from cj_batching.metrics.labels import source_label
from cj_batching.modes import LLMBatchingMode, parse_mode

__all__ = ["MAX_WAVE_KEY_LENGTH", "ArmResult"]

MAX_WAVE_KEY_LENGTH = 256  # the guard remembers wave keys: bound what one may cost


@dataclass(frozen=True, slots=True)
class ArmResult:
    """A result callback reduced to what the guard needs.

    `cj_source` becomes its bounded label (a known source, else `other`); `mode` is
    the arm (any spelling); only `decided_by="flag"` results are compared, since only
    they were randomised. `wave` names the results that can fail together, e.g.
    `"<cj_batch_id>:<comparison_iteration>"` (LPS fails a serial bundle as a whole):
    with it the guard measures bundled failures instead of mistaking them for a
    regression; None treats the result as independent of every other.
    """

    cj_source: str
    mode: LLMBatchingMode
    decided_by: str
    failed: bool
    wave: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.cj_source, str):
            raise ValueError(f"cj_source: {short_repr(self.cj_source)} must be a string")
        if not isinstance(self.decided_by, str):
            raise ValueError(f"decided_by: {short_repr(self.decided_by)} must be a string")
        if not isinstance(self.failed, bool):
            raise ValueError(f"failed: {short_repr(self.failed)} must be True or False")
        if self.wave is not None and not (
            isinstance(self.wave, str) and 0 < len(self.wave) <= MAX_WAVE_KEY_LENGTH
        ):
            raise ValueError(
                f"wave: {short_repr(self.wave)} must be None or a string of 1-"
                f"{MAX_WAVE_KEY_LENGTH} characters"
            )
        object.__setattr__(self, "cj_source", source_label(self.cj_source.strip().lower()))
        object.__setattr__(self, "mode", parse_mode(self.mode, field="mode"))
