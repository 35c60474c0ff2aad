"""What became of a comparison: `success`, or its error code from the platform's bounded set."""

from __future__ import annotations

from typing import Final

__all__ = ["ERROR_CODES", "OTHER_ERROR", "OUTCOMES", "SUCCESS", "outcome_label"]

SUCCESS: Final = "success"
OTHER_ERROR: Final = "other_error"

ERROR_CODES: Final = (
    # The platform's `ErrorCode` values the CJ/LPS contract names: the ones seen in result
    # callbacks, then the ones LPS maps to HTTP answers. Any other code is `other_error`,
    # so a new or misspelt code can never grow a metric's label set.
    "RATE_LIMIT",
    "QUOTA_EXCEEDED",
    "TIMEOUT",
    "CONNECTION_ERROR",
    "EXTERNAL_SERVICE_ERROR",
    "PARSING_ERROR",
    "INVALID_RESPONSE",
    "PROCESSING_ERROR",
    "AUTHENTICATION_ERROR",
    "CONFIGURATION_ERROR",
    "SERVICE_UNAVAILABLE",
    "CIRCUIT_BREAKER_OPEN",
    "REQUEST_QUEUED",
)
OUTCOMES: Final = (SUCCESS, *ERROR_CODES, OTHER_ERROR)
"""Every outcome label, success first."""

_KNOWN: Final = frozenset(ERROR_CODES)


def outcome_label(error_code: str | None) -> str:
    """`success` for no error, a known code as itself, anything else `other_error`."""
    if error_code is None:
        return SUCCESS
    return error_code if error_code in _KNOWN else OTHER_ERROR
