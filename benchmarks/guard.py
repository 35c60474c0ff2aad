"""The rollout guard's per-result and per-resolution costs.

- observe vs counter: `guard.observe(result)` for a flag-decided result of a healthy arm
  with its wave (the path nearly every result takes: count, wave memory, the cheap
  tolerance check; the test's logarithms are not reached) against a pre-bound
  Prometheus counter's `.inc()`, which the result consumer pays per result anyway.
- diverts vs dict: `guard.diverts(source, mode)` with one arm tripped (the lookup the
  resolver makes on every fresh resolution) against `dict.get` of the same key.

The targets are what keeps the guard out of a profile: observe within a few counter
increments (a callback's JSON parse alone costs far more), diverts within 8 dict
lookups (~0.3 µs, under 1 % of a fresh resolution's ~35 µs).
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter

from benchmarks._measure import Figure, Run, progress, time_pair
from benchmarks._setup import bench_settings
from cj_batching import ArmResult, LLMBatchingMode, RolloutGuard

__all__ = ["run"]

OBSERVE_OVER_COUNTER = 5.0
DIVERTS_OVER_DICT = 8.0

_CONTROL = LLMBatchingMode.SERIAL_BUNDLE
_ARM = LLMBatchingMode.PROVIDER_BATCH_API


def _guard() -> RolloutGuard:
    """A guard past min_results on both arms of els, with bos's batch API arm tripped."""
    logging.getLogger("cj_batching.guard").setLevel(logging.ERROR)  # the setup's trip line
    guard = RolloutGuard(bench_settings())
    guard.use_flag_set("bench-1")
    for index in range(1000):
        guard.observe(ArmResult("els", _CONTROL, "flag", index % 20 == 0, f"c{index // 12}"))
        guard.observe(ArmResult("bos", _CONTROL, "flag", index % 20 == 0, f"c{index // 12}"))
        guard.observe(ArmResult("els", _ARM, "flag", index % 20 == 0, f"a{index // 12}"))
        guard.observe(ArmResult("bos", _ARM, "flag", index % 2 == 0, f"a{index // 12}"))
    if guard.diverts("bos", _ARM) is None or guard.diverts("els", _ARM) is not None:
        raise RuntimeError("benchmark setup: expected bos tripped and els healthy")
    return guard


def run(options: Run) -> list[Figure]:
    guard = _guard()
    counter = Counter("bench_results", "results", ("arm",), registry=CollectorRegistry())
    namespace = {
        "guard": guard,
        "result": ArmResult("els", _ARM, "flag", False, "a-live"),
        "child": counter.labels("provider_batch_api"),
        "arm": _ARM,
        "table": {("bos", _ARM): _CONTROL},
        "key": ("els", _ARM),
    }
    progress("guard: observe vs a pre-bound counter inc")
    observe = time_pair("guard.observe(result)", "child.inc()", namespace, options)
    progress("guard: diverts vs dict.get")
    diverts = time_pair('guard.diverts("els", arm)', "table.get(key)", namespace, options)
    return [
        Figure(
            "guard.observe_vs_counter",
            observe.ours_median,
            observe.baseline_median,
            "s",
            "slower",
            OBSERVE_OVER_COUNTER,
            observe.details(),
        ),
        Figure(
            "guard.diverts_vs_dict",
            diverts.ours_median,
            diverts.baseline_median,
            "s",
            "slower",
            DIVERTS_OVER_DICT,
            diverts.details(),
        ),
    ]
