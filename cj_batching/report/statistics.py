"""The statistics of the report: percentiles, and a cluster bootstrap over batches.

A batch, not a comparison, is what the flag randomises into an arm, and comparisons of
one batch share its essays, prompt and timing: they are not independent. Each bootstrap
replicate therefore resamples an arm's *batches* with replacement, keeping every batch's
comparisons together, and recomputes the arm's success rate, mean cost and median
response time from them. Intervals are the 2.5 and 97.5 percentiles of the replicates;
a difference between two arms pairs replicate r of one with replicate r of the other
(the arms are resampled independently, as they were randomised).

numpy is imported inside the functions: the service imports this package for its
models, and must not pay numpy's import time for a report it never runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "DEFAULT_REPLICATES",
    "DEFAULT_SEED",
    "MIN_BATCHES_FOR_INTERVAL",
    "ArmSample",
    "Replicates",
    "arm_seed",
    "bootstrap",
    "interval",
    "percentile",
]

DEFAULT_REPLICATES: Final = 1000
DEFAULT_SEED: Final = 20260202
MIN_BATCHES_FOR_INTERVAL: Final = 2
"""Below this many batches an arm gets no interval: resampling one batch shows nothing."""

_CELLS_PER_CHUNK: Final = 1_000_000  # replicates x batches per resampling matrix (8 MB)
_WINDOW: Final = 0.15  # the median of a replicate is looked for within q 0.35..0.65 first


@dataclass(frozen=True, slots=True)
class ArmSample:
    """One arm as the bootstrap sees it.

    Per batch (cluster): `sizes` (comparisons), `successes` and `cost` (sums); per result,
    sorted by response time: `response_ms` and the batch index `response_batch` of each.
    """

    sizes: npt.NDArray[np.float64]
    successes: npt.NDArray[np.float64]
    cost: npt.NDArray[np.float64]
    response_ms: npt.NDArray[np.float64]
    response_batch: npt.NDArray[np.intp]

    @property
    def batches(self) -> int:
        """The number of clusters resampled."""
        return len(self.sizes)


@dataclass(frozen=True, slots=True)
class Replicates:
    """One value per bootstrap replicate of each statistic."""

    success_rate: npt.NDArray[np.float64]
    mean_cost: npt.NDArray[np.float64]
    response_p50: npt.NDArray[np.float64]


def arm_seed(seed: int, key: Sequence[str]) -> int:
    """A per-arm seed from the report's seed and the arm's key: stable across runs and
    processes (unlike `hash()`), and independent of which other arms the data holds."""
    text = "|".join((str(seed), *key)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")


def percentile(sorted_values: npt.NDArray[np.float64], q: float) -> float:
    """The smallest value with at least a fraction `q` of the values at or below it.

    An observed value (no interpolation), the same definition the bootstrap's medians use.
    """
    import numpy as np

    if not len(sorted_values):
        return float("nan")
    # (the epsilon keeps 0.95 * 100 from rounding up to a 96th value)
    index = max(0, int(np.ceil(q * len(sorted_values) - 1e-9)) - 1)
    return float(sorted_values[index])


def bootstrap(sample: ArmSample, *, replicates: int, seed: int) -> Replicates | None:
    """`replicates` cluster-bootstrap replicates of the arm's statistics; None when the
    arm has fewer than `MIN_BATCHES_FOR_INTERVAL` batches."""
    import numpy as np

    batches = sample.batches
    if batches < MIN_BATCHES_FOR_INTERVAL:
        return None
    rng = np.random.default_rng(seed)
    rates = np.empty(replicates)
    costs = np.empty(replicates)
    medians = np.empty(replicates)
    median = _MedianFinder(sample)
    chunk = max(1, min(replicates, _CELLS_PER_CHUNK // batches))
    # Sums by gathering the drawn batches, not by a weights-matrix product: a BLAS call
    # spreads over threads, and on a busy machine that was several times slower.
    for start in range(0, replicates, chunk):
        rows = min(chunk, replicates - start)
        draws = rng.integers(0, batches, size=(rows, batches), dtype=np.int32)
        totals = sample.sizes[draws].sum(axis=1)
        rates[start : start + rows] = sample.successes[draws].sum(axis=1) / totals
        costs[start : start + rows] = sample.cost[draws].sum(axis=1) / totals
        medians[start : start + rows] = median(_draw_counts(draws, batches), draws, totals)
    return Replicates(rates, costs, medians)


def interval(values: npt.NDArray[np.float64]) -> tuple[float, float]:
    """The 95 % percentile interval of replicate values."""
    import numpy as np

    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def _draw_counts(draws: npt.NDArray[np.int32], batches: int) -> npt.NDArray[np.int64]:
    """How often each batch was drawn, per replicate (row)."""
    import numpy as np

    rows = len(draws)
    offsets = draws + np.arange(rows)[:, None] * batches
    return np.bincount(offsets.ravel(), minlength=rows * batches).reshape(rows, batches)


class _MedianFinder:
    """Weighted median response times of replicates, in O(window) instead of O(n) each.

    A replicate's median lies near the sample's: results below a window around the
    sample median (q 0.35..0.65) are counted per batch once, so a replicate only sums the
    weights inside the window, many replicates per numpy call; a replicate whose median
    falls outside the window is done over the whole array.
    """

    def __init__(self, sample: ArmSample) -> None:
        import numpy as np

        self._values = sample.response_ms
        self._batch = sample.response_batch
        n = len(self._values)
        self._low = int(n * (0.5 - _WINDOW))
        self._high = max(self._low + 1, int(np.ceil(n * (0.5 + _WINDOW))))
        self._below = np.bincount(self._batch[: self._low], minlength=sample.batches)
        self._window_batch = self._batch[self._low : self._high]

    def __call__(
        self,
        counts: npt.NDArray[np.int64],
        draws: npt.NDArray[np.int32],
        totals: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        """One median per replicate (row): `counts` how often each batch was drawn,
        `draws` the drawn batches, `totals` the replicate's number of results."""
        import numpy as np

        half = totals / 2
        below = self._below[draws].sum(axis=1)
        width = len(self._window_batch)
        medians: npt.NDArray[np.float64]
        if width * len(counts) <= _CELLS_PER_CHUNK:  # small: all replicates in one call
            cumulative = below[:, None] + np.cumsum(counts[:, self._window_batch], axis=1)
            first = (cumulative < half[:, None]).sum(axis=1)  # the first reaching half
            medians = self._values[self._low + np.minimum(first, width - 1)]
            outside: list[int] = np.flatnonzero((below >= half) | (first >= width)).tolist()
        else:  # large: row by row (numpy's 1-D cumsum is several times its 2-D one)
            medians = np.empty(len(counts))
            outside = []
            for row in range(len(counts)):
                cumulative = below[row] + np.cumsum(counts[row][self._window_batch])
                index = int(np.searchsorted(cumulative, half[row]))
                if below[row] < half[row] and index < width:
                    medians[row] = self._values[self._low + index]
                else:
                    outside.append(row)
        for row in outside:
            whole = np.cumsum(counts[row][self._batch])
            medians[row] = self._values[int(np.searchsorted(whole, half[row]))]
        return medians
