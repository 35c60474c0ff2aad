"""LLMInteraction against a real loopback LPS: wire body, counting, failures, concurrency."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections import Counter as Tally
from collections.abc import AsyncIterator, Callable
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
from cj_batching.lps import CLIENT_ERROR, NOT_SENT, QUEUE_FULL
from flags.testing import wait_until

from .conftest import ResolverFactory
from .documents import document, mode_flag
from .helpers import counter_total
from .lps_server import (
    LPSServer,
    RecordedRequest,
    Reply,
    accepted,
    bad_request,
    configuration_error,
    drop_connection,
    nested_error,
    queue_full,
    server_error,
    slow,
    too_many_requests,
)

PER_REQUEST = LLMBatchingMode.PER_REQUEST
SERIAL = LLMBatchingMode.SERIAL_BUNDLE
BATCH_API = LLMBatchingMode.PROVIDER_BATCH_API
OPENAI = LLMProviderType.OPENAI

BODY_KEYS = {"user_prompt", "callback_topic", "llm_config_overrides", "correlation_id", "metadata"}


class Clock:
    """The client's injected monotonic clock (back-pressure cooldowns): moves when told."""

    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


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
    """An LLMInteraction posting to the loopback LPS (the resolver's LPS_* settings) with
    sleep-free retries."""
    settings = resolver.settings.model_copy(update={"LLM_PROVIDER_SERVICE_URL": lps.base_url})
    options = {
        "backoff_initial_seconds": 0.001,
        "backoff_max_seconds": 0.01,
        "sleep": NoSleep(),
        **options,
    }
    async with client.from_settings(settings, **options) as lps_client:
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


def backpressure_counted(registry: CollectorRegistry) -> float:
    value = registry.get_sample_value("cj_llm_lps_backpressure_total")
    assert value is not None, "cj_llm_lps_backpressure_total is not exposed"
    return value


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

MODES = ("per_request", "serial_bundle", "provider_batch_api")


@pytest.mark.parametrize("mode", MODES)
async def test_wire_body_matches_the_contract_field_by_field(
    make_resolver: ResolverFactory, metrics: BatchingMetrics, lps: LPSServer, mode: str
) -> None:
    resolver, _ = make_resolver(
        static(mode), LLM_PROVIDER_CALLBACK_TOPIC="cj.test.comparison_results"
    )
    lps.set_default(queue_id_for)
    stored = uuid.uuid4()  # CJ stored this pair under its id before posting
    blocks = [{"target": "user_content", "content": "Rubric: argument.", "cacheable": True}]
    tasks = [
        ComparisonTask("essay-1", "essay-2", "Which argues better?", blocks, correlation_id=stored),
        ComparisonTask("essay-3", "essay-4", "Which is clearer?", prompt_blocks=[]),
        ComparisonTask("essay-1", "essay-3", "Which uses evidence better?"),
    ]
    context = BatchContext(
        42,
        cj_source="eng5_runner",
        llm_provider="openai",
        request_type="cj_retry",
        comparison_iteration=3,
    )
    async with interaction_on(lps, resolver, metrics) as interaction:
        result = await interaction.submit_batch(
            context, tasks, metadata={"bos_batch_id": "bos-7", "experiment": None}
        )

    assert result.queued == 3
    assert result.submissions[0].correlation_id == stored
    assert len({s.correlation_id for s in result.submissions}) == 3
    assert lps.request_count == 3
    for submission in result.submissions:
        (request,) = lps.requests_for(submission.correlation_id)
        task, body = submission.task, request.body
        assert (request.method, request.path) == ("POST", "/api/v1/comparison")
        assert set(body) == BODY_KEYS | ({"prompt_blocks"} if task.prompt_blocks else set())
        assert body["user_prompt"] == task.user_prompt
        assert body.get("prompt_blocks") == (task.prompt_blocks or None)
        assert body["callback_topic"] == "cj.test.comparison_results"
        assert body["llm_config_overrides"] == {
            "provider_override": "openai",
            "model_override": "gpt-5.1",
            "temperature_override": 0.1,
        }
        assert body["correlation_id"] == str(submission.correlation_id)
        assert body["metadata"] == {
            "essay_a_id": task.essay_a_id,
            "essay_b_id": task.essay_b_id,
            "bos_batch_id": "bos-7",
            "experiment": None,
            "cj_batch_id": "42",
            "cj_source": "eng5_runner",
            "cj_llm_batching_mode": mode,
            "cj_request_type": "cj_retry",
            "cj_llm_batching_decided_by": "flag",
            "comparison_iteration": 3,
            "preferred_bundle_size": 3,
        }
        assert submission.queue_id == f"queue-{submission.correlation_id}"


async def test_an_alias_override_goes_out_in_the_wire_spelling(
    make_resolver: ResolverFactory, metrics: BatchingMetrics, lps: LPSServer
) -> None:
    resolver, _ = make_resolver(static("per_request"))
    overrides = overrides_from_envelope_metadata(
        {"llm_batching_mode_hint": "provider_serial_bundle"}
    )
    async with interaction_on(lps, resolver, metrics) as interaction:
        await interaction.submit_batch(BatchContext(2, overrides=overrides), wave(2))
    assert {r.body["metadata"]["cj_llm_batching_mode"] for r in lps.requests} == {"serial_bundle"}


async def test_the_store_and_pass_back_loop_keeps_a_batch_in_its_arm(
    make_resolver: ResolverFactory, metrics: BatchingMetrics, lps: LPSServer
) -> None:
    """The README's loop: store the returned resolution, pass it back on the next wave;
    the flag changes in between, the batch's mode does not, and the wire says pinned."""
    resolver, flags = make_resolver(static("provider_batch_api"))
    async with interaction_on(lps, resolver, metrics) as interaction:
        first = await interaction.submit_batch(BatchContext(5), wave(2, "w0"))
        stored = first.resolution.to_record()
        flags.update(document(mode_flag(default_variant="per_request"), version="test-2"))
        pin = Resolution.from_record(stored)
        second = await interaction.submit_batch(
            BatchContext(5, request_type="cj_retry", comparison_iteration=1, pinned=pin),
            wave(2, "w1"),
        )
    assert (first.resolution.mode, second.resolution.mode) == (BATCH_API, BATCH_API)
    assert second.resolution.to_record() == stored  # storing it again changes nothing
    later = [r.body["metadata"] for r in lps.requests[2:]]
    assert {m["cj_llm_batching_pinned"] for m in later} == {True}
    assert {m["cj_llm_batching_decided_by"] for m in later} == {"flag"}
    assert all("cj_llm_batching_pinned" not in r.body["metadata"] for r in lps.requests[:2])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("size", "hint"), [(1, 1), (12, 12), (64, 64), (70, 64)])
async def test_bundle_hint_is_the_wave_size_capped_at_64_in_every_mode(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    lps: LPSServer,
    mode: str,
    size: int,
    hint: int,
) -> None:
    resolver, _ = make_resolver(static(mode))
    async with interaction_on(lps, resolver, metrics) as interaction:
        result = await interaction.submit_batch(BatchContext(8, llm_provider="openai"), wave(size))
    assert result.queued == size
    assert {r.body["metadata"]["preferred_bundle_size"] for r in lps.requests} == {hint}


async def test_task_overrides_win_and_only_set_fields_are_sent(
    make_resolver: ResolverFactory, metrics: BatchingMetrics, lps: LPSServer
) -> None:
    resolver, _ = make_resolver(
        static("serial_bundle"), DEFAULT_LLM_MODEL="gpt-test", DEFAULT_LLM_TEMPERATURE=0.7
    )
    tuned = LLMConfigOverrides(
        provider_override=OPENAI,
        model_override="gpt-5.1-mini",
        temperature_override=0.0,
        max_tokens_override=800,
        reasoning_effort="high",
        output_verbosity="low",
    )
    partial = LLMConfigOverrides(provider_override=OPENAI, reasoning_effort="none")
    tasks = [
        ComparisonTask("a", "b", "tuned", llm_config_overrides=tuned),
        ComparisonTask("c", "d", "partial", llm_config_overrides=partial),
        ComparisonTask("e", "f", "defaults"),
    ]
    async with interaction_on(lps, resolver, metrics) as interaction:
        result = await interaction.submit_batch(BatchContext(4, llm_provider="openai"), tasks)
    sent = [lps.requests_for(s.correlation_id)[0].body for s in result.submissions]
    assert [body["llm_config_overrides"] for body in sent] == [
        {
            "provider_override": "openai",
            "model_override": "gpt-5.1-mini",
            "temperature_override": 0.0,
            "max_tokens_override": 800,
            "reasoning_effort": "high",
            "output_verbosity": "low",
        },
        {
            "provider_override": "openai",
            "model_override": "gpt-test",
            "temperature_override": 0.7,
            "reasoning_effort": "none",
        },
        {"provider_override": "openai", "model_override": "gpt-test", "temperature_override": 0.7},
    ]
    copied = [
        {k: body["metadata"].get(k) for k in ("reasoning_effort", "output_verbosity")}
        for body in sent
    ]
    assert copied == [
        {"reasoning_effort": "high", "output_verbosity": "low"},
        {"reasoning_effort": "none", "output_verbosity": None},
        {"reasoning_effort": None, "output_verbosity": None},
    ]
    assert "output_verbosity" not in sent[1]["metadata"]


async def test_two_tasks_with_one_correlation_id_are_refused_before_anything_is_sent(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
) -> None:
    resolver, _ = make_resolver(static("serial_bundle"))
    twice = uuid.uuid4()
    tasks = [
        ComparisonTask("a", "b", "p", correlation_id=twice),
        ComparisonTask("c", "d", "p"),
        ComparisonTask("e", "f", "p", correlation_id=str(twice)),  # type: ignore[arg-type]
    ]
    async with interaction_on(lps, resolver, metrics) as interaction:
        with pytest.raises(ValueError, match=f"correlation_id: {twice} given to more than one"):
            await interaction.submit_batch(BatchContext(3), tasks)
    assert lps.request_count == 0
    assert counter_total(registry, "cj_llm_batching_resolutions") == 0
    assert requests_counted(registry) == only(SERIAL, 0)
    assert batches_counted(registry) == only(SERIAL, 0)


def test_a_task_takes_a_correlation_id_as_uuid_or_text() -> None:
    cid = uuid.uuid4()
    assert ComparisonTask("a", "b", "p", correlation_id=str(cid)).correlation_id == cid  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="correlation_id: 'pair-7' is not a UUID"):
        ComparisonTask("a", "b", "p", correlation_id="pair-7")  # type: ignore[arg-type]


# --- counting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [{"bos_batch_id": object()}, {"x": float("inf")}, {7: "x"}, {"essay_b_id": "e"}],
    ids=["not-json", "infinity", "int-key", "task-key"],
)
async def test_bad_metadata_is_refused_before_anything_is_resolved_or_sent(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
    metadata: dict[Any, Any],
) -> None:
    resolver, _ = make_resolver(static("serial_bundle"))
    async with interaction_on(lps, resolver, metrics) as interaction:
        with pytest.raises(ValueError, match="metadata"):
            await interaction.submit_batch(BatchContext(3), wave(3), metadata=metadata)
    assert lps.request_count == 0
    assert counter_total(registry, "cj_llm_batching_resolutions") == 0
    assert requests_counted(registry) == only(SERIAL, 0)


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
    assert result.started
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
        # perform_comparisons takes the request type from the context too
        await interaction.perform_comparisons(
            wave(2, "p"), replace(context, request_type=" CJ_Retry ")
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
        # perform_comparisons resolves too: the override wins over the flag here
        pinned = replace(
            retry, overrides=BatchConfigOverrides(llm_batching_mode_override=PER_REQUEST)
        )
        fourth = await interaction.perform_comparisons(wave(3, "w4-"), pinned)

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
        "circuit_open_then_ok": (
            nested_error(503, "CIRCUIT_BREAKER_OPEN", "open") if first else queue_id_for(request)
        ),
        "bad_request": bad_request(),
        "not_configured": configuration_error(),
        "rate_limited": too_many_requests(retry_after="1"),
        "server_error_then_ok": server_error(500) if first else queue_id_for(request),
        "dropped": drop_connection(),
        "slow": slow(20 * TIMEOUT_SECONDS),
    }
    return replies[scenario]


# scenario: (queued, status, code, retryable, attempts)
OUTCOMES: dict[str, tuple[bool, int | None, str | None, bool | None, int]] = {
    "ok": (True, None, None, None, 1),
    "circuit_open_then_ok": (True, None, None, None, 2),
    "bad_request": (False, 400, None, False, 1),
    "not_configured": (False, 500, "CONFIGURATION_ERROR", False, 1),
    "rate_limited": (False, 429, None, True, MAX_RETRIES + 1),
    "server_error_then_ok": (True, None, None, None, 2),
    "dropped": (False, None, "CONNECTION_ERROR", True, MAX_RETRIES + 1),
    "slow": (False, None, "TIMEOUT", True, MAX_RETRIES + 1),
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
        "circuit_open_then_ok",
        "bad_request",
        "not_configured",
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
        queued, status, code, retryable, attempts = OUTCOMES[scenario]
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
        assert (error.status, error.code, error.retryable, error.attempts) == (
            status,
            code,
            retryable,
            attempts,
        ), scenario
        assert error.correlation_id == cid
    slow_error = result.submissions[scenarios.index("slow")].error
    assert slow_error is not None
    assert "deadline" in slow_error.message
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
    """A client with a bug for some prompts: before sending, or after."""

    async def submit(
        self, request: LLMComparisonRequest, *, on_first_attempt: Callable[[], object] | None = None
    ) -> QueuedComparison:
        if request.user_prompt.startswith("explode before"):
            raise RuntimeError("client bug")
        queued = await super().submit(request, on_first_attempt=on_first_attempt)
        if request.user_prompt.startswith("explode after"):
            raise RuntimeError("client bug")
        return queued


async def test_an_unexpected_client_exception_costs_one_comparison(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    resolver, _ = make_resolver(static("per_request"))
    tasks = [
        ComparisonTask("a", "b", "fine"),
        ComparisonTask("c", "d", "explode before sending"),
        ComparisonTask("e", "f", "explode after sending"),
        ComparisonTask("g", "h", "fine too"),
    ]
    async with interaction_on(lps, resolver, metrics, client=ExplodingClient) as interaction:
        result = await interaction.submit_batch(BatchContext(6), tasks)
    assert [s.queued for s in result.submissions] == [True, False, False, True]
    errors = [s.error for s in result.submissions[1:3]]
    assert [(e.status, e.code, e.retryable, e.attempts) for e in errors if e] == [
        (None, CLIENT_ERROR, False, 0),
        (None, CLIENT_ERROR, False, 1),
    ]
    assert all(e is not None and "RuntimeError: client bug" in e.message for e in errors)
    assert "LPS submit raised unexpectedly" in caplog.text
    assert requests_counted(registry) == only(PER_REQUEST, 3)  # what went out


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
    assert (error.status, error.code, error.retryable, error.attempts) == (
        None,
        NOT_SENT,
        False,
        0,
    )
    assert "'anthropic' differs from the batch's provider 'openai'" in error.message
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


# --- back-pressure: LPS's queue is full -------------------------------------------------------


def full_from(first_full: int) -> Callable[[RecordedRequest], Reply]:
    """Queue requests until `first_full` arrived, then answer queue full (300 s)."""

    def answer(request: RecordedRequest) -> Reply:
        return queue_full() if request.index >= first_full else queue_id_for(request)

    return answer


def test_the_backpressure_counter_is_exposed_from_zero(
    metrics: BatchingMetrics, registry: CollectorRegistry
) -> None:
    assert backpressure_counted(registry) == 0
    metrics.record_backpressure()
    assert backpressure_counted(registry) == 1


async def test_queue_full_holds_back_the_rest_of_the_wave_unsent_and_uncounted(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
) -> None:
    # One POST at a time, so "the rest of the wave" is exact: tasks 3.. never go out.
    resolver, _ = make_resolver(static("serial_bundle"), LPS_MAX_CONCURRENCY=1)
    lps.set_default(full_from(2))
    tasks = wave(20)
    async with interaction_on(lps, resolver, metrics, clock=Clock()) as interaction:
        result = await interaction.submit_batch(BatchContext(30, llm_provider="openai"), tasks)

    assert lps.request_count == 3
    assert [s.task for s in result.submissions] == tasks  # each task once, in order
    queued, full, held = result.submissions[:2], result.submissions[2], result.submissions[3:]
    assert all(s.queued for s in queued)
    assert full.error is not None
    assert (full.error.status, full.error.code, full.error.attempts) == (202, QUEUE_FULL, 1)
    assert full.error.retry_after_seconds == 300
    for submission in held:
        error = submission.error
        assert error is not None
        assert (error.status, error.code, error.retryable, error.attempts) == (
            None,
            QUEUE_FULL,
            True,
            0,
        )
        assert error.retry_after_seconds == 300  # the injected clock did not move
        assert lps.requests_for(submission.correlation_id) == []
    assert requests_counted(registry) == only(SERIAL, 3)
    assert backpressure_counted(registry) == 1
    assert batches_counted(registry) == only(SERIAL, 1)


@pytest.mark.parametrize("cooldown", [30, 0])
async def test_a_queue_full_answer_asking_for_no_wait_still_holds_back_the_wave(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    lps: LPSServer,
    cooldown: int,
) -> None:
    """A retry-after of 0 (or no cooldown at all) must not turn the rest of the wave into
    one probe after another: the first queue-full answer stops the wave."""
    resolver, _ = make_resolver(
        static("serial_bundle"), LPS_MAX_CONCURRENCY=1, LPS_QUEUE_FULL_COOLDOWN_SECONDS=cooldown
    )
    lps.set_default(lambda _request: queue_full(retry_after_seconds=0))
    async with interaction_on(lps, resolver, metrics, clock=Clock()) as interaction:
        result = await interaction.submit_batch(BatchContext(33), wave(20))
    assert lps.request_count == 1
    assert [s.error.attempts if s.error else None for s in result.submissions[1:]] == [0] * 19
    assert {s.error.code for s in result.submissions if s.error} == {QUEUE_FULL}


async def test_during_the_cooldown_new_waves_fail_fast_and_start_nothing(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
) -> None:
    resolver, _ = make_resolver(static("per_request"), LPS_QUEUE_FULL_COOLDOWN_SECONDS=30)
    lps.script(queue_full(retry_after_seconds=300))
    clock = Clock()
    async with interaction_on(lps, resolver, metrics, clock=clock) as interaction:
        await interaction.submit_batch(BatchContext(31), wave(1))
        clock.now += 20
        other = await interaction.submit_batch(BatchContext(32), wave(12))
    assert lps.request_count == 1
    assert [s.error.attempts if s.error else None for s in other.submissions] == [0] * 12
    assert {s.error.retry_after_seconds for s in other.submissions if s.error} == {280}
    assert requests_counted(registry) == only(PER_REQUEST, 1)
    assert batches_counted(registry) == only(PER_REQUEST, 1)  # batch 32 never started
    assert not other.started  # ...and says so: re-submit it as cj_comparison
    assert backpressure_counted(registry) == 1


async def test_after_the_cooldown_one_probe_goes_first_then_the_wave(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
) -> None:
    resolver, _ = make_resolver(static("per_request"), LPS_MAX_CONCURRENCY=8)
    lps.script(queue_full(retry_after_seconds=300), slow(0.2, accepted()))
    clock = Clock()
    async with interaction_on(lps, resolver, metrics, clock=clock) as interaction:
        await interaction.submit_batch(BatchContext(33), wave(1))
        clock.now += 31
        later = await interaction.submit_batch(BatchContext(34), wave(12))
    assert later.queued == 12
    probe, *rest = lps.requests[1:]
    assert len(rest) == 11
    assert all(r.received_at >= probe.received_at + 0.15 for r in rest)  # after its answer
    assert requests_counted(registry) == only(PER_REQUEST, 13)


# --- cancellation ----------------------------------------------------------------------------


class Stuck:
    """An injected backoff sleep that never returns (until cancelled)."""

    async def __call__(self, seconds: float) -> None:
        await asyncio.Event().wait()


@pytest.mark.parametrize(
    ("reply", "sleep"),
    [
        pytest.param(slow(60.0), NoSleep(), id="cancelled-in-flight"),
        pytest.param(server_error(503), Stuck(), id="cancelled-in-backoff"),
    ],
)
async def test_a_cancelled_wave_counts_exactly_what_it_sent(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: LPSServer,
    reply: Reply,
    sleep: Any,
) -> None:
    resolver, _ = make_resolver(static("serial_bundle"), LPS_MAX_CONCURRENCY=5)
    lps.set_default(reply)
    async with interaction_on(lps, resolver, metrics, sleep=sleep) as interaction:
        submitting = asyncio.create_task(
            interaction.submit_batch(BatchContext(40, llm_provider="openai"), wave(30))
        )
        assert await asyncio.to_thread(lps.wait_for_requests, 5)
        submitting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await submitting
    sent = Tally(r.body["metadata"]["cj_llm_batching_mode"] for r in lps.requests)
    assert len({r.correlation_id for r in lps.requests}) == 5
    assert requests_counted(registry) == {m.value: float(sent[m.value]) for m in LLMBatchingMode}
    assert requests_counted(registry) == only(SERIAL, 5)
    assert batches_counted(registry) == only(SERIAL, 1)


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


def test_batch_config_overrides_are_read_with_their_bounds() -> None:
    overrides = overrides_from_envelope_metadata(
        {
            "batch_config_overrides": {
                "batch_size": 50,
                "max_concurrent_batches": 2,
                "partial_completion_threshold": 0.9,
            },
            "max_comparisons": 550,
        }
    )
    assert overrides == BatchConfigOverrides(
        batch_size=50,
        max_concurrent_batches=2,
        partial_completion_threshold=0.9,
        max_comparisons=550,
    )


def test_unknown_batch_config_keys_are_ignored_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="cj_batching.overrides"):
        overrides = overrides_from_envelope_metadata(
            {"batch_config_overrides": {"batch_size": 20, "future_knob": True}}
        )
    assert overrides == BatchConfigOverrides(batch_size=20)
    (record,) = caplog.records
    assert record.levelno == logging.DEBUG
    assert "future_knob" in record.getMessage()


@pytest.mark.parametrize(
    ("metadata", "named"),
    [
        ({"batch_config_overrides": {"batch_size": 5}}, "batch_config_overrides.batch_size"),
        (
            {"batch_config_overrides": {"max_concurrent_batches": True}},
            "batch_config_overrides.max_concurrent_batches",
        ),
        (
            {"batch_config_overrides": {"partial_completion_threshold": 1.5}},
            "batch_config_overrides.partial_completion_threshold",
        ),
        ({"batch_config_overrides": ["batch_size", 20]}, "batch_config_overrides"),
        ({"max_comparisons": 0}, "max_comparisons"),
        ({"max_comparisons": "many"}, "max_comparisons"),
    ],
)
def test_a_bad_envelope_value_is_ignored_with_one_warning_naming_it(
    metadata: dict[str, Any], named: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="cj_batching.overrides"):
        overrides = overrides_from_envelope_metadata(
            {**metadata, "llm_batching_mode_hint": "per_request"}
        )
    assert overrides == BatchConfigOverrides(llm_batching_mode_override=PER_REQUEST)  # the rest
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"ignoring {named} " in warning.getMessage()
