"""Building blocks the metric groups share: unregistered families, pre-bound children,
all-or-nothing registration and the never-raise guard."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.registry import Collector

__all__ = ["FailureGuard", "bind", "counter", "register_all"]

_log = logging.getLogger("cj_batching.metrics")
_K = TypeVar("_K", bound=str)


class FailureGuard:
    """Called from a recording's `except`: logs the first failure, swallows every one.

    A metric must never break a submission, and a broken registry must not flood logs.
    """

    def __init__(self) -> None:
        self._failed = False

    def __call__(self) -> None:
        if not self._failed:
            self._failed = True
            _log.exception("recording a batching metric failed; further failures are silent")


def counter(name: str, doc: str, *labels: str) -> Counter:
    """A counter not yet registered anywhere (`register_all` does it for the group)."""
    return Counter(name, doc, labels, registry=None)


def bind(family: Counter, values: Iterable[_K]) -> dict[_K, Counter]:
    """Children bound up front: a pre-bound `.inc()` costs ~0.34 µs against ~1.2 µs for
    `.labels().inc()`, and every series is exposed from 0."""
    return {value: family.labels(value) for value in values}


def register_all(registry: CollectorRegistry, families: Sequence[Collector]) -> None:
    """Register every family or none: a clash must not leave a half-filled registry."""
    done: list[Collector] = []
    try:
        for family in families:
            registry.register(family)
            done.append(family)
    except ValueError as exc:
        for family in done:
            registry.unregister(family)
        raise ValueError(
            f"BatchingMetrics: a cj_llm_* metric is already registered in {registry!r} "
            f"({exc}); create one BatchingMetrics per registry and share it"
        ) from exc
