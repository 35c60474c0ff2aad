"""2 000 comparisons against a loopback LPS that misbehaves in every way the contract names.

The first test answers each request from a *plan* chosen by the comparison's task number
(carried in the request's `essay_a_id`, which LPS echoes) and the attempt number it sees
for the correlation id: some comparisons fail their first attempts and then succeed, some
fail retryably on every attempt, some are refused for good. The plan fixes every
comparison's fate before the run, so the expected outcome of each task, the attempts the
server must see for it and the run's totals are exact, run after run.

Queue full is not in the plans: it stops the rest of the wave. The second test fills the
queue in the middle of a concurrent wave and checks what back-pressure promises: nothing
sent after the client heard "full" except what was already in flight, every comparison
ends once, and what was sent is exactly what was counted.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Final

import pytest
from prometheus_client import CollectorRegistry

from cj_batching import (
    BatchContext,
    BatchingMetrics,
    ComparisonSubmission,
    ComparisonTask,
    LLMComparisonRequest,
    LLMConfigOverrides,
    LLMInteraction,
    LLMProviderType,
    LPSClient,
    LPSError,
)
from cj_batching.lps import QUEUE_FULL
from tests.conftest import ResolverFactory
from tests.documents import document, mode_flag
from tests.helpers import per_mode
from tests.lps_server import (
    LPSServer,
    RecordedRequest,
    Reply,
    accepted,
    bad_request,
    configuration_error,
    drip,
    drop_connection,
    nested_error,
    ok_200,
    oversized,
    queue_full,
    running_lps_server,
    server_error,
    slow,
    too_many_requests,
)

pytestmark = pytest.mark.fault

COMPARISONS: Final = 2_000
CONCURRENCY: Final = 50
# The deadline is total: it includes the time the client takes to get a request out
# (connection pool, connect), measured here at p50 60 ms, p99 0.5 s and up to 1.1 s on a
# loaded 2-core machine whose loopback server shares the GIL with the client. At 0.5 s or
# 1 s some attempts ran out before reaching the server, changing their planned fate. A
# slow reply is 4x this and a drip-fed one ~25x, so they always time out.
TIMEOUT_SECONDS: Final = 2.0
MAX_RETRIES: Final = 3
MAX_ATTEMPTS: Final = MAX_RETRIES + 1
BACKOFF_INITIAL_SECONDS: Final = 0.005
BACKOFF_MAX_SECONDS: Final = 0.04  # a Retry-After of 30 s or of a date an hour ahead waits this
SLOW_SECONDS: Final = 4 * TIMEOUT_SECONDS
RUN_BOUND_SECONDS: Final = 60.0

# --- what the server can do to one attempt ----------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of answer and how the contract says the client must read it."""

    name: str
    status: int | None  # the status the client reports (None: transport failure)
    code: str | None = None  # the code the client reports
    succeeds: bool = False
    retryable: bool = False
    text: str = ""  # a fragment the client's error text must carry
    retry_after: bool = False  # answers with a Retry-After above the backoff cap


OK = Kind("202", 202, succeeds=True)
R429 = Kind("429 Retry-After 30", 429, retryable=True, text="Rate limit", retry_after=True)
R429_DATE = Kind("429 Retry-After date", 429, retryable=True, text="Rate limit", retry_after=True)
E500 = Kind("500", 500, retryable=True, text="Internal server error")
E503 = Kind("503", 503, retryable=True, text="Service unavailable")
OPEN = Kind("503 circuit open", 503, "CIRCUIT_BREAKER_OPEN", retryable=True, text="open")
E400 = Kind("400", 400, text="Invalid request")
CONF = Kind("500 not configured", 500, "CONFIGURATION_ERROR", text="not found")
E200 = Kind("200", 200, "PROTOCOL_ERROR", text="protocol error")
BIG = Kind("oversized", 202, "PROTOCOL_ERROR", text="bytes, cut off")
SLOW = Kind("slow", None, "TIMEOUT", retryable=True, text="deadline")
DRIP = Kind("drip-fed", None, "TIMEOUT", retryable=True, text="deadline")
DROP = Kind("dropped", None, "CONNECTION_ERROR", retryable=True, text="RemoteProtocolError")


def reply_for(kind: Kind, request: RecordedRequest) -> Reply:
    """The server's answer of `kind`; a 202 names the correlation id and the attempt."""
    queue_id = f"q-{request.correlation_id}-{request.attempt}"
    if kind is OK:
        return accepted(queue_id=queue_id)
    if kind is SLOW:  # LPS queues it, but answers long after the client gave up
        return slow(SLOW_SECONDS, accepted(queue_id=queue_id))
    if kind is DRIP:  # every byte comes quickly, the whole answer does not
        return drip(TIMEOUT_SECONDS / 10, accepted(queue_id=queue_id))  # ~50 s in all
    if kind is R429_DATE:
        later = datetime.now(UTC) + timedelta(hours=1)
        return too_many_requests(retry_after=format_datetime(later, usegmt=True))
    replies = {
        OPEN: nested_error(503, "CIRCUIT_BREAKER_OPEN", "circuit open"),
        CONF: configuration_error(),
        BIG: oversized(202, 100_000),
        R429: too_many_requests(retry_after="30"),
        E500: server_error(500),
        E503: server_error(503, "Service unavailable"),
        E400: bad_request(),
        E200: ok_200(),
        DROP: drop_connection(),
    }
    return replies[kind]


# --- plans: one comparison's answers, attempt by attempt (the last one repeats) ----------------

PLANS: Final[dict[str, tuple[Kind, ...]]] = {
    "ok": (OK,),
    "500-then-ok": (E500, OK),
    "503-429-then-ok": (E503, R429, OK),
    "circuit-open-then-ok": (OPEN, OK),
    "slow-then-ok": (SLOW, OK),
    "drip-then-ok": (DRIP, OK),
    "dropped-then-ok": (DROP, OK),
    "three-failures-then-ok": (DROP, SLOW, R429_DATE, OK),  # succeeds on the last attempt
    "four-failures-then-ok": (E500, E503, DROP, OPEN, OK),  # would need a 5th attempt
    "always-503": (E503,),
    "always-429": (R429,),
    "always-circuit-open": (OPEN,),
    "always-slow": (SLOW,),
    "always-dropped": (DROP,),
    "400": (E400,),
    "500-then-400": (E500, E400),
    "500-then-not-configured": (E500, CONF),
    "not-configured": (CONF,),
    "200": (E200,),
    "oversized": (BIG,),
}
# Task n follows CYCLE[n % len(CYCLE)]: the kinds interleave through the whole run.
# 32 of ~60 succeed at once: every plan still runs ~30 times, and the timeouts (the
# run's length: their slots are held for the whole deadline) stay few enough.
CYCLE: Final = (
    ["ok"] * 32
    + ["500-then-ok", "503-429-then-ok", "circuit-open-then-ok"] * 2
    + ["slow-then-ok"]
    + ["dropped-then-ok", "three-failures-then-ok"] * 2
    + ["drip-then-ok"]
    + ["four-failures-then-ok", "always-429", "always-circuit-open", "always-slow"]
    + ["always-dropped", "200", "oversized", "not-configured", "500-then-not-configured"]
    + ["always-503", "400", "500-then-400"] * 2
)


def kind_at(plan: str, attempt: int) -> Kind:
    steps = PLANS[plan]
    return steps[min(attempt, len(steps)) - 1]


@dataclass(frozen=True)
class Expected:
    """What the contract says becomes of a comparison with a given plan."""

    attempts: int
    last: Kind  # the answer to the last attempt

    @property
    def queued(self) -> bool:
        return self.last.succeeds


def expected(plan: str) -> Expected:
    """Walk the plan the way the contract's client must: retry retryable answers only, at
    most MAX_RETRIES times."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        kind = kind_at(plan, attempt)
        if kind.succeeds or not kind.retryable or attempt == MAX_ATTEMPTS:
            return Expected(attempt, kind)
    raise AssertionError("unreachable")


def task_number(request: RecordedRequest) -> int:
    essay_a: str = request.body["metadata"]["essay_a_id"]
    return int(essay_a.removeprefix("t").removesuffix("-a"))


def plan_of(n: int) -> str:
    return CYCLE[n % len(CYCLE)]


class RecordingSleep:
    """The client's backoff sleep: really sleeps, and records every wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(seconds)


@dataclass
class ScriptedLPS:
    """The loopback LPS answering by plan once `follow_the_plan()` is called, and every
    queue_id it handed out."""

    server: LPSServer
    issued: set[str]
    scripted: Callable[[RecordedRequest], Reply]

    def follow_the_plan(self) -> None:
        """Forget what arrived so far (the warm-up) and answer by plan from now on."""
        self.server.reset()
        self.server.set_policy(self.scripted)


async def warm_up(client: LPSClient) -> None:
    """Open the client's CONCURRENCY connections before the run.

    The loopback server shares the GIL with the client, and its first burst (accepting 50
    connections while the client opens them) took over a second on a loaded 2-core
    machine: some first attempts ran out of the total deadline before they reached the
    server, changing their planned fate. A running service's pool is warm.
    """
    requests = [
        LLMComparisonRequest(
            user_prompt="warm-up",
            callback_topic="warm-up",
            llm_config_overrides=LLMConfigOverrides(provider_override=LLMProviderType.OPENAI),
            correlation_id=uuid.uuid4(),
        )
        for _ in range(CONCURRENCY)
    ]
    await asyncio.gather(*(client.submit(request) for request in requests))


@pytest.fixture
def lps() -> Iterator[ScriptedLPS]:
    issued: set[str] = set()
    lock = threading.Lock()

    def scripted(request: RecordedRequest) -> Reply:
        reply = reply_for(kind_at(plan_of(task_number(request)), request.attempt), request)
        if reply.status == 202 and isinstance(reply.body, dict) and reply.body.get("queue_id"):
            with lock:
                issued.add(reply.body["queue_id"])
        return reply

    with running_lps_server() as server:
        yield ScriptedLPS(server, issued, scripted)


def deviations_from_plan(
    submissions: list[ComparisonSubmission], plans: list[str], requests: list[RecordedRequest]
) -> list[str]:
    """Every comparison whose end, or whose attempts at the server, differ from its plan."""
    seen = Tally(request.correlation_id for request in requests)
    found = []
    for n, (submission, plan) in enumerate(zip(submissions, plans, strict=True)):
        outcome = expected(plan)
        error = submission.error
        got = (
            ("queued", seen[str(submission.correlation_id)])
            if error is None
            else (
                error.status,
                error.code,
                error.retryable,
                error.attempts,
                seen[str(submission.correlation_id)],
            )
        )
        want = (
            ("queued", outcome.attempts)
            if outcome.queued
            else (
                outcome.last.status,
                outcome.last.code,
                outcome.last.retryable,
                outcome.attempts,
                outcome.attempts,
            )
        )
        if got != want:
            detail = "" if error is None else f": {error.message}"
            found.append(f"task {n} ({plan}): want {want}, got {got}{detail}")
    return found


async def test_2000_comparisons_through_a_faulty_lps_each_end_once_as_the_server_decided(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    lps: ScriptedLPS,
    record_property: Any,
) -> None:
    resolver, _ = make_resolver(
        document(mode_flag(default_variant="serial_bundle")),
        LPS_MAX_CONCURRENCY=CONCURRENCY,
    )
    tasks = [
        ComparisonTask(f"t{n}-a", f"t{n}-b", f"Compare essay t{n}-a with essay t{n}-b.")
        for n in range(COMPARISONS)
    ]
    plans = [plan_of(n) for n in range(COMPARISONS)]
    outcomes = [expected(plan) for plan in plans]
    sleep = RecordingSleep()

    async with LPSClient(
        lps.server.base_url,
        timeout_seconds=TIMEOUT_SECONDS,
        max_retries=MAX_RETRIES,
        backoff_initial_seconds=BACKOFF_INITIAL_SECONDS,
        backoff_max_seconds=BACKOFF_MAX_SECONDS,
        sleep=sleep,
    ) as client:
        await warm_up(client)
        lps.follow_the_plan()
        interaction = LLMInteraction(
            settings=resolver.settings, resolver=resolver, lps=client, metrics=metrics
        )
        started = time.monotonic()
        async with asyncio.timeout(RUN_BOUND_SECONDS):  # a hang fails here, boundedly
            result = await interaction.submit_batch(
                BatchContext(2024, cj_source="eng5_runner", llm_provider="openai"), tasks
            )
        elapsed = time.monotonic() - started

    sent = sum(outcome.attempts for outcome in outcomes)
    server = lps.server
    server.wait_for_requests(sent, timeout=5.0)  # the last attempts are recorded already
    requests = server.requests
    assert server.errors == []
    deviations = deviations_from_plan(result.submissions, plans, requests)
    assert not deviations, f"{len(deviations)} comparison(s) did not end as planned:\n" + "\n".join(
        deviations[:10]
    )

    # Every task ends exactly once, in input order, under its own correlation id.
    submissions = result.submissions
    assert len(submissions) == COMPARISONS
    assert all(s.task is t for s, t in zip(submissions, tasks, strict=True))
    assert len({s.correlation_id for s in submissions}) == COMPARISONS

    # Server side: nothing unknown was sent, no comparison was attempted too often, and
    # each correlation id carried its own task's pair.
    by_cid: dict[str, list[RecordedRequest]] = {}
    for request in requests:
        assert request.correlation_id is not None
        by_cid.setdefault(request.correlation_id, []).append(request)
    assert set(by_cid) == {str(s.correlation_id) for s in submissions}
    assert max(request.attempt for request in requests) == MAX_ATTEMPTS
    assert len(requests) == sent

    for n, (submission, plan, outcome) in enumerate(zip(submissions, plans, outcomes, strict=True)):
        cid = str(submission.correlation_id)
        seen = by_cid[cid]
        assert [r.attempt for r in seen] == list(range(1, outcome.attempts + 1)), (n, plan)
        assert {task_number(r) for r in seen} == {n}
        if outcome.queued:
            assert submission.error is None, (n, plan, submission.error)
            # the answer to the last attempt, not the one a timed-out attempt was given
            assert submission.queue_id == f"q-{cid}-{outcome.attempts}", (n, plan)
            assert submission.queue_id in lps.issued
            continue
        error = submission.error
        assert isinstance(error, LPSError), (n, plan)
        assert submission.queue_id is None
        assert error.correlation_id == submission.correlation_id
        reported = (error.status, error.code, error.retryable, error.attempts)
        wanted = (outcome.last.status, outcome.last.code, outcome.last.retryable, outcome.attempts)
        assert reported == wanted, (n, plan, error)
        assert outcome.last.text in error.message, (n, plan, error.message)

    # No comparison lost or duplicated: queued exactly where the script made it succeed.
    assert [s.queued for s in submissions] == [o.queued for o in outcomes]
    assert result.queued == sum(o.queued for o in outcomes)
    assert [s.task for s in result.failed] == [
        t for t, o in zip(tasks, outcomes, strict=True) if not o.queued
    ]

    # Retry-After was honoured and capped: each 429 that was retried waited exactly the
    # cap; every other wait was the jittered backoff, below the cap.
    retried_after = sum(
        1
        for request in requests
        if kind_at(plans[task_number(request)], request.attempt).retry_after
        and request.attempt < len(by_cid[request.correlation_id or ""])
    )
    assert len(sleep.waits) == sent - COMPARISONS
    assert sleep.waits.count(BACKOFF_MAX_SECONDS) == retried_after
    assert max(sleep.waits) == BACKOFF_MAX_SECONDS

    # Counted once per comparison, however many HTTP attempts it took.
    assert len(requests) > COMPARISONS
    assert per_mode(registry, "cj_llm_requests_total") == {
        "per_request": 0.0,
        "serial_bundle": float(COMPARISONS),
        "provider_batch_api": 0.0,
    }
    assert sum(per_mode(registry, "cj_llm_batches_started_total").values()) == 1.0
    assert per_mode(registry, "cj_llm_batches_started_total")["serial_bundle"] == 1.0

    # Bounded: every comparison gives up after MAX_ATTEMPTS timeouts and capped waits.
    assert elapsed < RUN_BOUND_SECONDS

    reasons = Tally(
        f"{s.error.status} {s.error.code} {'retryable' if s.error.retryable else 'final'}"
        for s in result.failed
        if s.error is not None
    )
    attempts = Tally(len(by_cid[str(s.correlation_id)]) for s in submissions)
    record_property("run_seconds", round(elapsed, 2))
    record_property("http_requests", len(requests))
    record_property("queued", result.queued)
    record_property("failed_by_reason", dict(sorted(reasons.items())))
    record_property("attempts_distribution", dict(sorted(attempts.items())))
    record_property("capped_retry_after_waits", retried_after)
    print(  # shown with -s / -rP: the numbers of this run
        f"\n{COMPARISONS} comparisons in {elapsed:.2f} s, {len(requests)} HTTP requests; "
        f"queued {result.queued}, failed {dict(sorted(reasons.items()))}; "
        f"attempts {dict(sorted(attempts.items()))}; capped Retry-After waits {retried_after}"
    )


# --- back-pressure in a concurrent wave ---------------------------------------------------------

FULL_FROM: Final = 700  # the queue fills when this many requests have arrived


async def test_a_queue_that_fills_mid_wave_stops_the_wave_and_counts_what_was_sent(
    make_resolver: ResolverFactory,
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    record_property: Any,
) -> None:
    resolver, _ = make_resolver(
        document(mode_flag(default_variant="per_request")), LPS_MAX_CONCURRENCY=CONCURRENCY
    )
    answered_full_at: list[float] = []
    lock = threading.Lock()

    def filling(request: RecordedRequest) -> Reply:
        if request.index < FULL_FROM:
            return accepted(queue_id=f"q-{request.correlation_id}")
        with lock:
            answered_full_at.append(time.monotonic())
        return queue_full(retry_after_seconds=300)

    tasks = [
        ComparisonTask(f"t{n}-a", f"t{n}-b", f"Compare essay t{n}-a with essay t{n}-b.")
        for n in range(COMPARISONS)
    ]
    with running_lps_server(policy=filling) as server:
        async with LPSClient.from_settings(
            resolver.settings.model_copy(update={"LLM_PROVIDER_SERVICE_URL": server.base_url}),
            sleep=RecordingSleep(),
            backoff_initial_seconds=BACKOFF_INITIAL_SECONDS,
            backoff_max_seconds=BACKOFF_MAX_SECONDS,
        ) as client:
            interaction = LLMInteraction(
                settings=resolver.settings, resolver=resolver, lps=client, metrics=metrics
            )
            started = time.monotonic()
            async with asyncio.timeout(RUN_BOUND_SECONDS):
                result = await interaction.perform_comparisons(tasks, BatchContext(77))
            elapsed = time.monotonic() - started
        requests = server.requests
        errors = server.errors
    assert errors == []

    submissions = result
    assert [s.task for s in submissions] == tasks  # each task ends once, in input order
    sent = {r.correlation_id for r in requests}
    assert len(sent) == len(requests)  # no comparison was sent twice
    queued = [s for s in submissions if s.queued]
    answered_full = [s for s in submissions if s.error and s.error.status == 202]
    held_back = [s for s in submissions if s.error and s.error.attempts == 0]
    assert len(queued) == FULL_FROM
    assert len(queued) + len(answered_full) + len(held_back) == COMPARISONS
    # After the first "full", only what was already in flight reached LPS.
    assert 1 <= len(answered_full) <= CONCURRENCY
    assert len(requests) == FULL_FROM + len(answered_full)
    for submission in answered_full + held_back:
        error = submission.error
        assert error is not None
        assert (error.code, error.retryable) == (QUEUE_FULL, True)
        assert error.retry_after_seconds is not None
        assert 299 < error.retry_after_seconds <= 300
    assert {str(s.correlation_id) for s in held_back}.isdisjoint(sent)
    # Counted exactly what went out; each queue-full answer counted once.
    assert per_mode(registry, "cj_llm_requests_total")["per_request"] == len(requests)
    assert registry.get_sample_value("cj_llm_lps_backpressure_total") == len(answered_full)
    assert elapsed < RUN_BOUND_SECONDS
    record_property("queue_full_answers", len(answered_full))
    record_property("held_back", len(held_back))
    record_property("run_seconds", round(elapsed, 2))
