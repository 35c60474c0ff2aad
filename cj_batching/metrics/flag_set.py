"""Which flag set a process serves: version and status, last accepted reload, rejected
versions; and `track_flag_set`, which keeps them current from a client's events.

With one series per replica, Prometheus answers "which replica serves what":
`count by (version, status) (cj_llm_batching_flags_info)`.
"""

from __future__ import annotations

import threading
import time
from typing import Final

from openfeature.client import OpenFeatureClient
from openfeature.event import EventDetails, ProviderEvent
from openfeature.provider import ProviderStatus
from prometheus_client import Gauge
from prometheus_client.registry import Collector

from cj_batching._text import escape
from cj_batching.metrics._families import FailureGuard, counter
from flags import FlagdEvaluatingProvider

__all__ = ["FLAG_SET_STATUSES", "MAX_VERSION_LABEL", "FlagSetMetrics", "track_flag_set"]

FLAG_SET_STATUSES: Final = tuple(status.value.lower() for status in ProviderStatus)
"""The `status` label: the provider's OpenFeature status (`ready`, `error`, `stale`...)."""
MAX_VERSION_LABEL: Final = 64  # a version is a short name; a 10 KB one is cut, not exported


class FlagSetMetrics:
    """`cj_llm_batching_flags_info{version, status}` (one series, = 1),
    `cj_llm_batching_flags_last_reload_timestamp_seconds` and
    `cj_llm_batching_flags_rejected_total`."""

    _failure: FailureGuard

    def _flag_set_families(self) -> list[Collector]:
        self._flags_info = Gauge(
            "cj_llm_batching_flags_info",
            "The flag set this process serves: 1 for its metadata.version (empty when "
            "unknown) and its provider status; the previous series is removed on change.",
            ("version", "status"),
            registry=None,
        )
        self._flags_reloaded = Gauge(
            "cj_llm_batching_flags_last_reload_timestamp_seconds",
            "When the flags in use were accepted (Unix time).",
            registry=None,
        )
        self._flags_rejected = counter(
            "cj_llm_batching_flags_rejected",
            "Flag set versions the provider refused (the last good flags stay in use), "
            "or other flag source errors it reported.",
        )
        self._flags_series: tuple[str, str] | None = None
        self._flags_lock = threading.Lock()
        return [self._flags_info, self._flags_reloaded, self._flags_rejected]

    def record_flag_set(self, version: str | None, status: str) -> None:
        """The process now serves `version` (None: unknown or none) in `status` (one of
        `FLAG_SET_STATUSES`, else `other`)."""
        try:
            label = "" if version is None else escape(str(version))[:MAX_VERSION_LABEL]
            series = (label, status if status in FLAG_SET_STATUSES else "other")
            with self._flags_lock:
                if series == self._flags_series:
                    return
                if self._flags_series is not None:
                    self._flags_info.remove(*self._flags_series)
                self._flags_info.labels(*series).set(1)
                self._flags_series = series
        except Exception:
            self._failure()

    def record_flag_set_reload(self, timestamp: float | None = None) -> None:
        """The flags in use were accepted at `timestamp` (default: now)."""
        try:
            self._flags_reloaded.set(time.time() if timestamp is None else timestamp)
        except Exception:
            self._failure()

    def record_flag_set_rejected(self) -> None:
        """+1 `cj_llm_batching_flags_rejected_total`."""
        try:
            self._flags_rejected.inc()
        except Exception:
            self._failure()


def track_flag_set(client: OpenFeatureClient, metrics: FlagSetMetrics) -> None:
    """Keep `metrics`' flag-set families current from `client`'s provider events, and
    record the state it is in now. Handlers live until the provider is replaced or
    `openfeature.api.shutdown()`; they never raise."""
    _Tracker(client, metrics).start()


class _Tracker:
    def __init__(self, client: OpenFeatureClient, metrics: FlagSetMetrics) -> None:
        self._client = client
        self._metrics = metrics

    def start(self) -> None:
        self._record()
        if self._client.get_provider_status() is ProviderStatus.READY:
            self._metrics.record_flag_set_reload()
        # OpenFeature runs a handler at once when the status already matches its event
        # (an ERROR start reports itself here: that first version counts as rejected).
        self._client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, self._changed)
        self._client.add_handler(ProviderEvent.PROVIDER_READY, self._status)
        self._client.add_handler(ProviderEvent.PROVIDER_STALE, self._status)
        self._client.add_handler(ProviderEvent.PROVIDER_ERROR, self._rejected)

    def _changed(self, _details: EventDetails) -> None:
        self._metrics.record_flag_set_reload()
        self._record()

    def _status(self, _details: EventDetails) -> None:
        self._record()

    def _rejected(self, _details: EventDetails) -> None:
        self._metrics.record_flag_set_rejected()
        self._record()

    def _record(self) -> None:
        # The provider, not the event, says what is served: events arrive later and on
        # a thread pool, so the newest state is the one to show.
        try:
            provider = self._client.provider
            version = None
            if isinstance(provider, FlagdEvaluatingProvider) and provider.document is not None:
                raw = provider.flag_set_metadata.get("version")
                version = None if raw is None else str(raw)
            status = self._client.get_provider_status().value.lower()
        except Exception:
            version, status = None, "other"
        self._metrics.record_flag_set(version, status)
