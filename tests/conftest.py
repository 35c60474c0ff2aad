"""Shared fixtures: isolated settings, providers bound to private domains, resolvers."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from openfeature.client import OpenFeatureClient
from openfeature.provider import FeatureProvider
from prometheus_client import CollectorRegistry

from cj_batching import BatchingMetrics, BatchingModeResolver, Settings
from flags import FlagdMemoryProvider, bind_provider

from .documents import batching_document
from .lps_server import LPSServer, running_lps_server


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No CJ_ASSESSMENT_SERVICE_* variable or .env file from the developer's shell leaks in."""
    import os

    for name in list(os.environ):
        if name.startswith("CJ_ASSESSMENT_SERVICE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def make_settings(**values: Any) -> Settings:
    """Settings from keyword values only (no .env)."""
    return Settings(_env_file=None, **values)


@pytest.fixture
def bind() -> Iterator[Callable[[FeatureProvider], OpenFeatureClient]]:
    """Bind providers to fresh domains; shut them down after the test."""
    bound: list[FeatureProvider] = []

    def _bind(provider: FeatureProvider) -> OpenFeatureClient:
        bound.append(provider)
        return bind_provider(provider, f"test-{uuid.uuid4().hex}")

    yield _bind
    for provider in bound:
        provider.shutdown()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> BatchingMetrics:
    return BatchingMetrics(registry)


ResolverFactory = Callable[..., tuple[BatchingModeResolver, FlagdMemoryProvider]]


@pytest.fixture
def make_resolver(
    bind: Callable[[FeatureProvider], OpenFeatureClient], metrics: BatchingMetrics
) -> Iterator[ResolverFactory]:
    """A resolver over an in-memory flag document (default: the batching document)."""
    resolvers: list[BatchingModeResolver] = []

    def _make(
        document: Mapping[str, Any] | None = None, **settings: Any
    ) -> tuple[BatchingModeResolver, FlagdMemoryProvider]:
        provider = FlagdMemoryProvider(batching_document() if document is None else document)
        resolver = BatchingModeResolver(make_settings(**settings), bind(provider), metrics=metrics)
        resolvers.append(resolver)
        return resolver, provider

    yield _make
    for resolver in resolvers:
        resolver.close()


@pytest.fixture
def lps() -> Iterator[LPSServer]:
    """A real LPS on 127.0.0.1 (202 with a queue id unless scripted otherwise)."""
    with running_lps_server() as server:
        yield server
