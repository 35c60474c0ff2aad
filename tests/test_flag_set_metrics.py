"""Which flag set a process serves, as Prometheus sees it: the info gauge across a reload
and a rejected version, the reload time, the rejected-version counter."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from cj_batching import BatchingMetrics, BatchingModeResolver, configure
from flags.testing import wait_until, write_atomically

from .conftest import make_settings
from .documents import batching_document

INFO = "cj_llm_batching_flags_info"
RELOADED = "cj_llm_batching_flags_last_reload_timestamp_seconds"
REJECTED = "cj_llm_batching_flags_rejected_total"

Series = dict[tuple[str, str], float]


def info(registry: CollectorRegistry) -> Series:
    """Every `cj_llm_batching_flags_info` series as {(version, status): value}."""
    return {
        (sample.labels["version"], sample.labels["status"]): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == INFO
    }


def wait_for_info(registry: CollectorRegistry, expected: Series) -> None:
    wait_until(lambda: info(registry) == expected, what=f"{INFO} == {expected}")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "flags.yaml"


@pytest.fixture
def start(
    path: Path, registry: CollectorRegistry, metrics: BatchingMetrics
) -> Iterator[Callable[[], BatchingModeResolver]]:
    """configure() a file-backed resolver with metrics on a private domain."""
    resolvers: list[BatchingModeResolver] = []

    def _start() -> BatchingModeResolver:
        settings = make_settings(FLAGS_FILE=path, FLAGS_POLL_INTERVAL_SECONDS=0.02)
        resolver = configure(settings, metrics=metrics, domain=f"test-{uuid.uuid4().hex}")
        resolvers.append(resolver)
        return resolver

    yield _start
    for resolver in resolvers:
        resolver.close()
        resolver.client.provider.shutdown()


def write(path: Path, version: str, *, valid: bool = True, share: int = 20) -> None:
    document = batching_document(batch_api_share=share, version=version)
    if not valid:
        document["flags"]["llm-batching-mode"]["defaultVariant"] = "fast"
    write_atomically(path, yaml.safe_dump(document))


def test_the_version_in_use_is_one_series(
    path: Path, start: Callable[[], BatchingModeResolver], registry: CollectorRegistry
) -> None:
    write(path, "v1")
    start()
    wait_for_info(registry, {("v1", "ready"): 1.0})
    assert registry.get_sample_value(REJECTED) == 0.0


def test_a_reload_replaces_the_series_and_stamps_the_time(
    path: Path, start: Callable[[], BatchingModeResolver], registry: CollectorRegistry
) -> None:
    write(path, "v1")
    start()
    first = registry.get_sample_value(RELOADED)
    assert first is not None
    assert first > 0
    write(path, "v2", share=30)
    wait_for_info(registry, {("v2", "ready"): 1.0})  # v1's series is gone, not left at 0
    second = registry.get_sample_value(RELOADED)
    assert second is not None
    assert second >= first


def test_a_rejected_version_keeps_the_served_version_and_counts(
    path: Path, start: Callable[[], BatchingModeResolver], registry: CollectorRegistry
) -> None:
    write(path, "v1")
    start()
    wait_for_info(registry, {("v1", "ready"): 1.0})
    reloaded = registry.get_sample_value(RELOADED)
    write(path, "v2", valid=False)
    wait_for_info(registry, {("v1", "error"): 1.0})
    assert registry.get_sample_value(REJECTED) == 1.0
    assert registry.get_sample_value(RELOADED) == reloaded  # nothing new was accepted
    write(path, "v3", share=30)
    wait_for_info(registry, {("v3", "ready"): 1.0})
    assert registry.get_sample_value(REJECTED) == 1.0


def test_no_good_flags_at_start_is_an_error_without_a_version(
    path: Path, start: Callable[[], BatchingModeResolver], registry: CollectorRegistry
) -> None:
    write(path, "v1", valid=False)
    start()
    wait_for_info(registry, {("", "error"): 1.0})
    wait_until(lambda: registry.get_sample_value(REJECTED) == 1.0, what="one rejection")
    assert registry.get_sample_value(RELOADED) == 0.0


def test_without_flags_the_status_is_ready_and_the_version_empty(
    registry: CollectorRegistry, metrics: BatchingMetrics
) -> None:
    settings = make_settings(FLAGS_PROVIDER="none")
    resolver = configure(settings, metrics=metrics, domain=f"test-{uuid.uuid4().hex}")
    try:
        wait_for_info(registry, {("", "ready"): 1.0})
    finally:
        resolver.close()


HOSTILE = 'v2\n"} 1\nfake_metric{a="b\x1b[2J\udc80' + "x" * 200


def test_a_hostile_version_is_escaped_and_cut(
    path: Path, start: Callable[[], BatchingModeResolver], registry: CollectorRegistry
) -> None:
    document = batching_document(version=HOSTILE)
    path.write_text(yaml.safe_dump(document).replace("\\uDC80", "\\udc80"))
    start()
    wait_until(lambda: info(registry), what="an info series")
    ((version, status),) = info(registry)
    assert status == "ready"
    assert len(version) == 64
    assert version.isprintable()
    exposition = generate_latest(registry).decode()
    assert "\nfake_metric" not in exposition
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Prometheus' metrics linter) is not installed on PATH")
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=exposition.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, (checked.stdout + checked.stderr).decode()
