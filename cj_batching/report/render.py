"""The report as text: per source a table of arms, the comparisons, what is listed apart."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Final

from cj_batching._text import escape
from cj_batching.report.summary import (
    RANDOMISED_NOTE,
    ArmComparison,
    ArmSummary,
    ExperimentReport,
    Interval,
)

__all__ = ["render_text"]

_HEADER: Final = (
    f"  {'arm':<36}{'results':>9}{'batches':>9}  {'success [95% CI]':<22}"
    f"{'response p50/p95':>18}{'turnaround p50/p95':>20}{'USD/cmp':>10}{'tokens in/out':>15}"
)
_TOP_ERRORS: Final = 3
_Format = Callable[[float], str]


def render_text(report: ExperimentReport) -> str:
    """The whole report: a summary line, then per source arms and comparisons, the method."""
    lines = [_headline(report), *_counts(report), *_wrap(RANDOMISED_NOTE, indent="  "), ""]
    for source in sorted({arm.source for arm in report.arms}):
        lines.extend(_source_section(report, source))
        lines.append("")
    lines.extend(_wrap(f"Method: {report.interval_method}"))  # the note is at the top
    lines.extend(f"Note: {escape(note)}" for note in report.notes)
    return "\n".join(lines)


def _headline(report: ExperimentReport) -> str:
    span = ""
    if report.requested_from is not None and report.requested_until is not None:
        span = (
            f", requested {report.requested_from:%Y-%m-%d %H:%M:%S} .. "
            f"{report.requested_until:%Y-%m-%d %H:%M:%S} UTC"
        )
    return f"cj-batching report: {report.results:,} results{span}"


def _counts(report: ExperimentReport) -> list[str]:
    lines = [
        f"  bad lines: {report.bad_lines:,}; duplicates skipped: {report.duplicates:,}; "
        f"outside the filters: {report.filtered_out:,}"
    ]
    for bad in report.bad_line_examples:
        lines.append(f"    {escape(bad.file)}:{bad.line}: {escape(bad.message)}")
    if report.bad_lines > len(report.bad_line_examples):
        lines.append(f"    ... and {report.bad_lines - len(report.bad_line_examples):,} more")
    return lines


def _source_section(report: ExperimentReport, source: str) -> list[str]:
    arms = [arm for arm in report.arms if arm.source == source]
    randomised = [arm for arm in arms if arm.randomised]
    apart = [arm for arm in arms if not arm.randomised]
    lines = [f"source {source}"]
    if randomised:
        lines.append("  randomised (decided by the flag):")
        lines.append(_HEADER)
        for arm in randomised:
            lines.extend(_arm_rows(arm, report.control))
    comparisons = [c for c in report.versus_control if c.source == source]
    if comparisons:
        lines.append(f"  versus {report.control} (control), arm minus control [95% CI]:")
        lines.extend(_comparison_row(comparison) for comparison in comparisons)
        lines.append("    (* the interval excludes 0)")
    if apart:
        lines.append("  listed apart (not randomised, never compared):")
        lines.append(_HEADER)
        for arm in apart:
            lines.extend(_arm_rows(arm, None))
    return lines


def _arm_rows(arm: ArmSummary, control: str | None) -> list[str]:
    """The arm's figures on one line, its most frequent errors on the next."""
    name = arm.mode if arm.randomised else f"{arm.mode}, decided by {arm.decided_by}"
    if arm.mode == control:
        name += " (control)"
    success = f"{_percent(arm.success_rate)} {_interval(arm.success_rate_ci, _percent)}"
    response = f"{_ms(arm.response_ms_p50)}/{_ms(arm.response_ms_p95)}"
    turnaround = f"{_duration(arm.turnaround_s_p50)}/{_duration(arm.turnaround_s_p95)}"
    tokens = f"{arm.mean_prompt_tokens:,.0f}/{arm.mean_completion_tokens:,.0f}"
    row = (
        f"  {name:<36}{arm.comparisons:>9,}{arm.batches:>9,}  {success:<22}"
        f"{response:>18}{turnaround:>20}{_usd(arm.mean_cost_usd):>10}{tokens:>15}"
    )
    top = list(arm.errors.items())[:_TOP_ERRORS]
    if not top:
        return [row]
    errors = ", ".join(f"{code} {count:,}" for code, count in top)
    more = len(arm.errors) - len(top)
    return [row, f"      errors: {errors}{f' (+{more} more codes)' if more > 0 else ''}"]


def _comparison_row(c: ArmComparison) -> str:
    success = _difference(c.success_rate_diff, c.success_rate_diff_ci, _points, "pts")
    response = _difference(c.response_ms_p50_diff, c.response_ms_p50_diff_ci, _signed_ms, "ms")
    cost = _difference(c.mean_cost_diff, c.mean_cost_diff_ci, _signed_usd, "USD")
    return (
        f"    {c.mode:<20} success {success}   response p50 {response}   cost/comparison {cost}"
        f"   ({c.batches:,} vs {c.control_batches:,} batches)"
    )


def _difference(value: float, ci: Interval | None, fmt: _Format, unit: str) -> str:
    if ci is None:
        return f"{fmt(value)} {unit} [no interval: too few batches]"
    marker = " *" if ci[0] > 0 or ci[1] < 0 else ""
    return f"{fmt(value)} {unit} [{fmt(ci[0])}, {fmt(ci[1])}]{marker}"


def _interval(ci: Interval | None, fmt: _Format) -> str:
    return "[n/a]" if ci is None else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _points(value: float) -> str:
    return f"{100 * value:+.1f}"


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f}ms"


def _signed_ms(value: float) -> str:
    return f"{value:+,.0f}"


def _usd(value: float) -> str:
    return f"{value:.5f}" if abs(value) < 1 else f"{value:,.2f}"


def _signed_usd(value: float) -> str:
    return f"{value:+.5f}" if abs(value) < 1 else f"{value:+,.2f}"


def _duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _wrap(text: str, width: int = 100, indent: str = "") -> Iterable[str]:
    line = ""
    for word in text.split():
        if line and len(indent) + len(line) + 1 + len(word) > width:
            yield indent + line
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        yield indent + line
