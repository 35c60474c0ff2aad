"""LPSClient against a real loopback LPS (tests/lps_server.py): outcomes, retries, deadlines,
back-pressure, the wire body, secrets."""

from __future__ import annotations

import asyncio
import logging
import pickle
import random
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from cj_batching.lps import (
    DEFAULT_CALLBACK_TOPIC,
    MAX_BODY_BYTES,
    QUEUE_FULL,
    LLMComparisonRequest,
    LLMConfigOverrides,
    LPSClient,
    LPSError,
    QueuedComparison,
    Transport,
)
from cj_batching.lps.retry import SleepFunction
from cj_batching.modes import LLMProviderType

from .lps_server import (
    LPSServer,
    RecordedRequest,
    Reply,
    accepted,
    bad_request,
    configuration_error,
    drip,
    drop_connection,
    endless,
    nested_error,
    ok_200,
    oversized,
    queue_full,
    retryable_error,
    running_lps_server,
    server_error,
    slow,
    too_many_requests,
)

TOKEN = "s3cret-token-value-0123456789"


class SleepRecorder:
    """An injected sleep: records the waits, never sleeps."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


class Clock:
    """An injected monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lps() -> Iterator[LPSServer]:
    with running_lps_server() as server:
        yield server


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def make_client(lps: LPSServer, sleeps: SleepFunction, **kwargs: Any) -> LPSClient:
    options: dict[str, Any] = {"timeout_seconds": 5.0, "rng": FixedRandom(0.5)}
    options.update(kwargs)
    return LPSClient(lps.base_url, sleep=sleeps, **options)


def make_request(**overrides: Any) -> LLMComparisonRequest:
    fields: dict[str, Any] = {
        "user_prompt": "Compare essay A and essay B.",
        "callback_topic": DEFAULT_CALLBACK_TOPIC,
        "llm_config_overrides": LLMConfigOverrides(provider_override=LLMProviderType.OPENAI),
        "correlation_id": uuid.uuid4(),
        "metadata": {"essay_a_id": "a1", "essay_b_id": "b1", "bos_batch_id": "bos-1"},
    }
    fields.update(overrides)
    return LLMComparisonRequest(**fields)


async def submit_error(client: LPSClient, request: LLMComparisonRequest | None = None) -> LPSError:
    with pytest.raises(LPSError) as info:
        await client.submit(request or make_request())
    return info.value


def outcome(error: LPSError) -> tuple[int | None, str | None, bool, int]:
    return (error.status, error.code, error.retryable, error.attempts)


# --- success and final outcomes ------------------------------------------------------------


async def test_202_returns_queued_comparison(lps: LPSServer, sleeps: SleepRecorder) -> None:
    queue_id = str(uuid.uuid4())
    lps.script(accepted(queue_id, estimated_wait_minutes=3, added_by_newer_lps="ignored"))
    async with make_client(lps, sleeps) as client:
        result = await client.submit(make_request())
    assert result == QueuedComparison(
        queue_id=queue_id,
        status="queued",
        message="Request queued for processing",
        estimated_wait_minutes=3,
    )
    [request] = lps.requests
    assert (request.method, request.path) == ("POST", "/api/v1/comparison")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept-encoding"] == "identity"
    assert sleeps.waits == []


async def test_200_is_a_protocol_error_and_not_retried(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    lps.set_default(ok_200())
    async with make_client(lps, sleeps) as client:
        error = await submit_error(client)
    assert outcome(error) == (200, "PROTOCOL_ERROR", False, 1)
    assert "protocol error" in error.message
    assert lps.request_count == 1


@pytest.mark.parametrize(
    ("reply", "code", "texts"),
    [
        (
            bad_request("Invalid request", "user_prompt is empty"),
            None,
            ["Invalid request", "empty"],
        ),
        (
            nested_error(400, "VALIDATION_ERROR", "provider_override is required"),
            "VALIDATION_ERROR",
            ["provider_override is required"],
        ),
        (Reply(404, {"detail": "Not Found"}), None, ["Not Found"]),
        (Reply(422, {"error": "Unprocessable"}), None, ["Unprocessable"]),
    ],
    ids=["flat-400", "nested-400", "404", "422"],
)
async def test_4xx_is_final_and_carries_the_error(
    lps: LPSServer, sleeps: SleepRecorder, reply: Reply, code: str | None, texts: list[str]
) -> None:
    lps.set_default(reply)
    async with make_client(lps, sleeps) as client:
        error = await submit_error(client)
    assert outcome(error) == (reply.status, code, False, 1)
    for text in texts:
        assert text in error.message
        assert text in str(error)
    assert lps.request_count == 1
    assert sleeps.waits == []


async def test_configuration_error_is_not_retried(lps: LPSServer, sleeps: SleepRecorder) -> None:
    lps.set_default(configuration_error("Provider 'google' not found"))
    async with make_client(lps, sleeps, max_retries=3) as client:
        error = await submit_error(client)
    assert outcome(error) == (500, "CONFIGURATION_ERROR", False, 1)
    assert "Provider 'google' not found" in error.message
    assert lps.request_count == 1
    assert sleeps.waits == []


# --- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        server_error(500),
        server_error(502),
        server_error(503),
        server_error(504),
        nested_error(503, "CIRCUIT_BREAKER_OPEN", "circuit open"),
        nested_error(500, "PROCESSING_ERROR", "hiccup"),
        too_many_requests(None),
    ],
    ids=["500", "502", "503", "504", "nested-503-circuit", "nested-500-processing", "429"],
)
async def test_transient_answers_are_retried_then_succeed(
    lps: LPSServer, sleeps: SleepRecorder, reply: Reply
) -> None:
    lps.script(reply, accepted())
    async with make_client(lps, sleeps) as client:
        result = await client.submit(make_request())
    assert result.status == "queued"
    assert lps.request_count == 2
    assert len(sleeps.waits) == 1


async def test_retry_after_header_is_the_wait_capped_at_backoff_max(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    lps.script(too_many_requests("1"), too_many_requests("30"), accepted())
    async with make_client(lps, sleeps, backoff_max_seconds=4.0) as client:
        await client.submit(make_request())
    assert sleeps.waits == [1.0, 4.0]


async def test_body_retry_after_is_honoured_like_the_header(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    lps.script(Reply(503, {"error": "down", "retry_after_seconds": 2}), accepted())
    async with make_client(lps, sleeps) as client:
        await client.submit(make_request())
    assert sleeps.waits == [2.0]


@pytest.mark.parametrize(
    "reply",
    [
        retryable_error(400, "Provider busy"),
        nested_error(409, "PROVIDER_BUSY", "busy", is_retryable=True),
    ],
    ids=["flat", "nested"],
)
async def test_is_retryable_true_is_honoured(
    lps: LPSServer, sleeps: SleepRecorder, reply: Reply
) -> None:
    lps.script(reply, accepted())
    async with make_client(lps, sleeps) as client:
        await client.submit(make_request())
    assert lps.request_count == 2


async def test_is_retryable_false_is_honoured(lps: LPSServer, sleeps: SleepRecorder) -> None:
    lps.set_default(nested_error(503, "SERVICE_UNAVAILABLE", "gone", is_retryable=False))
    async with make_client(lps, sleeps) as client:
        error = await submit_error(client)
    assert outcome(error) == (503, "SERVICE_UNAVAILABLE", False, 1)


@pytest.mark.parametrize("max_retries", [0, 1, 3])
async def test_attempts_never_exceed_max_retries_plus_one(
    lps: LPSServer, sleeps: SleepRecorder, max_retries: int
) -> None:
    lps.set_default(server_error(503, "Service unavailable"))
    async with make_client(lps, sleeps, max_retries=max_retries) as client:
        error = await submit_error(client)
    assert outcome(error) == (503, None, True, max_retries + 1)
    assert lps.request_count == max_retries + 1
    assert len(sleeps.waits) == max_retries


@pytest.mark.parametrize(
    ("rng_value", "expected"), [(0.0, [0.5, 1.0, 1.5]), (0.5, [0.75, 1.5, 2.25])]
)
async def test_backoff_is_exponential_capped_with_equal_jitter(
    lps: LPSServer, sleeps: SleepRecorder, rng_value: float, expected: list[float]
) -> None:
    lps.set_default(server_error(500))
    client = make_client(
        lps,
        sleeps,
        max_retries=3,
        backoff_initial_seconds=1.0,
        backoff_max_seconds=3.0,
        rng=FixedRandom(rng_value),
    )
    async with client:
        await submit_error(client)
    assert sleeps.waits == pytest.approx(expected)


async def test_dropped_connection_is_retried(lps: LPSServer, sleeps: SleepRecorder) -> None:
    lps.script(drop_connection(), accepted())
    async with make_client(lps, sleeps) as client:
        result = await client.submit(make_request())
    assert result.status == "queued"
    assert lps.request_count == 2


async def test_connection_refused_is_a_retryable_connection_error(sleeps: SleepRecorder) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = LPSClient(f"http://127.0.0.1:{port}/api/v1", sleep=sleeps, max_retries=2)
    async with client:
        error = await submit_error(client)
    assert outcome(error) == (None, "CONNECTION_ERROR", True, 3)
    assert "ConnectError" in error.message
    assert "no answer" in str(error)


async def test_policy_per_attempt_under_concurrency(lps: LPSServer, sleeps: SleepRecorder) -> None:
    def fail_first_two(request: RecordedRequest) -> Reply | None:
        return server_error(503) if request.attempt <= 2 else None

    lps.set_policy(fail_first_two)
    requests = [make_request() for _ in range(20)]
    async with make_client(lps, sleeps) as client:
        results = await asyncio.gather(*(client.submit(r) for r in requests))
    assert len({r.queue_id for r in results}) == 20
    for request in requests:
        assert [r.attempt for r in lps.requests_for(request.correlation_id)] == [1, 2, 3]
    assert lps.errors == []


# --- deadlines and body size -------------------------------------------------------------------

DEADLINE = 0.5
MARGIN = 1.5  # scheduling slack on a loaded 2-core machine; the drip alone would take 60 s


async def timed_error(client: LPSClient) -> tuple[LPSError, float]:
    started = time.monotonic()
    error = await submit_error(client)
    return error, time.monotonic() - started


async def test_a_slow_answer_times_out_and_is_retried(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    lps.script(slow(30.0), accepted())
    async with make_client(lps, sleeps, timeout_seconds=DEADLINE) as client:
        result = await client.submit(make_request())
    assert result.status == "queued"
    assert lps.request_count == 2


async def test_a_drip_fed_answer_is_bounded_by_the_total_deadline(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    lps.set_default(drip(0.2))  # ~300 bytes at 5 bytes/s: each read is quick, the whole is not
    async with make_client(lps, sleeps, timeout_seconds=DEADLINE, max_retries=1) as client:
        error, elapsed = await timed_error(client)
    assert outcome(error) == (None, "TIMEOUT", True, 2)
    assert f"{DEADLINE:g} s deadline" in error.message
    assert elapsed < 2 * DEADLINE + MARGIN


@pytest.mark.parametrize(
    "reply",
    [oversized(202, MAX_BODY_BYTES + 1), oversized(500, 1_000_000), endless(202)],
    ids=["declared-202", "declared-500", "chunked-endless"],
)
async def test_an_oversized_answer_is_cut_off_as_a_protocol_error(
    lps: LPSServer, sleeps: SleepRecorder, reply: Reply
) -> None:
    lps.set_default(reply)
    async with make_client(lps, sleeps, timeout_seconds=10.0) as client:
        error, elapsed = await timed_error(client)
    assert outcome(error) == (reply.status, "PROTOCOL_ERROR", False, 1)
    assert f"over {MAX_BODY_BYTES} bytes" in error.message
    assert elapsed < 5.0  # cut off at the cap, not at the deadline
    assert lps.request_count == 1


async def test_an_answer_just_under_the_cap_is_read(lps: LPSServer, sleeps: SleepRecorder) -> None:
    lps.set_default(oversized(202, MAX_BODY_BYTES - 100))
    async with make_client(lps, sleeps) as client:
        result = await client.submit(make_request())
    assert result.queue_id == "q-big"


# --- concurrency and the pool ----------------------------------------------------------------


def peak_in_flight(lps: LPSServer, hold: float) -> int:
    """The most requests the server held at once, each answered `hold` s after arrival (a
    client slot frees only after its answer, so a request that reused one arrived later)."""
    arrivals = sorted(r.received_at for r in lps.requests)
    return max(sum(1 for q in arrivals if q <= r < q + hold) for r in arrivals)


async def test_concurrency_above_100_has_no_pool_timeouts(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    hold = 0.5
    lps.set_default(slow(hold))
    concurrency, total = 120, 150  # ~1.5 s: httpx opens ~120 connections for the first wave
    async with make_client(
        lps, sleeps, max_concurrency=concurrency, timeout_seconds=10.0, max_retries=0
    ) as client:
        results = await asyncio.gather(
            *(client.submit(make_request()) for _ in range(total)), return_exceptions=True
        )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert lps.request_count == total
    # More than the old fixed pool of 100 were in flight at once, never more than allowed.
    assert 100 < peak_in_flight(lps, hold) <= concurrency


async def test_max_concurrency_holds_across_callers(lps: LPSServer, sleeps: SleepRecorder) -> None:
    lps.set_default(slow(0.2))
    async with make_client(lps, sleeps, max_concurrency=3) as client:
        waves = [[client.submit(make_request()) for _ in range(4)] for _ in range(3)]
        await asyncio.gather(*(asyncio.gather(*wave) for wave in waves))
    assert peak_in_flight(lps, 0.2) == 3


# --- back-pressure ---------------------------------------------------------------------------


async def test_queue_full_is_not_retried_and_carries_lps_retry_after(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    lps.set_default(queue_full(retry_after_seconds=300))
    async with make_client(lps, sleeps, max_retries=3) as client:
        error = await submit_error(client)
    assert outcome(error) == (202, QUEUE_FULL, True, 1)
    assert error.queue_full
    assert error.retry_after_seconds == 300
    assert "REQUEST_QUEUED" in error.message
    assert lps.request_count == 1
    assert sleeps.waits == []


async def test_during_the_cooldown_submissions_fail_fast_without_a_request(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    clock = Clock()
    lps.script(queue_full(retry_after_seconds=300))
    async with make_client(lps, sleeps, clock=clock, queue_full_cooldown_seconds=30) as client:
        await submit_error(client)
        clock.now += 29.0
        error = await submit_error(client)
    assert outcome(error) == (None, QUEUE_FULL, True, 0)
    assert error.retry_after_seconds == pytest.approx(300 - 29)
    assert lps.request_count == 1
    assert not client.backpressure.is_open


async def test_the_cooldown_is_lps_retry_after_when_shorter(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    clock = Clock()
    lps.script(queue_full(retry_after_seconds=5))
    async with make_client(lps, sleeps, clock=clock, queue_full_cooldown_seconds=30) as client:
        await submit_error(client)
        clock.now += 4.9
        held = await submit_error(client)
        clock.now += 0.2
        await client.submit(make_request())
    assert held.attempts == 0
    assert lps.request_count == 2
    assert client.backpressure.is_open


async def test_after_the_cooldown_one_probe_decides_for_everyone(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    clock = Clock()
    lps.script(queue_full(), slow(0.3))  # the probe answers 202, slowly
    async with make_client(lps, sleeps, clock=clock) as client:
        await submit_error(client)
        clock.now += 31.0
        results = await asyncio.gather(*(client.submit(make_request()) for _ in range(5)))
    assert all(r.status == "queued" for r in results)
    probe, *others = lps.requests[1:]
    assert len(others) == 4
    assert all(other.received_at >= probe.received_at + 0.25 for other in others)  # waited
    assert client.backpressure.is_open


async def test_a_probe_answered_queue_full_closes_again_for_everyone(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    clock = Clock()
    lps.script(queue_full(), slow(0.3, queue_full(retry_after_seconds=60)))
    async with make_client(lps, sleeps, clock=clock) as client:
        await submit_error(client)
        clock.now += 31.0
        results = await asyncio.gather(
            *(client.submit(make_request()) for _ in range(5)), return_exceptions=True
        )
    assert lps.request_count == 2  # the first answer and the probe, nothing else
    errors = [r for r in results if isinstance(r, LPSError)]
    assert len(errors) == 5
    assert sorted(e.attempts for e in errors) == [0, 0, 0, 0, 1]
    assert {e.code for e in errors} == {QUEUE_FULL}
    assert all(e.retry_after_seconds == pytest.approx(60) for e in errors)


async def test_a_cancelled_probe_hands_the_probe_on(lps: LPSServer, sleeps: SleepRecorder) -> None:
    clock = Clock()
    lps.script(queue_full(), slow(30.0))
    async with make_client(lps, sleeps, clock=clock) as client:
        await submit_error(client)
        clock.now += 31.0
        probe = asyncio.create_task(client.submit(make_request()))
        assert await asyncio.to_thread(lps.wait_for_requests, 2)
        waiter = asyncio.create_task(client.submit(make_request()))
        await asyncio.sleep(0)  # the waiter is now waiting for the probe's verdict
        probe.cancel()
        result = await asyncio.wait_for(waiter, 5.0)
    assert result.status == "queued"
    assert probe.cancelled()
    assert lps.request_count == 3


class GatedSleep:
    """An injected sleep that returns only when the test opens the gate."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.entered.set()
        await self.gate.wait()


async def test_a_retry_is_held_back_once_the_queue_is_full(lps: LPSServer) -> None:
    lps.script(server_error(503), queue_full())
    sleep = GatedSleep()
    async with make_client(lps, sleep) as client:
        first = asyncio.create_task(client.submit(make_request()))
        await asyncio.wait_for(sleep.entered.wait(), 5.0)  # 503: waiting to retry
        other = await submit_error(client)  # LPS: queue full
        sleep.gate.set()
        with pytest.raises(LPSError) as info:
            await asyncio.wait_for(first, 5.0)
    assert outcome(other) == (202, QUEUE_FULL, True, 1)
    assert outcome(info.value) == (None, QUEUE_FULL, True, 1)  # sent once, retry held back
    assert "retry held back" in info.value.message
    assert lps.request_count == 2


# --- the wire body ------------------------------------------------------------------------------


async def test_wire_body_leaves_out_nulls_and_keeps_metadata_as_given(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    correlation_id = uuid.uuid4()
    metadata = {
        "essay_a_id": "a1",
        "essay_b_id": "b1",
        "bos_batch_id": None,
        "nested": {"list": [1, 2.5, None, True], "text": "åäö"},
    }
    request = make_request(
        correlation_id=correlation_id,
        prompt_blocks=[{"target": "user_content", "content": "shared rubric", "cacheable": True}],
        llm_config_overrides=LLMConfigOverrides(
            provider_override="Anthropic",
            model_override=" claude-x ",
            temperature_override=0.3,
            max_tokens_override=512,
            reasoning_effort="low",
        ),
        metadata=metadata,
    )
    async with make_client(lps, sleeps) as client:
        await client.submit(request)
    [recorded] = lps.requests
    assert recorded.body == {
        "user_prompt": "Compare essay A and essay B.",
        "prompt_blocks": [
            {"target": "user_content", "content": "shared rubric", "cacheable": True}
        ],
        "callback_topic": "huleedu.llm_provider.comparison_result.v1",
        "llm_config_overrides": {
            "provider_override": "anthropic",
            "model_override": "claude-x",
            "temperature_override": 0.3,
            "max_tokens_override": 512,
            "reasoning_effort": "low",
        },
        "correlation_id": str(correlation_id),
        "metadata": metadata,
    }
    assert recorded.raw_body == request.wire_body()


@pytest.mark.parametrize("blocks", [None, []], ids=["none", "empty"])
async def test_absent_or_empty_prompt_blocks_are_left_out(
    lps: LPSServer, sleeps: SleepRecorder, blocks: list[Any] | None
) -> None:
    async with make_client(lps, sleeps) as client:
        await client.submit(make_request(prompt_blocks=blocks, metadata={}))
    body = lps.requests[0].body
    assert set(body) == {
        "user_prompt",
        "callback_topic",
        "llm_config_overrides",
        "correlation_id",
        "metadata",
    }


# --- secrets and logging ---------------------------------------------------------------------


def echo_headers(request: RecordedRequest) -> Reply:
    """A proxy that echoes the request headers in its error body."""
    details = {"request_headers": request.headers}
    return nested_error(500, "PROCESSING_ERROR", f"upstream failed for {request.headers}", details)


@pytest.mark.parametrize(
    "token", [TOKEN, SecretStr(TOKEN), f"  {TOKEN}\n"], ids=["str", "SecretStr", "from-a-file"]
)
async def test_bearer_token_is_sent_stripped_and_never_shown(
    lps: LPSServer, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture, token: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    lps.set_default(echo_headers)
    async with make_client(lps, sleeps, auth_token=token, max_retries=1) as client:
        error = await submit_error(client)
        shown = [repr(client), str(client), repr(error), str(error), error.message]
    assert [r.headers["authorization"] for r in lps.requests] == [f"Bearer {TOKEN}"] * 2
    assert "[REDACTED]" in error.message  # the echo was there, and was redacted
    shown += [pickle.loads(pickle.dumps(error)).message]
    shown += [record.getMessage() for record in caplog.records]
    shown += [repr(vars(record)) for record in caplog.records]
    assert caplog.records  # the retry and the failure were logged
    assert not [text for text in shown if TOKEN in text]


@pytest.mark.parametrize("token", [None, "", "  \n"], ids=["none", "empty", "blank"])
async def test_no_authorization_header_without_a_token(
    lps: LPSServer, sleeps: SleepRecorder, token: str | None
) -> None:
    async with make_client(lps, sleeps, auth_token=token) as client:
        await client.submit(make_request())
    assert "authorization" not in lps.requests[0].headers


async def test_retries_and_failures_are_logged_with_structure(
    lps: LPSServer, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cj_batching.lps.client")
    lps.set_default(nested_error(503, "CIRCUIT_BREAKER_OPEN", "open"))
    request = make_request()
    async with make_client(lps, sleeps, max_retries=1) as client:
        await submit_error(client, request)
    records = [r for r in caplog.records if r.name == "cj_batching.lps.client"]
    assert [r.levelno for r in records] == [logging.INFO, logging.WARNING]
    for record, attempt in zip(records, [1, 2], strict=True):
        assert record.__dict__["correlation_id"] == str(request.correlation_id)
        assert record.__dict__["attempt"] == attempt
        assert record.__dict__["status"] == 503
        assert record.__dict__["lps_error_code"] == "CIRCUIT_BREAKER_OPEN"


# --- URL, lifecycle, validation --------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/", "//"])
async def test_base_url_with_or_without_trailing_slash(
    lps: LPSServer, sleeps: SleepRecorder, suffix: str
) -> None:
    client = LPSClient(lps.base_url + suffix, sleep=sleeps)
    assert client.endpoint == f"{lps.base_url}/comparison"
    async with client:
        await client.submit(make_request())
    assert lps.requests[0].path == "/api/v1/comparison"


async def test_owned_http_client_is_closed_and_a_passed_one_is_not(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    async with httpx.AsyncClient(headers={"X-Test": "shared"}) as http:
        async with LPSClient(lps.base_url, http=http, sleep=sleeps) as client:
            await client.submit(make_request())
        assert not http.is_closed
        assert lps.requests[0].headers["x-test"] == "shared"
    owned = LPSClient(lps.base_url, sleep=sleeps)
    async with owned:
        pass
    with pytest.raises(RuntimeError):
        await owned.submit(make_request())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"base_url": ""}, "base_url: '' is not valid"),
        ({"base_url": "llm_provider_service:8080"}, "base_url: .*http:// or https://"),
        ({"base_url": "ftp://host/api"}, "base_url: 'ftp://host/api'.*http"),
        ({"base_url": "http://host/api?x=1"}, "base_url.*without a query"),
        (
            {"base_url": "http://user:pw@host/api"},
            r"base_url: the given str \(hidden\).*credentials",
        ),
        ({"base_url": "http://host:99999/api"}, "base_url.*not a valid URL"),
        ({"timeout_seconds": 0}, "timeout_seconds: 0 is not valid: .*greater than 0"),
        ({"timeout_seconds": 601}, "timeout_seconds: 601 .*less than or equal to 600"),
        ({"timeout_seconds": float("nan")}, "timeout_seconds: nan"),
        ({"timeout_seconds": True}, "timeout_seconds: True .*a bool is not a number"),
        ({"max_retries": -1}, "max_retries: -1 .*greater than or equal to 0"),
        ({"max_retries": 1.5}, "max_retries: 1.5"),
        ({"max_concurrency": 0}, "max_concurrency: 0 .*greater than or equal to 1"),
        ({"backoff_initial_seconds": -0.1}, "backoff_initial_seconds: -0.1"),
        ({"backoff_max_seconds": float("inf")}, "backoff_max_seconds: inf"),
        (
            {"backoff_initial_seconds": 2.0, "backoff_max_seconds": 1.0},
            r"backoff_max_seconds: 1.0 .*backoff_initial_seconds \(2.0\)",
        ),
        ({"queue_full_cooldown_seconds": -1}, "queue_full_cooldown_seconds: -1"),
        ({"http": "not a client"}, "http: 'not a client'.*httpx.AsyncClient"),
        ({"rng": 42}, "rng: 42"),
        ({"sleep": 1.0}, "sleep: 1.0 is not callable"),
        ({"clock": "now"}, "clock: 'now' is not callable"),
        ({"auth_token": 123}, r"auth_token: the given int \(hidden\)"),
    ],
)
def test_argument_validation(kwargs: dict[str, Any], match: str) -> None:
    options: dict[str, Any] = {"base_url": "http://lps:8080/api/v1"}
    options.update(kwargs)
    base_url = options.pop("base_url")
    with pytest.raises(ValueError, match=match):
        LPSClient(base_url, **options)


@pytest.mark.parametrize("token", [f"{TOKEN} x", "tøken", f"{TOKEN}\x00"])
def test_bad_token_is_rejected_without_showing_it(token: str) -> None:
    with pytest.raises(ValueError, match="auth_token") as info:
        LPSClient("http://lps:8080/api/v1", auth_token=token)
    assert token.strip() not in str(info.value)
    assert TOKEN not in str(info.value)


def test_from_settings_takes_every_lps_setting() -> None:
    from .conftest import make_settings

    settings = make_settings(
        LLM_PROVIDER_SERVICE_URL="http://lps.internal:9000/api/v2/",
        LPS_TIMEOUT_SECONDS=12,
        LPS_MAX_RETRIES=5,
        LPS_MAX_CONCURRENCY=7,
        LPS_QUEUE_FULL_COOLDOWN_SECONDS=4,
        LPS_AUTH_TOKEN=f"{TOKEN}\n",
    )
    client = LPSClient.from_settings(settings, max_retries=1)
    assert client.endpoint == "http://lps.internal:9000/api/v2/comparison"
    assert client.max_concurrency == 7
    assert client.backpressure.cooldown_seconds == 4
    assert repr(client) == (
        "LPSClient(endpoint='http://lps.internal:9000/api/v2/comparison', timeout_seconds=12, "
        "max_retries=1, max_concurrency=7, auth_token=set)"
    )


# --- models and errors ---------------------------------------------------------------------


def test_models_validate_the_contract_ranges() -> None:
    with pytest.raises(ValidationError, match="provider_override"):
        LLMConfigOverrides.model_validate({"model_override": "gpt"})
    assert (
        LLMConfigOverrides(provider_override=" OpenAI ").provider_override is LLMProviderType.OPENAI
    )
    for bad in (
        {"temperature_override": 2.5},
        {"temperature_override": -0.1},
        {"temperature_override": True},
        {"max_tokens_override": 0},
        {"model_override": "  "},
        {"reasoning_effort": "extreme"},
        {"output_verbosity": "none"},
        {"unknown": 1},
    ):
        with pytest.raises(ValidationError):
            LLMConfigOverrides.model_validate({"provider_override": "openai", **bad})
    for bad_fields in ({"user_prompt": ""}, {"callback_topic": ""}, {"callback_topic": "a b"}):
        with pytest.raises(ValidationError):
            make_request(**bad_fields)
    with pytest.raises(ValidationError):
        make_request(extra_field=1)
    request = make_request()
    with pytest.raises(ValidationError):
        request.user_prompt = "changed"  # type: ignore[misc]


def test_queued_comparison_ignores_unknown_keys() -> None:
    queued = QueuedComparison.model_validate({"queue_id": "q", "status": "queued", "new_field": 1})
    assert queued.queue_id == "q"
    assert (queued.message, queued.estimated_wait_minutes) == (None, None)


def test_lps_error_pickles_with_every_field() -> None:
    cid = uuid.uuid4()
    error = LPSError(
        "queue full",
        status=202,
        code=QUEUE_FULL,
        retryable=True,
        retry_after_seconds=300.0,
        attempts=1,
        correlation_id=cid,
    )
    clone = pickle.loads(pickle.dumps(error))
    assert repr(clone) == repr(error)
    assert (clone.status, clone.code, clone.retry_after_seconds, clone.correlation_id) == (
        202,
        QUEUE_FULL,
        300.0,
        cid,
    )


def test_lps_error_reads_well() -> None:
    cid = uuid.uuid4()
    error = LPSError(
        "[REDACTED] boom",
        status=500,
        code="PROCESSING_ERROR",
        retryable=True,
        attempts=4,
        correlation_id=cid,
    )
    assert str(error) == (
        "LPS submit failed after 4 attempt(s) (retryable): HTTP 500: PROCESSING_ERROR: "
        f"[REDACTED] boom [correlation_id={cid}]"
    )
    held = LPSError(
        "held back", code=QUEUE_FULL, retryable=True, retry_after_seconds=12.5, attempts=0
    )
    assert str(held) == (
        "LPS submit failed after 0 attempt(s) (retryable): not sent: QUEUE_FULL: held back "
        "[retry after 12.5 s]"
    )


# --- the LPS settings (one bound each, shared with the client) ------------------------------


def test_lps_settings_defaults_match_the_deployed_cj() -> None:
    from .conftest import make_settings

    settings = make_settings()
    assert settings.LLM_PROVIDER_SERVICE_URL == "http://llm_provider_service:8080/api/v1"
    assert (settings.DEFAULT_LLM_MODEL, settings.DEFAULT_LLM_TEMPERATURE) == ("gpt-5.1", 0.1)
    assert settings.LPS_QUEUE_FULL_COOLDOWN_SECONDS == 30
    assert settings.LPS_AUTH_TOKEN is None


@pytest.mark.parametrize(
    ("variable", "value", "shown"),
    [
        ("LLM_PROVIDER_SERVICE_URL", "llm_provider_service:8080", "'llm_provider_service:8080'"),
        ("LLM_PROVIDER_SERVICE_URL", "http://lps/api?x=1", "'http://lps/api?x=1'"),
        ("LLM_PROVIDER_SERVICE_URL", "http://cj:hunter2@lps/api", "'**********'"),
        ("LPS_TIMEOUT_SECONDS", "0", "'0'"),
        ("LPS_QUEUE_FULL_COOLDOWN_SECONDS", "-1", "'-1'"),
        ("DEFAULT_LLM_TEMPERATURE", "2.5", "'2.5'"),
        ("DEFAULT_LLM_MODEL", "  ", "'  '"),
        ("LPS_AUTH_TOKEN", f"{TOKEN} {TOKEN}", "'**********'"),
    ],
)
def test_a_bad_lps_setting_is_refused_at_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, shown: str
) -> None:
    from cj_batching import Settings, SettingsError

    monkeypatch.setenv(f"CJ_ASSESSMENT_SERVICE_{variable}", value)
    with pytest.raises(SettingsError) as info:
        Settings(_env_file=None)
    text = str(info.value)
    assert f"CJ_ASSESSMENT_SERVICE_{variable}={shown} (from the environment):" in text
    assert "hunter2" not in text
    assert TOKEN not in text


def test_a_token_read_from_a_secret_file_loses_its_newline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from cj_batching import Settings

    secret = tmp_path / "lps-token"
    secret.write_text(f"{TOKEN}\n")
    monkeypatch.setenv("CJ_ASSESSMENT_SERVICE_LPS_AUTH_TOKEN", secret.read_text())
    settings = Settings(_env_file=None)
    assert settings.LPS_AUTH_TOKEN is not None
    assert settings.LPS_AUTH_TOKEN.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings)
    assert TOKEN not in repr(LPSClient.from_settings(settings))


def test_the_transport_repr_shows_no_headers_or_secrets() -> None:
    transport = Transport(
        httpx.AsyncClient(),
        "http://lps/api/v1/comparison",
        {"Authorization": f"Bearer {TOKEN}"},
        5.0,
        (TOKEN,),
    )
    assert TOKEN not in repr(transport)
    assert "http://lps/api/v1/comparison" in repr(transport)
