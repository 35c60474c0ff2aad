"""The report's statistics, for what a researcher relies on: real effects are found with
the right sign, no effect is covered at the nominal rate, clustering widens intervals."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from cj_batching.report import ExperimentReport, ReportBuilder, ReportOptions
from cj_batching.report import statistics as stats
from cj_batching.results import parse_result_event

from .callbacks import ArmProfile, CallbackSimulator

_ROLLOUT = {"serial_bundle": 80, "provider_batch_api": 20}  # the shipped 20 % rollout
_RUNS = 50


def experiment(
    profiles: dict[str, ArmProfile],
    seed: int,
    *,
    batches: int = 200,
    comparisons: int = 8,
    replicates: int = 500,
    **simulator: Any,
) -> ExperimentReport:
    builder = ReportBuilder(ReportOptions(replicates=replicates, seed=seed))
    events = CallbackSimulator(profiles, seed=seed, **simulator).experiment(
        batches=batches, weights=_ROLLOUT, comparisons=comparisons
    )
    for envelope in events:
        builder.add_event(parse_result_event(envelope))
    return builder.build()


def batch_api_versus_serial(report: ExperimentReport) -> Any:
    (comparison,) = report.versus_control
    assert (comparison.mode, comparison.control) == ("provider_batch_api", "serial_bundle")
    return comparison


# --- the weighted median the bootstrap resamples ----------------------------------------


@pytest.mark.parametrize("cells", [10**9, 1], ids=["all-rows-at-once", "row-by-row"])
def test_replicate_medians_equal_a_brute_force_weighted_median(
    cells: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats, "_CELLS_PER_CHUNK", cells)
    rng = np.random.default_rng(3)
    batches, per_batch = 30, 7
    values = rng.integers(1, 500, batches * per_batch).astype(np.float64)
    batch_of = np.repeat(np.arange(batches), per_batch)
    order = np.argsort(values, kind="stable")
    sample = stats.ArmSample(
        sizes=np.full(batches, float(per_batch)),
        successes=np.zeros(batches),
        cost=np.zeros(batches),
        response_ms=values[order],
        response_batch=batch_of[order],
    )
    draws = rng.integers(0, batches, size=(40, batches), dtype=np.int32)
    counts = stats._draw_counts(draws, batches)
    medians = stats._MedianFinder(sample)(counts, draws, counts @ sample.sizes)
    for row in range(len(draws)):
        pooled = np.sort(np.concatenate([values[batch_of == b] for b in draws[row]]))
        assert medians[row] == stats.percentile(pooled, 0.5)


def test_percentile_is_an_observed_value() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0])
    assert stats.percentile(values, 0.5) == 2.0
    assert stats.percentile(values, 0.95) == 4.0
    assert stats.percentile(np.arange(1.0, 101.0), 0.95) == 95.0
    assert math.isnan(stats.percentile(np.array([]), 0.5))


# --- a real effect is found, with the right sign ----------------------------------------


@pytest.fixture(scope="module")
def with_effect() -> ExperimentReport:
    """The batch API 15 points worse, 50 % slower and half the cost of the serial bundle."""
    profiles = {
        "serial_bundle": ArmProfile(success_rate=0.95, response_ms=2000, cost_usd=0.002),
        "provider_batch_api": ArmProfile(success_rate=0.80, response_ms=3000, cost_usd=0.001),
    }
    return experiment(profiles, seed=101, batches=300)


def test_fifteen_points_more_errors_is_found_below_zero(with_effect: ExperimentReport) -> None:
    comparison = batch_api_versus_serial(with_effect)
    low, high = comparison.success_rate_diff_ci
    assert high < 0
    assert low < comparison.success_rate_diff < high
    assert -0.25 < comparison.success_rate_diff < -0.08


def test_a_slower_arm_is_found_above_zero(with_effect: ExperimentReport) -> None:
    low, _ = batch_api_versus_serial(with_effect).response_ms_p50_diff_ci
    assert low > 0


def test_a_cheaper_arm_is_found_below_zero(with_effect: ExperimentReport) -> None:
    _, high = batch_api_versus_serial(with_effect).mean_cost_diff_ci
    assert high < 0


# --- no effect: the interval covers zero at (about) the nominal rate ---------------------


@pytest.fixture(scope="module")
def without_effect() -> list[ExperimentReport]:
    """50 seeded experiments whose two arms behave identically."""
    same = ArmProfile(success_rate=0.9, response_ms=2000, cost_usd=0.002)
    profiles = {"serial_bundle": same, "provider_batch_api": same}
    return [experiment(profiles, seed=seed, batches=240, comparisons=5) for seed in range(_RUNS)]


@pytest.mark.parametrize(
    "statistic", ["success_rate_diff_ci", "response_ms_p50_diff_ci", "mean_cost_diff_ci"]
)
def test_no_effect_is_covered_in_at_least_90_percent_of_runs(
    without_effect: list[ExperimentReport], statistic: str
) -> None:
    intervals = [getattr(batch_api_versus_serial(r), statistic) for r in without_effect]
    covered = sum(1 for low, high in intervals if low <= 0 <= high)
    assert covered >= 0.9 * _RUNS, f"{statistic}: zero covered in {covered} of {_RUNS} runs"


# --- clustering is accounted for --------------------------------------------------------


def test_correlated_batches_widen_the_interval_beyond_the_naive_one() -> None:
    same = ArmProfile(success_rate=0.85)
    profiles = {"serial_bundle": same, "provider_batch_api": same}
    report = experiment(profiles, seed=7, batch_effect=1.5, comparisons=20)
    (serial,) = [a for a in report.arms if a.mode == "serial_bundle"]
    low, high = serial.success_rate_ci
    p, n = serial.success_rate, serial.comparisons
    naive_width = 2 * 1.96 * math.sqrt(p * (1 - p) / n)  # as if comparisons were independent
    assert high - low > 1.8 * naive_width


def test_without_batch_effects_the_interval_is_about_the_naive_one() -> None:
    same = ArmProfile(success_rate=0.85)
    profiles = {"serial_bundle": same, "provider_batch_api": same}
    report = experiment(profiles, seed=7, batch_effect=0.0, comparisons=20)
    (serial,) = [a for a in report.arms if a.mode == "serial_bundle"]
    low, high = serial.success_rate_ci
    p, n = serial.success_rate, serial.comparisons
    naive_width = 2 * 1.96 * math.sqrt(p * (1 - p) / n)
    assert 0.8 * naive_width < high - low < 1.25 * naive_width
