"""The guard's sequential statistics: the tallies, the variances and the mSPRT ratio."""

from __future__ import annotations

import math
import random

import pytest

from cj_batching.guard import Tally, mixture_log_likelihood_ratio, regression_evidence


def _tally(waves: list[list[bool]]) -> Tally:
    tally = Tally()
    for wave in waves:
        memory = [0, 0]
        for failed in wave:
            tally.add(failed, memory)
    return tally


def test_wave_sums_match_the_waves() -> None:
    rnd = random.Random(7)
    waves = [[rnd.random() < 0.3 for _ in range(rnd.randint(1, 20))] for _ in range(200)]
    tally = _tally(waves)
    assert tally.results == sum(len(w) for w in waves)
    assert tally.failures == sum(sum(w) for w in waves)
    assert tally.waves == len(waves)
    assert tally.sum_ff == sum(sum(w) ** 2 for w in waves)
    assert tally.sum_fn == sum(sum(w) * len(w) for w in waves)
    assert tally.sum_nn == sum(len(w) ** 2 for w in waves)


def test_interleaved_waves_sum_like_sequential_ones() -> None:
    first, second = [0, 0], [0, 0]
    interleaved = Tally()
    for failed_first, failed_second in [(True, False), (True, True), (False, False)]:
        interleaved.add(failed_first, first)
        interleaved.add(failed_second, second)
    assert interleaved == _tally([[True, True, False], [False, True, False]])


def test_independent_results_have_the_binomial_variance() -> None:
    tally = Tally()
    for index in range(1000):
        tally.add(index % 20 == 0)  # 5 % failures, no wave
    binomial = 0.05 * 0.95 / 1000
    assert tally.variance(0.05) == pytest.approx(binomial, rel=0.002)


def test_bundled_failures_have_the_variance_of_their_waves() -> None:
    # 100 waves of 10: five fail whole. The information is that of 100 results, not 1 000.
    tally = _tally([[index < 5] * 10 for index in range(100)])
    assert tally.variance(0.05) == pytest.approx(10 * 0.05 * 0.95 / 1000, rel=0.02)


def test_variance_never_drops_below_the_binomial() -> None:
    # Waves that fail exactly alike spread less than chance would: keep the binomial.
    tally = _tally([[True, False, False, False]] * 50)
    assert tally.variance(0.25) == pytest.approx(0.25 * 0.75 / 200)


@pytest.mark.parametrize(
    ("estimate", "variance", "tau"), [(0.1, 1e-4, 0.05), (-0.02, 4e-4, 0.05), (0.0, 1e-3, 0.2)]
)
def test_mixture_ratio_is_the_normal_mixture_formula(
    estimate: float, variance: float, tau: float
) -> None:
    tau2 = tau * tau
    ratio = math.sqrt(variance / (variance + tau2)) * math.exp(
        tau2 * estimate**2 / (2 * variance * (variance + tau2))
    )
    assert mixture_log_likelihood_ratio(estimate, variance, tau) == pytest.approx(math.log(ratio))


def test_mixture_ratio_without_variation_is_no_evidence() -> None:
    assert mixture_log_likelihood_ratio(0.0, 0.0, 0.05) == 0.0


def test_evidence_grows_with_the_increase() -> None:
    control = Tally(results=4000, failures=200, waves=4000, sum_ff=200, sum_fn=200, sum_nn=4000)
    weak = Tally(results=1000, failures=70, waves=1000, sum_ff=70, sum_fn=70, sum_nn=1000)
    strong = Tally(results=1000, failures=150, waves=1000, sum_ff=150, sum_fn=150, sum_nn=1000)
    assert regression_evidence(weak, control, 0.05).increase == pytest.approx(0.02)
    assert (
        regression_evidence(strong, control, 0.05).log_likelihood_ratio
        > regression_evidence(weak, control, 0.05).log_likelihood_ratio
    )


def test_ten_points_on_1000_results_clear_the_one_percent_boundary() -> None:
    # The arithmetic: 15 % of 1 000 against 5 % of 4 000 is far past log(100).
    control = Tally(results=4000, failures=200, waves=4000, sum_ff=200, sum_fn=200, sum_nn=4000)
    arm = Tally(results=1000, failures=150, waves=1000, sum_ff=150, sum_fn=150, sum_nn=1000)
    assert regression_evidence(arm, control, 0.05).log_likelihood_ratio > math.log(100)
