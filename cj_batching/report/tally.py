"""The running sums of one arm of the experiment, kept in typed arrays (a few bytes per
result): what the report's statistics are computed from."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

__all__ = ["ArmKey", "ArmTally"]

ArmKey = tuple[str, str, str]  # source, mode, decided_by


@dataclass(slots=True)
class ArmTally:
    """The running sums of one arm; per batch arrays are indexed by the batch's number."""

    batch_numbers: dict[str, int] = field(default_factory=dict)
    sizes: array[int] = field(default_factory=lambda: array("I"))
    successes: array[int] = field(default_factory=lambda: array("I"))
    cost: array[float] = field(default_factory=lambda: array("d"))
    response_ms: array[int] = field(default_factory=lambda: array("I"))
    turnaround_s: array[float] = field(default_factory=lambda: array("f"))
    batch_of: array[int] = field(default_factory=lambda: array("I"))
    outcomes: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def new_batch(self) -> int:
        """A new batch's number (its index in the per-batch arrays)."""
        self.sizes.append(0)
        self.successes.append(0)
        self.cost.append(0.0)
        return len(self.sizes) - 1
