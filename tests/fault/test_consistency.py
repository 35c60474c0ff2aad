"""What is sent equals what is counted, while the batching flag flips every few ms.

200 CJ batches (mixed sources, providers and overrides; some with `cj_retry` waves) are
submitted at once through `LLMInteraction.submit_batch` to a loopback LPS while a thread
swaps the flag document between three rule sets. Whatever mode each wave ends up with,
every request of the wave must carry it, the counters must agree with the wire per mode,
and the mode must be what the flag version the wave was resolved under says.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter as Tally
from dataclasses import dataclass, replace
from typing import Any, Final

import httpx
import pytest
from prometheus_client import CollectorRegistry

from cj_batching import (
    BatchConfigOverrides,
    BatchContext,
    BatchingMetrics,
    ComparisonTask,
    LLMBatchingMode,
    LLMInteraction,
    LLMProviderType,
    LPSClient,
)
from cj_batching.submission import BatchSubmission
from flags import FlagdMemoryProvider
from tests.conftest import ResolverFactory
from tests.documents import allow_list_flag, document, mode_flag, source_is
from tests.helpers import per_mode
from tests.lps_server import LPSServer

pytestmark = pytest.mark.fault

PER_REQUEST = LLMBatchingMode.PER_REQUEST
SERIAL = LLMBatchingMode.SERIAL_BUNDLE
BATCH_API = LLMBatchingMode.PROVIDER_BATCH_API

BATCHES: Final = 200
FLIP_INTERVAL_SECONDS: Final = 0.002  # the load pattern; no assertion depends on it
SOURCES: Final = ("els", "bos", "eng5_runner", "nightly_lab")
PROVIDERS: Final = ("openai", "anthropic", "google", "mock")
ALLOWED: Final = frozenset({LLMProviderType.OPENAI, LLMProviderType.ANTHROPIC})
ENV_DEFAULT: Final = SERIAL  # the settings default; also the guardrail's fallback here

# Three rule sets the flipper alternates between: (default variant, (source, variant)).
RULES: Final[dict[str, tuple[LLMBatchingMode, tuple[str, LLMBatchingMode]]]] = {
    "A": (PER_REQUEST, ("eng5_runner", BATCH_API)),
    "B": (BATCH_API, ("bos", PER_REQUEST)),
    "C": (SERIAL, ("els", BATCH_API)),
}
KINDS: Final = tuple(RULES)


def flag_document(kind: str, version: str) -> dict[str, Any]:
    default, (source, variant) = RULES[kind]
    targeting = {"if": [source_is(source), variant.value, None]}
    return document(
        mode_flag(targeting, default_variant=default.value),
        allow_list_flag("openai", "anthropic"),
        version=version,
    )


def requested_by(kind: str, source: str) -> LLMBatchingMode:
    """The mode rule set `kind` gives a batch from `source`."""
    default, (rule_source, variant) = RULES[kind]
    return variant if source == rule_source else default


def guarded(mode: LLMBatchingMode, provider: LLMProviderType) -> LLMBatchingMode:
    """The contract's guardrail: the batch API only for allowed providers."""
    return ENV_DEFAULT if mode is BATCH_API and provider not in ALLOWED else mode


class Flipper:
    """Swaps the flag document every few milliseconds on its own thread."""

    def __init__(self, provider: FlagdMemoryProvider) -> None:
        self._provider = provider
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="flag-flipper")
        self.kind_of: dict[str, str] = {"A-0": "A"}  # every version handed out -> its rules
        self.flips = 0

    def _run(self) -> None:
        while not self._stop.wait(FLIP_INTERVAL_SECONDS):
            n = self.flips + 1
            kind = KINDS[n % len(KINDS)]
            version = f"{kind}-{n}"
            self.kind_of[version] = kind
            self._provider.update(flag_document(kind, version))
            self.flips = n

    def __enter__(self) -> Flipper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5.0)
        assert not self._thread.is_alive(), "the flipper did not stop"


@dataclass(frozen=True)
class Batch:
    """One CJ batch's plan: its context and the sizes of its waves (the first is
    `cj_comparison`, the others `cj_retry`)."""

    number: int
    context: BatchContext
    waves: tuple[int, ...]


def batch_plan(number: int) -> Batch:
    override = {4: BATCH_API, 9: PER_REQUEST}.get(number % 10)
    context = BatchContext(
        5_000 + number,
        cj_source=SOURCES[number % len(SOURCES)],
        llm_provider=PROVIDERS[(number // len(SOURCES)) % len(PROVIDERS)],
        overrides=BatchConfigOverrides(llm_batching_mode_override=override) if override else None,
    )
    retries = number % 3
    waves = (1 + number % 4, *(1 + (number + w) % 3 for w in range(retries)))
    return Batch(number, context, waves)


def tasks_for(batch: Batch, wave: int, size: int) -> list[ComparisonTask]:
    prefix = f"b{batch.number}-w{wave}-p"
    return [
        ComparisonTask(f"{prefix}{n}-a", f"{prefix}{n}-b", f"Compare pair {n}.")
        for n in range(size)
    ]


class InFlightTransport(httpx.AsyncBaseTransport):
    """The HTTP transport under an LPSClient, recording how many POSTs were in flight at
    most (the client's concurrency gate is inside it, so count below it)."""

    def __init__(self, limit: int) -> None:
        limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
        self._inner = httpx.AsyncHTTPTransport(limits=limits)
        self.in_flight = 0
        self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await self._inner.handle_async_request(request)
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_sent_equals_counted_per_mode_while_the_flag_flips(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
    record_property: Any,
) -> None:
    resolver, provider = make_resolver(flag_document("A", "A-0"))
    assert resolver.settings.LLM_BATCHING_MODE is ENV_DEFAULT
    batches = [batch_plan(n) for n in range(BATCHES)]
    total = sum(sum(batch.waves) for batch in batches)

    async def run(batch: Batch, interaction: LLMInteraction) -> list[BatchSubmission]:
        waves = []
        for w, size in enumerate(batch.waves):
            context = batch.context if w == 0 else replace(batch.context, request_type="cj_retry")
            waves.append(await interaction.submit_batch(context, tasks_for(batch, w, size)))
        return waves

    # max_retries=0: an HTTP re-send would (rightly) make the wire count exceed the counter.
    transport = InFlightTransport(resolver.settings.LPS_MAX_CONCURRENCY)
    async with (
        httpx.AsyncClient(transport=transport) as http,
        LPSClient(lps.base_url, http=http, timeout_seconds=30.0, max_retries=0) as client,
    ):
        interaction = LLMInteraction(
            settings=resolver.settings, resolver=resolver, lps=client, metrics=metrics
        )
        with Flipper(provider) as flipper:
            started = time.monotonic()
            flips_before = flipper.flips
            async with asyncio.timeout(60):
                results = await asyncio.gather(*(run(batch, interaction) for batch in batches))
            flips_during = flipper.flips - flips_before
            elapsed = time.monotonic() - started

    assert lps.errors == []
    requests = lps.requests
    # LPS_MAX_CONCURRENCY ("parallel POSTs at most") holds across concurrent waves too.
    assert 1 < transport.peak <= client.max_concurrency == resolver.settings.LPS_MAX_CONCURRENCY

    # Every comparison was sent once and queued; nothing unknown reached the server.
    wave_of: dict[str, tuple[Batch, int, BatchSubmission]] = {}
    for batch, waves in zip(batches, results, strict=True):
        assert [len(wave.submissions) for wave in waves] == list(batch.waves)
        for w, wave in enumerate(waves):
            assert wave.queued == len(wave.submissions), [s.error for s in wave.failed]
            for submission in wave.submissions:
                wave_of[str(submission.correlation_id)] = (batch, w, wave)
    assert len(wave_of) == total
    assert len(requests) == total
    assert sorted(r.correlation_id or "" for r in requests) == sorted(wave_of)

    # Each request carries its wave's resolution, whatever the flag said meanwhile.
    for request in requests:
        batch, w, wave = wave_of[request.correlation_id or ""]
        resolution = wave.resolution
        metadata = request.body["metadata"]
        assert metadata["cj_llm_batching_mode"] == resolution.mode.value, (batch, w)
        assert metadata["cj_llm_batching_decided_by"] == resolution.decided_by
        assert metadata["cj_request_type"] == ("cj_comparison" if w == 0 else "cj_retry")
        assert metadata["cj_batch_id"] == batch.context.batch_key
        assert metadata["cj_source"] == batch.context.cj_source
        assert metadata["essay_a_id"].startswith(f"b{batch.number}-w{w}-")
        assert metadata["preferred_bundle_size"] == batch.waves[w]  # in every mode
        provider_sent = request.body["llm_config_overrides"]["provider_override"]
        assert provider_sent == resolution.llm_provider.value

    # Each wave's mode is what the chain gives under the flag version it was resolved with.
    for batch, waves in zip(batches, results, strict=True):
        override = batch.context.overrides
        source, llm_provider = (
            batch.context.cj_source,
            LLMProviderType(PROVIDERS[(batch.number // len(SOURCES)) % len(PROVIDERS)]),
        )
        for wave in waves:
            resolution = wave.resolution
            assert resolution.llm_provider is llm_provider
            if override is not None:
                assert resolution.decided_by == "override"
                requested = override.llm_batching_mode_override
            else:
                assert resolution.decided_by == "flag", resolution
                version = resolution.flag_set_version
                assert version in flipper.kind_of, resolution
                requested = requested_by(flipper.kind_of[version], source)
            assert requested is not None
            assert resolution.requested_mode is requested, (batch, resolution)
            assert resolution.mode is guarded(requested, llm_provider), (batch, resolution)

    # Counted exactly as sent, per mode; batches only for the cj_comparison waves.
    on_the_wire = Tally(r.body["metadata"]["cj_llm_batching_mode"] for r in requests)
    assert per_mode(registry, "cj_llm_requests_total") == {
        mode.value: float(on_the_wire[mode.value]) for mode in LLMBatchingMode
    }
    assert sum(on_the_wire.values()) == total
    first_waves = Tally(waves[0].resolution.mode.value for waves in results)
    assert per_mode(registry, "cj_llm_batches_started_total") == {
        mode.value: float(first_waves[mode.value]) for mode in LLMBatchingMode
    }
    assert sum(first_waves.values()) == BATCHES

    # The flag really changed under the run: several versions and modes were in use.
    versions = {
        wave.resolution.flag_set_version
        for waves in results
        for wave in waves
        if wave.resolution.decided_by == "flag"
    }
    assert flips_during >= 2
    assert len(versions) > 1
    assert len(on_the_wire) > 1

    kinds = Tally(flipper.kind_of[v] for v in versions if v is not None)
    record_property("run_seconds", round(elapsed, 2))
    record_property("flips_during_run", flips_during)
    record_property("requests_by_mode", dict(on_the_wire))
    record_property("peak_parallel_posts", transport.peak)
    print(  # shown with -s / -rP: the numbers of this run
        f"\n{BATCHES} batches, {sum(len(w) for w in results)} waves, {total} comparisons in "
        f"{elapsed:.2f} s; {flips_during} flag flips during the run; requests by mode "
        f"{dict(sorted(on_the_wire.items()))}; batches started by mode "
        f"{dict(sorted(first_waves.items()))}; {len(versions)} flag versions used "
        f"(rule sets {dict(sorted(kinds.items()))}); peak parallel POSTs {transport.peak}"
    )
