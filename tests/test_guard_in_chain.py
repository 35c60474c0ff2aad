"""The rollout guard in the resolution chain: a tripped arm's batches get the control mode,
pins included, overrides never; a new flag set version releases it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from openfeature.client import OpenFeatureClient
from openfeature.provider import FeatureProvider
from prometheus_client import CollectorRegistry

from cj_batching import (
    ArmResult,
    BatchConfigOverrides,
    BatchContext,
    BatchingMetrics,
    BatchingModeResolver,
    LLMBatchingMode,
    LLMProviderType,
    Resolution,
    RolloutGuard,
    configure,
)
from flags import FlagdMemoryProvider
from flags.testing import write_atomically

from .callbacks import ArmProfile, CallbackSimulator, to_line
from .conftest import make_settings
from .documents import batching_document
from .helpers import counter_total

BATCH_API = LLMBatchingMode.PROVIDER_BATCH_API
SERIAL = LLMBatchingMode.SERIAL_BUNDLE
PER_REQUEST = LLMBatchingMode.PER_REQUEST


@pytest.fixture
def chain(
    bind: Callable[[FeatureProvider], OpenFeatureClient], metrics: BatchingMetrics
) -> Iterator[tuple[BatchingModeResolver, FlagdMemoryProvider, RolloutGuard]]:
    """A resolver over the batching document (ELS 50/50) with a guard, cache off."""
    settings = make_settings(GUARD_MIN_RESULTS=50, RESOLUTION_CACHE_TTL_SECONDS=0)
    provider = FlagdMemoryProvider(batching_document(batch_api_share=50))
    guard = RolloutGuard(settings, metrics=metrics)
    resolver = BatchingModeResolver(settings, bind(provider), metrics=metrics, guard=guard)
    yield resolver, provider, guard
    resolver.close()


def trip(guard: RolloutGuard, source: str = "els", mode: LLMBatchingMode = BATCH_API) -> None:
    """Feed the guard a control at 5 % errors and `mode` at 50 % until it trips."""
    for index in range(400):
        guard.observe(ArmResult(source, SERIAL, "flag", failed=index % 20 == 0))
    for index in range(200):
        guard.observe(ArmResult(source, mode, "flag", failed=index % 2 == 0))
    assert guard.diverts(source, mode) is SERIAL


def els(batch_id: int, **kwargs: object) -> BatchContext:
    return BatchContext(batch_id, "els", "openai", **kwargs)  # type: ignore[arg-type]


def batch_api_batches(resolver: BatchingModeResolver, count: int) -> list[int]:
    """The first `count` ELS batch ids the split puts on the batch API."""
    found = [b for b in range(1_000) if resolver.resolve(els(b)).mode is BATCH_API]
    assert len(found) >= count
    return found[:count]


def test_a_tripped_arm_sends_its_flag_decisions_to_the_control(
    chain: tuple[BatchingModeResolver, FlagdMemoryProvider, RolloutGuard],
) -> None:
    resolver, _, guard = chain
    batches = batch_api_batches(resolver, 20)
    trip(guard)
    answers = {resolver.resolve(els(b)).mode for b in batches}
    decided = {resolver.resolve(els(b)).decided_by for b in batches}
    assert (answers, decided) == ({SERIAL}, {"guard"})


def test_a_tripped_arm_takes_back_pins(
    chain: tuple[BatchingModeResolver, FlagdMemoryProvider, RolloutGuard],
) -> None:
    resolver, _, guard = chain
    batch = batch_api_batches(resolver, 1)[0]
    pin = Resolution.from_record(resolver.resolve(els(batch)).to_record())
    trip(guard)
    resolution = resolver.resolve(els(batch, pinned=pin))
    assert (resolution.mode, resolution.decided_by, resolution.pinned) == (
        SERIAL,
        "guard",
        False,
    )


def test_a_tripped_arm_leaves_overrides_alone(
    chain: tuple[BatchingModeResolver, FlagdMemoryProvider, RolloutGuard],
) -> None:
    resolver, _, guard = chain
    trip(guard)
    overrides = BatchConfigOverrides(llm_batching_mode_override=BATCH_API)
    resolution = resolver.resolve(els(7, overrides=overrides))
    assert (resolution.mode, resolution.decided_by) == (BATCH_API, "override")


def test_a_pin_an_override_decided_is_not_diverted(
    chain: tuple[BatchingModeResolver, FlagdMemoryProvider, RolloutGuard],
) -> None:
    resolver, _, guard = chain
    record = Resolution(BATCH_API, "override", BATCH_API, LLMProviderType.OPENAI).to_record()
    trip(guard)
    resolution = resolver.resolve(els(7, pinned=Resolution.from_record(record)))
    assert (resolution.mode, resolution.decided_by) == (BATCH_API, "override")


def test_a_trip_is_per_source(
    chain: tuple[BatchingModeResolver, FlagdMemoryProvider, RolloutGuard],
) -> None:
    resolver, _, guard = chain
    trip(guard, source="els")
    resolution = resolver.resolve(BatchContext(3, "eng5_runner", "openai"))
    assert (resolution.mode, resolution.decided_by) == (BATCH_API, "flag")


def test_the_control_arm_is_never_diverted(
    chain: tuple[BatchingModeResolver, FlagdMemoryProvider, RolloutGuard],
) -> None:
    resolver, _, guard = chain
    trip(guard)
    serial = [b for b in range(200) if resolver.resolve(els(b)).decided_by == "flag"]
    assert serial
    assert {resolver.resolve(els(b)).mode for b in serial} == {SERIAL}


def test_guard_decisions_are_counted_as_such(
    chain: tuple[BatchingModeResolver, FlagdMemoryProvider, RolloutGuard],
    registry: CollectorRegistry,
) -> None:
    resolver, _, guard = chain
    batches = batch_api_batches(resolver, 5)
    trip(guard)
    for batch in batches:
        resolver.resolve(els(batch))
    labels = {"batching_mode": "serial_bundle", "decided_by": "guard", "cj_source": "els"}
    assert registry.get_sample_value("cj_llm_batching_resolutions_total", labels) == 5


def test_a_new_flag_set_version_releases_the_arm(
    chain: tuple[BatchingModeResolver, FlagdMemoryProvider, RolloutGuard],
) -> None:
    resolver, provider, guard = chain
    batch = batch_api_batches(resolver, 1)[0]
    trip(guard)
    assert resolver.resolve(els(batch)).decided_by == "guard"
    provider.update(batching_document(batch_api_share=50, version="test-2"))
    resolution = resolver.resolve(els(batch))
    assert (resolution.mode, resolution.decided_by) == (BATCH_API, "flag")
    assert guard.diverts("els", BATCH_API) is None


def test_configure_builds_a_guard(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    write_atomically(path, "flags: {}\n")
    resolver = configure(make_settings(FLAGS_FILE=path), domain="test-configure-guard")
    try:
        assert isinstance(resolver.guard, RolloutGuard)
    finally:
        resolver.close()
        resolver.client.provider.shutdown()


def test_configure_builds_no_guard_when_disabled(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    write_atomically(path, "flags: {}\n")
    settings = make_settings(FLAGS_FILE=path, GUARD_ENABLED=False)
    resolver = configure(settings, domain="test-configure-no-guard")
    try:
        assert resolver.guard is None
    finally:
        resolver.close()
        resolver.client.provider.shutdown()


def test_no_guard_no_diversion(
    bind: Callable[[FeatureProvider], OpenFeatureClient],
) -> None:
    settings = make_settings(RESOLUTION_CACHE_TTL_SECONDS=0)
    resolver = BatchingModeResolver(
        settings, bind(FlagdMemoryProvider(batching_document(batch_api_share=100)))
    )
    assert resolver.guard is None
    assert resolver.resolve(els(1)).mode is BATCH_API


# --- observe_result: the callback consumer's one call ----------------------------------


def regressing_callbacks(batches: int = 60, seed: int = 3) -> list[dict[str, object]]:
    """ELS callbacks: the control at ~5 % errors, the batch API arm at ~50 %."""
    simulator = CallbackSimulator(
        {"serial_bundle": ArmProfile(0.95), "provider_batch_api": ArmProfile(0.5)},
        seed=seed,
        batch_effect=0.0,
    )
    envelopes: list[dict[str, object]] = []
    for batch in range(batches):
        envelopes += simulator.batch(batch, "serial_bundle", comparisons=12)
        envelopes += simulator.batch(10_000 + batch, "provider_batch_api", comparisons=4)
    return envelopes


def test_observed_results_trip_the_guard_and_drop_cached_answers(
    bind: Callable[[FeatureProvider], OpenFeatureClient], metrics: BatchingMetrics
) -> None:
    settings = make_settings(GUARD_MIN_RESULTS=50)  # the cache on: 30 s
    provider = FlagdMemoryProvider(batching_document(batch_api_share=50))
    guard = RolloutGuard(settings, metrics=metrics)
    resolver = BatchingModeResolver(settings, bind(provider), metrics=metrics, guard=guard)
    batch = batch_api_batches(resolver, 1)[0]  # now cached on the batch API
    for envelope in regressing_callbacks():
        resolver.observe_result(to_line(envelope))
    assert guard.diverts("els", BATCH_API) is SERIAL
    resolution = resolver.resolve(els(batch))
    assert (resolution.mode, resolution.decided_by) == (SERIAL, "guard")
    resolver.close()


def test_observe_result_counts_the_outcome_metrics(
    chain: tuple[BatchingModeResolver, FlagdMemoryProvider, RolloutGuard],
    registry: CollectorRegistry,
) -> None:
    resolver, _, _ = chain
    envelope = regressing_callbacks(batches=1)[0]
    assert resolver.observe_result(envelope) is True
    assert counter_total(registry, "cj_llm_comparison_results") == 1


def test_a_redelivered_result_counts_once(
    chain: tuple[BatchingModeResolver, FlagdMemoryProvider, RolloutGuard],
    registry: CollectorRegistry,
) -> None:
    resolver, _, guard = chain
    envelope = regressing_callbacks(batches=1)[0]
    assert resolver.observe_result(to_line(envelope)) is True
    assert resolver.observe_result(to_line(envelope)) is False
    assert counter_total(registry, "cj_llm_comparison_results") == 1
    assert sum(results for results, _ in guard.counts().values()) == 1


def test_a_redelivered_result_counts_once_without_metrics(
    bind: Callable[[FeatureProvider], OpenFeatureClient],
) -> None:
    settings = make_settings()
    guard = RolloutGuard(settings)
    resolver = BatchingModeResolver(
        settings, bind(FlagdMemoryProvider(batching_document())), guard=guard
    )
    envelope = regressing_callbacks(batches=1)[0]
    assert [resolver.observe_result(envelope) for _ in range(3)] == [True, False, False]
    assert sum(results for results, _ in guard.counts().values()) == 1
    resolver.close()


@pytest.mark.parametrize(
    "event",
    [b"not json", "{}", {"event_id": "x"}, None, 42, b"\xff\xfe", [1, 2]],
    ids=["garbage", "empty", "partial", "none", "int", "bad-utf8", "list"],
)
def test_a_bad_event_is_counted_never_raised(
    chain: tuple[BatchingModeResolver, FlagdMemoryProvider, RolloutGuard],
    registry: CollectorRegistry,
    event: object,
) -> None:
    resolver, _, _ = chain
    assert resolver.observe_result(event) is False  # type: ignore[arg-type]
    assert counter_total(registry, "cj_llm_comparison_results_invalid") == 1


def test_only_flag_decided_results_reach_the_guard(
    chain: tuple[BatchingModeResolver, FlagdMemoryProvider, RolloutGuard],
) -> None:
    resolver, _, guard = chain
    simulator = CallbackSimulator({"provider_batch_api": ArmProfile(0.0)}, seed=1)
    for decided_by in ("override", "default", "guard"):
        for envelope in simulator.batch(1, "provider_batch_api", decided_by=decided_by):
            assert resolver.observe_result(envelope) is True
    assert guard.counts() == {}
