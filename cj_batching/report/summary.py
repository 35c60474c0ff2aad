"""What an experiment report holds: per arm summaries, comparisons with the control arm."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cj_batching.modes import LLMBatchingMode

if TYPE_CHECKING:
    from cj_batching.report.collect import ReportOptions

__all__ = [
    "RANDOMISED_NOTE",
    "ArmComparison",
    "ArmSummary",
    "BadLine",
    "ExperimentReport",
    "Interval",
]

Interval = tuple[float, float]
RANDOMISED_NOTE: Final = (
    "Only randomised batches are compared: arms are compared among results whose mode "
    "the flag decided (decided_by=flag); override-, default- and guard-decided results are "
    "listed apart and never mixed into a comparison."
)


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that was not a usable result event: where it is and why."""

    file: str
    line: int
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """One arm of one source: what its results looked like.

    Rates are fractions (0..1); percentiles are over all the arm's results (successes
    and errors); intervals are 95 % cluster-bootstrap intervals (None with fewer than
    two batches). `errors` maps outcome codes to counts, most frequent first.
    """

    source: str
    mode: str
    decided_by: str
    comparisons: int
    batches: int
    successes: int
    success_rate: float
    success_rate_ci: Interval | None
    response_ms_p50: float
    response_ms_p50_ci: Interval | None
    response_ms_p95: float
    turnaround_s_p50: float
    turnaround_s_p95: float
    mean_cost_usd: float
    mean_cost_usd_ci: Interval | None
    mean_prompt_tokens: float
    mean_completion_tokens: float
    errors: Mapping[str, int]

    @property
    def randomised(self) -> bool:
        """Whether the flag chose this arm's mode (so it may be compared)."""
        return self.decided_by == "flag" and self.mode in _MODES

    def to_dict(self) -> dict[str, Any]:
        """The `--json` shape of one arm."""
        return {
            "source": self.source,
            "mode": self.mode,
            "decided_by": self.decided_by,
            "randomised": self.randomised,
            "comparisons": self.comparisons,
            "batches": self.batches,
            "successes": self.successes,
            "success_rate": self.success_rate,
            "success_rate_ci": _pair(self.success_rate_ci),
            "response_ms_p50": self.response_ms_p50,
            "response_ms_p50_ci": _pair(self.response_ms_p50_ci),
            "response_ms_p95": self.response_ms_p95,
            "turnaround_s_p50": self.turnaround_s_p50,
            "turnaround_s_p95": self.turnaround_s_p95,
            "mean_cost_usd": self.mean_cost_usd,
            "mean_cost_usd_ci": _pair(self.mean_cost_usd_ci),
            "mean_prompt_tokens": self.mean_prompt_tokens,
            "mean_completion_tokens": self.mean_completion_tokens,
            "errors": dict(self.errors),
        }


@dataclass(frozen=True, slots=True)
class ArmComparison:
    """One randomised arm against the control arm of the same source (arm - control)."""

    source: str
    mode: str
    control: str
    comparisons: int
    batches: int
    control_comparisons: int
    control_batches: int
    success_rate_diff: float
    success_rate_diff_ci: Interval | None
    response_ms_p50_diff: float
    response_ms_p50_diff_ci: Interval | None
    mean_cost_diff: float
    mean_cost_diff_ci: Interval | None

    def to_dict(self) -> dict[str, Any]:
        """The `--json` shape of one comparison."""
        return {
            "source": self.source,
            "mode": self.mode,
            "control": self.control,
            "comparisons": self.comparisons,
            "batches": self.batches,
            "control_comparisons": self.control_comparisons,
            "control_batches": self.control_batches,
            "success_rate_diff": self.success_rate_diff,
            "success_rate_diff_ci": _pair(self.success_rate_diff_ci),
            "response_ms_p50_diff": self.response_ms_p50_diff,
            "response_ms_p50_diff_ci": _pair(self.response_ms_p50_diff_ci),
            "mean_cost_diff": self.mean_cost_diff,
            "mean_cost_diff_ci": _pair(self.mean_cost_diff_ci),
        }


@dataclass(frozen=True, slots=True)
class ExperimentReport:
    """Per source and arm what the result callbacks show, and each randomised arm
    against the control. Build one with `ExperimentReport.from_files(...)` or, for a
    stream of events, with a `ReportBuilder`.
    """

    arms: tuple[ArmSummary, ...]
    versus_control: tuple[ArmComparison, ...]
    control: str
    results: int
    bad_lines: int
    bad_line_examples: tuple[BadLine, ...]
    duplicates: int
    filtered_out: int
    batches_in_several_arms: int
    requested_from: datetime | None
    requested_until: datetime | None
    replicates: int
    seed: int
    notes: tuple[str, ...] = ()

    @classmethod
    def from_files(
        cls, paths: Iterable[str | Path], options: ReportOptions | None = None
    ) -> ExperimentReport:
        """Read exported callback files (`-` for stdin, `.gz` too) into a report."""
        from cj_batching.report.collect import ReportBuilder, ReportOptions

        builder = ReportBuilder(options or ReportOptions())
        for path in paths:
            builder.add_file(path)
        return builder.build()

    @property
    def method(self) -> str:
        """How the intervals were computed and which results were compared (the JSON's
        `method`)."""
        return f"{self.interval_method} {RANDOMISED_NOTE}"

    @property
    def interval_method(self) -> str:
        """How the intervals were computed, in a sentence or three."""
        return (
            f"95% intervals are percentile intervals of a cluster bootstrap over batches "
            f"({self.replicates} replicates, seed {self.seed}): each replicate resamples "
            "an arm's batches with replacement and keeps each batch's comparisons "
            "together, because the batch (not the comparison) is the unit of "
            "randomisation; a difference resamples both arms independently. "
            "Percentiles (observed values) and means are over all results of an arm, "
            "successes and errors."
        )

    @property
    def randomised_arms(self) -> tuple[ArmSummary, ...]:
        """The arms the flag decided: the ones compared."""
        return tuple(arm for arm in self.arms if arm.randomised)

    @property
    def listed_apart(self) -> tuple[ArmSummary, ...]:
        """Override-, default- and unknown-decided arms: shown, never compared."""
        return tuple(arm for arm in self.arms if not arm.randomised)

    def to_dict(self) -> dict[str, Any]:
        """The `--json` object (rates as fractions 0..1, intervals as [low, high] or null)."""
        return {
            "arms": [arm.to_dict() for arm in self.arms],
            "versus_control": [comparison.to_dict() for comparison in self.versus_control],
            "control": self.control,
            "results": self.results,
            "bad_lines": self.bad_lines,
            "bad_line_examples": [
                {"file": b.file, "line": b.line, "reason": b.reason, "message": b.message}
                for b in self.bad_line_examples
            ],
            "duplicates": self.duplicates,
            "filtered_out": self.filtered_out,
            "batches_in_several_arms": self.batches_in_several_arms,
            "requested_from": _iso(self.requested_from),
            "requested_until": _iso(self.requested_until),
            "replicates": self.replicates,
            "seed": self.seed,
            "method": self.method,
            "notes": list(self.notes),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """`to_dict()` as JSON (NaN, e.g. a percentile of no results, becomes null)."""
        return json.dumps(_no_nan(self.to_dict()), indent=indent, allow_nan=False)

    def to_text(self) -> str:
        """The report as a person reads it in a terminal."""
        from cj_batching.report.render import render_text

        return render_text(self)

    def plot(self, path: str | Path) -> None:
        """Write the one-glance PNG (needs the `[report]` extra: matplotlib)."""
        from cj_batching.report.plot import plot_report

        plot_report(self, Path(path))


_MODES: Final = frozenset(mode.value for mode in LLMBatchingMode)


def _pair(value: Interval | None) -> list[float] | None:
    return None if value is None else [value[0], value[1]]


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _no_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _no_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_no_nan(item) for item in value]
    return value
