"""Runtime toggles on a real flags file: served under load, kill switches, versions."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cj_batching import (
    BatchConfigOverrides,
    BatchContext,
    BatchingModeResolver,
    LLMBatchingMode,
    Resolution,
    configure,
)
from flags.testing import wait_until, write_atomically

from .conftest import make_settings
from .documents import allow_list_flag, batching_document, document, mode_flag, source_is

POLL = 0.05
# One poll, the settle re-read, parsing and event delivery; generous for a loaded CI box.
BOUND = POLL + 0.05 + 0.5
MODES = set(LLMBatchingMode)


@pytest.fixture
def flags_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags.yaml"
    path.write_text(yaml.safe_dump(batching_document(version="v1")))
    return path


@pytest.fixture
def resolver(flags_file: Path) -> Iterator[BatchingModeResolver]:
    settings = make_settings(FLAGS_FILE=flags_file, FLAGS_POLL_INTERVAL_SECONDS=POLL)
    resolver = configure(settings, domain=f"test-{uuid.uuid4().hex}")
    yield resolver
    resolver.close()
    resolver.client.provider.shutdown()


def publish(path: Path, doc: dict[str, Any]) -> float:
    write_atomically(path, yaml.safe_dump(doc))
    return time.monotonic()


def served(
    resolver: BatchingModeResolver, context: BatchContext, mode: LLMBatchingMode
) -> Resolution:
    return wait_until(
        lambda: (r := resolver.resolve(context)).mode is mode and r,
        timeout=5,
        what=f"{mode.value} to be served",
    )


def test_new_mode_is_served_to_continuous_traffic_within_the_bound(
    resolver: BatchingModeResolver,
    flags_file: Path,
) -> None:
    bos = BatchContext(1, "bos", "openai")
    assert resolver.resolve(bos).mode is LLMBatchingMode.SERIAL_BUNDLE
    stop = threading.Event()
    seen: list[list[tuple[float, LLMBatchingMode]]] = [[] for _ in range(4)]
    errors: list[BaseException] = []

    def traffic(index: int) -> None:
        batch_ids = range(index * 1000, index * 1000 + 50)
        try:
            while not stop.is_set():
                for batch_id in batch_ids:
                    context = BatchContext(batch_id, "bos", "openai")
                    seen[index].append((time.monotonic(), resolver.resolve(context).mode))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=traffic, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: all(seen), what="traffic to start")
    doc = document(mode_flag({"if": [source_is("bos"), "per_request", None]}), version="v2")
    written = publish(flags_file, doc)
    wait_until(
        lambda: all(s[-1][1] is LLMBatchingMode.PER_REQUEST for s in seen),
        timeout=5,
        what="every thread to serve the new mode",
    )
    stop.set()
    for thread in threads:
        thread.join(5)
    assert errors == []
    answers = [mode for thread_seen in seen for _, mode in thread_seen]
    assert set(answers) <= MODES
    assert len(answers) > 1000  # it really was continuous traffic
    first_new = min(t for s in seen for t, mode in s if mode is LLMBatchingMode.PER_REQUEST)
    assert first_new - written < BOUND
    # Once a thread saw the new mode, the old one is gone for good within the bound.
    last_old = max(
        (t for s in seen for t, m in s if m is not LLMBatchingMode.PER_REQUEST), default=written
    )
    assert last_old - written < BOUND


def test_disabling_the_flag_sends_every_new_resolution_to_the_env_default(
    resolver: BatchingModeResolver,
    flags_file: Path,
) -> None:
    eng5 = BatchContext(5, "eng5_runner", "anthropic")
    assert resolver.resolve(eng5).decided_by == "flag"
    doc = batching_document(version="v2")
    doc["flags"]["llm-batching-mode"]["state"] = "DISABLED"
    publish(flags_file, doc)
    resolution = served(resolver, eng5, LLMBatchingMode.SERIAL_BUNDLE)
    assert (resolution.decided_by, resolution.flag_reason) == ("default", "DISABLED")
    override = BatchConfigOverrides(llm_batching_mode_override=LLMBatchingMode.PER_REQUEST)
    with_override = BatchContext(5, "eng5_runner", "anthropic", overrides=override)
    assert resolver.resolve(with_override).mode is LLMBatchingMode.PER_REQUEST


def test_dropping_a_provider_from_the_allow_list_applies_to_overrides_too(
    resolver: BatchingModeResolver,
    flags_file: Path,
) -> None:
    doc = batching_document(version="v1")
    doc["flags"]["llm-batch-api-allowed-providers"] = allow_list_flag("openai", "anthropic")
    publish(flags_file, doc)
    override = BatchConfigOverrides(llm_batching_mode_override=LLMBatchingMode.PROVIDER_BATCH_API)
    contexts = [
        BatchContext(9, "eng5_runner", "anthropic"),
        BatchContext(9, "bos", "anthropic", overrides=override),
    ]
    for context in contexts:
        served(resolver, context, LLMBatchingMode.PROVIDER_BATCH_API)
    doc["flags"]["llm-batch-api-allowed-providers"] = allow_list_flag("openai")
    doc["metadata"]["version"] = "v2"
    publish(flags_file, doc)
    for context in contexts:
        resolution = served(resolver, context, LLMBatchingMode.SERIAL_BUNDLE)
        assert resolution.guardrail_applied
        assert resolution.allowed_providers_source == "flag"
    assert resolver.resolve(BatchContext(9, "eng5_runner", "openai")).mode is (
        LLMBatchingMode.PROVIDER_BATCH_API
    )


def test_flag_set_version_is_carried_and_logged(
    resolver: BatchingModeResolver,
    flags_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    context = BatchContext(3, "eng5_runner", "openai")
    assert resolver.resolve(context).flag_set_version == "v1"
    publish(flags_file, batching_document(version="2026-11-25.7"))
    wait_until(
        lambda: resolver.resolve(context).flag_set_version == "2026-11-25.7", what="the new version"
    )
    with caplog.at_level(logging.DEBUG, logger="cj_batching.resolver"):
        resolver.resolve(BatchContext(4, "eng5_runner", "openai"))
    record = next(r for r in caplog.records if r.getMessage() == "batching mode resolved")
    assert record.flag_set_version == "2026-11-25.7"  # type: ignore[attr-defined]
    assert record.cj_batch_id == "4"  # type: ignore[attr-defined]


def test_a_bad_edit_keeps_serving_the_last_good_version(
    resolver: BatchingModeResolver,
    flags_file: Path,
) -> None:
    eng5 = BatchContext(11, "eng5_runner", "openai")
    write_atomically(flags_file, "flags: {llm-batching-mode: {state: ENABLED}}")
    wait_until(lambda: resolver.client.get_provider_status().value == "ERROR", what="the rejection")
    resolver.clear_cache()
    resolution = resolver.resolve(eng5)
    assert (resolution.mode, resolution.decided_by, resolution.flag_set_version) == (
        LLMBatchingMode.PROVIDER_BATCH_API,
        "flag",
        "v1",
    )
