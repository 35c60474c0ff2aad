"""`RolloutGuard`: which results count, when an arm trips, what a trip does, and how a
new flag set version releases it."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cj_batching import ArmResult, BatchingMetrics, LLMBatchingMode, RolloutGuard

from .conftest import make_settings

PER_REQUEST = LLMBatchingMode.PER_REQUEST
SERIAL = LLMBatchingMode.SERIAL_BUNDLE
BATCH_API = LLMBatchingMode.PROVIDER_BATCH_API


def feed(
    guard: RolloutGuard,
    mode: LLMBatchingMode,
    results: int,
    failures: int,
    *,
    source: str = "els",
    decided_by: str = "flag",
    wave_size: int | None = None,
) -> None:
    """`results` results of one arm with `failures` of them spread evenly; with
    `wave_size`, in waves of that size whose failures come together (a failed bundle)."""
    for index in range(results):
        if wave_size is None:
            failed = _spread(index, failures, results)
            wave = None
        else:
            number = index // wave_size
            failed = _spread(number, failures // wave_size, results // wave_size)
            wave = f"{source}-{mode.value}-{number}"
        guard.observe(ArmResult(source, mode, decided_by, failed, wave))


def _spread(index: int, hits: int, total: int) -> bool:
    """Whether item `index` of `total` is one of `hits` spread evenly among them."""
    return index * hits // total != (index + 1) * hits // total


def tripped_guard(**settings: Any) -> RolloutGuard:
    """A guard on version v1 whose els batch API arm (30 % errors) tripped against the
    serial control (5 %)."""
    guard = RolloutGuard(make_settings(**settings))
    guard.use_flag_set("v1")
    feed(guard, SERIAL, 1000, 50)
    feed(guard, BATCH_API, 400, 120)
    assert guard.diverts("els", BATCH_API) is SERIAL
    return guard


@pytest.fixture
def guard() -> RolloutGuard:
    return RolloutGuard(make_settings())


# --- which arms trip ----------------------------------------------------------------------


def test_a_regressing_arm_is_diverted_to_the_control_mode() -> None:
    assert tripped_guard().diverts("els", BATCH_API) is SERIAL


def test_a_healthy_arm_is_not_diverted(guard: RolloutGuard) -> None:
    feed(guard, SERIAL, 4000, 200)
    feed(guard, BATCH_API, 1000, 50)
    assert guard.diverts("els", BATCH_API) is None
    assert guard.trips() == ()


def test_the_control_itself_never_trips(guard: RolloutGuard) -> None:
    feed(guard, BATCH_API, 1000, 10)
    feed(guard, SERIAL, 1000, 500)
    assert guard.diverts("els", SERIAL) is None


def test_only_flag_decided_results_count(guard: RolloutGuard) -> None:
    feed(guard, SERIAL, 1000, 50, decided_by="override")
    feed(guard, BATCH_API, 1000, 900, decided_by="default")
    feed(guard, BATCH_API, 1000, 900, decided_by="guard")
    assert guard.counts() == {}
    assert guard.diverts("els", BATCH_API) is None


def test_sources_are_judged_apart(guard: RolloutGuard) -> None:
    feed(guard, SERIAL, 1000, 50, source="els")
    feed(guard, BATCH_API, 400, 120, source="bos")
    assert guard.diverts("bos", BATCH_API) is None  # bos has no control results yet
    assert guard.diverts("els", BATCH_API) is None


def test_unknown_sources_are_judged_together_as_other(guard: RolloutGuard) -> None:
    feed(guard, SERIAL, 1000, 50, source="new_service")
    feed(guard, BATCH_API, 400, 120, source="another_service")
    assert guard.diverts("a_third_service", BATCH_API) is SERIAL
    assert guard.diverts("els", BATCH_API) is None


def test_no_trip_before_min_results(guard: RolloutGuard) -> None:
    feed(guard, SERIAL, 1000, 50)
    feed(guard, BATCH_API, 199, 199)
    assert guard.diverts("els", BATCH_API) is None
    feed(guard, BATCH_API, 1, 1)
    assert guard.diverts("els", BATCH_API) is SERIAL


def test_a_significant_increase_within_the_tolerance_does_not_trip(guard: RolloutGuard) -> None:
    # +3 points on 20 000 results is real, but below guard_max_error_rate_increase (5).
    feed(guard, SERIAL, 20_000, 1000)
    feed(guard, BATCH_API, 20_000, 1600)
    assert guard.diverts("els", BATCH_API) is None


def test_bundled_failures_need_more_evidence_than_independent_ones() -> None:
    # The same counts, 13 % of the arm's 360 results against 5 % of the control's 1 200:
    # as independent failures that is strong evidence; as whole bundles failing (4 of the
    # arm's 30 waves, 5 of the control's 100) it is a few unlucky draws.
    independent = RolloutGuard(make_settings())
    feed(independent, SERIAL, 1200, 60)
    feed(independent, BATCH_API, 360, 48)
    bundled = RolloutGuard(make_settings())
    feed(bundled, SERIAL, 1200, 60, wave_size=12)
    feed(bundled, BATCH_API, 360, 48, wave_size=12)
    assert independent.diverts("els", BATCH_API) is SERIAL
    assert bundled.diverts("els", BATCH_API) is None


def test_a_trip_holds_when_the_arm_recovers() -> None:
    guard = tripped_guard()
    feed(guard, BATCH_API, 5000, 0)
    assert guard.diverts("els", BATCH_API) is SERIAL


# --- what a trip does ---------------------------------------------------------------------


def test_a_trip_records_the_counts_and_rates() -> None:
    (trip,) = tripped_guard().trips()
    assert (trip.cj_source, trip.mode, trip.control) == ("els", BATCH_API, SERIAL)
    assert (trip.control_results, trip.control_failures) == (1000, 50)
    assert 200 <= trip.arm_results <= 400
    assert trip.arm_error_rate == pytest.approx(0.3, abs=0.01)
    assert trip.flag_set_version == "v1"


def test_a_trip_logs_one_warning_with_the_arm_counts_and_rates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="cj_batching.guard")
    guard = tripped_guard()
    feed(guard, BATCH_API, 1000, 300)  # the arm keeps failing: no second line
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    record = warnings[0]
    message = record.getMessage()
    assert "els arm provider_batch_api" in message
    assert "against control serial_bundle 5.0% (50 of 1000)" in message
    assert "until the flag set version changes" in message
    assert record.__dict__["arm_failures"] / record.__dict__["arm_results"] == pytest.approx(
        record.__dict__["arm_error_rate"]
    )
    assert record.__dict__["control_error_rate"] == pytest.approx(0.05)
    assert record.__dict__["flag_set_version"] == "v1"


def _metric(registry: CollectorRegistry, name: str, mode: str, source: str = "els") -> float:
    value = registry.get_sample_value(name, {"batching_mode": mode, "cj_source": source})
    assert value is not None, f"{name}{{{mode}, {source}}} is not exposed"
    return value


def test_a_trip_counts_once_and_raises_the_tripped_gauge() -> None:
    registry = CollectorRegistry()
    guard = RolloutGuard(make_settings(), metrics=BatchingMetrics(registry))
    feed(guard, SERIAL, 1000, 50)
    feed(guard, BATCH_API, 1000, 300)
    assert _metric(registry, "cj_llm_batching_guard_trips_total", "provider_batch_api") == 1
    assert _metric(registry, "cj_llm_batching_guard_tripped", "provider_batch_api") == 1
    assert _metric(registry, "cj_llm_batching_guard_tripped", "per_request") == 0
    assert _metric(registry, "cj_llm_batching_guard_tripped", "provider_batch_api", "bos") == 0


# --- acknowledging: a new flag set version ------------------------------------------------


def test_a_new_version_releases_the_trip_and_restarts_the_statistics() -> None:
    guard = tripped_guard()
    guard.use_flag_set("v2")
    assert guard.diverts("els", BATCH_API) is None
    assert guard.trips() == ()
    assert guard.counts() == {}
    assert guard.flag_set_version == "v2"


def test_a_new_version_puts_the_gauge_back_to_zero_and_keeps_the_count() -> None:
    registry = CollectorRegistry()
    guard = RolloutGuard(make_settings(), metrics=BatchingMetrics(registry))
    guard.use_flag_set("v1")
    feed(guard, SERIAL, 1000, 50)
    feed(guard, BATCH_API, 1000, 300)
    guard.use_flag_set("v2")
    assert _metric(registry, "cj_llm_batching_guard_tripped", "provider_batch_api") == 0
    assert _metric(registry, "cj_llm_batching_guard_trips_total", "provider_batch_api") == 1


def test_a_release_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    guard = tripped_guard()
    caplog.set_level(logging.INFO, logger="cj_batching.guard")
    guard.use_flag_set("v2")
    (record,) = [r for r in caplog.records if r.levelno == logging.INFO]
    assert "version v2 (was v1); 1 tripped arm(s) released" in record.getMessage()
    assert record.__dict__["released_arms"] == ["els/provider_batch_api"]


def test_the_same_version_again_keeps_the_trip() -> None:
    guard = tripped_guard()
    guard.use_flag_set("v1", {"guard_min_results": 50})
    assert guard.diverts("els", BATCH_API) is SERIAL


def test_a_missing_version_is_not_an_acknowledgement() -> None:
    guard = tripped_guard()
    guard.use_flag_set(None)  # e.g. a failed flag evaluation carries no version
    assert guard.diverts("els", BATCH_API) is SERIAL
    assert guard.flag_set_version == "v1"


def test_the_first_version_keeps_what_was_counted_before(guard: RolloutGuard) -> None:
    feed(guard, SERIAL, 100, 5)
    guard.use_flag_set("v1", {"guard_min_results": 50})
    assert guard.counts() == {("els", SERIAL): (100, 5)}
    assert guard.policy.min_results == 50


def test_a_first_version_that_changes_the_control_restarts(guard: RolloutGuard) -> None:
    feed(guard, SERIAL, 100, 5)
    guard.use_flag_set("v1", {"guard_control": "per_request"})
    assert guard.counts() == {}
    assert guard.policy.control is PER_REQUEST


# --- the policy from flag metadata ----------------------------------------------------------


def test_flag_metadata_sets_the_knobs(guard: RolloutGuard) -> None:
    guard.use_flag_set(
        "v1",
        {
            "version": "v1",
            "guard_control": "provider_serial_bundle",
            "guard_max_error_rate_increase": 0.2,
            "guard_min_results": 20,
            "guard_alpha": 0.05,
        },
    )
    policy = guard.policy
    assert policy.control is SERIAL
    assert (policy.max_error_rate_increase, policy.min_results, policy.alpha) == (0.2, 20, 0.05)


def test_an_arm_trips_against_the_control_the_metadata_names(guard: RolloutGuard) -> None:
    guard.use_flag_set("v1", {"guard_control": "per_request"})
    feed(guard, PER_REQUEST, 1000, 50)
    feed(guard, SERIAL, 400, 120)
    assert guard.diverts("els", SERIAL) is PER_REQUEST


def test_metadata_can_switch_the_guard_off(guard: RolloutGuard) -> None:
    guard.use_flag_set("v1", {"guard_enabled": False})
    feed(guard, SERIAL, 1000, 50)
    feed(guard, BATCH_API, 1000, 900)
    assert guard.diverts("els", BATCH_API) is None


def test_settings_can_switch_the_guard_off() -> None:
    guard = RolloutGuard(make_settings(GUARD_ENABLED=False))
    feed(guard, SERIAL, 1000, 50)
    feed(guard, BATCH_API, 1000, 900)
    assert guard.diverts("els", BATCH_API) is None


def test_bad_metadata_falls_back_to_the_settings_with_one_warning(
    guard: RolloutGuard, caplog: pytest.LogCaptureFixture
) -> None:
    # A remote flag service serves documents our validation never saw.
    guard.use_flag_set("v1", {"guard_min_results": "lots", "guard_alpha": 0.02})
    assert guard.policy.min_results == 200
    assert guard.policy.alpha == 0.02
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "guard_min_results: 'lots' is not allowed" in record.getMessage()


# --- robustness ----------------------------------------------------------------------------


def test_observe_never_raises(guard: RolloutGuard, caplog: pytest.LogCaptureFixture) -> None:
    guard.observe(object())  # type: ignore[arg-type]
    guard.observe(None)  # type: ignore[arg-type]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # logged once, then silent


def test_wave_memory_is_bounded() -> None:
    guard = RolloutGuard(make_settings(GUARD_WAVE_MEMORY=100))
    feed(guard, SERIAL, 12_000, 600, wave_size=12)
    assert len(guard._experiment.waves) == 100  # private: the only view of the memory
    assert guard.counts() == {("els", SERIAL): (12_000, 600)}


def test_concurrent_results_and_resolutions_stay_consistent() -> None:
    guard = RolloutGuard(make_settings())
    guard.use_flag_set("v1")
    failures: list[BaseException] = []
    stop = threading.Event()

    def consumer(source: str) -> None:
        try:
            feed(guard, SERIAL, 3000, 144, source=source, wave_size=12)
            feed(guard, BATCH_API, 1200, 360, source=source, wave_size=12)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    def resolver() -> None:
        try:
            while not stop.is_set():
                guard.diverts("els", BATCH_API)
                guard.diverts("bos", BATCH_API)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=consumer, args=(s,)) for s in ("els", "bos")]
    readers = [threading.Thread(target=resolver) for _ in range(2)]
    for thread in [*threads, *readers]:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    stop.set()
    for thread in readers:
        thread.join(timeout=10)
    assert failures == []
    assert guard.counts() == {
        ("els", SERIAL): (3000, 144),
        ("els", BATCH_API): (1200, 360),
        ("bos", SERIAL): (3000, 144),
        ("bos", BATCH_API): (1200, 360),
    }
    assert {(t.cj_source, t.mode) for t in guard.trips()} == {
        ("els", BATCH_API),
        ("bos", BATCH_API),
    }


def test_the_gauge_agrees_with_the_trips_under_concurrent_releases() -> None:
    registry = CollectorRegistry()
    guard = RolloutGuard(make_settings(GUARD_MIN_RESULTS=10), metrics=BatchingMetrics(registry))
    done = threading.Event()

    def consumer() -> None:
        while not done.is_set():
            feed(guard, SERIAL, 40, 2)
            feed(guard, BATCH_API, 20, 10)

    thread = threading.Thread(target=consumer)
    thread.start()
    try:
        for version in range(300):
            guard.use_flag_set(f"v{version}")
    finally:
        done.set()
        thread.join(timeout=30)
    tripped = ("els", BATCH_API) in {(t.cj_source, t.mode) for t in guard.trips()}
    gauge = _metric(registry, "cj_llm_batching_guard_tripped", "provider_batch_api")
    assert gauge == (1 if tripped else 0)
    assert guard.flag_set_version == "v299"


# --- the input ---------------------------------------------------------------------------


def test_arm_result_normalises_source_and_mode() -> None:
    result = ArmResult(" ELS ", "provider_serial_bundle", "flag", True)  # type: ignore[arg-type]
    assert (result.cj_source, result.mode) == ("els", SERIAL)
    assert ArmResult("research_lab", BATCH_API, "flag", False).cj_source == "other"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "batch"}, "mode: 'batch' is not a batching mode; allowed: per_request"),
        ({"failed": 1}, "failed: 1 must be True or False"),
        ({"cj_source": None}, "cj_source: None must be a string"),
        ({"decided_by": 3}, "decided_by: 3 must be a string"),
        ({"wave": ""}, "wave: '' must be None or a string of 1-256 characters"),
        ({"wave": "x" * 257}, "wave: 'xxxxxxx"),
    ],
)
def test_arm_result_refuses_bad_values(values: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {
        "cj_source": "els",
        "mode": SERIAL,
        "decided_by": "flag",
        "failed": False,
        **values,
    }
    with pytest.raises(ValueError, match=re.escape(message)):
        ArmResult(**fields)
