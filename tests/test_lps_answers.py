"""`classify_answer`: what each LPS answer means, as a pure function of (status, headers, body)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from cj_batching.lps import PERMANENT_CODES, Answer, classify_answer
from cj_batching.lps.answers import retry_after_seconds

TOKEN = "s3cret-token-value-0123456789"


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


def nested(code: str, message: str = "boom", **extra: Any) -> bytes:
    return body({"error": {"code": code, "message": message, **extra}})


QUEUED = body({"queue_id": "q-1", "status": "queued", "message": "ok", "estimated_wait_minutes": 2})
QUEUE_FULL_BODY = body(
    {
        "error": {
            "code": "REQUEST_QUEUED",
            "message": "Service temporarily at capacity. Please retry later.",
            "correlation_id": "8d3f4c1e-0000-0000-0000-000000000000",
            "service": "llm_provider_service",
            "timestamp": "2026-02-01T00:00:00Z",
            "details": {
                "queue_size": 1000,
                "details": {
                    "provider": "openai",
                    "queue_usage_percent": 100.0,
                    "retry_after_seconds": 300,
                },
            },
        }
    }
)

# status, headers, body -> kind, code, retry_after_seconds
TABLE: list[Any] = [
    pytest.param(202, {}, QUEUED, "queued", None, None, id="202-queued"),
    pytest.param(202, {}, QUEUE_FULL_BODY, "queue_full", "QUEUE_FULL", 300.0, id="202-queue-full"),
    pytest.param(
        202,
        {"Retry-After": "120"},
        QUEUE_FULL_BODY,
        "queue_full",
        "QUEUE_FULL",
        120.0,
        id="202-queue-full-header-wins",
    ),
    pytest.param(
        202, {}, nested("REQUEST_QUEUED"), "queue_full", "QUEUE_FULL", None, id="queue-full-no-hint"
    ),
    pytest.param(
        202, {}, body({"status": "queued"}), "final", "PROTOCOL_ERROR", None, id="202-bare"
    ),
    pytest.param(202, {}, b"", "final", "PROTOCOL_ERROR", None, id="202-empty"),
    pytest.param(202, {}, b"queued!", "final", "PROTOCOL_ERROR", None, id="202-not-json"),
    pytest.param(202, {}, body(["queue_id"]), "final", "PROTOCOL_ERROR", None, id="202-list"),
    # LPS queued it (there is a queue_id): malformed extra fields must not fail it.
    pytest.param(
        202,
        {},
        body({"queue_id": "q", "status": "queued", "estimated_wait_minutes": "soon"}),
        "queued",
        None,
        None,
        id="202-malformed-wait",
    ),
    pytest.param(202, {}, body({"queue_id": "q"}), "queued", None, None, id="202-no-status"),
    pytest.param(
        202,
        {},
        body({"queue_id": "q", "status": 7, "estimated_wait_minutes": 2.5}),
        "queued",
        None,
        None,
        id="202-odd-fields",
    ),
    pytest.param(
        202, {}, nested("PROCESSING_ERROR"), "final", "PROCESSING_ERROR", None, id="202-other-error"
    ),
    pytest.param(200, {}, QUEUED, "final", "PROTOCOL_ERROR", None, id="200"),
    pytest.param(204, {}, b"", "final", "PROTOCOL_ERROR", None, id="204"),
    pytest.param(
        400,
        {},
        body({"error": "Invalid request", "details": "x"}),
        "final",
        None,
        None,
        id="400-flat",
    ),
    pytest.param(
        400, {}, nested("VALIDATION_ERROR"), "final", "VALIDATION_ERROR", None, id="400-nested"
    ),
    pytest.param(404, {}, body({"detail": "Not Found"}), "final", None, None, id="404"),
    pytest.param(
        429, {"Retry-After": "7"}, body({"error": "slow down"}), "retryable", None, 7.0, id="429"
    ),
    pytest.param(429, {}, nested("RATE_LIMIT"), "retryable", "RATE_LIMIT", None, id="429-nested"),
    pytest.param(
        500,
        {},
        nested("CONFIGURATION_ERROR", "Provider 'google' not found"),
        "final",
        "CONFIGURATION_ERROR",
        None,
        id="500-configuration",
    ),
    pytest.param(
        500, {}, nested("PROCESSING_ERROR"), "retryable", "PROCESSING_ERROR", None, id="500-nested"
    ),
    pytest.param(
        500, {}, body({"error": "boom", "details": "d"}), "retryable", None, None, id="500-flat"
    ),
    pytest.param(500, {}, b"", "retryable", None, None, id="500-empty"),
    pytest.param(
        502, {}, b"<html>Bad Gateway</html>", "retryable", None, None, id="502-html-from-a-proxy"
    ),
    pytest.param(
        503,
        {},
        nested("CIRCUIT_BREAKER_OPEN"),
        "retryable",
        "CIRCUIT_BREAKER_OPEN",
        None,
        id="503-circuit-open",
    ),
    pytest.param(504, {}, nested("TIMEOUT"), "retryable", "TIMEOUT", None, id="504"),
    pytest.param(
        400,
        {},
        body({"error": "busy", "is_retryable": True}),
        "retryable",
        None,
        None,
        id="is_retryable-true-flat",
    ),
    pytest.param(
        409,
        {},
        nested("PROVIDER_BUSY", is_retryable=True),
        "retryable",
        "PROVIDER_BUSY",
        None,
        id="is_retryable-true-nested",
    ),
    pytest.param(
        503,
        {},
        nested("SERVICE_UNAVAILABLE", is_retryable=False),
        "final",
        "SERVICE_UNAVAILABLE",
        None,
        id="is_retryable-false-wins",
    ),
    pytest.param(
        503,
        {},
        body({"error": "down", "retry_after_seconds": 12}),
        "retryable",
        None,
        12.0,
        id="flat-body-retry-after",
    ),
]


@pytest.mark.parametrize(("status", "headers", "content", "kind", "code", "retry_after"), TABLE)
def test_classification(
    status: int,
    headers: dict[str, str],
    content: bytes,
    kind: str,
    code: str | None,
    retry_after: float | None,
) -> None:
    answer = classify_answer(status, headers, content)
    assert (answer.kind, answer.status, answer.code, answer.retry_after_seconds) == (
        kind,
        status,
        code,
        retry_after,
    )
    assert (answer.queued is not None) == (kind == "queued")
    assert answer.retry_now == (kind == "retryable")


def test_a_queued_answer_carries_the_queue_id() -> None:
    answer = classify_answer(202, {}, QUEUED)
    assert answer.queued is not None
    assert (answer.queued.queue_id, answer.queued.estimated_wait_minutes) == ("q-1", 2)


def test_queue_full_message_names_lps_code_and_text() -> None:
    answer = classify_answer(202, {}, QUEUE_FULL_BODY)
    assert "REQUEST_QUEUED" in answer.message
    assert "Service temporarily at capacity" in answer.message


@pytest.mark.parametrize(
    ("content", "texts"),
    [
        pytest.param(
            body({"error": "Invalid request", "details": "empty"}), ["Invalid request", "empty"]
        ),
        pytest.param(
            nested("X", "provider_override is required", details={"f": 1}),
            ["provider_override is required", '"f":1'],
        ),
        pytest.param(b"not json at all", ["non-JSON body", "not json at all"]),
        pytest.param(body([1, 2]), ["unexpected JSON body", "[1,2]"]),
        pytest.param(body({"weird": True}), ["JSON body", "weird"]),
        pytest.param(b"   ", ["empty body"]),
    ],
    ids=["flat", "nested", "text", "json-list", "json-object", "blank"],
)
def test_error_text_reads_every_shape(content: bytes, texts: list[str]) -> None:
    message = classify_answer(400, {}, content).message
    for text in texts:
        assert text in message


def test_error_text_is_capped() -> None:
    message = classify_answer(500, {}, body({"error": "e" * 5000})).message
    assert len(message) == 500
    assert message.endswith("...")


@pytest.mark.parametrize(
    "content",
    [
        nested(
            "PROCESSING_ERROR", details={"request_headers": {"authorization": f"Bearer {TOKEN}"}}
        ),
        body({"error": f"bad header Authorization: Bearer {TOKEN}"}),
        f"proxy saw: {TOKEN}".encode(),
        body({"error": "x" * 480 + TOKEN}),  # the cut falls inside the token
    ],
    ids=["nested-echo", "flat-echo", "text-echo", "cut-through-the-token"],
)
def test_the_token_is_redacted_from_echoed_errors(content: bytes) -> None:
    answer = classify_answer(500, {}, content, secrets=[TOKEN])
    assert TOKEN not in answer.message
    assert TOKEN[:8] not in answer.message
    assert "[REDACTED]" in answer.message


def test_any_bearer_credential_is_redacted_even_an_unknown_one() -> None:
    message = classify_answer(502, {}, body({"error": "Authorization: Bearer abc.def-123"})).message
    assert "abc.def-123" not in message


@pytest.mark.parametrize("code", sorted(PERMANENT_CODES))
def test_permanent_codes_are_final_on_any_5xx(code: str) -> None:
    for status in (500, 502, 503):
        assert classify_answer(status, {}, nested(code)).kind == "final"


def test_a_code_that_is_not_a_token_is_not_a_code() -> None:
    answer = classify_answer(500, {}, nested("has spaces and ünïcode"))
    assert answer.code is None
    assert answer.kind == "retryable"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        (None, None),
        (format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True), 0.0),
    ],
)
def test_retry_after_values(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(value) == expected


def test_retry_after_http_date_in_the_future() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    seconds = retry_after_seconds(later)
    assert seconds is not None
    assert 3590 < seconds <= 3600


@pytest.mark.parametrize("hint", [-1, True, "300", float("nan")], ids=repr)
def test_an_unusable_body_hint_is_ignored(hint: object) -> None:
    content = body({"error": {"code": "REQUEST_QUEUED", "details": {"retry_after_seconds": hint}}})
    assert classify_answer(202, {}, content).retry_after_seconds is None


def test_answers_are_values() -> None:
    first = classify_answer(503, {"Retry-After": "3"}, nested("SERVICE_UNAVAILABLE"))
    again = classify_answer(503, {"retry-after": "3"}, nested("SERVICE_UNAVAILABLE"))
    assert first == again
    assert isinstance(first, Answer)
