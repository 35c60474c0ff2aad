"""Prometheus metrics of the batching control, one module per concept.

`BatchingMetrics` is the one object callers create (one per registry); each concept
(submissions, resolutions, ...) contributes its families and `record_*` methods.
Every label value comes from a bounded set, never from a batch id, and recording
never raises into the caller.
"""

from cj_batching.metrics.batching import BatchingMetrics
from cj_batching.metrics.labels import (
    FLAG_ERROR_CODES,
    INVALID_ALLOW_LIST,
    INVALID_MODE,
    OTHER_LABEL,
    SOURCE_LABELS,
    TIMEOUT,
    source_label,
)

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
