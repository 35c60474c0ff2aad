"""The batching counters as Prometheus exposes them: names, labels, safety, exposition."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import signal
import socket
import subprocess
import sys

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from cj_batching import (
    BatchContext,
    BatchingMetrics,
    ComparisonTask,
    LLMBatchingMode,
    LLMInteraction,
    LLMProviderType,
    LPSClient,
    Resolution,
    serve_metrics,
)
from cj_batching.cli import main
from cj_batching.metrics import FLAG_ERROR_CODES

from .conftest import ResolverFactory
from .lps_server import running_lps_server

PER_REQUEST = LLMBatchingMode.PER_REQUEST
SERIAL = LLMBatchingMode.SERIAL_BUNDLE
BATCH_API = LLMBatchingMode.PROVIDER_BATCH_API

SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def label_names(registry: CollectorRegistry, name: str) -> set[frozenset[str]]:
    return {
        frozenset(sample.labels)
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == name
    }


def series(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == name
    }


def sample_keys(registry: CollectorRegistry) -> set[SampleKey]:
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for metric in registry.collect()
        for sample in metric.samples
    }


def resolution(
    mode: LLMBatchingMode = SERIAL, decided_by: str = "flag", *, guardrail: bool = False
) -> Resolution:
    return Resolution(
        mode=mode,
        decided_by=decided_by,  # type: ignore[arg-type]
        requested_mode=BATCH_API if guardrail else mode,
        llm_provider=LLMProviderType.GOOGLE,
        guardrail_applied=guardrail,
    )


# --- names and labels --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "labels", "count"),
    [
        ("cj_llm_requests_total", {"batching_mode"}, 3),
        ("cj_llm_batches_started_total", {"batching_mode"}, 3),
        ("cj_llm_batching_resolutions_total", {"batching_mode", "decided_by", "cj_source"}, 48),
        ("cj_llm_batching_flag_errors_total", {"error_code"}, len(FLAG_ERROR_CODES)),
        ("cj_llm_batching_guardrail_downgrades_total", {"llm_provider"}, 5),
    ],
)
def test_every_counter_is_exposed_with_its_labels_from_zero(
    metrics: BatchingMetrics, registry: CollectorRegistry, name: str, labels: set[str], count: int
) -> None:
    assert label_names(registry, name) == {frozenset(labels)}
    values = series(registry, name)
    assert len(values) == count  # every series exists before anything happened...
    assert set(values.values()) == {0.0}  # ...at zero, so rate() works from the start


def test_requests_count_per_mode(metrics: BatchingMetrics, registry: CollectorRegistry) -> None:
    metrics.record_requests(SERIAL, 12)
    metrics.record_requests(SERIAL)
    metrics.record_requests(PER_REQUEST, 3)
    assert value(registry, "cj_llm_requests_total", batching_mode="serial_bundle") == 13
    assert value(registry, "cj_llm_requests_total", batching_mode="per_request") == 3
    assert value(registry, "cj_llm_requests_total", batching_mode="provider_batch_api") == 0


def test_batches_started_per_mode(metrics: BatchingMetrics, registry: CollectorRegistry) -> None:
    metrics.record_batch_started(BATCH_API)
    metrics.record_batch_started(BATCH_API)
    assert value(registry, "cj_llm_batches_started_total", batching_mode="provider_batch_api") == 2
    assert value(registry, "cj_llm_batches_started_total", batching_mode="per_request") == 0


def test_resolutions_carry_mode_decided_by_and_source(
    metrics: BatchingMetrics, registry: CollectorRegistry
) -> None:
    metrics.record_resolution(resolution(PER_REQUEST, "override"), "eng5_runner")
    assert (
        value(
            registry,
            "cj_llm_batching_resolutions_total",
            batching_mode="per_request",
            decided_by="override",
            cj_source="eng5_runner",
        )
        == 1
    )
    assert sum(series(registry, "cj_llm_batching_resolutions_total").values()) == 1


@pytest.mark.parametrize(
    ("source", "label"),
    [
        ("els", "els"),
        ("bos", "bos"),
        ("eng5_runner", "eng5_runner"),
        ("nightly-import", "other"),
        ("batch-4711", "other"),
        ("ELS", "other"),  # contexts normalise; a raw unnormalised value is not trusted
        ("", "other"),
    ],
)
def test_source_label_is_limited_to_known_sources(
    metrics: BatchingMetrics, registry: CollectorRegistry, source: str, label: str
) -> None:
    metrics.record_resolution(resolution(), source)
    counted = {
        dict(labels)["cj_source"]: count
        for labels, count in series(registry, "cj_llm_batching_resolutions_total").items()
        if count
    }
    assert counted == {label: 1.0}


def test_resolver_counts_sources_through_the_bounded_label(
    make_resolver: ResolverFactory, registry: CollectorRegistry
) -> None:
    resolver, _ = make_resolver()
    for source in (" ELS ", "bos", "eng5_runner", "research-cluster-7"):
        resolver.resolve(BatchContext(1, cj_source=source, llm_provider="openai"))
    by_source = {
        source: sum(
            count
            for labels, count in series(registry, "cj_llm_batching_resolutions_total").items()
            if dict(labels)["cj_source"] == source
        )
        for source in ("els", "bos", "eng5_runner", "other")
    }
    assert by_source == {"els": 1, "bos": 1, "eng5_runner": 1, "other": 1}


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("FLAG_NOT_FOUND", "FLAG_NOT_FOUND"),
        ("TYPE_MISMATCH", "TYPE_MISMATCH"),
        ("GENERAL", "GENERAL"),
        ("PROVIDER_NOT_READY", "PROVIDER_NOT_READY"),
        ("INVALID_MODE", "INVALID_MODE"),
        ("INVALID_ALLOW_LIST", "INVALID_ALLOW_LIST"),
        ("TIMEOUT", "TIMEOUT"),
        ("SOMETHING_NEW_IN_OPENFEATURE_9", "OTHER"),
        ("flag_not_found", "OTHER"),
        ("", "OTHER"),
    ],
)
def test_flag_error_codes_and_unknown_codes_as_other(
    metrics: BatchingMetrics, registry: CollectorRegistry, code: str, label: str
) -> None:
    metrics.record_flag_error(code)
    counted = {
        dict(labels)["error_code"]: count
        for labels, count in series(registry, "cj_llm_batching_flag_errors_total").items()
        if count
    }
    assert counted == {label: 1.0}
    assert (code in FLAG_ERROR_CODES) == (label == code)


@pytest.mark.parametrize("provider", list(LLMProviderType))
def test_guardrail_downgrades_per_provider(
    metrics: BatchingMetrics, registry: CollectorRegistry, provider: LLMProviderType
) -> None:
    metrics.record_guardrail_downgrade(provider)
    counted = {
        labels: count
        for labels, count in series(registry, "cj_llm_batching_guardrail_downgrades_total").items()
        if count
    }
    assert counted == {(("llm_provider", provider.value),): 1.0}


# --- safety ---------------------------------------------------------------------------------


def test_a_broken_counter_never_raises_into_the_caller_and_logs_once(
    metrics: BatchingMetrics,
    registry: CollectorRegistry,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(self: Counter, amount: float = 1, exemplar: object = None) -> None:
        raise RuntimeError("counter storage exploded")

    monkeypatch.setattr(Counter, "inc", broken)  # every bound child's inc() now raises
    with caplog.at_level(logging.DEBUG, logger="cj_batching.metrics"):
        for _ in range(3):
            metrics.record_batch_started(SERIAL)
            metrics.record_requests(SERIAL, 5)
            metrics.record_resolution(resolution(), "els")
            metrics.record_flag_error("GENERAL")
            metrics.record_guardrail_downgrade(LLMProviderType.GOOGLE)
    logged = [r for r in caplog.records if r.name == "cj_batching.metrics"]
    assert len(logged) == 1
    assert logged[0].levelno >= logging.WARNING
    assert logged[0].exc_info is not None
    assert "counter storage exploded" in caplog.text
    monkeypatch.undo()
    metrics.record_requests(SERIAL, 2)  # the counters themselves still work afterwards
    assert value(registry, "cj_llm_requests_total", batching_mode="serial_bundle") == 2


def test_bad_arguments_never_raise_into_the_caller(
    metrics: BatchingMetrics, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    before = sample_keys(registry)
    with caplog.at_level(logging.DEBUG, logger="cj_batching.metrics"):
        metrics.record_requests("turbo", 3)  # type: ignore[arg-type]
        metrics.record_batch_started(None)  # type: ignore[arg-type]
        metrics.record_resolution(resolution(decided_by="gut-feeling"), "els")
        metrics.record_guardrail_downgrade("acme-llm")  # type: ignore[arg-type]
    assert len([r for r in caplog.records if r.name == "cj_batching.metrics"]) == 1
    assert sample_keys(registry) == before  # no label value was invented


def test_second_metrics_on_the_same_registry_is_a_clear_error(
    metrics: BatchingMetrics, registry: CollectorRegistry
) -> None:
    with pytest.raises(ValueError, match="already registered") as caught:
        BatchingMetrics(registry)
    assert "one BatchingMetrics per registry" in str(caught.value)
    metrics.record_requests(PER_REQUEST)  # the first one is unharmed
    assert value(registry, "cj_llm_requests_total", batching_mode="per_request") == 1


def test_metrics_on_separate_registries_are_independent() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    BatchingMetrics(first).record_requests(SERIAL, 4)
    BatchingMetrics(second)
    assert value(first, "cj_llm_requests_total", batching_mode="serial_bundle") == 4
    assert value(second, "cj_llm_requests_total", batching_mode="serial_bundle") == 0


async def test_label_sets_stay_bounded_whatever_the_batch_ids(
    make_resolver: ResolverFactory, metrics: BatchingMetrics, registry: CollectorRegistry
) -> None:
    resolver, _ = make_resolver()
    before = sample_keys(registry)
    batch_ids: list[int | str] = [*range(100_000, 100_300), *(f"cj-{n}" for n in range(300))]
    sources = ("els", "bos", "eng5_runner", "nightly-import")
    providers = ("openai", "google", "mock", None)
    contexts = [
        BatchContext(batch_id, sources[n % 4], providers[(n // 4) % 4])
        for n, batch_id in enumerate(batch_ids)
    ]
    for context in contexts:
        resolver.resolve(context)
    with running_lps_server() as lps:
        async with LPSClient(lps.base_url, max_retries=0) as client:
            interaction = LLMInteraction(
                settings=resolver.settings, resolver=resolver, lps=client, metrics=metrics
            )
            for context in contexts[:120]:
                task = ComparisonTask(f"essay-a-{context.batch_key}", "essay-b", "Compare.")
                submission = await interaction.submit_batch(context, [task])
                assert submission.queued == 1
    after = sample_keys(registry)
    assert after == before  # no new series: every label set was there from the start
    label_values = {value for _, labels in after for _, value in labels}
    assert not label_values & {str(batch_id) for batch_id in batch_ids}
    assert not any(re.search(r"\d{6}|cj-\d", value) for value in label_values)
    # and the work was really counted
    assert sum(series(registry, "cj_llm_requests_total").values()) == 120
    assert sum(series(registry, "cj_llm_batching_resolutions_total").values()) >= len(contexts)
    assert sum(series(registry, "cj_llm_batching_guardrail_downgrades_total").values()) > 0


# --- exposition -------------------------------------------------------------------------------


@pytest.fixture
def scraped(metrics: BatchingMetrics, registry: CollectorRegistry) -> str:
    """The text exposition of a private registry, fetched over HTTP from serve_metrics."""
    metrics.record_requests(SERIAL, 12)
    metrics.record_batch_started(SERIAL)
    metrics.record_resolution(resolution(PER_REQUEST, "override"), "bos")
    metrics.record_flag_error("NOT_A_CODE")
    metrics.record_guardrail_downgrade(LLMProviderType.GOOGLE)
    server = serve_metrics(port=0, registry=registry)
    try:
        assert server.server.server_address[0] == "127.0.0.1"  # loopback by default
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/metrics", server.url)
        with httpx.Client(trust_env=False, timeout=5) as http:
            response = http.get(server.url)
    finally:
        server.close()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_exposition_over_http_has_the_counters(scraped: str) -> None:
    lines = set(scraped.splitlines())
    for expected in (
        "# TYPE cj_llm_requests_total counter",
        "# TYPE cj_llm_batches_started_total counter",
        "# TYPE cj_llm_batching_resolutions_total counter",
        "# TYPE cj_llm_batching_flag_errors_total counter",
        "# TYPE cj_llm_batching_guardrail_downgrades_total counter",
        'cj_llm_requests_total{batching_mode="serial_bundle"} 12.0',
        'cj_llm_requests_total{batching_mode="per_request"} 0.0',
        'cj_llm_batches_started_total{batching_mode="serial_bundle"} 1.0',
        'cj_llm_batching_resolutions_total{batching_mode="per_request",cj_source="bos",'
        'decided_by="override"} 1.0',
        'cj_llm_batching_flag_errors_total{error_code="OTHER"} 1.0',
        'cj_llm_batching_guardrail_downgrades_total{llm_provider="google"} 1.0',
    ):
        assert expected in lines, expected
    # The private registry is served, not the process-wide one.
    assert "python_info" not in scraped


def test_exposition_passes_promtool(scraped: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Prometheus' metrics linter) is not installed on PATH")
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=scraped.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    report = (checked.stdout + checked.stderr).decode(errors="replace")
    assert checked.returncode == 0, report


# --- cj-batching serve-metrics ---------------------------------------------------------------


async def test_serve_metrics_command_serves_until_interrupted() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cj_batching",
        "serve-metrics",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        first_line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        found = re.search(r"http://127\.0\.0\.1:\d+/metrics", first_line)
        assert found, first_line
        async with httpx.AsyncClient(trust_env=False, timeout=5) as http:
            response = await http.get(found.group())
        process.send_signal(signal.SIGINT)  # Ctrl-C
        code = await asyncio.wait_for(process.wait(), 10)
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.wait_for(process.wait(), 10)
    assert response.status_code == 200
    lines = set(response.text.splitlines())
    for mode in LLMBatchingMode:
        assert f'cj_llm_requests_total{{batching_mode="{mode.value}"}} 0.0' in lines
        assert f'cj_llm_batches_started_total{{batching_mode="{mode.value}"}} 0.0' in lines
    assert any(line.startswith("python_info{") for line in lines)  # the process collectors
    assert code == 130  # interrupted, after closing the server


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_serve_metrics_refuses_a_port_outside_the_tcp_range(
    capsys: pytest.CaptureFixture[str], port: str
) -> None:
    assert main(["serve-metrics", "--port", port]) == 2
    err = capsys.readouterr().err
    assert f"--port: {port} is not a TCP port" in err
    assert "0..65535" in err


def test_serve_metrics_on_a_busy_port_is_a_usage_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "cj_batching", "serve-metrics", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_name_clash_leaves_the_registry_as_it_was() -> None:
    registry = CollectorRegistry()
    Counter("cj_llm_batching_flag_errors", "someone else's", registry=registry)
    with pytest.raises(ValueError, match="already registered"):
        BatchingMetrics(registry)
    assert (
        registry.get_sample_value("cj_llm_requests_total", {"batching_mode": "per_request"}) is None
    )
    BatchingMetrics(CollectorRegistry())  # and nothing global was touched
