"""Result callbacks from LPS: the event models, their parsing, and the arm of a result.

LPS answers every queued comparison on Kafka with an event envelope around an
`LLMComparisonResultV1`, echoing the request metadata CJ sent; from that metadata a
result's experiment arm is known (`ResultArm`).

The names load on first use (PEP 562): settings read the dedup default without
building the event models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cj_batching._lazy import lazy_exports

if TYPE_CHECKING:
    from cj_batching.results.arm import UNKNOWN as UNKNOWN
    from cj_batching.results.arm import ResultArm as ResultArm
    from cj_batching.results.arm import arm_of as arm_of
    from cj_batching.results.dedup import DEFAULT_DEDUP_MAXSIZE as DEFAULT_DEDUP_MAXSIZE
    from cj_batching.results.dedup import RecentIds as RecentIds
    from cj_batching.results.models import ErrorDetail as ErrorDetail
    from cj_batching.results.models import LLMComparisonResultV1 as LLMComparisonResultV1
    from cj_batching.results.models import ResultEnvelope as ResultEnvelope
    from cj_batching.results.models import TokenUsage as TokenUsage
    from cj_batching.results.models import Winner as Winner
    from cj_batching.results.outcome import ERROR_CODES as ERROR_CODES
    from cj_batching.results.outcome import OTHER_ERROR as OTHER_ERROR
    from cj_batching.results.outcome import OUTCOMES as OUTCOMES
    from cj_batching.results.outcome import SUCCESS as SUCCESS
    from cj_batching.results.outcome import outcome_label as outcome_label
    from cj_batching.results.parse import MAX_EVENT_BYTES as MAX_EVENT_BYTES
    from cj_batching.results.parse import REASONS as REASONS
    from cj_batching.results.parse import ResultEventError as ResultEventError
    from cj_batching.results.parse import parse_result_event as parse_result_event

_EXPORTS = {
    "ResultArm": "cj_batching.results.arm",
    "UNKNOWN": "cj_batching.results.arm",
    "arm_of": "cj_batching.results.arm",
    "DEFAULT_DEDUP_MAXSIZE": "cj_batching.results.dedup",
    "RecentIds": "cj_batching.results.dedup",
    "ErrorDetail": "cj_batching.results.models",
    "LLMComparisonResultV1": "cj_batching.results.models",
    "ResultEnvelope": "cj_batching.results.models",
    "TokenUsage": "cj_batching.results.models",
    "Winner": "cj_batching.results.models",
    "ERROR_CODES": "cj_batching.results.outcome",
    "OTHER_ERROR": "cj_batching.results.outcome",
    "OUTCOMES": "cj_batching.results.outcome",
    "SUCCESS": "cj_batching.results.outcome",
    "outcome_label": "cj_batching.results.outcome",
    "MAX_EVENT_BYTES": "cj_batching.results.parse",
    "REASONS": "cj_batching.results.parse",
    "ResultEventError": "cj_batching.results.parse",
    "parse_result_event": "cj_batching.results.parse",
}

__all__ = [*_EXPORTS]  # noqa: PLE0604 - the table above is the one list of names

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
