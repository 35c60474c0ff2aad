"""The bounds of every tunable number, as constrained types shared by `Settings` and by
whatever else accepts the same value (flag metadata, constructors), so each bound is
written once."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

__all__ = ["GuardAlpha", "GuardErrorRateIncrease", "GuardMinResults", "GuardWaveMemory"]

# The rollout guard (cj_batching.guard). A fraction of results, so strictly inside 0..1.
GuardErrorRateIncrease = Annotated[float, Field(gt=0, lt=1)]
# Below ~10 results a rate is not a measurement; above 10 M the guard would never act.
GuardMinResults = Annotated[int, Field(ge=10, le=10_000_000)]
# The always-valid false-trip bound per source and arm; above 0.2 a guard is a coin flip.
GuardAlpha = Annotated[float, Field(gt=0, le=0.2)]
# Waves remembered for the cluster-robust variance (~100 bytes each).
GuardWaveMemory = Annotated[int, Field(ge=1, le=10_000_000)]
