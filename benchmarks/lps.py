"""`LLMInteraction.perform_comparisons` of 2 000 tasks to a loopback LPS, against plain
`httpx.AsyncClient` posts of the same JSON bodies with the same concurrency.

Ours: the whole path (resolution from the cache, metadata, one pydantic
`LLMComparisonRequest` and a fresh correlation id per task, `LPSClient.submit` with its
back-pressure check, concurrency gate, tenacity retry loop, total deadline, capped body
read and answer classification, and the request counter at the first POST) with
`LPS_MAX_CONCURRENCY` (50) workers. Baseline: the same request bodies serialised
beforehand, posted by 50 workers with `httpx.AsyncClient.post`, checking only for 202.
Both sides post through the same `httpx.AsyncClient` (sized as LPSClient sizes its own:
50 connections, all kept alive, and its timeout; `LPSClient(http=...)`), so they see the
same pool state. The server is `tests.lps_server.running_lps_server()` (an asyncio server
on a thread of this process, answering 202 at once), so both sides share its cost and
the GIL. After untimed warm-up waves (>= 7 s, until httpx's pool has settled), ours and
the baseline alternate (AB BA ...); the figure is the median wall time of a wave. A second,
informational figure gives the median process CPU time of a wave (client and server
thread): on a machine shared with other jobs it moves far less than wall time.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from benchmarks._measure import Figure, Run, progress
from benchmarks._setup import bench_settings, context, shipped_resolver
from cj_batching.interaction import LLMInteraction
from cj_batching.lps import LLMComparisonRequest, LLMConfigOverrides, LPSClient
from cj_batching.metadata import build_request_metadata, comparison_metadata
from cj_batching.submission import ComparisonTask
from tests.lps_server import LPSServer, running_lps_server

__all__ = ["run"]

TASKS = 2_000
OVER_PLAIN_HTTPX = 1.25
_WARM_UP_SECONDS = 7.0
_ESSAY = (
    "The industrial revolution changed how people lived and worked, moving families from "
    "farms to crowded cities where factories set the pace of the day. "
) * 4


def _tasks(count: int) -> list[ComparisonTask]:
    return [
        ComparisonTask(
            essay_a_id=f"essay-{index:05d}-a",
            essay_b_id=f"essay-{index:05d}-b",
            user_prompt=f"Compare essay A and essay B.\n\nEssay A:\n{_ESSAY}\n\nEssay B:\n{_ESSAY}",
        )
        for index in range(count)
    ]


async def _plain_posts(
    http: httpx.AsyncClient, url: str, bodies: Sequence[bytes], concurrency: int
) -> int:
    """POST every body with `concurrency` workers; how many got a 202."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    queued = 0
    indexes = iter(range(len(bodies)))

    async def worker() -> None:
        nonlocal queued
        for index in indexes:
            response = await http.post(url, content=bodies[index], headers=headers)
            queued += response.status_code == 202

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(bodies)))))
    return queued


@dataclass
class _Samples:
    """Per-wave wall and CPU seconds of each side."""

    ours: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)
    ours_cpu: list[float] = field(default_factory=list)
    plain_cpu: list[float] = field(default_factory=list)


async def _measure(lps: LPSServer, options: Run) -> tuple[_Samples, int, int]:
    count = options.pick(TASKS, 300)
    rounds = 4  # timed waves per side, AB BA AB BA
    settings = bench_settings(LLM_PROVIDER_SERVICE_URL=lps.base_url)
    tasks = _tasks(count)
    ctx = context(42, "els", "openai")
    samples = _Samples()
    with shipped_resolver(settings) as shipped:
        resolution = await shipped.resolver.aresolve(ctx)
        base = build_request_metadata(ctx, resolution, preferred_bundle_size=count)
        overrides = LLMConfigOverrides(
            provider_override=resolution.llm_provider,
            model_override=settings.DEFAULT_LLM_MODEL,
            temperature_override=settings.DEFAULT_LLM_TEMPERATURE,
        )
        # The same bodies ours sends (each with its own correlation id), serialised once.
        bodies = [
            LLMComparisonRequest(
                user_prompt=task.user_prompt,
                callback_topic=settings.LLM_PROVIDER_CALLBACK_TOPIC,
                llm_config_overrides=overrides,
                correlation_id=uuid.uuid4(),
                metadata=comparison_metadata(base, task.essay_a_id, task.essay_b_id),
            ).wire_body()
            for task in tasks
        ]
        # One httpx client (sized and timed as LPSClient's own) serves both sides: the
        # same pool, so neither side pays for reconnecting connections that idled while
        # the other side ran (httpx expires idle connections after 5 s).
        concurrency = settings.LPS_MAX_CONCURRENCY
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        timeout = httpx.Timeout(settings.LPS_TIMEOUT_SECONDS)
        async with (
            httpx.AsyncClient(limits=limits, timeout=timeout) as http,
            LPSClient.from_settings(settings, http=http) as lps_client,
        ):
            interaction = LLMInteraction(
                settings=settings,
                resolver=shipped.resolver,
                lps=lps_client,
                metrics=shipped.metrics,
            )
            url = lps_client.endpoint
            # Warm-up: untimed waves, alternating sides, for at least _WARM_UP_SECONDS and
            # one wave per side. httpx's pool first opens a connection per worker and only
            # settles after its idle connections expire (5 s keep-alive); until then every
            # wave is ~2-3x slower, whichever side runs it.
            warm_up_until = time.perf_counter() + _WARM_UP_SECONDS
            warm_waves = 0
            while warm_waves < 2 or time.perf_counter() < warm_up_until:
                if warm_waves % 2 == 0:
                    await interaction.perform_comparisons(tasks, ctx)
                else:
                    await _plain_posts(http, url, bodies, concurrency)
                warm_waves += 1
                lps.reset()
            for index in range(rounds):
                for side in ("ours", "plain") if index % 2 == 0 else ("plain", "ours"):
                    started, cpu = time.perf_counter(), time.process_time()
                    if side == "ours":
                        results = await interaction.perform_comparisons(tasks, ctx)
                        ok = sum(1 for result in results if result.queued)
                        samples.ours.append(time.perf_counter() - started)
                        samples.ours_cpu.append(time.process_time() - cpu)
                    else:
                        ok = await _plain_posts(http, url, bodies, concurrency)
                        samples.plain.append(time.perf_counter() - started)
                        samples.plain_cpu.append(time.process_time() - cpu)
                    if ok != count or lps.request_count != count:
                        raise RuntimeError(
                            f"lps: {side} queued {ok} of {count} "
                            f"({lps.request_count} requests arrived)"
                        )
                    lps.reset()
    return samples, count, warm_waves


def run(options: Run) -> list[Figure]:
    progress("lps: perform_comparisons vs plain httpx posts to the loopback LPS")
    with running_lps_server() as lps:
        samples, count, warm_waves = asyncio.run(_measure(lps, options))
        errors = lps.errors
    if errors:
        raise RuntimeError(f"lps: the loopback server failed: {errors[:3]}")
    common = {
        "tasks": count,
        "concurrency": bench_settings().LPS_MAX_CONCURRENCY,
        "rounds": len(samples.ours),
        "per": "wave of all tasks",
        "warm_up_waves": warm_waves,
    }
    return [
        Figure(
            "lps.perform_comparisons",
            statistics.median(samples.ours),
            statistics.median(samples.plain),
            "s",
            "ratio",
            OVER_PLAIN_HTTPX,
            {**common, "ours_seconds": samples.ours, "baseline_seconds": samples.plain},
        ),
        Figure(
            "lps.perform_comparisons_cpu",
            statistics.median(samples.ours_cpu),
            statistics.median(samples.plain_cpu),
            "s",
            "info",
            None,
            {
                **common,
                "ours_cpu_seconds": samples.ours_cpu,
                "baseline_cpu_seconds": samples.plain_cpu,
            },
        ),
    ]
