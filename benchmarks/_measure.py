"""Shared measuring helpers: interleaved `timeit` medians, percentiles, RSS, the result line.

Every figure is measured against its baseline in the same run. Micro-benchmarks time
`timeit.Timer` statements (strings, so no extra call wraps the code under test) with the
garbage collector off during each timing, as `timeit` does; ours and the baseline are
timed alternately, one repeat each in turn, so a noisy neighbour on the machine slows
both sides alike, and the figure is the median over many repeats.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import timeit
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "Benchmark",
    "Figure",
    "Pair",
    "Run",
    "TargetKind",
    "format_value",
    "header",
    "machine",
    "percentile",
    "progress",
    "rss_bytes",
    "time_pair",
]

TargetKind = Literal["faster", "slower", "ratio", "max", "equal", "info"]
"""How a figure passes: `faster` baseline/ours >= limit; `slower` and `ratio` ours/baseline
<= limit; `max` ours <= limit; `equal` ours == limit; `info` reported only."""

Unit = Literal["s", "MB", "entries"]


@dataclass(frozen=True, slots=True)
class Run:
    """How hard to measure: the full run, or `--quick` (a smoke run, same code paths)."""

    quick: bool = False

    def pick(self, full: int, quick: int) -> int:
        """`full` normally, `quick` under --quick."""
        return quick if self.quick else full

    @property
    def repeats(self) -> int:
        """Repeats per micro-benchmark side (the figure is their median)."""
        return self.pick(41, 7)

    @property
    def repeat_seconds(self) -> float:
        """About how long one repeat of one side lasts."""
        return 0.02 if not self.quick else 0.005


@dataclass(frozen=True, slots=True)
class Pair:
    """Per-call seconds of ours and of the baseline, one sample per repeat each."""

    ours: list[float]
    baseline: list[float]
    ours_number: int
    baseline_number: int

    @property
    def ours_median(self) -> float:
        return statistics.median(self.ours)

    @property
    def baseline_median(self) -> float:
        return statistics.median(self.baseline)

    def details(self) -> dict[str, Any]:
        """Spread and loop sizes, for the JSON record."""
        return {
            "repeats": len(self.ours),
            "ours_calls_per_repeat": self.ours_number,
            "baseline_calls_per_repeat": self.baseline_number,
            "ours_min": min(self.ours),
            "ours_max": max(self.ours),
            "baseline_min": min(self.baseline),
            "baseline_max": max(self.baseline),
        }


def _calibrate(timer: timeit.Timer, seconds: float) -> int:
    """Calls per repeat so that one repeat lasts about `seconds` (this also warms up)."""
    number = 1
    while True:
        elapsed = timer.timeit(number)
        if elapsed >= seconds / 10 or number >= 10_000_000:
            break
        number *= 10
    timer.timeit(number)  # one more warm-up at full size
    per_call = max(elapsed / number, 1e-9)
    return max(1, round(seconds / per_call))


def time_pair(
    ours: str,
    baseline: str,
    namespace: Mapping[str, Any],
    run: Run,
    *,
    repeats: int | None = None,
    repeat_seconds: float | None = None,
) -> Pair:
    """Time two statements alternately; per-call seconds of each repeat."""
    repeats = run.repeats if repeats is None else repeats
    seconds = run.repeat_seconds if repeat_seconds is None else repeat_seconds
    globals_ = dict(namespace)
    ours_timer = timeit.Timer(ours, globals=globals_)
    baseline_timer = timeit.Timer(baseline, globals=globals_)
    ours_number = _calibrate(ours_timer, seconds)
    baseline_number = _calibrate(baseline_timer, seconds)
    ours_times: list[float] = []
    baseline_times: list[float] = []
    for index in range(repeats):
        # Alternate which side goes first, so neither always runs on a "fresh" slice.
        first, second = (
            (
                (ours_timer, ours_number, ours_times),
                (baseline_timer, baseline_number, baseline_times),
            )
            if index % 2 == 0
            else (
                (baseline_timer, baseline_number, baseline_times),
                (ours_timer, ours_number, ours_times),
            )
        )
        for timer, number, samples in (first, second):
            samples.append(timer.timeit(number) / number)
    return Pair(ours_times, baseline_times, ours_number, baseline_number)


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured claim: our value, the baseline's, and whether the target holds."""

    name: str
    ours: float
    baseline: float | None
    unit: Unit
    kind: TargetKind
    limit: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """ours / baseline (None without a baseline)."""
        if self.baseline is None or self.baseline == 0:
            return None
        return self.ours / self.baseline

    @property
    def passed(self) -> bool | None:
        """Whether the target holds (None for an informational figure)."""
        ratio = self.ratio
        if self.kind == "info" or self.limit is None:
            return None
        if not math.isfinite(self.ours):
            return False
        if self.kind == "faster":
            return ratio is not None and ratio > 0 and 1 / ratio >= self.limit
        if self.kind in ("slower", "ratio"):
            return ratio is not None and ratio <= self.limit
        if self.kind == "max":
            return self.ours <= self.limit
        return self.ours == self.limit

    @property
    def verdict(self) -> str:
        passed = self.passed
        return "INFO" if passed is None else ("PASS" if passed else "MISS")

    def ratio_text(self) -> str:
        ratio = self.ratio
        if ratio is None:
            return "-"
        if self.kind == "faster":
            return f"{1 / ratio:.1f}x faster" if ratio > 0 else "-"
        if self.kind == "slower":
            return f"{ratio:.1f}x slower"
        return f"{ratio:.2f}x"

    def target_text(self) -> str:
        limit = self.limit
        if self.kind == "info" or limit is None:
            return "-"
        if self.kind == "faster":
            return f">= {limit:g}x faster"
        if self.kind == "slower":
            return f"<= {limit:g}x slower"
        if self.kind == "ratio":
            return f"<= {limit:g}x"
        if self.kind == "max":
            return f"<= {format_value(limit, self.unit)}"
        return f"== {format_value(limit, self.unit)}"

    def line(self) -> str:
        """The figure's one result line."""
        baseline = "-" if self.baseline is None else format_value(self.baseline, self.unit)
        return (
            f"{self.name:<30} {format_value(self.ours, self.unit):>11} {baseline:>11} "
            f"{self.ratio_text():>14}  {self.target_text():<17} {self.verdict}"
        )

    def record(self) -> dict[str, Any]:
        """The figure as a JSON-ready dict."""
        return {
            "name": self.name,
            "ours": _json_number(self.ours),
            "baseline": None if self.baseline is None else _json_number(self.baseline),
            "unit": self.unit,
            "ratio": None if self.ratio is None else _json_number(self.ratio),
            "target": self.target_text(),
            "target_kind": self.kind,
            "target_limit": self.limit,
            "verdict": self.verdict,
            "details": dict(self.details),
        }


def header() -> str:
    """The column titles above the result lines."""
    return f"{'figure':<30} {'ours':>11} {'baseline':>11} {'ratio':>14}  {'target':<17} verdict"


_TIME_UNITS: Final = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


def format_value(value: float, unit: Unit) -> str:
    """`value` with a readable unit: seconds scaled to s/ms/µs/ns, MB, entries."""
    if not math.isfinite(value):
        return "timeout" if unit == "s" else str(value)
    if unit == "MB":
        return f"{value:.1f} MB"
    if unit == "entries":
        return f"{value:,.0f}"
    for scale, name in _TIME_UNITS:
        if abs(value) >= scale or scale == 1e-9:
            scaled = value / scale
            digits = 0 if scaled >= 100 else (1 if scaled >= 10 else 2)
            return f"{scaled:.{digits}f} {name}"
    raise AssertionError("unreachable")


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (0..1), linear between closest ranks (inclusive method)."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("percentile of no samples")
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rss_bytes() -> int:
    """The process's resident set size now (VmRSS from /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource  # fallback: the peak, not the current size (no /proc)

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * (1 if sys.platform == "darwin" else 1024)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def progress(message: str) -> None:
    """A progress note on stderr (stdout carries only the result lines)."""
    print(message, file=sys.stderr, flush=True)


Benchmark = Callable[[Run], list[Figure]]
