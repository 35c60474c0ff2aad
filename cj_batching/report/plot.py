"""The report as one PNG: per arm success rate, response times and cost, with intervals.

Needs the optional `[report]` extra (matplotlib). Drawn on a `matplotlib.figure.Figure`
with the Agg canvas: no pyplot, no global figure state, no display needed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cj_batching.report.summary import ArmSummary, ExperimentReport, Interval

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["EXTRA_HINT", "PlotUnavailableError", "plot_report", "require_matplotlib"]

EXTRA_HINT: Final = (
    "the picture needs the optional extra [report] (matplotlib): "
    "pip install 'cj-batching[report]' (in this project: uv sync --extra report)"
)
_COLOURS: Final = {
    "serial_bundle": "#1f77b4",
    "provider_batch_api": "#ff7f0e",
    "per_request": "#2ca02c",
}
_GREY: Final = "#9a9a9a"


class PlotUnavailableError(ImportError):
    """matplotlib is not installed: the message names the extra to install."""


def require_matplotlib() -> None:
    """Raise `PlotUnavailableError` now (before a long read) when matplotlib is missing."""
    try:
        found = importlib.util.find_spec("matplotlib") is not None
    except ValueError:  # a module set to None in sys.modules (how tests hide it)
        found = False
    if not found:
        raise PlotUnavailableError(EXTRA_HINT)


def plot_report(report: ExperimentReport, path: Path) -> None:
    """Write `report` as a PNG to `path`: one row per arm, three panels side by side."""
    require_matplotlib()
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:
        raise PlotUnavailableError(f"{EXTRA_HINT} ({exc})") from None

    arms = list(reversed(report.arms))  # the first arm at the top
    figure = Figure(figsize=(17, 1.9 + 0.7 * max(len(arms), 1)), layout="constrained")
    FigureCanvasAgg(figure)
    success, response, turnaround, cost = figure.subplots(1, 4, sharey=True)
    rows = list(range(len(arms)))
    labels = [_label(arm, report.control) for arm in arms]
    for row, arm in zip(rows, arms, strict=True):
        colour = _COLOURS.get(arm.mode, _GREY) if arm.randomised else _GREY
        style: dict[str, Any] = {"color": colour, "alpha": 1.0 if arm.randomised else 0.55}
        rate = 100 * arm.success_rate
        _point(
            success, row, rate, _scaled(arm.success_rate_ci, 100), style=style, text=f"{rate:.1f}%"
        )
        p50 = arm.response_ms_p50
        _point(response, row, p50, arm.response_ms_p50_ci, style=style, text=f"{p50:,.0f}")
        response.plot([arm.response_ms_p95], [row], marker="|", markersize=14, **style)
        turnaround.plot([arm.turnaround_s_p50], [row], marker="o", **style)
        turnaround.plot([arm.turnaround_s_p95], [row], marker="|", markersize=14, **style)
        cost_text = f"{arm.mean_cost_usd:.5f}"
        _point(cost, row, arm.mean_cost_usd, arm.mean_cost_usd_ci, style=style, text=cost_text)
    success.set_yticks(rows, labels, fontsize=9)
    success.set_xlabel("success rate, % (95% CI)")
    response.set_xlabel("response time, ms: o p50 (95% CI), | p95")
    turnaround.set_xlabel("turnaround, s (log): o p50, | p95")
    turnaround.set_xscale("log")
    cost.set_xlabel("mean cost per comparison, USD (95% CI)")
    cost.xaxis.set_major_locator(MaxNLocator(4))
    for axes in (success, response, turnaround, cost):
        axes.margins(x=0.12)
        axes.grid(axis="x", alpha=0.3)
        axes.set_ylim(-0.6, len(arms) - 0.4)
    figure.suptitle(
        f"cj-batching experiment: {report.results:,} results, control arm {report.control}\n"
        f"95% intervals: cluster bootstrap over batches ({report.replicates} replicates, "
        f"seed {report.seed}); grey arms were not randomised (listed apart, never compared)",
        fontsize=10,
    )
    figure.savefig(path, format="png", dpi=110)


def _label(arm: ArmSummary, control: str) -> str:
    name = f"{arm.source} / {arm.mode}"
    if arm.mode == control and arm.randomised:
        name += " (control)"
    if not arm.randomised:
        name += f" (decided by {arm.decided_by})"
    batches = "1 batch" if arm.batches == 1 else f"{arm.batches:,} batches"
    return f"{name}\n{arm.comparisons:,} results, {batches}"


def _point(
    axes: Axes, row: int, value: float, ci: Interval | None, *, style: dict[str, Any], text: str
) -> None:
    axes.annotate(
        text, (value, row), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8
    )
    if ci is None:
        axes.plot([value], [row], marker="o", **style)
        return
    axes.errorbar(
        [value],
        [row],
        xerr=[[max(0.0, value - ci[0])], [max(0.0, ci[1] - value)]],
        fmt="o",
        capsize=4,
        **style,
    )


def _scaled(ci: Interval | None, factor: float) -> Interval | None:
    return None if ci is None else (ci[0] * factor, ci[1] * factor)
