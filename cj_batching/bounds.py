"""The bounds of every tunable number, as constrained types shared by `Settings` and by
whatever else accepts the same value (flag metadata, constructors), so each bound is
written once."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

__all__ = [
    "MAX_REPLICATES",
    "MAX_RESULT_DEDUP_SIZE",
    "MIN_REPLICATES",
    "GuardAlpha",
    "GuardErrorRateIncrease",
    "GuardMinResults",
    "GuardWaveMemory",
    "ReportReplicates",
    "ResultDedupMaxsize",
]

# The rollout guard (cj_batching.guard). A fraction of results, so strictly inside 0..1.
GuardErrorRateIncrease = Annotated[float, Field(gt=0, lt=1)]
# Below ~10 results a rate is not a measurement; above 10 M the guard would never act.
GuardMinResults = Annotated[int, Field(ge=10, le=10_000_000)]
# The always-valid false-trip bound per source and arm; above 0.2 a guard is a coin flip.
GuardAlpha = Annotated[float, Field(gt=0, le=0.2)]
# Waves remembered for the cluster-robust variance (~100 bytes each).
GuardWaveMemory = Annotated[int, Field(ge=1, le=10_000_000)]

# Recent result event ids remembered against Kafka redeliveries (cj_batching.results):
# a bound, not a suggestion (the memory an id takes: docs/performance.md).
MAX_RESULT_DEDUP_SIZE: Final = 10_000_000
ResultDedupMaxsize = Annotated[int, Field(ge=1, le=MAX_RESULT_DEDUP_SIZE)]

# Bootstrap replicates of the experiment report (cj_batching.report): below 100 the 2.5 %
# tails rest on two or three values; above 100 000 a report takes minutes for nothing.
MIN_REPLICATES: Final = 100
MAX_REPLICATES: Final = 100_000
ReportReplicates = Annotated[int, Field(ge=MIN_REPLICATES, le=MAX_REPLICATES)]
