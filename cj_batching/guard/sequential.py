"""The guard's statistics: an always-valid test that an arm fails more than the control.

The guard looks at the data after every result, so a fixed-sample test (a z-test at
p < 0.01 on each look) would trip on noise sooner or later. It uses instead the
**mixture sequential probability ratio test** (mSPRT, Robbins 1970; Johari, Pekelis and
Walsh, "Always valid inference", 2017, the method behind Optimizely's Stats Engine) for
the difference of two error rates:

- `increase` = arm error rate - control error rate, with `variance` its estimated
  variance under H0 (no difference: both arms at the pooled rate);
- the likelihood ratio of "the increase is N(0, tau^2)-distributed" against H0, for a
  normal estimate, is `sqrt(V / (V + tau^2)) * exp(tau^2 * increase^2 / (2 V (V + tau^2)))`;
- under H0 this ratio is a nonnegative martingale, so by Ville's inequality it ever
  reaches `1 / alpha` with probability at most `alpha`, *however often it is looked at*.

`tau` is the effect size the test is tuned for; the guard uses its tolerance
(`guard_max_error_rate_increase`), which puts the test's best sensitivity where a
regression of that size becomes measurable.

Results that fail together (LPS fails a serial bundle as a whole when one item fails)
carry less information than independent ones. Each arm's variance is therefore the
larger of the binomial variance and the cluster-robust (sandwich) variance over its
waves, so bundled failures widen the test instead of tripping it. Pure Python: an
update is a handful of integer additions (docs/performance.md has the measured cost),
and the ratio is computed only when the observed increase already exceeds the tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Evidence", "Tally", "mixture_log_likelihood_ratio", "regression_evidence"]


@dataclass(slots=True)
class Tally:
    """The results of one arm: counts, plus the per-wave sums the clustered variance needs.

    With f_i failures among n_i results in wave i: `sum_ff` = sum f_i^2, `sum_fn` =
    sum f_i n_i, `sum_nn` = sum n_i^2, so sum (f_i - r n_i)^2 is known for any rate r
    without keeping the waves.
    """

    results: int = 0
    failures: int = 0
    waves: int = 0
    sum_ff: int = 0
    sum_fn: int = 0
    sum_nn: int = 0

    def add(self, failed: bool, wave: list[int] | None = None) -> None:
        """Count one result; `wave` is its wave's `[results, failures]` so far, updated
        in place (None: a result that fails independently of every other)."""
        x = 1 if failed else 0
        self.results += 1
        self.failures += x
        if wave is None:
            self.waves += 1
            self.sum_ff += x
            self.sum_fn += x
            self.sum_nn += 1
            return
        n, f = wave
        if n == 0:
            self.waves += 1
        # (f + x)^2 - f^2, (f + x)(n + 1) - f n and (n + 1)^2 - n^2, with x in {0, 1}.
        self.sum_ff += (2 * f + 1) * x
        self.sum_fn += f + x * (n + 1)
        self.sum_nn += 2 * n + 1
        wave[0] = n + 1
        wave[1] = f + x

    @property
    def error_rate(self) -> float:
        """Failures per result (0 before the first result)."""
        return self.failures / self.results if self.results else 0.0

    def variance(self, rate: float) -> float:
        """The variance of this arm's error rate if its true rate were `rate`: the larger
        of the binomial and the cluster-robust (by wave) estimate."""
        n = self.results
        binomial = rate * (1.0 - rate) / n
        k = self.waves
        if k < 2:
            return binomial
        residual = self.sum_ff - 2.0 * rate * self.sum_fn + rate * rate * self.sum_nn
        clustered = residual / (n * n) * k / (k - 1)
        return max(binomial, clustered)


@dataclass(frozen=True, slots=True)
class Evidence:
    """How strongly the data say an arm fails more often than the control."""

    increase: float  # arm error rate - control error rate
    variance: float  # of `increase` under H0 (both at the pooled rate)
    log_likelihood_ratio: float  # the mSPRT statistic; trip when >= log(1 / alpha)


def mixture_log_likelihood_ratio(estimate: float, variance: float, tau: float) -> float:
    """log of the normal-mixture likelihood ratio for a normal `estimate` of an effect
    with known `variance`, mixing the effect over N(0, tau^2)."""
    if variance <= 0.0:
        return 0.0  # no variation at all (every result succeeded, or every one failed)
    tau2 = tau * tau
    total = variance + tau2
    return 0.5 * math.log(variance / total) + tau2 * estimate * estimate / (2.0 * variance * total)


def regression_evidence(arm: Tally, control: Tally, tau: float) -> Evidence:
    """The evidence that `arm` fails more often than `control` (both must have results)."""
    pooled = (arm.failures + control.failures) / (arm.results + control.results)
    variance = arm.variance(pooled) + control.variance(pooled)
    increase = arm.error_rate - control.error_rate
    return Evidence(increase, variance, mixture_log_likelihood_ratio(increase, variance, tau))
