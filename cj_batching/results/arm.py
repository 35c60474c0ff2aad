"""Which experiment arm a result belongs to, read from the request metadata LPS echoes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from cj_batching.bounds import MAX_COMPARISON_ITERATION
from cj_batching.context import normalise_batch_id, normalise_token
from cj_batching.modes import LLMBatchingMode
from cj_batching.resolution import DECIDED_BY

__all__ = ["UNKNOWN", "ResultArm", "arm_of"]

UNKNOWN: Final = "unknown"
"""The mode, decided_by and source of a result without (valid) batching keys."""

_DECIDED_BY: Final = frozenset(DECIDED_BY)


@dataclass(frozen=True, slots=True)
class ResultArm:
    """Where a result came from: its arm (`mode`, `decided_by`, `cj_source`) and its
    place in the experiment (`cj_batch_id`, `comparison_iteration`, `cj_request_type`).

    `mode` is the wire value (`provider_serial_bundle` reads as `serial_bundle`);
    a result without our keys (sent for another caller of LPS) has `mode`,
    `decided_by` and `cj_source` `unknown` and no batch. Only `decided_by == "flag"`
    results were randomised: those are the ones to compare arms on.
    """

    mode: str
    decided_by: str
    cj_source: str
    cj_batch_id: str | None = None
    comparison_iteration: int | None = None
    cj_request_type: str | None = None

    @property
    def known(self) -> bool:
        """Whether the result carried this library's batching keys."""
        return self.mode != UNKNOWN

    @property
    def randomised(self) -> bool:
        """Whether the flag chose the mode (the batch was randomised into its arm)."""
        return self.decided_by == "flag" and self.known


_FOREIGN: Final = ResultArm(UNKNOWN, UNKNOWN, UNKNOWN)


def arm_of(request_metadata: Mapping[str, Any]) -> ResultArm:
    """The arm of a result from its echoed `request_metadata` (never raises on content)."""
    mode = LLMBatchingMode.lookup(request_metadata.get("cj_llm_batching_mode"))
    if mode is None:
        return _FOREIGN
    decided_by = request_metadata.get("cj_llm_batching_decided_by")
    return ResultArm(
        mode=mode.value,
        decided_by=decided_by
        if isinstance(decided_by, str) and decided_by in _DECIDED_BY
        else UNKNOWN,
        cj_source=_token(request_metadata.get("cj_source")) or UNKNOWN,
        cj_batch_id=_batch_id(request_metadata.get("cj_batch_id")),
        comparison_iteration=_iteration(request_metadata.get("comparison_iteration")),
        cj_request_type=_token(request_metadata.get("cj_request_type")),
    )


def _token(value: object) -> str | None:
    try:
        return normalise_token("token", value, empty=None)
    except ValueError:
        return None


def _batch_id(value: object) -> str | None:
    # The rule BatchContext applies on the way out: "01" is batch 1 here too.
    try:
        return str(normalise_batch_id(value))
    except ValueError:
        return None


def _iteration(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_COMPARISON_ITERATION else None
