"""The rollout guard: an always-valid sequential test per source and flag arm that pulls
a regressing arm back to the control mode until Ops acknowledge it (a new flag set
version). See docs/guarded-rollouts.md."""

from cj_batching.guard.checks import guard_metadata_check
from cj_batching.guard.policy import METADATA_KEYS, GuardPolicy, parse_guard_metadata
from cj_batching.guard.result import ArmResult
from cj_batching.guard.rollout_guard import GuardTrip, RolloutGuard
from cj_batching.guard.sequential import (
    Evidence,
    Tally,
    mixture_log_likelihood_ratio,
    regression_evidence,
)

__all__ = [
    "METADATA_KEYS",
    "ArmResult",
    "Evidence",
    "GuardPolicy",
    "GuardTrip",
    "RolloutGuard",
    "Tally",
    "guard_metadata_check",
    "mixture_log_likelihood_ratio",
    "parse_guard_metadata",
    "regression_evidence",
]
