"""The resolution chain: override > flag > env default, the guardrail, the cache."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from openfeature.client import OpenFeatureClient
from openfeature.exception import ProviderFatalError
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import FeatureProvider
from prometheus_client import CollectorRegistry

from cj_batching import (
    BatchConfigOverrides,
    BatchContext,
    BatchingMetrics,
    BatchingModeResolver,
    LLMBatchingMode,
    LLMProviderType,
)
from flags.testing import wait_until

from .conftest import ResolverFactory, make_settings
from .documents import allow_list_flag, batching_document, document, mode_flag, source_is
from .helpers import ScriptedProvider, counter_total, flag_errors, loop_ticks

BATCH_API = LLMBatchingMode.PROVIDER_BATCH_API
SERIAL = LLMBatchingMode.SERIAL_BUNDLE
PER_REQUEST = LLMBatchingMode.PER_REQUEST


def ctx(
    batch_id: int | str = 1,
    source: str = "els",
    provider: str | None = "openai",
    override: LLMBatchingMode | None = None,
    request_type: str = "cj_comparison",
) -> BatchContext:
    overrides = BatchConfigOverrides(llm_batching_mode_override=override) if override else None
    return BatchContext(batch_id, source, provider, request_type, overrides)


def resolutions_counted(registry: CollectorRegistry) -> float:
    return counter_total(registry, "cj_llm_batching_resolutions")


# --- the chain -------------------------------------------------------------------------


def test_override_beats_flag_and_default(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver()
    resolution = resolver.resolve(ctx(source="eng5_runner", override=PER_REQUEST))
    assert resolution.mode is PER_REQUEST
    assert resolution.decided_by == "override"
    assert resolution.flag_reason is None  # the flag was not even evaluated


def test_per_source_rule_decides(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver()
    resolution = resolver.resolve(ctx(source="eng5_runner", provider="anthropic"))
    assert (resolution.mode, resolution.decided_by) == (BATCH_API, "flag")
    assert resolution.flag_variant == "provider_batch_api"
    assert resolution.flag_reason == "TARGETING_MATCH"
    assert resolution.flag_set_version == "test-1"


def test_per_provider_rule_decides(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver()
    resolution = resolver.resolve(ctx(source="eng5_runner", provider="mock"))
    assert (resolution.mode, resolution.decided_by) == (PER_REQUEST, "flag")


def test_no_matching_rule_falls_to_env_default(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver(LLM_BATCHING_MODE="per_request")
    resolution = resolver.resolve(ctx(source="bos"))
    assert (resolution.mode, resolution.decided_by) == (PER_REQUEST, "default")
    assert resolution.flag_reason == "DEFAULT"
    assert resolution.flag_error is None


def test_missing_provider_uses_default_provider_in_rules(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver(DEFAULT_LLM_PROVIDER="mock")
    resolution = resolver.resolve(ctx(source="eng5_runner", provider=None))
    assert resolution.llm_provider is LLMProviderType.MOCK
    assert resolution.mode is PER_REQUEST


def test_static_default_variant_decides(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver(document(mode_flag(default_variant="per_request")))
    resolution = resolver.resolve(ctx())
    assert (resolution.mode, resolution.decided_by, resolution.flag_reason) == (
        PER_REQUEST,
        "flag",
        "STATIC",
    )


def test_fractional_split_matches_weights_and_is_sticky(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver(batching_document(batch_api_share=20))
    modes = [resolver.resolve(ctx(batch_id)).mode for batch_id in range(10_000)]
    share = modes.count(BATCH_API) / len(modes)
    assert 0.18 < share < 0.22  # 20 % +- 5 standard deviations
    assert set(modes) == {BATCH_API, SERIAL}
    # A second process (fresh provider and resolver) puts every batch in the same arm.
    other, _ = make_resolver(batching_document(batch_api_share=20))
    assert [other.resolve(ctx(batch_id)).mode for batch_id in range(10_000)] == modes


def test_widening_a_weight_only_moves_batches_into_the_widened_arm(
    make_resolver: ResolverFactory,
) -> None:
    narrow, _ = make_resolver(batching_document(batch_api_share=20))
    wide, _ = make_resolver(batching_document(batch_api_share=50))
    for batch_id in range(5_000):
        if narrow.resolve(ctx(batch_id)).mode is BATCH_API:
            assert wide.resolve(ctx(batch_id)).mode is BATCH_API


# --- every fall-through reason ---------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "reason", "error"),
    [
        pytest.param(document(None), "ERROR", "FLAG_NOT_FOUND", id="flag-missing"),
        pytest.param(
            document(mode_flag(default_variant="per_request", state="DISABLED")),
            "DISABLED",
            None,
            id="disabled",
        ),
        pytest.param(
            document(mode_flag({"if": [source_is("bos"), "per_request", None]})),
            "DEFAULT",
            None,
            id="no-rule-matched",
        ),
        pytest.param(
            document(
                mode_flag(default_variant="turbo", variants={"turbo": "provider_batchapi_TYPO"})
            ),
            "STATIC",
            "INVALID_MODE",
            id="value-not-a-mode",
        ),
        pytest.param(
            document(mode_flag(default_variant="on", variants={"on": True})),
            "ERROR",
            "TYPE_MISMATCH",
            id="wrong-type",
        ),
    ],
)
def test_flag_falls_through_to_env_default(
    make_resolver: ResolverFactory,
    registry: CollectorRegistry,
    doc: dict[str, Any],
    reason: str,
    error: str | None,
) -> None:
    resolver, _ = make_resolver(doc, LLM_BATCHING_MODE="per_request")
    resolution = resolver.resolve(ctx())
    assert (resolution.mode, resolution.decided_by) == (PER_REQUEST, "default")
    assert (resolution.flag_reason, resolution.flag_error) == (reason, error)
    assert flag_errors(registry, error or "GENERAL") == (1.0 if error else 0.0)


def _raise() -> FlagResolutionDetails[Any]:
    raise RuntimeError("provider exploded")


def test_provider_exception_falls_back(
    bind: Callable[[FeatureProvider], OpenFeatureClient],
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
) -> None:
    resolver = BatchingModeResolver(
        make_settings(), bind(ScriptedProvider(_raise)), metrics=metrics
    )
    resolution = resolver.resolve(ctx())
    assert (resolution.mode, resolution.decided_by, resolution.flag_error) == (
        SERIAL,
        "default",
        "GENERAL",
    )
    assert flag_errors(registry, "GENERAL") == 1


def test_fatal_provider_falls_back(bind: Callable[[FeatureProvider], OpenFeatureClient]) -> None:
    provider = ScriptedProvider(
        lambda: FlagResolutionDetails("per_request", variant="x"),
        fail_init=ProviderFatalError("gone for good"),
    )
    resolver = BatchingModeResolver(make_settings(), bind(provider))
    resolution = resolver.resolve(ctx())
    assert (resolution.decided_by, resolution.flag_error) == ("default", "PROVIDER_FATAL")
    assert provider.calls == 0


def test_flag_trouble_is_logged_once_but_counted_every_time(
    make_resolver: ResolverFactory,
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    resolver, _ = make_resolver(document(None))
    with caplog.at_level(logging.WARNING, logger="cj_batching.resolver"):
        for batch_id in range(50):
            resolver.resolve(ctx(batch_id))
    warnings = [r for r in caplog.records if "llm-batching-mode" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].error_code == "FLAG_NOT_FOUND"  # type: ignore[attr-defined]
    assert flag_errors(registry, "FLAG_NOT_FOUND") == 50


# --- the guardrail ---------------------------------------------------------------------


def test_guardrail_downgrades_to_env_default(
    make_resolver: ResolverFactory,
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    resolver, _ = make_resolver(LLM_BATCHING_MODE="per_request")
    with caplog.at_level(logging.WARNING, logger="cj_batching.resolver"):
        resolution = resolver.resolve(ctx(source="eng5_runner", provider="google"))
    assert resolution.requested_mode is BATCH_API
    assert (resolution.mode, resolution.guardrail_applied) == (PER_REQUEST, True)
    assert resolution.allowed_providers == (LLMProviderType.OPENAI, LLMProviderType.ANTHROPIC)
    assert resolution.allowed_providers_source == "settings"
    record = next(r for r in caplog.records if "not allowed" in r.getMessage())
    assert record.llm_provider == "google"  # type: ignore[attr-defined]
    assert record.allowed_providers == ["openai", "anthropic"]  # type: ignore[attr-defined]
    assert record.fallback_mode == "per_request"  # type: ignore[attr-defined]
    assert (
        registry.get_sample_value(
            "cj_llm_batching_guardrail_downgrades_total", {"llm_provider": "google"}
        )
        == 1
    )


def test_guardrail_falls_back_to_serial_when_env_default_is_batch_api(
    make_resolver: ResolverFactory,
) -> None:
    resolver, _ = make_resolver(LLM_BATCHING_MODE="provider_batch_api")
    resolution = resolver.resolve(ctx(source="bos", provider="openrouter"))
    assert (resolution.requested_mode, resolution.mode) == (BATCH_API, SERIAL)


def test_guardrail_applies_to_overrides(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver()
    resolution = resolver.resolve(ctx(provider="google", override=BATCH_API))
    assert (resolution.decided_by, resolution.mode, resolution.guardrail_applied) == (
        "override",
        SERIAL,
        True,
    )


def test_empty_env_allow_list_means_no_restriction(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver(LLM_BATCH_API_ALLOWED_PROVIDERS=[])
    resolution = resolver.resolve(ctx(provider="google", override=BATCH_API))
    assert (resolution.mode, resolution.guardrail_applied) == (BATCH_API, False)


def test_allow_list_flag_beats_settings(make_resolver: ResolverFactory) -> None:
    doc = batching_document()
    doc["flags"]["llm-batch-api-allowed-providers"] = allow_list_flag("openai")
    resolver, _ = make_resolver(doc)
    anthropic = resolver.resolve(ctx(source="eng5_runner", provider="anthropic"))
    openai = resolver.resolve(ctx(source="eng5_runner", provider="openai"))
    assert (anthropic.mode, anthropic.guardrail_applied) == (SERIAL, True)
    assert anthropic.allowed_providers_source == "flag"
    assert (openai.mode, openai.guardrail_applied) == (BATCH_API, False)


@pytest.mark.parametrize(
    "value",
    [
        {"providers": ["openai", "antropic"]},
        {"providers": []},
        {"providers": "openai"},
        {"x": 1},
    ],
)
def test_invalid_allow_list_flag_falls_back_to_settings(
    make_resolver: ResolverFactory,
    registry: CollectorRegistry,
    value: dict[str, Any],
) -> None:
    doc = batching_document()
    doc["flags"]["llm-batch-api-allowed-providers"] = {
        "state": "ENABLED",
        "variants": {"v": value},
        "defaultVariant": "v",
    }
    resolver, _ = make_resolver(doc)
    resolution = resolver.resolve(ctx(source="eng5_runner", provider="anthropic"))
    assert resolution.allowed_providers_source == "settings"
    assert resolution.mode is BATCH_API  # anthropic is on the settings list
    assert flag_errors(registry, "INVALID_ALLOW_LIST") == 1


def test_allow_list_flag_is_consulted_only_for_batch_api(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver()
    resolution = resolver.resolve(ctx(source="bos"))
    assert resolution.allowed_providers is None


# --- the cache -------------------------------------------------------------------------


def test_cache_hit_returns_the_same_resolution_without_counting(
    make_resolver: ResolverFactory,
    registry: CollectorRegistry,
) -> None:
    resolver, _ = make_resolver()
    first = resolver.resolve(ctx(7))
    assert resolver.resolve(ctx(7)) is first
    assert resolver.resolve(ctx("7")) is first  # the id is a string on the wire anyway
    assert resolutions_counted(registry) == 1
    assert resolver.resolve(ctx(7, request_type="cj_retry")) is not first


def test_cache_is_keyed_by_everything_the_answer_depends_on(
    make_resolver: ResolverFactory,
) -> None:
    resolver, _ = make_resolver()
    assert resolver.resolve(ctx(1, source="eng5_runner")).mode is BATCH_API
    assert resolver.resolve(ctx(1, source="bos")).mode is SERIAL
    assert resolver.resolve(ctx(1, source="eng5_runner", provider="mock")).mode is PER_REQUEST
    assert resolver.resolve(ctx(1, source="bos", override=PER_REQUEST)).mode is PER_REQUEST


def test_flag_change_invalidates_the_cache(make_resolver: ResolverFactory) -> None:
    resolver, provider = make_resolver()
    assert resolver.resolve(ctx(source="bos")).mode is SERIAL
    provider.update(document(mode_flag(default_variant="per_request"), version="test-2"))
    resolution = wait_until(
        lambda: (r := resolver.resolve(ctx(source="bos"))).mode is PER_REQUEST and r,
        timeout=2,
        what="the new flag to be served",
    )
    assert resolution.flag_set_version == "test-2"


def test_ttl_expiry_re_evaluates(
    make_resolver: ResolverFactory, registry: CollectorRegistry
) -> None:
    resolver, _ = make_resolver(RESOLUTION_CACHE_TTL_SECONDS=0)
    resolver.resolve(ctx(3))
    resolver.resolve(ctx(3))
    assert resolutions_counted(registry) == 2


def test_cache_stays_within_maxsize(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver(RESOLUTION_CACHE_MAXSIZE=100)
    for batch_id in range(1_000):
        resolver.resolve(ctx(batch_id))
    assert len(resolver._cache) == 100


def test_answer_from_old_flags_is_not_cached_after_a_change(
    bind: Callable[[FeatureProvider], OpenFeatureClient],
) -> None:
    """A resolution that raced a flag change must not stay cached for a whole TTL."""
    inside, release = threading.Event(), threading.Event()

    def slow_answer() -> FlagResolutionDetails[Any]:
        inside.set()
        release.wait(5)
        return FlagResolutionDetails(
            "per_request", variant="per_request", reason=Reason.TARGETING_MATCH
        )

    provider = ScriptedProvider(slow_answer)
    resolver = BatchingModeResolver(make_settings(), bind(provider))
    worker = threading.Thread(target=resolver.resolve, args=(ctx(),))
    worker.start()
    assert inside.wait(5)
    resolver.clear_cache()  # what a PROVIDER_CONFIGURATION_CHANGED does
    release.set()
    worker.join(5)
    resolver.resolve(ctx())
    assert provider.calls == 2


# --- async -----------------------------------------------------------------------------


async def test_aresolve_matches_resolve(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver()
    assert await resolver.aresolve(ctx(5, source="eng5_runner")) == resolver.resolve(
        ctx(5, source="eng5_runner")
    )


async def test_slow_remote_provider_neither_blocks_the_loop_nor_the_caller(
    bind: Callable[[FeatureProvider], OpenFeatureClient],
    registry: CollectorRegistry,
    metrics: BatchingMetrics,
) -> None:
    release = threading.Event()

    def hang() -> FlagResolutionDetails[Any]:
        release.wait(5)
        return FlagResolutionDetails("per_request", variant="per_request")

    resolver = BatchingModeResolver(
        make_settings(FLAGS_EVALUATION_TIMEOUT_SECONDS=0.2),
        bind(ScriptedProvider(hang)),
        metrics=metrics,
    )
    started = time.monotonic()
    async with loop_ticks() as ticks:
        resolution = await resolver.aresolve(ctx())
    elapsed = time.monotonic() - started
    release.set()
    resolver.close()
    assert (resolution.decided_by, resolution.flag_error) == ("default", "TIMEOUT")
    assert elapsed < 2  # bounded by the evaluation timeout, not the provider
    assert ticks.count >= 5  # the event loop kept running meanwhile
    assert flag_errors(registry, "TIMEOUT") == 1


def test_close_is_idempotent(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver()
    resolver.close()
    resolver.close()
    assert resolver.resolve(ctx(source="eng5_runner")).mode is BATCH_API  # still answers


def test_a_missing_allow_list_flag_is_not_trouble(
    make_resolver: ResolverFactory,
    registry: CollectorRegistry,
) -> None:
    resolver, _ = make_resolver()  # the batching document has no allow-list flag
    resolution = resolver.resolve(ctx(source="eng5_runner", provider="anthropic"))
    assert (resolution.mode, resolution.allowed_providers_source) == (BATCH_API, "settings")
    assert flag_errors(registry, "FLAG_NOT_FOUND") == 0
