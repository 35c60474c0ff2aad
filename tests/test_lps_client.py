"""LPSClient against a real loopback LPS (tests/lps_server.py): outcomes, retries, wire body."""

from __future__ import annotations

import asyncio
import logging
import pickle
import random
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from cj_batching.lps_client import LPSClient, LPSError
from cj_batching.lps_models import (
    DEFAULT_CALLBACK_TOPIC,
    LLMComparisonRequest,
    LLMConfigOverrides,
    QueuedComparison,
)
from cj_batching.modes import LLMProviderType

from .lps_server import (
    LPSServer,
    RecordedRequest,
    Reply,
    accepted,
    bad_request,
    bad_request_nested,
    drop_connection,
    ok_200,
    queue_full,
    raw,
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


@pytest.fixture
def lps() -> Iterator[LPSServer]:
    with running_lps_server() as server:
        yield server


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


def make_client(lps: LPSServer, sleeps: SleepRecorder, **kwargs: Any) -> LPSClient:
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
    assert sleeps.waits == []


async def test_queue_full_202_is_retried_then_succeeds(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    lps.script(queue_full(), queue_full(), accepted())
    async with make_client(lps, sleeps) as client:
        result = await client.submit(make_request())
    assert result.status == "queued"
    assert lps.request_count == 3
    assert len(sleeps.waits) == 2


async def test_queue_full_202_exhausts_retries(lps: LPSServer, sleeps: SleepRecorder) -> None:
    lps.set_default(queue_full("Queue at capacity"))
    async with make_client(lps, sleeps, max_retries=2) as client:
        error = await submit_error(client)
    assert (error.status_code, error.retryable, error.attempts) == (202, True, 3)
    assert "queue full" in error.error
    assert "Queue at capacity" in error.error
    assert lps.request_count == 3


async def test_200_is_a_protocol_error_and_not_retried(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    lps.set_default(ok_200())
    async with make_client(lps, sleeps) as client:
        error = await submit_error(client)
    assert (error.status_code, error.retryable, error.attempts) == (200, False, 1)
    assert "protocol error" in error.error
    assert lps.request_count == 1
    assert sleeps.waits == []


@pytest.mark.parametrize(
    ("reply", "expected_texts"),
    [
        (bad_request("Invalid request", "user_prompt is empty"), ["Invalid request", "empty"]),
        (
            bad_request_nested("VALIDATION_ERROR", "provider_override is required"),
            ["VALIDATION_ERROR", "provider_override is required"],
        ),
        (Reply(404, {"detail": "Not Found"}), ["Not Found"]),
        (Reply(422, {"error": "Unprocessable"}), ["Unprocessable"]),
    ],
    ids=["flat-400", "nested-400", "404", "422"],
)
async def test_4xx_is_final_and_carries_the_error_text(
    lps: LPSServer, sleeps: SleepRecorder, reply: Reply, expected_texts: list[str]
) -> None:
    lps.set_default(reply)
    async with make_client(lps, sleeps) as client:
        error = await submit_error(client)
    assert (error.status_code, error.retryable, error.attempts) == (reply.status, False, 1)
    for text in expected_texts:
        assert text in error.error
        assert text in str(error)
    assert lps.request_count == 1
    assert sleeps.waits == []


# --- retries ---------------------------------------------------------------------------------


async def test_429_retry_after_seconds_is_the_wait(lps: LPSServer, sleeps: SleepRecorder) -> None:
    lps.script(too_many_requests("1"), accepted())
    async with make_client(lps, sleeps) as client:
        await client.submit(make_request())
    assert sleeps.waits == [1.0]
    assert lps.request_count == 2


@pytest.mark.parametrize(
    ("retry_after", "expected_wait"),
    [
        (format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True), 4.0),  # capped
        (format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True), 0.0),  # past
        ("30", 4.0),  # capped at backoff_max_seconds
        ("0", 0.0),
        ("soon", 0.75),  # unusable: the jittered backoff (step 1, rng 0.5)
        ("-5", 0.75),
    ],
    ids=["http-date-future", "http-date-past", "seconds-capped", "zero", "garbage", "negative"],
)
async def test_retry_after_forms(
    lps: LPSServer, sleeps: SleepRecorder, retry_after: str, expected_wait: float
) -> None:
    lps.script(too_many_requests(retry_after), accepted())
    client = make_client(lps, sleeps, backoff_initial_seconds=1.0, backoff_max_seconds=4.0)
    async with client:
        await client.submit(make_request())
    assert sleeps.waits == [pytest.approx(expected_wait)]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_retried_then_succeeds(
    lps: LPSServer, sleeps: SleepRecorder, status: int
) -> None:
    lps.script(server_error(status), accepted())
    async with make_client(lps, sleeps) as client:
        result = await client.submit(make_request())
    assert result.status == "queued"
    assert lps.request_count == 2


@pytest.mark.parametrize(
    "reply",
    [
        retryable_error(400, "Provider busy"),
        Reply(409, {"error": {"code": "PROVIDER_BUSY", "message": "busy", "is_retryable": True}}),
    ],
    ids=["flat", "nested"],
)
async def test_is_retryable_body_is_retried(
    lps: LPSServer, sleeps: SleepRecorder, reply: Reply
) -> None:
    lps.script(reply, accepted())
    async with make_client(lps, sleeps) as client:
        await client.submit(make_request())
    assert lps.request_count == 2


async def test_is_retryable_body_exhausts_as_retryable(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    lps.set_default(retryable_error(400, "Provider busy"))
    async with make_client(lps, sleeps, max_retries=1) as client:
        error = await submit_error(client)
    assert (error.status_code, error.retryable, error.attempts) == (400, True, 2)
    assert "Provider busy" in error.error


@pytest.mark.parametrize("max_retries", [0, 1, 3])
async def test_attempts_never_exceed_max_retries_plus_one(
    lps: LPSServer, sleeps: SleepRecorder, max_retries: int
) -> None:
    lps.set_default(server_error(503, "Service unavailable"))
    async with make_client(lps, sleeps, max_retries=max_retries) as client:
        error = await submit_error(client)
    assert (error.status_code, error.retryable) == (503, True)
    assert error.attempts == max_retries + 1
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


async def test_timeouts_are_retried_then_fail(lps: LPSServer, sleeps: SleepRecorder) -> None:
    lps.set_default(slow(5.0))
    async with make_client(lps, sleeps, timeout_seconds=0.2, max_retries=1) as client:
        error = await submit_error(client)
    assert (error.status_code, error.retryable, error.attempts) == (None, True, 2)
    assert "timeout" in error.error
    assert lps.wait_for_requests(2, timeout=2.0)
    assert lps.request_count == 2


async def test_timeout_then_success(lps: LPSServer, sleeps: SleepRecorder) -> None:
    lps.script(slow(5.0), accepted())
    async with make_client(lps, sleeps, timeout_seconds=0.2) as client:
        result = await client.submit(make_request())
    assert result.status == "queued"
    assert lps.request_count == 2


async def test_dropped_connection_is_retried(lps: LPSServer, sleeps: SleepRecorder) -> None:
    lps.script(drop_connection(), accepted())
    async with make_client(lps, sleeps) as client:
        result = await client.submit(make_request())
    assert result.status == "queued"
    assert lps.request_count == 2


async def test_connection_refused_is_retryable_transport_error(sleeps: SleepRecorder) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = LPSClient(f"http://127.0.0.1:{port}/api/v1", sleep=sleeps, max_retries=2)
    async with client:
        error = await submit_error(client)
    assert (error.status_code, error.retryable, error.attempts) == (None, True, 3)
    assert "ConnectError" in error.error
    assert "transport error" in str(error)


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


# --- malformed bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "retryable", "text"),
    [
        (raw(502, b"<html>Bad Gateway</html>", "text/html"), True, "non-JSON body"),
        (raw(400, b"not json at all"), False, "non-JSON body"),
        (raw(500, b""), True, "empty body"),
        (raw(400, b"[1, 2]", "application/json"), False, "unexpected JSON body"),
        (raw(202, b"queued!"), False, "protocol error"),
        (
            Reply(202, {"queue_id": "q-1", "status": "queued", "estimated_wait_minutes": "soon"}),
            False,
            "malformed 202 body",
        ),
        (Reply(202, ["queue_id"]), False, "not a JSON object"),
    ],
    ids=[
        "html-502",
        "text-400",
        "empty-500",
        "json-list-400",
        "text-202",
        "bad-field-202",
        "list-202",
    ],
)
async def test_malformed_bodies_give_clear_lps_errors(
    lps: LPSServer, sleeps: SleepRecorder, reply: Reply, retryable: bool, text: str
) -> None:
    lps.set_default(reply)
    async with make_client(lps, sleeps, max_retries=0) as client:
        error = await submit_error(client)
    assert (error.status_code, error.retryable, error.attempts) == (reply.status, retryable, 1)
    assert text in error.error


# --- the wire body ------------------------------------------------------------------------------


async def test_wire_body_matches_the_contract(lps: LPSServer, sleeps: SleepRecorder) -> None:
    correlation_id = uuid.uuid4()
    metadata = {
        "essay_a_id": "a1",
        "essay_b_id": "b1",
        "bos_batch_id": "bos-7",
        "cj_batch_id": "42",
        "cj_llm_batching_mode": "serial_bundle",
        "preferred_bundle_size": 12,
        "nested": {"list": [1, 2.5, None, True], "text": "åäö"},
    }
    request = make_request(
        correlation_id=correlation_id,
        prompt_blocks=[{"type": "text", "text": "shared rubric", "cache": True}],
        user_id="teacher-1",
        llm_config_overrides=LLMConfigOverrides(
            provider_override="Anthropic",
            model_override="claude-x",
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
        "prompt_blocks": [{"type": "text", "text": "shared rubric", "cache": True}],
        "callback_topic": "huleedu.llm_provider.comparison_result.v1",
        "llm_config_overrides": {
            "provider_override": "anthropic",
            "model_override": "claude-x",
            "temperature_override": 0.3,
            "system_prompt_override": None,
            "max_tokens_override": 512,
            "reasoning_effort": "low",
            "output_verbosity": None,
        },
        "correlation_id": str(correlation_id),
        "user_id": "teacher-1",
        "metadata": metadata,
    }
    assert recorded.body == request.model_dump(mode="json")
    assert isinstance(recorded.body["correlation_id"], str)
    assert uuid.UUID(recorded.body["correlation_id"]) == correlation_id


async def test_minimal_request_sends_nulls_for_unset_optionals(
    lps: LPSServer, sleeps: SleepRecorder
) -> None:
    async with make_client(lps, sleeps) as client:
        await client.submit(make_request(metadata={}))
    body = lps.requests[0].body
    assert body["prompt_blocks"] is None
    assert body["user_id"] is None
    assert body["metadata"] == {}
    assert body["llm_config_overrides"]["provider_override"] == "openai"


# --- auth token and logging ----------------------------------------------------------------


@pytest.mark.parametrize("token", [TOKEN, SecretStr(TOKEN)], ids=["str", "SecretStr"])
async def test_bearer_token_is_sent_and_never_shown(
    lps: LPSServer, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture, token: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    lps.script(server_error(503), accepted(), bad_request())
    async with make_client(lps, sleeps, auth_token=token, max_retries=1) as client:
        await client.submit(make_request())
        error = await submit_error(client)
        shown = [repr(client), str(client), repr(error), str(error), error.error]
    assert [r.headers["authorization"] for r in lps.requests] == [f"Bearer {TOKEN}"] * 3
    shown += [record.getMessage() for record in caplog.records]
    shown += [repr(vars(record)) for record in caplog.records]
    assert caplog.records  # the retry and the failure were logged
    assert not [text for text in shown if TOKEN in text]


async def test_no_authorization_header_without_token(lps: LPSServer, sleeps: SleepRecorder) -> None:
    async with make_client(lps, sleeps) as client:
        await client.submit(make_request())
    assert "authorization" not in lps.requests[0].headers


async def test_retries_and_failures_are_logged_with_structure(
    lps: LPSServer, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cj_batching.lps_client")
    lps.set_default(server_error(503))
    request = make_request()
    async with make_client(lps, sleeps, max_retries=1) as client:
        await submit_error(client, request)
    records = [r for r in caplog.records if r.name == "cj_batching.lps_client"]
    assert [r.levelno for r in records] == [logging.INFO, logging.WARNING]
    for record, attempt in zip(records, [1, 2], strict=True):
        assert record.__dict__["correlation_id"] == str(request.correlation_id)
        assert record.__dict__["attempt"] == attempt
        assert record.__dict__["status"] == 503


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
        ({"base_url": ""}, "base_url: ''"),
        ({"base_url": "llm_provider_service:8080"}, "base_url"),
        ({"base_url": "ftp://host/api"}, "base_url: 'ftp://host/api'.*http"),
        ({"base_url": "http://host/api?x=1"}, "base_url.*no query"),
        ({"base_url": "http://user:pw@host/api"}, "base_url: '<URL with credentials>'"),
        ({"timeout_seconds": 0}, r"timeout_seconds: 0 .*> 0"),
        ({"timeout_seconds": float("nan")}, "timeout_seconds: nan"),
        ({"timeout_seconds": True}, "timeout_seconds: True"),
        ({"max_retries": -1}, r"max_retries: -1 .*0\.\.100"),
        ({"max_retries": 1.5}, "max_retries: 1.5"),
        ({"backoff_initial_seconds": -0.1}, r"backoff_initial_seconds: -0.1 .*>= 0"),
        ({"backoff_max_seconds": float("inf")}, "backoff_max_seconds: inf"),
        (
            {"backoff_initial_seconds": 2.0, "backoff_max_seconds": 1.0},
            r"backoff_max_seconds: 1.0 .*backoff_initial_seconds \(2.0\)",
        ),
        ({"http": "not a client"}, "http: 'not a client'.*httpx.AsyncClient"),
        ({"rng": 42}, "rng: 42"),
        ({"sleep": 1.0}, "sleep: 1.0 is not callable"),
        ({"auth_token": 123}, "auth_token: a int"),
    ],
)
def test_argument_validation(kwargs: dict[str, Any], match: str) -> None:
    options: dict[str, Any] = {"base_url": "http://lps:8080/api/v1"}
    options.update(kwargs)
    base_url = options.pop("base_url")
    with pytest.raises(ValueError, match=match):
        LPSClient(base_url, **options)


@pytest.mark.parametrize("token", ["", f" {TOKEN}", f"{TOKEN}\n", "tøken"])
def test_bad_token_is_rejected_without_showing_it(token: str) -> None:
    with pytest.raises(ValueError, match="auth_token") as info:
        LPSClient("http://lps:8080/api/v1", auth_token=token)
    if token:
        assert token.strip() not in str(info.value)


# --- models -----------------------------------------------------------------------------------


def test_models_validate_the_contract_ranges() -> None:
    with pytest.raises(ValidationError, match="provider_override"):
        LLMConfigOverrides.model_validate({"model_override": "gpt"})
    assert (
        LLMConfigOverrides(provider_override=" OpenAI ").provider_override is LLMProviderType.OPENAI
    )
    for bad in (
        {"temperature_override": 2.5},
        {"temperature_override": -0.1},
        {"max_tokens_override": 0},
        {"reasoning_effort": "extreme"},
        {"output_verbosity": "none"},
        {"unknown": 1},
    ):
        with pytest.raises(ValidationError):
            LLMConfigOverrides.model_validate({"provider_override": "openai", **bad})
    with pytest.raises(ValidationError):
        make_request(user_prompt="")
    with pytest.raises(ValidationError):
        make_request(callback_topic="")
    with pytest.raises(ValidationError):
        make_request(extra_field=1)
    request = make_request()
    with pytest.raises(ValidationError):
        request.user_prompt = "changed"  # type: ignore[misc]


def test_queued_comparison_ignores_unknown_keys() -> None:
    queued = QueuedComparison.model_validate({"queue_id": "q", "status": "queued", "new_field": 1})
    assert queued.queue_id == "q"
    assert queued.message is None
    assert queued.estimated_wait_minutes is None


def test_lps_error_pickles_and_reads_well() -> None:
    cid = uuid.uuid4()
    error = LPSError("queue full", status_code=202, retryable=True, attempts=4, correlation_id=cid)
    clone = pickle.loads(pickle.dumps(error))
    assert (clone.error, clone.status_code, clone.retryable, clone.attempts) == (
        "queue full",
        202,
        True,
        4,
    )
    assert str(error) == (
        f"LPS submit failed after 4 attempt(s) (retryable): HTTP 202: queue full "
        f"[correlation_id={cid}]"
    )
