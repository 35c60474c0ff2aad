"""`BatchingMetrics.record_result`: per-arm outcome metrics from the result callbacks."""

from __future__ import annotations

import copy
import logging
import random
import shutil
import subprocess
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from cj_batching import BatchingMetrics, Settings
from cj_batching.metrics.results import MODE_LABELS
from cj_batching.results import ERROR_CODES, OUTCOMES, parse_result_event

from .callbacks import ArmProfile, CallbackSimulator, foreign_envelope, request_metadata, to_line

_ALWAYS = CallbackSimulator(
    {mode: ArmProfile(success_rate=1.0) for mode in ("serial_bundle", "provider_batch_api")},
    seed=3,
)
_NEVER = CallbackSimulator({"serial_bundle": ArmProfile(success_rate=0.0)}, seed=3)


def results_total(registry: CollectorRegistry, **labels: str) -> float:
    """`cj_llm_comparison_results_total` summed over the series matching `labels`."""
    return sum(
        sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "cj_llm_comparison_results_total"
        and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, f"{name}{labels} is not exposed"
    return value


def success(batch_id: int = 1, mode: str = "serial_bundle", **metadata: Any) -> dict[str, Any]:
    return _ALWAYS.callback_for({**request_metadata(batch_id, mode), **metadata})


def failure(code: str = "TIMEOUT") -> dict[str, Any]:
    envelope = _NEVER.callback_for(request_metadata(1, "serial_bundle"))
    envelope["data"]["error_detail"]["error_code"] = code
    return envelope


# --- what is counted --------------------------------------------------------------------


def test_a_success_is_counted_under_its_arm(
    metrics: BatchingMetrics, registry: CollectorRegistry
) -> None:
    assert metrics.record_result(success(cj_source="bos", cj_llm_batching_decided_by="override"))
    labels = {"batching_mode": "serial_bundle", "decided_by": "override", "cj_source": "bos"}
    assert sample(registry, "cj_llm_comparison_results_total", **labels, outcome="success") == 1


@pytest.mark.parametrize("as_raw", [to_line, lambda e: to_line(e).decode(), dict])
def test_raw_messages_are_parsed_and_counted(
    metrics: BatchingMetrics, registry: CollectorRegistry, as_raw: Any
) -> None:
    assert metrics.record_result(as_raw(success()))
    assert results_total(registry, outcome="success") == 1


def test_an_error_is_counted_under_its_code(
    metrics: BatchingMetrics, registry: CollectorRegistry
) -> None:
    metrics.record_result(failure("RATE_LIMIT"))
    assert results_total(registry, outcome="RATE_LIMIT", batching_mode="serial_bundle") == 1


def test_an_unknown_code_is_other_error(
    metrics: BatchingMetrics, registry: CollectorRegistry
) -> None:
    metrics.record_result(failure("SOMETHING_NEW"))
    assert results_total(registry, outcome="other_error") == 1
    assert "SOMETHING_NEW" not in generate_latest(registry).decode()


def test_the_old_serial_spelling_counts_as_serial_bundle(
    metrics: BatchingMetrics, registry: CollectorRegistry
) -> None:
    metrics.record_result(success(mode="provider_serial_bundle"))
    assert results_total(registry, batching_mode="serial_bundle") == 1
    assert "provider_serial_bundle" not in generate_latest(registry).decode()


def test_a_foreign_result_is_the_unknown_arm(
    metrics: BatchingMetrics, registry: CollectorRegistry
) -> None:
    metrics.record_result(foreign_envelope())
    labels = {"batching_mode": "unknown", "decided_by": "unknown", "cj_source": "other"}
    assert results_total(registry, **labels) == 1


def test_an_unknown_source_is_other(metrics: BatchingMetrics, registry: CollectorRegistry) -> None:
    metrics.record_result(success(cj_source="some_new_service"))
    assert results_total(registry, cj_source="other") == 1


def test_response_time_is_observed_in_seconds(
    metrics: BatchingMetrics, registry: CollectorRegistry
) -> None:
    event = success(mode="provider_batch_api")
    event["data"]["response_time_ms"] = 2_500
    metrics.record_result(event)
    name = "cj_llm_comparison_response_seconds"
    assert sample(registry, f"{name}_sum", batching_mode="provider_batch_api") == 2.5
    assert sample(registry, f"{name}_bucket", batching_mode="provider_batch_api", le="2.0") == 0
    assert sample(registry, f"{name}_bucket", batching_mode="provider_batch_api", le="3.0") == 1


def test_turnaround_is_completed_minus_requested_with_buckets_to_a_day(
    metrics: BatchingMetrics, registry: CollectorRegistry
) -> None:
    event = success()
    event["data"]["requested_at"] = "2026-02-02T08:00:00Z"
    event["data"]["completed_at"] = "2026-02-02T14:00:00Z"
    metrics.record_result(event)
    name = "cj_llm_comparison_turnaround_seconds"
    assert sample(registry, f"{name}_sum", batching_mode="serial_bundle") == 6 * 3600
    assert sample(registry, f"{name}_bucket", batching_mode="serial_bundle", le="86400.0") == 1
    assert sample(registry, f"{name}_bucket", batching_mode="serial_bundle", le="14400.0") == 0


def test_cost_and_tokens_add_up_per_mode(
    metrics: BatchingMetrics, registry: CollectorRegistry
) -> None:
    events = [success(batch_id=n) for n in range(3)]
    for event in events:
        metrics.record_result(event)
    cost = sum(event["data"]["cost_estimate"] for event in events)
    prompt = sum(event["data"]["token_usage"]["prompt_tokens"] for event in events)
    completion = sum(event["data"]["token_usage"]["completion_tokens"] for event in events)
    labels = {"batching_mode": "serial_bundle"}
    assert sample(registry, "cj_llm_comparison_cost_usd_total", **labels) == pytest.approx(cost)
    assert sample(registry, "cj_llm_comparison_tokens_total", **labels, kind="prompt") == prompt
    assert (
        sample(registry, "cj_llm_comparison_tokens_total", **labels, kind="completion")
        == completion
    )


def test_a_parsed_envelope_is_recorded_as_is(
    metrics: BatchingMetrics, registry: CollectorRegistry
) -> None:
    assert metrics.record_result(parse_result_event(success()))
    assert results_total(registry) == 1


# --- at-least-once delivery -------------------------------------------------------------


def test_a_redelivered_event_is_counted_once(
    metrics: BatchingMetrics, registry: CollectorRegistry
) -> None:
    event = success()
    assert metrics.record_result(event)
    assert not metrics.record_result(to_line(event))
    assert results_total(registry) == 1
    assert sample(registry, "cj_llm_comparison_cost_usd_total", batching_mode="serial_bundle") == (
        pytest.approx(event["data"]["cost_estimate"])
    )
    assert sample(registry, "cj_llm_comparison_results_duplicates_total") == 1


def test_the_memory_of_recent_ids_has_the_configured_size(registry: CollectorRegistry) -> None:
    metrics = BatchingMetrics(registry, result_dedup_maxsize=2)
    first, second, third = (success(batch_id=n) for n in range(3))
    for event in (first, second, third, first):  # `first` was forgotten when `third` came
        assert metrics.record_result(event)
    assert results_total(registry) == 4


def test_the_dedup_size_is_a_bounded_setting() -> None:
    assert Settings(_env_file=None).RESULT_DEDUP_MAXSIZE == 100_000
    with pytest.raises(ValueError, match="RESULT_DEDUP_MAXSIZE=0"):
        Settings(_env_file=None, RESULT_DEDUP_MAXSIZE=0)
    with pytest.raises(ValueError, match="maxsize"):
        BatchingMetrics(CollectorRegistry(), result_dedup_maxsize=0)


# --- bad events -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not_json"),
        (b"[]", "not_envelope"),
        ({"event_id": 1}, "not_envelope"),
        (None, "not_json"),
    ],
)
def test_a_bad_event_is_counted_by_reason(
    metrics: BatchingMetrics, registry: CollectorRegistry, raw: Any, reason: str
) -> None:
    assert not metrics.record_result(raw)
    assert sample(registry, "cj_llm_comparison_results_invalid_total", reason=reason) == 1
    assert results_total(registry) == 0


def test_invalid_data_is_counted(metrics: BatchingMetrics, registry: CollectorRegistry) -> None:
    event = success()
    event["data"]["confidence"] = 0
    metrics.record_result(event)
    assert sample(registry, "cj_llm_comparison_results_invalid_total", reason="invalid_data") == 1


def test_the_first_bad_event_of_each_reason_is_logged_once(
    metrics: BatchingMetrics, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cj_batching.metrics"):
        for _ in range(3):
            metrics.record_result(b"{")
            metrics.record_result(b"[]")
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "not JSON" in messages[0]
    assert "not an event envelope" in messages[1]


def test_recording_never_raises_whatever_the_input(metrics: BatchingMetrics) -> None:
    rng = random.Random(11)
    base = success()
    line = to_line(base)
    for _ in range(300):
        mutated = bytearray(line)
        for _ in range(rng.randrange(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.getrandbits(8)
        assert metrics.record_result(bytes(mutated)) in (True, False)
        broken = copy.deepcopy(base)
        broken["data"][rng.choice(list(broken["data"]))] = rng.choice([None, -1, "x", [], {}])
        assert metrics.record_result(broken) in (True, False)


def test_a_broken_registry_never_breaks_the_consumer(
    metrics: BatchingMetrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_: object) -> None:
        raise RuntimeError("registry broke")

    for child in metrics._response.values():
        monkeypatch.setattr(child, "observe", explode)
    assert metrics.record_result(success()) is False
    assert metrics.record_result(success(batch_id=2)) is False


# --- exposition -------------------------------------------------------------------------


def test_every_arm_reads_zero_errors_before_the_first(registry: CollectorRegistry) -> None:
    BatchingMetrics(registry)
    for mode in ("per_request", "serial_bundle", "provider_batch_api"):
        labels = {"batching_mode": mode, "decided_by": "flag", "cj_source": "els"}
        assert sample(registry, "cj_llm_comparison_results_total", **labels, outcome="success") == 0
        assert (
            sample(registry, "cj_llm_comparison_results_total", **labels, outcome="other_error")
            == 0
        )


def test_labels_stay_in_their_bounded_sets(
    metrics: BatchingMetrics, registry: CollectorRegistry
) -> None:
    rng = random.Random(5)
    for number in range(200):
        event = success(batch_id=number, cj_source=rng.choice(["els", "bos", "x", "zz"]))
        if rng.random() < 0.5:
            event = failure(rng.choice([*ERROR_CODES, "NEW", "odd code"]))
            event["event_id"] = success(batch_id=number + 1000)["event_id"]
        metrics.record_result(event)
    for family in registry.collect():
        for point in family.samples:
            labels = point.labels
            assert labels.get("batching_mode", "per_request") in MODE_LABELS
            assert labels.get("outcome", "success") in OUTCOMES
            assert labels.get("cj_source", "els") in ("els", "bos", "eng5_runner", "other")


def test_exposition_passes_promtool(metrics: BatchingMetrics, registry: CollectorRegistry) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Prometheus' metrics linter) is not installed on PATH")
    metrics.record_result(success())
    metrics.record_result(failure("TIMEOUT"))
    metrics.record_result(b"{")
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=generate_latest(registry),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert checked.returncode == 0, (checked.stdout + checked.stderr).decode(errors="replace")
