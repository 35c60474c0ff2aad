"""Prometheus metrics of the batching control, one module per concept.

`BatchingMetrics` is the one object callers create (one per registry); each concept
(submissions, resolutions, ...) contributes its families and `record_*` methods.
Every label value comes from a bounded set, never from a batch id, and recording
never raises into the caller.

`BatchingMetrics` (and so prometheus_client) is imported on first use: the resolver
needs only the label sets to resolve without metrics (docs/performance.md, "Import time").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cj_batching.metrics.labels import (
    FLAG_ERROR_CODES,
    INVALID_ALLOW_LIST,
    INVALID_MODE,
    OTHER_LABEL,
    SOURCE_LABELS,
    TIMEOUT,
    source_label,
)

if TYPE_CHECKING:
    from cj_batching.metrics.batching import BatchingMetrics

__all__ = [
    "FLAG_ERROR_CODES",
    "INVALID_ALLOW_LIST",
    "INVALID_MODE",
    "OTHER_LABEL",
    "SOURCE_LABELS",
    "TIMEOUT",
    "BatchingMetrics",
    "source_label",
]


def __getattr__(name: str) -> Any:
    """`BatchingMetrics`, imported on first use (PEP 562)."""
    if name != "BatchingMetrics":
        raise AttributeError(f"module 'cj_batching.metrics' has no attribute {name!r}")
    from cj_batching.metrics.batching import BatchingMetrics

    globals()[name] = BatchingMetrics
    return BatchingMetrics
