"""What the benchmarks share besides measuring: settings, the shipped rules, a resolver."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from openfeature.client import OpenFeatureClient
from prometheus_client import CollectorRegistry

from cj_batching import (
    BatchContext,
    BatchingMetrics,
    BatchingModeResolver,
    RolloutGuard,
    Settings,
)
from cj_batching.flag_checks import batching_flag_checks
from flags import FlagdMemoryProvider, bind_provider, load_document

__all__ = [
    "FLAGS_YAML",
    "REPO",
    "Shipped",
    "bench_settings",
    "context",
    "domain",
    "shipped_resolver",
]

REPO: Final = Path(__file__).resolve().parent.parent
FLAGS_YAML: Final = REPO / "flags.yaml"


def bench_settings(**values: Any) -> Settings:
    """Settings with every field at its documented default unless given here.

    Every field is passed explicitly, so neither a `.env` file nor a
    `CJ_ASSESSMENT_SERVICE_*` variable in the shell changes what is measured.
    """
    defaults = {
        name: info.get_default(call_default_factory=True)
        for name, info in Settings.model_fields.items()
    }
    return Settings(_env_file=None, **{**defaults, **values})


def domain(purpose: str) -> str:
    """A fresh OpenFeature domain, so benchmarks never share (or clobber) a provider."""
    return f"bench-{purpose}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class Shipped:
    """A resolver over the shipped `flags.yaml` rules, in memory."""

    resolver: BatchingModeResolver
    client: OpenFeatureClient
    provider: FlagdMemoryProvider
    metrics: BatchingMetrics
    settings: Settings


@contextmanager
def shipped_resolver(settings: Settings | None = None) -> Iterator[Shipped]:
    """`flags.yaml`'s document (validated as the service does) in a `FlagdMemoryProvider`,
    bound with `bind_provider` to a fresh domain, under a resolver with metrics on a
    private registry and a rollout guard (as `configure()` runs it in a service)."""
    settings = bench_settings() if settings is None else settings
    checked = load_document(FLAGS_YAML, checks=batching_flag_checks(settings))
    provider = FlagdMemoryProvider(checked.document)
    client = bind_provider(provider, domain("shipped"))
    metrics = BatchingMetrics(CollectorRegistry())
    guard = RolloutGuard(settings, metrics=metrics)
    resolver = BatchingModeResolver(settings, client, metrics=metrics, guard=guard)
    try:
        yield Shipped(resolver, client, provider, metrics, settings)
    finally:
        resolver.close()
        provider.shutdown()


def context(
    batch_id: int | str = 42, source: str = "els", provider: str = "openai"
) -> BatchContext:
    """The batch the resolver figures use unless told otherwise."""
    return BatchContext(cj_batch_id=batch_id, cj_source=source, llm_provider=provider)
