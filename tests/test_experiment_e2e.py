"""End to end: a 20/80 rollout through LLMInteraction, callbacks from the loopback LPS, report.

A few hundred CJ batches go through the real chain (flag with a fractional 20 % batch-API
rollout for ELS, in-memory provider) and the real `LPSClient` to the loopback LPS, which
queues each comparison and publishes its result callback to a JSONL file with per-mode
behaviour the test chooses; `cj-batching report` then reads that file.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cj_batching import (
    BatchContext,
    BatchingMetrics,
    BatchingModeResolver,
    ComparisonTask,
    LLMInteraction,
    LPSClient,
)
from cj_batching.cli import main
from flags import FlagdMemoryProvider, bind_provider

from .callback_publisher import CallbackPublisher
from .callbacks import ArmProfile, CallbackSimulator
from .conftest import make_settings
from .documents import batching_document
from .helpers import per_mode
from .lps_server import running_lps_server

_BATCHES = 300
_COMPARISONS = 6


def tasks(batch_id: int) -> list[ComparisonTask]:
    return [
        ComparisonTask(f"b{batch_id}-essay-{i}-a", f"b{batch_id}-essay-{i}-b", "Which is better?")
        for i in range(_COMPARISONS)
    ]


async def submit_rollout(interaction: LLMInteraction) -> None:
    batch_ids = range(1, _BATCHES + 1)
    for start in range(0, _BATCHES, 25):  # 25 batches in flight, as several CJ workers
        chunk = batch_ids[start : start + 25]
        waves = await asyncio.gather(
            *(interaction.submit_batch(BatchContext(b, "els", "openai"), tasks(b)) for b in chunk)
        )
        assert all(not wave.failed for wave in waves)


@pytest.fixture(scope="module")
def experiment(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, CollectorRegistry]:
    """The rollout's callbacks in a JSONL file: the batch API 15 points worse, same latency."""
    profiles = {
        "serial_bundle": ArmProfile(success_rate=0.95, response_ms=2_000, cost_usd=0.002),
        "provider_batch_api": ArmProfile(success_rate=0.80, response_ms=2_000, cost_usd=0.002),
    }
    path = tmp_path_factory.mktemp("e2e") / "results.jsonl"
    publisher = CallbackPublisher(CallbackSimulator(profiles, seed=77), path)
    registry = CollectorRegistry()
    metrics = BatchingMetrics(registry)
    settings = make_settings(LPS_MAX_CONCURRENCY=50)
    provider = FlagdMemoryProvider(batching_document(20))
    resolver = BatchingModeResolver(
        settings, bind_provider(provider, f"e2e-{uuid.uuid4().hex}"), metrics=metrics
    )
    try:
        with running_lps_server(default=publisher) as lps:

            async def run() -> None:
                async with LPSClient(lps.base_url, max_retries=0) as client:
                    interaction = LLMInteraction(
                        settings=settings, resolver=resolver, lps=client, metrics=metrics
                    )
                    await submit_rollout(interaction)

            asyncio.run(run())
    finally:
        publisher.close()
        resolver.close()
        provider.shutdown()
    return path, registry


def report_json(capsys: pytest.CaptureFixture[str], path: Path) -> dict[str, Any]:
    assert main(["report", str(path), "--json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_every_queued_comparison_has_one_callback(
    experiment: tuple[Path, CollectorRegistry], capsys: pytest.CaptureFixture[str]
) -> None:
    path, registry = experiment
    sent = sum(per_mode(registry, "cj_llm_requests_total").values())
    data = report_json(capsys, path)
    assert sent == _BATCHES * _COMPARISONS
    assert data["results"] == sent
    assert (data["bad_lines"], data["duplicates"]) == (0, 0)
    assert sum(arm["batches"] for arm in data["arms"]) == _BATCHES


def test_the_rollout_splits_batches_about_20_80(
    experiment: tuple[Path, CollectorRegistry], capsys: pytest.CaptureFixture[str]
) -> None:
    arms = {arm["mode"]: arm for arm in report_json(capsys, experiment[0])["arms"]}
    assert set(arms) == {"serial_bundle", "provider_batch_api"}
    assert all(arm["decided_by"] == "flag" for arm in arms.values())
    assert 0.13 < arms["provider_batch_api"]["batches"] / _BATCHES < 0.27


def test_fifteen_points_more_errors_is_found_with_the_right_sign(
    experiment: tuple[Path, CollectorRegistry], capsys: pytest.CaptureFixture[str]
) -> None:
    (comparison,) = report_json(capsys, experiment[0])["versus_control"]
    assert (comparison["mode"], comparison["control"]) == ("provider_batch_api", "serial_bundle")
    low, high = comparison["success_rate_diff_ci"]
    assert high < 0
    assert low < comparison["success_rate_diff"] < high


def test_an_arm_without_an_effect_is_covered(
    experiment: tuple[Path, CollectorRegistry], capsys: pytest.CaptureFixture[str]
) -> None:
    (comparison,) = report_json(capsys, experiment[0])["versus_control"]
    low, high = comparison["response_ms_p50_diff_ci"]  # the same latency profile in both
    assert low <= 0 <= high
