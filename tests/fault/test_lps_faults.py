"""2 000 comparisons against a loopback LPS that misbehaves in every way the contract names.

The server answers each request from a *plan* chosen by the comparison's task number
(carried in the request's `essay_a_id`, which LPS echoes) and the attempt number it sees
for the correlation id: some comparisons fail their first attempts and then succeed, some
fail retryably on every attempt, some are refused for good. The plan fixes every
comparison's fate before the run, so the expected outcome of each task, the attempts the
server must see for it and the run's totals are exact, run after run.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterator
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
    LLMInteraction,
    LPSClient,
    LPSError,
)
from tests.conftest import ResolverFactory
from tests.documents import document, mode_flag
from tests.helpers import per_mode
from tests.lps_server import (
    LPSServer,
    RecordedRequest,
    Reply,
    accepted,
    bad_request,
    drop_connection,
    ok_200,
    queue_full,
    running_lps_server,
    server_error,
    slow,
    too_many_requests,
)

pytestmark = pytest.mark.fault

COMPARISONS: Final = 2_000
CONCURRENCY: Final = 50
# 0.5 s, not 0.2 s: at 50 parallel POSTs a loaded CI box (or a busy test run) delays the
# client's event loop past 0.2 s now and then, and a spurious connect or read timeout would
# change a comparison's planned fate; a slow reply is 4x this, so it always times out.
TIMEOUT_SECONDS: Final = 0.5
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
    succeeds: bool = False
    retryable: bool = False
    text: str = ""  # a fragment the client's error text must carry
    retry_after: bool = False  # answers with a Retry-After above the backoff cap


OK = Kind("202", 202, succeeds=True)
FULL = Kind("202 no queue_id", 202, retryable=True, text="queue full")
R429 = Kind("429 Retry-After 30", 429, retryable=True, text="Rate limit", retry_after=True)
R429_DATE = Kind("429 Retry-After date", 429, retryable=True, text="Rate limit", retry_after=True)
E500 = Kind("500", 500, retryable=True, text="Internal server error")
E503 = Kind("503", 503, retryable=True, text="Service unavailable")
E400 = Kind("400", 400, text="Invalid request")
E200 = Kind("200", 200, text="protocol error")
SLOW = Kind("slow", None, retryable=True, text="timeout after")
DROP = Kind("dropped", None, retryable=True, text="RemoteProtocolError")


def reply_for(kind: Kind, request: RecordedRequest) -> Reply:
    """The server's answer of `kind`; a 202 names the correlation id and the attempt."""
    queue_id = f"q-{request.correlation_id}-{request.attempt}"
    if kind is OK:
        return accepted(queue_id=queue_id)
    if kind is SLOW:  # LPS queues it, but answers long after the client gave up
        return slow(SLOW_SECONDS, accepted(queue_id=queue_id))
    if kind is R429_DATE:
        later = datetime.now(UTC) + timedelta(hours=1)
        return too_many_requests(retry_after=format_datetime(later, usegmt=True))
    replies = {
        FULL: queue_full(),
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
    "queue-full-then-ok": (FULL, OK),
    "slow-then-ok": (SLOW, OK),
    "dropped-then-ok": (DROP, OK),
    "three-failures-then-ok": (DROP, SLOW, R429_DATE, OK),  # succeeds on the last attempt
    "four-failures-then-ok": (E500, E503, DROP, FULL, OK),  # would need a 5th attempt
    "always-503": (E503,),
    "always-429": (R429,),
    "always-queue-full": (FULL,),
    "always-slow": (SLOW,),
    "always-dropped": (DROP,),
    "400": (E400,),
    "500-then-400": (E500, E400),
    "200": (E200,),
}
# Task n follows CYCLE[n % len(CYCLE)]: the kinds interleave through the whole run.
CYCLE: Final = (
    ["ok"] * 16
    + ["500-then-ok", "503-429-then-ok", "queue-full-then-ok", "slow-then-ok"] * 2
    + ["dropped-then-ok", "three-failures-then-ok"] * 2
    + ["four-failures-then-ok", "always-429", "always-queue-full", "always-slow"]
    + ["always-dropped", "200"]
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
    """The loopback LPS answering by plan, and every queue_id it handed out."""

    server: LPSServer
    issued: set[str]


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

    with running_lps_server(policy=scripted) as server:
        yield ScriptedLPS(server, issued)


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
                error.status_code,
                error.retryable,
                error.attempts,
                seen[str(submission.correlation_id)],
            )
        )
        want = (
            ("queued", outcome.attempts)
            if outcome.queued
            else (outcome.last.status, outcome.last.retryable, outcome.attempts, outcome.attempts)
        )
        if got != want:
            detail = "" if error is None else f": {error.error}"
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
        reported = (error.status_code, error.retryable, error.attempts)
        assert reported == (outcome.last.status, outcome.last.retryable, outcome.attempts), (
            n,
            plan,
            error,
        )
        assert outcome.last.text in error.error, (n, plan, error.error)

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
        f"{s.error.status_code} {'retryable' if s.error.retryable else 'final'}"
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
