"""Seeded rollouts for the rollout guard: result streams as CJ's callback consumer sees them.

A rollout sends each new batch to the arm with probability `arm_share` (the flag's
fractional split), the rest to the control. A batch submits `waves_per_batch` waves of
`wave_size` comparisons, one after the other; `concurrent_batches` batches run at once,
and LPS answers a wave's comparisons in one burst (it works through a bundle item by
item), so results arrive as interleaved wave bursts. A comparison fails with its arm's
error rate, independently, or, for the arms in `bundled`, a whole wave fails together
(LPS fails a serial bundle when one item fails).

`python -m tests.guard_simulation` prints the trip rates of the documented scenarios
(docs/guarded-rollouts.md quotes them).
"""

from __future__ import annotations

import logging
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cj_batching import ArmResult, LLMBatchingMode, RolloutGuard, Settings

CONTROL = LLMBatchingMode.SERIAL_BUNDLE  # the shipped env default, so the default control
ARM = LLMBatchingMode.PROVIDER_BATCH_API
SOURCE = "els"
BOTH = (CONTROL, ARM)


@dataclass(frozen=True, slots=True)
class Rollout:
    """One experiment's shape (defaults: the shipped ELS 20/80 rollout, 5 % errors)."""

    control_error_rate: float = 0.05
    arm_error_rate: float = 0.05
    arm_share: float = 0.2
    wave_size: int = 12
    waves_per_batch: int = 4
    concurrent_batches: int = 8
    bundled: tuple[LLMBatchingMode, ...] = ()  # arms whose waves fail whole
    with_waves: bool = True  # pass each result's wave to the guard


def waves(rollout: Rollout, seed: int) -> Iterator[tuple[LLMBatchingMode, list[ArmResult]]]:
    """An endless seeded stream of (arm, the results of one wave, in arrival order)."""
    rnd = random.Random(seed)
    next_batch = 0

    def start() -> tuple[int, LLMBatchingMode, int]:
        """A new batch: (batch id, its arm, waves left)."""
        nonlocal next_batch
        next_batch += 1
        mode = ARM if rnd.random() < rollout.arm_share else CONTROL
        return next_batch, mode, rollout.waves_per_batch

    running = [start() for _ in range(rollout.concurrent_batches)]
    while True:
        slot = rnd.randrange(len(running))
        batch_id, mode, left = running[slot]
        iteration = rollout.waves_per_batch - left
        wave = f"{batch_id}:{iteration}" if rollout.with_waves else None
        ok = ArmResult(SOURCE, mode, "flag", False, wave)
        failed = ArmResult(SOURCE, mode, "flag", True, wave)
        rate = rollout.arm_error_rate if mode is ARM else rollout.control_error_rate
        if mode in rollout.bundled:
            results = [failed if rnd.random() < rate else ok] * rollout.wave_size
        else:
            results = [failed if rnd.random() < rate else ok for _ in range(rollout.wave_size)]
        yield mode, results
        running[slot] = start() if left == 1 else (batch_id, mode, left - 1)


def arm_results_at_trip(
    rollout: Rollout, seed: int, *, arm_results: int, settings: Settings | None = None
) -> int | None:
    """Feed one seeded rollout to a fresh guard until the arm has `arm_results` results;
    the arm's result count when the guard tripped it, or None if it never did."""
    guard = RolloutGuard(settings or Settings(_env_file=None))
    seen = 0
    for mode, results in waves(rollout, seed):
        for result in results:
            guard.observe(result)
        if guard.diverts(SOURCE, ARM) is not None:
            return guard.trips()[0].arm_results
        if mode is ARM:
            seen += len(results)
            if seen >= arm_results:
                return None
    raise AssertionError("unreachable: the stream is endless")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How often, and how early, a scenario tripped over its seeded rollouts."""

    rollouts: int
    trip_counts: tuple[int | None, ...]  # per rollout: the arm's results at the trip

    @property
    def trips(self) -> int:
        return sum(1 for count in self.trip_counts if count is not None)

    def trips_within(self, arm_results: int) -> int:
        return sum(1 for count in self.trip_counts if count is not None and count <= arm_results)

    @property
    def median_trip(self) -> int | None:
        counts = sorted(count for count in self.trip_counts if count is not None)
        return counts[len(counts) // 2] if counts else None


def run_scenario(
    rollout: Rollout,
    *,
    rollouts: int,
    arm_results: int,
    first_seed: int = 0,
    settings: Settings | None = None,
) -> Outcome:
    """`rollouts` seeded rollouts (seeds first_seed, first_seed + 1, ...)."""
    counts = tuple(
        arm_results_at_trip(rollout, seed, arm_results=arm_results, settings=settings)
        for seed in range(first_seed, first_seed + rollouts)
    )
    return Outcome(rollouts, counts)


SCENARIOS: tuple[tuple[str, Rollout, int], ...] = (
    ("no difference, 5 % errors", Rollout(), 5000),
    ("+10 points (5 % -> 15 %)", Rollout(arm_error_rate=0.15), 1000),
    ("+5 points (5 % -> 10 %)", Rollout(arm_error_rate=0.10), 5000),
    ("+3 points (5 % -> 8 %)", Rollout(arm_error_rate=0.08), 5000),
    ("no difference, 20 % errors", Rollout(0.20, 0.20), 5000),
    ("no difference, 1 % errors", Rollout(0.01, 0.01), 5000),
    ("no difference, 50/50 split", Rollout(arm_share=0.5), 5000),
    ("no difference, bundled failures", Rollout(bundled=BOTH), 5000),
    (
        "no difference, bundled failures, waves not passed",
        Rollout(bundled=BOTH, with_waves=False),
        5000,
    ),
    ("+10 points, bundled failures", Rollout(arm_error_rate=0.15, bundled=BOTH), 5000),
    ("no difference, only the control bundled", Rollout(bundled=(CONTROL,)), 5000),
    (
        "no difference, only the control bundled, 50/50",
        Rollout(arm_share=0.5, bundled=(CONTROL,)),
        5000,
    ),
)


def main(argv: Sequence[str]) -> int:
    rollouts = int(argv[0]) if argv else 200
    logging.getLogger("cj_batching.guard").setLevel(logging.ERROR)  # one line per trip
    print(f"{rollouts} seeded rollouts per scenario, shipped guard defaults")
    print(f"{'scenario':<52} {'arm results':>11} {'tripped':>9} {'<=1000':>7} {'median':>7}")
    for name, rollout, arm_results in SCENARIOS:
        started = time.perf_counter()
        outcome = run_scenario(rollout, rollouts=rollouts, arm_results=arm_results)
        print(
            f"{name:<52} {arm_results:>11} {outcome.trips:>5}/{rollouts:<3} "
            f"{outcome.trips_within(1000):>7} {outcome.median_trip or '-':>7}"
            f"  ({time.perf_counter() - started:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
