"""LLMInteraction against a real loopback LPS: wire body, counting, failures, concurrency."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter as Tally
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from cj_batching import (
    BatchConfigOverrides,
    BatchContext,
    BatchingMetrics,
    BatchingModeResolver,
    ComparisonTask,
    LLMBatchingMode,
    LLMComparisonRequest,
    LLMConfigOverrides,
    LLMInteraction,
    LLMProviderType,
    LPSClient,
    LPSError,
    QueuedComparison,
    Resolution,
    overrides_from_envelope_metadata,
)
from flags.testing import wait_until

from .conftest import ResolverFactory
from .documents import document, mode_flag
from .lps_server import (
    LPSServer,
    RecordedRequest,
    Reply,
    accepted,
    bad_request,
    drop_connection,
    queue_full,
    server_error,
    slow,
    too_many_requests,
)

PER_REQUEST = LLMBatchingMode.PER_REQUEST
SERIAL = LLMBatchingMode.SERIAL_BUNDLE
BATCH_API = LLMBatchingMode.PROVIDER_BATCH_API
OPENAI = LLMProviderType.OPENAI

BODY_KEYS = {
    "user_prompt",
    "prompt_blocks",
    "callback_topic",
    "llm_config_overrides",
    "correlation_id",
    "user_id",
    "metadata",
}


class NoSleep:
    """The client's injected sleep: records the waits, returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@asynccontextmanager
async def interaction_on(
    lps: LPSServer,
    resolver: BatchingModeResolver,
    metrics: BatchingMetrics,
    *,
    client: type[LPSClient] = LPSClient,
    **options: Any,
) -> AsyncIterator[LLMInteraction]:
    """An LLMInteraction posting to the loopback LPS with fast, sleep-free retries."""
    options = {
        "backoff_initial_seconds": 0.001,
        "backoff_max_seconds": 0.01,
        "sleep": NoSleep(),
        **options,
    }
    async with client(lps.base_url, **options) as lps_client:
        yield LLMInteraction(
            settings=resolver.settings, resolver=resolver, lps=lps_client, metrics=metrics
        )


def static(mode: str) -> dict[str, Any]:
    """A flag document whose mode flag answers `mode` for every batch."""
    return document(mode_flag(default_variant=mode))


def wave(count: int, prefix: str = "e") -> list[ComparisonTask]:
    return [
        ComparisonTask(
            f"{prefix}{n}-a", f"{prefix}{n}-b", f"Compare {prefix}{n}-a with {prefix}{n}-b."
        )
        for n in range(count)
    ]


def requests_counted(registry: CollectorRegistry) -> dict[str, float]:
    return {
        mode.value: _sample(registry, "cj_llm_requests_total", mode) for mode in LLMBatchingMode
    }


def batches_counted(registry: CollectorRegistry) -> dict[str, float]:
    return {
        mode.value: _sample(registry, "cj_llm_batches_started_total", mode)
        for mode in LLMBatchingMode
    }


def _sample(registry: CollectorRegistry, name: str, mode: LLMBatchingMode) -> float:
    value = registry.get_sample_value(name, {"batching_mode": mode.value})
    assert value is not None, f"{name}{{batching_mode={mode.value}}} is not exposed"
    return value


def only(mode: LLMBatchingMode, count: float) -> dict[str, float]:
    return {m.value: (count if m is mode else 0.0) for m in LLMBatchingMode}


def sent_metadata(lps: LPSServer, correlation_id: uuid.UUID) -> dict[str, Any]:
    (request,) = lps.requests_for(correlation_id)
    metadata: dict[str, Any] = request.body["metadata"]
    return metadata


def queue_id_for(request: RecordedRequest) -> Reply:
    """A 202 whose queue_id names the comparison, to catch answers handed to the wrong task."""
    return accepted(queue_id=f"queue-{request.correlation_id}")


# --- the wire body -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context_provider", "default_provider", "sent_provider"),
    [
        pytest.param(None, "anthropic", "anthropic", id="default-provider"),
        pytest.param(" Google ", "anthropic", "google", id="context-provider"),
    ],
)
async def test_wire_body_matches_the_contract_field_by_field(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    lps: LPSServer,
    context_provider: str | None,
    default_provider: str,
    sent_provider: str,
) -> None:
    resolver, _ = make_resolver(
        static("serial_bundle"),
        LLM_PROVIDER_CALLBACK_TOPIC="cj.test.comparison_results",
        DEFAULT_LLM_PROVIDER=default_provider,
    )
    lps.set_default(queue_id_for)
    blocks = [{"type": "text", "text": "Rubric: argument, evidence.", "cache": True}]
    tasks = [
        ComparisonTask("essay-1", "essay-2", "Which essay argues better?", prompt_blocks=blocks),
        ComparisonTask("essay-3", "essay-4", "Which essay is clearer?"),
        ComparisonTask("essay-1", "essay-3", "Which essay uses evidence better?"),
    ]
    context = BatchContext(42, cj_source="eng5_runner", llm_provider=context_provider)
    async with interaction_on(lps, resolver, metrics) as interaction:
        result = await interaction.submit_batch(
            context, tasks, metadata={"bos_batch_id": "bos-7", "experiment": "nightly"}
        )

    assert [s.task for s in result.submissions] == tasks
    assert result.queued == 3
    assert len({s.correlation_id for s in result.submissions}) == 3
    assert lps.request_count == 3
    for submission in result.submissions:
        (request,) = lps.requests_for(submission.correlation_id)
        task, body = submission.task, request.body
        assert (request.method, request.path) == ("POST", "/api/v1/comparison")
        assert request.headers["content-type"] == "application/json"
        assert set(body) == BODY_KEYS
        assert body["user_prompt"] == task.user_prompt
        assert body["prompt_blocks"] == task.prompt_blocks
        assert body["callback_topic"] == "cj.test.comparison_results"
        overrides = body["llm_config_overrides"]
        assert overrides["provider_override"] == sent_provider
        assert {k: v for k, v in overrides.items() if k != "provider_override"} == dict.fromkeys(
            set(overrides) - {"provider_override"}
        )
        assert str(uuid.UUID(body["correlation_id"])) == body["correlation_id"]
        assert body["correlation_id"] == str(submission.correlation_id)
        assert body["user_id"] is None
        assert body["metadata"] == {
            "essay_a_id": task.essay_a_id,
            "essay_b_id": task.essay_b_id,
            "bos_batch_id": "bos-7",
            "experiment": "nightly",
            "cj_batch_id": "42",
            "cj_source": "eng5_runner",
            "cj_llm_batching_mode": "serial_bundle",
            "cj_request_type": "cj_comparison",
            "cj_llm_batching_decided_by": "flag",
            "preferred_bundle_size": 3,
        }
        assert submission.queue_id == f"queue-{submission.correlation_id}"
        assert submission.error is None


@pytest.mark.parametrize(
    ("mode", "size", "hint"),
    [
        pytest.param("serial_bundle", 12, 12, id="serial-typical-wave"),
        pytest.param("serial_bundle", 70, 64, id="serial-capped"),
        pytest.param("per_request", 12, None, id="per-request"),
        pytest.param("provider_batch_api", 70, None, id="batch-api"),
    ],
)
async def test_bundle_hint_is_the_wave_size_capped_for_serial_bundle_only(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    lps: LPSServer,
    mode: str,
    size: int,
    hint: int | None,
) -> None:
    resolver, _ = make_resolver(static(mode))
    async with interaction_on(lps, resolver, metrics) as interaction:
        result = await interaction.submit_batch(BatchContext(8, llm_provider="openai"), wave(size))
    assert result.queued == size
    hints = {request.body["metadata"].get("preferred_bundle_size") for request in lps.requests}
    assert hints == {hint}


# --- counting ---------------------------------------------------------------------------------


async def test_first_wave_counts_one_batch_and_every_request(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
) -> None:
    resolver, _ = make_resolver(static("provider_batch_api"))
    async with interaction_on(lps, resolver, metrics) as interaction:
        result = await interaction.submit_batch(BatchContext(1, llm_provider="openai"), wave(12))
    assert result.resolution.mode is BATCH_API
    assert result.queued == 12
    assert batches_counted(registry) == only(BATCH_API, 1)
    assert requests_counted(registry) == only(BATCH_API, 12)


async def test_retry_waves_are_counted_as_requests_not_batches_and_keep_the_override(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
) -> None:
    # The flag would say batch_api; the batch's override says per_request.
    resolver, _ = make_resolver(static("provider_batch_api"))
    overrides = BatchConfigOverrides(llm_batching_mode_override=PER_REQUEST)
    first = BatchContext(99, cj_source="eng5_runner", llm_provider="openai", overrides=overrides)
    retry = replace(first, request_type="cj_retry")
    async with interaction_on(lps, resolver, metrics) as interaction:
        opening = await interaction.submit_batch(first, wave(4, "w1-"))
        continuation = await interaction.submit_batch(retry, wave(3, "w2-"))
        pool_retry = await interaction.submit_batch(retry, wave(2, "w3-"))

    for result in (opening, continuation, pool_retry):
        assert (result.resolution.mode, result.resolution.decided_by) == (PER_REQUEST, "override")
        assert result.queued == len(result.submissions)
    assert batches_counted(registry) == only(PER_REQUEST, 1)
    assert requests_counted(registry) == only(PER_REQUEST, 9)
    for result, request_type in (
        (opening, "cj_comparison"),
        (continuation, "cj_retry"),
        (pool_retry, "cj_retry"),
    ):
        for submission in result.submissions:
            metadata = sent_metadata(lps, submission.correlation_id)
            assert metadata["cj_request_type"] == request_type
            assert metadata["cj_llm_batching_mode"] == "per_request"
            assert metadata["cj_llm_batching_decided_by"] == "override"
            assert metadata["cj_batch_id"] == "99"


async def test_a_retry_wave_alone_starts_no_batch(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
) -> None:
    resolver, _ = make_resolver(static("per_request"))
    context = BatchContext(5, llm_provider="openai", request_type="cj_retry")
    async with interaction_on(lps, resolver, metrics) as interaction:
        await interaction.submit_batch(context, wave(3))
        # perform_comparisons with an explicit request type behaves the same way
        await interaction.perform_comparisons(
            wave(2, "p"), replace(context, request_type="cj_comparison"), request_type=" CJ_Retry "
        )
    assert batches_counted(registry) == only(PER_REQUEST, 0)
    assert requests_counted(registry) == only(PER_REQUEST, 5)
    assert {r.body["metadata"]["cj_request_type"] for r in lps.requests} == {"cj_retry"}


async def test_submit_batch_logs_mode_batch_and_decider(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    lps: LPSServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    resolver, _ = make_resolver(static("serial_bundle"))
    async with interaction_on(lps, resolver, metrics) as interaction:
        with caplog.at_level(logging.INFO, logger="cj_batching.interaction"):
            await interaction.submit_batch(BatchContext(4242, cj_source="bos"), wave(2))
    (record,) = [r for r in caplog.records if r.name == "cj_batching.interaction"]
    assert record.levelno == logging.INFO
    assert vars(record)["llm_batching_mode"] == "serial_bundle"
    assert vars(record)["cj_batch_id"] == "4242"
    assert vars(record)["decided_by"] == "flag"
    assert "4242" in record.getMessage()
    assert "serial_bundle" in record.getMessage()


async def test_sent_mode_equals_counted_mode_even_when_the_flag_flips(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
) -> None:
    resolver, flags = make_resolver(static("per_request"))
    context = BatchContext(77, llm_provider="openai")
    retry = replace(context, request_type="cj_retry")
    flipped = threading.Event()

    def flip_on_first_request(_request: RecordedRequest) -> Reply | None:
        if not flipped.is_set():  # the server thread edits the flags mid-wave
            flipped.set()
            flags.update(static("provider_batch_api"))
        return None

    async with interaction_on(lps, resolver, metrics, max_retries=0) as interaction:
        first = await interaction.submit_batch(context, wave(5, "w1-"))
        flags.update(static("serial_bundle"))  # between waves
        wait_until(lambda: resolver.resolve(context).mode is SERIAL, what="new flag applied")
        lps.set_policy(flip_on_first_request)
        second = await interaction.submit_batch(retry, wave(6, "w2-"))
        lps.set_policy(None)
        assert flipped.is_set()
        wait_until(lambda: resolver.resolve(retry).mode is BATCH_API, what="mid-wave flag applied")
        third = await interaction.submit_batch(retry, wave(4, "w3-"))
        explicit = Resolution(PER_REQUEST, "override", PER_REQUEST, OPENAI)
        fourth = await interaction.perform_comparisons(wave(3, "w4-"), retry, resolution=explicit)

    assert lps.errors == []
    waves = [
        (first.resolution.mode, first.submissions),
        (second.resolution.mode, second.submissions),
        (third.resolution.mode, third.submissions),
        (PER_REQUEST, fourth),
    ]
    assert [mode for mode, _ in waves] == [PER_REQUEST, SERIAL, BATCH_API, PER_REQUEST]
    for mode, submissions in waves:  # one wave, one mode, on every request
        sent = {sent_metadata(lps, s.correlation_id)["cj_llm_batching_mode"] for s in submissions}
        assert sent == {mode.value}
    on_the_wire = Tally(r.body["metadata"]["cj_llm_batching_mode"] for r in lps.requests)
    assert requests_counted(registry) == {
        mode.value: float(on_the_wire[mode.value]) for mode in LLMBatchingMode
    }
    assert requests_counted(registry) == {
        "per_request": 8.0,
        "serial_bundle": 6.0,
        "provider_batch_api": 4.0,
    }
    assert batches_counted(registry) == only(PER_REQUEST, 1)


# --- failures --------------------------------------------------------------------------------

MAX_RETRIES = 2
TIMEOUT_SECONDS = 0.3


def by_scenario(request: RecordedRequest) -> Reply:
    """Answer by the scenario named at the start of the prompt, and the attempt number."""
    scenario = request.body["user_prompt"].split(":")[0]
    first = request.attempt == 1
    replies = {
        "ok": queue_id_for(request),
        "queue_full_then_ok": queue_full() if first else queue_id_for(request),
        "bad_request": bad_request(),
        "rate_limited": too_many_requests(retry_after="1"),
        "server_error_then_ok": server_error(500) if first else queue_id_for(request),
        "dropped": drop_connection(),
        "slow": slow(20 * TIMEOUT_SECONDS),
    }
    return replies[scenario]


# scenario: (queued, status_code, retryable, attempts)
OUTCOMES: dict[str, tuple[bool, int | None, bool | None, int]] = {
    "ok": (True, None, None, 1),
    "queue_full_then_ok": (True, None, None, 2),
    "bad_request": (False, 400, False, 1),
    "rate_limited": (False, 429, True, MAX_RETRIES + 1),
    "server_error_then_ok": (True, None, None, 2),
    "dropped": (False, None, True, MAX_RETRIES + 1),
    "slow": (False, None, True, MAX_RETRIES + 1),
}


async def test_one_failing_comparison_never_aborts_the_others(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
) -> None:
    resolver, _ = make_resolver(static("serial_bundle"))
    scenarios = [
        "ok",
        "queue_full_then_ok",
        "bad_request",
        "rate_limited",
        "ok",
        "server_error_then_ok",
        "dropped",
        "slow",
        "ok",
    ]
    tasks = [
        ComparisonTask(f"e{n}-a", f"e{n}-b", f"{scenario}: compare e{n}-a with e{n}-b")
        for n, scenario in enumerate(scenarios)
    ]
    lps.set_policy(by_scenario)
    async with interaction_on(
        lps, resolver, metrics, max_retries=MAX_RETRIES, timeout_seconds=TIMEOUT_SECONDS
    ) as interaction:
        result = await interaction.submit_batch(BatchContext(3, llm_provider="openai"), tasks)

    assert lps.errors == []
    # Every task comes back exactly once, in input order.
    assert len(result.submissions) == len(tasks)
    assert all(s.task is t for s, t in zip(result.submissions, tasks, strict=True))
    assert len({s.correlation_id for s in result.submissions}) == len(tasks)
    for scenario, submission in zip(scenarios, result.submissions, strict=True):
        queued, status, retryable, attempts = OUTCOMES[scenario]
        cid = submission.correlation_id

        # The server saw exactly the attempts the client reports, never more than allowed.
        def arrived(cid: uuid.UUID = cid, expected: int = attempts) -> bool:
            return len(lps.requests_for(cid)) >= expected

        wait_until(arrived, timeout=5, what=f"{scenario}: {attempts} attempt(s) at the server")
        assert len(lps.requests_for(cid)) == attempts, scenario
        assert attempts <= MAX_RETRIES + 1
        if queued:
            assert submission.queue_id == f"queue-{cid}", scenario
            assert submission.error is None
            continue
        error = submission.error
        assert isinstance(error, LPSError), scenario
        assert submission.queue_id is None
        assert (error.status_code, error.retryable, error.attempts) == (
            status,
            retryable,
            attempts,
        ), scenario
        assert error.correlation_id == cid
    slow_error = result.submissions[scenarios.index("slow")].error
    assert slow_error is not None
    assert "timeout" in slow_error.error
    assert result.queued == 5
    assert [s.task for s in result.failed] == [
        t for t, s in zip(tasks, scenarios, strict=True) if not OUTCOMES[s][0]
    ]
    # Nothing was sent that the caller does not know about.
    assert {r.correlation_id for r in lps.requests} == {
        str(s.correlation_id) for s in result.submissions
    }
    # Counted once per comparison, however many HTTP attempts it took.
    assert lps.request_count > len(tasks)
    assert requests_counted(registry) == only(SERIAL, len(tasks))
    assert batches_counted(registry) == only(SERIAL, 1)


class ExplodingClient(LPSClient):
    """A client with a bug for one kind of prompt."""

    async def submit(self, request: LLMComparisonRequest) -> QueuedComparison:
        if request.user_prompt.startswith("explode"):
            raise RuntimeError("client bug")
        return await super().submit(request)


async def test_an_unexpected_client_exception_costs_one_comparison(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    lps: LPSServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    resolver, _ = make_resolver(static("per_request"))
    tasks = [
        ComparisonTask("a", "b", "fine"),
        ComparisonTask("c", "d", "explode please"),
        ComparisonTask("e", "f", "fine too"),
    ]
    async with interaction_on(lps, resolver, metrics, client=ExplodingClient) as interaction:
        result = await interaction.submit_batch(BatchContext(6), tasks)
    assert [s.queued for s in result.submissions] == [True, False, True]
    error = result.submissions[1].error
    assert isinstance(error, LPSError)
    assert (error.status_code, error.retryable, error.attempts) == (None, False, 1)
    assert "RuntimeError: client bug" in error.error
    assert "LPS submit raised unexpectedly" in caplog.text


async def test_concurrency_is_bounded_by_the_setting(
    make_resolver: ResolverFactory, metrics: BatchingMetrics, lps: LPSServer
) -> None:
    resolver, _ = make_resolver(static("per_request"), LPS_MAX_CONCURRENCY=3)
    delay = 0.15
    reply_times: list[float] = []  # when each request still being answered gets its reply
    peak = 0

    def in_flight(request: RecordedRequest) -> Reply:
        nonlocal peak
        reply_times[:] = [t for t in reply_times if t > request.received_at]
        reply_times.append(request.received_at + delay)
        peak = max(peak, len(reply_times))
        return slow(delay, queue_id_for(request))

    lps.set_policy(in_flight)
    tasks = wave(9)
    async with interaction_on(lps, resolver, metrics) as interaction:
        result = await interaction.submit_batch(BatchContext(10), tasks)
    assert lps.errors == []
    assert [s.task for s in result.submissions] == tasks
    assert result.queued == 9
    assert peak == 3  # parallel, but never more than LPS_MAX_CONCURRENCY


async def test_a_task_for_another_provider_fails_alone_unsent_and_uncounted(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
) -> None:
    resolver, _ = make_resolver(static("serial_bundle"))
    tuned = LLMConfigOverrides(
        provider_override=OPENAI, model_override="gpt-test", temperature_override=0.2
    )
    tasks = [
        ComparisonTask("a", "b", "plain"),
        ComparisonTask(
            "c",
            "d",
            "other provider",
            llm_config_overrides=LLMConfigOverrides(provider_override=LLMProviderType.ANTHROPIC),
        ),
        ComparisonTask("e", "f", "tuned", llm_config_overrides=tuned),
    ]
    async with interaction_on(lps, resolver, metrics) as interaction:
        result = await interaction.submit_batch(BatchContext(11, llm_provider="openai"), tasks)

    plain, refused, kept = result.submissions
    assert [s.task for s in result.submissions] == tasks
    assert (plain.queued, refused.queued, kept.queued) == (True, False, True)
    error = refused.error
    assert isinstance(error, LPSError)
    assert (error.status_code, error.retryable, error.attempts) == (None, False, 0)
    assert "'anthropic' differs from the batch's provider 'openai'" in error.error
    assert error.correlation_id == refused.correlation_id
    assert lps.requests_for(refused.correlation_id) == []
    assert lps.request_count == 2
    (tuned_request,) = lps.requests_for(kept.correlation_id)
    overrides = tuned_request.body["llm_config_overrides"]
    assert (overrides["provider_override"], overrides["model_override"]) == ("openai", "gpt-test")
    assert overrides["temperature_override"] == 0.2
    assert requests_counted(registry) == only(SERIAL, 2)
    assert batches_counted(registry) == only(SERIAL, 1)


async def test_a_wave_refused_whole_starts_no_batch(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
) -> None:
    resolver, _ = make_resolver(static("serial_bundle"))
    elsewhere = LLMConfigOverrides(provider_override=LLMProviderType.GOOGLE)
    tasks = [
        ComparisonTask(f"a{n}", f"b{n}", "p", llm_config_overrides=elsewhere) for n in range(3)
    ]
    async with interaction_on(lps, resolver, metrics) as interaction:
        result = await interaction.submit_batch(BatchContext(16, llm_provider="openai"), tasks)
    assert [s.task for s in result.submissions] == tasks
    assert [s.error.attempts if s.error else None for s in result.submissions] == [0, 0, 0]
    assert lps.request_count == 0
    assert requests_counted(registry) == only(SERIAL, 0)
    assert batches_counted(registry) == only(SERIAL, 0)


async def test_an_empty_wave_returns_nothing_and_counts_nothing(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
) -> None:
    resolver, _ = make_resolver(static("serial_bundle"))
    async with interaction_on(lps, resolver, metrics) as interaction:
        assert await interaction.perform_comparisons([], BatchContext(12)) == []
        result = await interaction.submit_batch(BatchContext(12), [])
    assert result.submissions == []
    assert (result.queued, result.failed) == (0, [])
    assert lps.request_count == 0
    assert requests_counted(registry) == only(SERIAL, 0)
    assert batches_counted(registry) == only(SERIAL, 0)


@pytest.mark.parametrize(
    ("metadata", "named"),
    [
        pytest.param({"essay_a_id": "x"}, "essay_a_id", id="per-task-key"),
        pytest.param({"bos_batch_id": "b", "cj_source": "bos"}, "cj_source", id="reserved-key"),
    ],
)
async def test_refused_wave_metadata_sends_and_counts_nothing(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
    metadata: dict[str, Any],
    named: str,
) -> None:
    resolver, _ = make_resolver(static("serial_bundle"))
    async with interaction_on(lps, resolver, metrics) as interaction:
        with pytest.raises(ValueError, match=named):
            await interaction.submit_batch(BatchContext(13), wave(3), metadata=metadata)
    assert lps.request_count == 0
    assert requests_counted(registry) == only(SERIAL, 0)
    assert batches_counted(registry) == only(SERIAL, 0)


async def test_broken_metrics_never_break_a_submission(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    lps: LPSServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolver, _ = make_resolver(static("per_request"))

    def broken(self: Counter, amount: float = 1, exemplar: object = None) -> None:
        raise RuntimeError("metrics backend down")

    monkeypatch.setattr(Counter, "inc", broken)
    async with interaction_on(lps, resolver, metrics) as interaction:
        result = await interaction.submit_batch(BatchContext(14), wave(4))
    assert result.queued == 4
    assert lps.request_count == 4


# --- overrides from the event envelope --------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param(None, id="no-metadata"),
        pytest.param({}, id="no-hint"),
        pytest.param({"llm_batching_mode_hint": None}, id="none"),
        pytest.param({"llm_batching_mode_hint": ""}, id="empty"),
        pytest.param({"llm_batching_mode_hint": "  \t "}, id="blank"),
    ],
)
def test_no_hint_means_no_override_and_no_warning(
    metadata: dict[str, Any] | None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="cj_batching.overrides"):
        assert overrides_from_envelope_metadata(metadata) is None
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize(
    ("hint", "mode"),
    [
        (" Serial_Bundle ", SERIAL),
        ("serial_bundle", SERIAL),
        ("PER_REQUEST", PER_REQUEST),
        ("provider_batch_api\n", BATCH_API),
    ],
)
def test_hint_becomes_the_override(hint: str, mode: LLMBatchingMode) -> None:
    overrides = overrides_from_envelope_metadata({"llm_batching_mode_hint": hint, "other": 1})
    assert overrides == BatchConfigOverrides(llm_batching_mode_override=mode)


@pytest.mark.parametrize(
    ("hint", "shown"), [("turbo", "'turbo'"), (42, "42"), (["serial_bundle"], "['serial_bundle']")]
)
def test_unknown_hint_is_ignored_with_a_warning_naming_it(
    hint: object, shown: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="cj_batching.overrides"):
        assert overrides_from_envelope_metadata({"llm_batching_mode_hint": hint}) is None
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.levelno == logging.WARNING
    assert shown in warning.getMessage()
    assert "llm_batching_mode_hint" in warning.getMessage()


async def test_envelope_hint_decides_the_mode_on_the_wire(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
) -> None:
    resolver, _ = make_resolver(static("per_request"))
    overrides = overrides_from_envelope_metadata({"llm_batching_mode_hint": " Serial_Bundle "})
    context = BatchContext(15, cj_source="eng5_runner", overrides=overrides)
    async with interaction_on(lps, resolver, metrics) as interaction:
        await interaction.submit_batch(context, wave(2))
    modes = {
        (
            r.body["metadata"]["cj_llm_batching_mode"],
            r.body["metadata"]["cj_llm_batching_decided_by"],
        )
        for r in lps.requests
    }
    assert modes == {("serial_bundle", "override")}
    assert requests_counted(registry) == only(SERIAL, 2)
