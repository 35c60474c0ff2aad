"""From the tallies to the report's numbers: each arm's summary with its bootstrap
replicates, and each randomised arm against the control."""

from __future__ import annotations

from typing import Final

from cj_batching.report.options import ReportOptions
from cj_batching.report.statistics import (
    ArmSample,
    Replicates,
    arm_seed,
    bootstrap,
    interval,
    percentile,
)
from cj_batching.report.summary import ArmComparison, ArmSummary, Interval
from cj_batching.report.tally import ArmKey, ArmTally
from cj_batching.results import SUCCESS, UNKNOWN

__all__ = ["arm_order", "compare", "summarise"]


def summarise(
    key: ArmKey, data: ArmTally, options: ReportOptions
) -> tuple[ArmSummary, Replicates | None]:
    """One arm's summary and its bootstrap replicates (None when too few batches)."""
    import numpy as np

    response = np.frombuffer(data.response_ms, dtype=np.uint32).astype(np.float64)
    order = np.argsort(response, kind="stable")
    sample = ArmSample(
        sizes=np.frombuffer(data.sizes, dtype=np.uint32).astype(np.float64),
        successes=np.frombuffer(data.successes, dtype=np.uint32).astype(np.float64),
        cost=np.frombuffer(data.cost, dtype=np.float64).copy(),
        response_ms=response[order],
        response_batch=np.frombuffer(data.batch_of, dtype=np.uint32).astype(np.intp)[order],
    )
    turnaround = np.sort(np.frombuffer(data.turnaround_s, dtype=np.float32)).astype(np.float64)
    reps = bootstrap(sample, replicates=options.replicates, seed=arm_seed(options.seed, key))
    comparisons = len(response)
    successes = int(sample.successes.sum())
    errors = {
        code: count
        for code, count in sorted(data.outcomes.items(), key=lambda item: (-item[1], item[0]))
        if code != SUCCESS
    }
    summary = ArmSummary(
        source=key[0],
        mode=key[1],
        decided_by=key[2],
        comparisons=comparisons,
        batches=len(data.batch_numbers),
        successes=successes,
        success_rate=successes / comparisons,
        success_rate_ci=None if reps is None else interval(reps.success_rate),
        response_ms_p50=percentile(sample.response_ms, 0.5),
        response_ms_p50_ci=None if reps is None else interval(reps.response_p50),
        response_ms_p95=percentile(sample.response_ms, 0.95),
        turnaround_s_p50=round(percentile(turnaround, 0.5), 3),
        turnaround_s_p95=round(percentile(turnaround, 0.95), 3),
        mean_cost_usd=float(sample.cost.sum()) / comparisons,
        mean_cost_usd_ci=None if reps is None else interval(reps.mean_cost),
        mean_prompt_tokens=data.prompt_tokens / comparisons,
        mean_completion_tokens=data.completion_tokens / comparisons,
        errors=errors,
    )
    return summary, reps


def compare(
    arm: ArmSummary,
    control: ArmSummary,
    arm_reps: Replicates | None,
    control_reps: Replicates | None,
) -> ArmComparison:
    """`arm` against `control`: the differences and their intervals."""

    def diff_ci(statistic: str) -> Interval | None:
        if arm_reps is None or control_reps is None:
            return None
        return interval(getattr(arm_reps, statistic) - getattr(control_reps, statistic))

    return ArmComparison(
        source=arm.source,
        mode=arm.mode,
        control=control.mode,
        comparisons=arm.comparisons,
        batches=arm.batches,
        control_comparisons=control.comparisons,
        control_batches=control.batches,
        success_rate_diff=arm.success_rate - control.success_rate,
        success_rate_diff_ci=diff_ci("success_rate"),
        response_ms_p50_diff=arm.response_ms_p50 - control.response_ms_p50,
        response_ms_p50_diff_ci=diff_ci("response_p50"),
        mean_cost_diff=arm.mean_cost_usd - control.mean_cost_usd,
        mean_cost_diff_ci=diff_ci("mean_cost"),
    )


_DECIDED_ORDER: Final = {"flag": 0, "override": 1, "guard": 2, "default": 3, UNKNOWN: 4}
_MODE_ORDER: Final = {"serial_bundle": 0, "per_request": 1, "provider_batch_api": 2, UNKNOWN: 3}


def arm_order(key: ArmKey) -> tuple[str, int, int]:
    """Sources alphabetically; randomised arms first; modes in a fixed order."""
    source, mode, decided_by = key
    return source, _DECIDED_ORDER.get(decided_by, 9), _MODE_ORDER.get(mode, 9)
