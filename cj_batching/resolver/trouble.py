"""Flag trouble: counted every time, logged once per kind until the flags change."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # prometheus_client loads only with metrics (docs/performance.md)
    from cj_batching.metrics import BatchingMetrics


__all__ = ["FlagTrouble"]

_log = logging.getLogger("cj_batching.resolver")


class FlagTrouble:
    """Reports a flag that could not be used: +1 `cj_llm_batching_flag_errors_total` per
    occurrence, one WARNING per (flag, error code) until `forget()` (new flags)."""

    def __init__(self, metrics: BatchingMetrics | None) -> None:
        self._metrics = metrics
        self._reported: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def report(self, key: str, code: str, message: str | None) -> None:
        """Count one failure of flag `key`; log it if this kind is new."""
        if self._metrics is not None:
            self._metrics.record_flag_error(code)
        with self._lock:
            if (key, code) in self._reported:
                return
            self._reported.add((key, code))
        _log.warning(
            "flag %s unusable (%s): %s; falling back",
            key,
            code,
            message,
            extra={"flag_key": key, "error_code": code, "error_message": message},
        )

    def forget(self) -> None:
        """New flags may fail anew: log their trouble again."""
        with self._lock:
            self._reported.clear()
