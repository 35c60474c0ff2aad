"""The bounded label sets every batching metric draws its label values from."""

from __future__ import annotations

from typing import Final

from openfeature.exception import ErrorCode

from cj_batching.context import KNOWN_SOURCES
from flags.evaluation import EVALUATION_TIMEOUT

__all__ = [
    "FLAG_ERROR_CODES",
    "INVALID_ALLOW_LIST",
    "INVALID_MODE",
    "OTHER_LABEL",
    "SOURCE_LABELS",
    "TIMEOUT",
    "source_label",
]

OTHER_LABEL: Final = "other"
SOURCE_LABELS: Final = (*KNOWN_SOURCES, OTHER_LABEL)

# Error codes this package adds to OpenFeature's own, for the flag-error counter.
INVALID_MODE: Final = "INVALID_MODE"
INVALID_ALLOW_LIST: Final = "INVALID_ALLOW_LIST"
TIMEOUT: Final = EVALUATION_TIMEOUT
FLAG_ERROR_CODES: Final = (
    *(code.value for code in ErrorCode),
    INVALID_MODE,
    INVALID_ALLOW_LIST,
    TIMEOUT,
    "OTHER",
)


def source_label(cj_source: str) -> str:
    """`cj_source` as a label value: a known source, else `other`."""
    return cj_source if cj_source in KNOWN_SOURCES else OTHER_LABEL
