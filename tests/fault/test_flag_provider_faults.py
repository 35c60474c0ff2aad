"""A flag provider that fails in every way it can, under 10 000 resolutions each.

For every fault, callers keep getting the env default (`decided_by == "default"`), no
exception reaches them, `cj_llm_batching_flag_errors_total` counts exactly the fresh
(non-cached) evaluations, and the resolver logs the failure once, not per resolution.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.exception import ProviderFatalError
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import FeatureProvider, ProviderStatus
from prometheus_client import CollectorRegistry

from cj_batching import (
    BatchContext,
    BatchingMetrics,
    BatchingModeResolver,
    LLMBatchingMode,
    Resolution,
)
from flags import evaluates_in_process
from tests.conftest import make_settings
from tests.helpers import ScriptedProvider, counter_total, flag_errors

pytestmark = pytest.mark.fault

RESOLUTIONS = 10_000
THREADS = 4  # sync workers calling resolve()
TASKS = 4  # async workers calling aresolve()
ENV_DEFAULT = LLMBatchingMode.PER_REQUEST  # no provider below ever answers this
MODE_FLAG = "llm-batching-mode"
SDK_TRACEBACK = "Unable to correctly evaluate flag"


@dataclass
class Fault:
    """One way to fail: the provider, how it is bound, what the resolver must report."""

    provider: ScriptedProvider
    error_code: str
    distinct_batches: int = 400
    settings: dict[str, Any] = field(default_factory=dict)
    bind_without_waiting: bool = False
    release: threading.Event = field(default_factory=threading.Event)


def _raise() -> FlagResolutionDetails[Any]:
    raise RuntimeError("provider exploded")


def _make_fault(kind: str) -> Fault:
    if kind == "raises":
        return Fault(ScriptedProvider(_raise), "GENERAL")
    if kind == "wrong-type":
        return Fault(
            ScriptedProvider(
                lambda: FlagResolutionDetails(42, variant="answer", reason=Reason.STATIC)
            ),
            "TYPE_MISMATCH",
        )
    if kind == "unknown-mode":
        return Fault(
            ScriptedProvider(
                lambda: FlagResolutionDetails(
                    "provider_batchapi_TYPO", variant="turbo", reason=Reason.TARGETING_MATCH
                )
            ),
            "INVALID_MODE",
        )
    if kind == "timeout":
        release = threading.Event()

        def sleep_past_the_timeout() -> FlagResolutionDetails[Any]:
            release.wait(10)  # set when the test ends
            return FlagResolutionDetails("provider_batch_api", variant="late")

        return Fault(
            ScriptedProvider(sleep_past_the_timeout),
            "TIMEOUT",
            distinct_batches=100,  # only these 100 evaluations wait out the 5 ms
            settings={"FLAGS_EVALUATION_TIMEOUT_SECONDS": 0.005},
            release=release,
        )
    if kind == "not-ready":
        gate = threading.Event()
        provider = ScriptedProvider(
            lambda: FlagResolutionDetails("provider_batch_api"), init_gate=gate
        )
        return Fault(provider, "PROVIDER_NOT_READY", bind_without_waiting=True, release=gate)
    if kind == "fatal":
        provider = ScriptedProvider(
            lambda: FlagResolutionDetails("provider_batch_api", variant="x"),
            fail_init=ProviderFatalError("flag service gone for good"),
        )
        return Fault(provider, "PROVIDER_FATAL")
    raise AssertionError(kind)


KINDS = ["raises", "wrong-type", "unknown-mode", "timeout", "not-ready", "fatal"]


@pytest.fixture
def faulty_resolver(
    request: pytest.FixtureRequest,
    bind: Callable[[FeatureProvider], OpenFeatureClient],
    metrics: BatchingMetrics,
) -> Iterator[tuple[BatchingModeResolver, Fault]]:
    fault = _make_fault(request.param)
    if fault.bind_without_waiting:
        domain = f"test-{uuid.uuid4().hex}"
        api.set_provider(fault.provider, domain)  # returns at once; initialize() hangs
        client = api.get_client(domain)
    else:
        client = bind(fault.provider)
    settings = make_settings(
        LLM_BATCHING_MODE=ENV_DEFAULT.value,
        RESOLUTION_CACHE_TTL_SECONDS=3600,  # no expiry during the test: fresh = first sight
        **fault.settings,
    )
    resolver = BatchingModeResolver(settings, client, metrics=metrics)
    yield resolver, fault
    resolver.close()
    fault.release.set()


def _context(batch_id: int) -> BatchContext:
    return BatchContext(batch_id, ("els", "bos", "eng5_runner")[batch_id % 3], "anthropic")


async def _drive(
    resolver: BatchingModeResolver, distinct_batches: int
) -> tuple[list[Resolution], list[BaseException]]:
    """RESOLUTIONS resolutions over `distinct_batches` batch ids: half by THREADS threads
    calling resolve(), half by TASKS tasks calling aresolve(). Every worker owns its own
    batch ids, so no two workers race for the same cache key."""
    workers = THREADS + TASKS
    share = RESOLUTIONS // workers
    results: list[list[Resolution]] = [[] for _ in range(workers)]
    errors: list[BaseException] = []

    def own_ids(worker: int) -> list[int]:
        ids = list(range(worker, distinct_batches, workers))
        return [ids[i % len(ids)] for i in range(share)]

    def sync_worker(worker: int) -> None:
        try:
            for batch_id in own_ids(worker):
                results[worker].append(resolver.resolve(_context(batch_id)))
        except BaseException as exc:
            errors.append(exc)

    async def async_worker(worker: int) -> None:
        try:
            for batch_id in own_ids(worker):
                results[worker].append(await resolver.aresolve(_context(batch_id)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sync_worker, args=(w,)) for w in range(THREADS)]
    for thread in threads:
        thread.start()
    await asyncio.gather(*(async_worker(w) for w in range(THREADS, workers)))
    for thread in threads:
        await asyncio.to_thread(thread.join, 60)
        assert not thread.is_alive(), "a resolving thread hung"
    return [r for worker_results in results for r in worker_results], errors


@pytest.mark.parametrize("faulty_resolver", KINDS, indirect=True)
async def test_a_failing_provider_never_reaches_the_caller(
    faulty_resolver: tuple[BatchingModeResolver, Fault],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    resolver, fault = faulty_resolver
    assert not evaluates_in_process(resolver.client.provider)  # the timeout path is live
    if fault.error_code == "PROVIDER_NOT_READY":
        assert resolver.client.get_provider_status() is ProviderStatus.NOT_READY
    if fault.error_code == "PROVIDER_FATAL":
        assert resolver.client.get_provider_status() is ProviderStatus.FATAL
    caplog.set_level(logging.WARNING)
    caplog.clear()  # binding a FATAL provider logs its failed start; count what follows

    results, errors = await _drive(resolver, fault.distinct_batches)

    assert errors == []
    assert len(results) == RESOLUTIONS
    assert {r.mode for r in results} == {ENV_DEFAULT}
    assert {r.decided_by for r in results} == {"default"}
    assert {r.flag_error for r in results} == {fault.error_code}
    assert not any(r.guardrail_applied for r in results)

    # Fresh evaluations, counted apart from the error counter: each batch id once (the
    # TTL outlives the test, every worker owns its ids, and nothing clears the cache).
    fresh = counter_total(registry, "cj_llm_batching_resolutions")
    assert fresh == fault.distinct_batches
    assert flag_errors(registry, fault.error_code) == fresh
    assert counter_total(registry, "cj_llm_batching_flag_errors") == fresh  # no other code
    if fault.error_code in ("GENERAL", "TYPE_MISMATCH", "INVALID_MODE"):
        assert fault.provider.calls == fresh  # one mode-flag call per fresh resolution
    elif fault.error_code == "TIMEOUT":
        assert 1 <= fault.provider.calls <= fresh  # queued calls were cancelled unstarted
    else:
        assert fault.provider.calls == 0  # OpenFeature refuses before the provider

    ours = [r for r in caplog.records if r.name == "cj_batching.resolver"]
    assert len(ours) == 1, [r.getMessage() for r in ours]
    assert ours[0].error_code == fault.error_code  # type: ignore[attr-defined]
    assert ours[0].flag_key == MODE_FLAG  # type: ignore[attr-defined]
    others = [r for r in caplog.records if r.name != "cj_batching.resolver"]
    if fault.error_code == "GENERAL":
        # OpenFeature itself logs a traceback for each evaluation whose provider raised:
        # bounded by the fresh evaluations (the cache), never one per resolution.
        assert all(SDK_TRACEBACK in r.getMessage() for r in others)
        assert len(others) <= fresh
    else:
        assert others == []
