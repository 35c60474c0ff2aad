"""Result callbacks: the envelope and LLMComparisonResultV1 models, parsing, the arm of a result."""

from __future__ import annotations

import copy
import json
import random
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from cj_batching.results import (
    MAX_EVENT_BYTES,
    OTHER_ERROR,
    UNKNOWN,
    RecentIds,
    ResultArm,
    ResultEnvelope,
    ResultEventError,
    arm_of,
    outcome_label,
    parse_result_event,
)

from .callbacks import ArmProfile, CallbackSimulator, foreign_envelope, request_metadata, to_line

_ALWAYS = CallbackSimulator({"serial_bundle": ArmProfile(success_rate=1.0)}, seed=1)
_NEVER = CallbackSimulator({"serial_bundle": ArmProfile(success_rate=0.0)}, seed=1)


def success_envelope(**metadata: Any) -> dict[str, Any]:
    return _ALWAYS.callback_for({**request_metadata(42, "serial_bundle"), **metadata})


def error_envelope() -> dict[str, Any]:
    return _NEVER.callback_for(request_metadata(42, "serial_bundle"))


def with_data(envelope: dict[str, Any], **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(envelope)
    changed["data"].update(changes)
    return changed


def reason_of(raw: Any) -> str:
    with pytest.raises(ResultEventError) as caught:
        parse_result_event(raw)
    return caught.value.reason


# --- valid events -----------------------------------------------------------------------


@pytest.mark.parametrize("as_type", [bytes, str, dict, bytearray, memoryview])
def test_a_success_parses_from_every_input_type(as_type: type) -> None:
    envelope = success_envelope()
    line = to_line(envelope)
    raw = {
        bytes: line,
        str: line.decode(),
        dict: envelope,
        bytearray: bytearray(line),
        memoryview: memoryview(line),
    }[as_type]
    event = parse_result_event(raw)
    assert isinstance(event, ResultEnvelope)
    assert str(event.event_id) == envelope["event_id"]
    assert event.data.is_success
    assert event.data.outcome == "success"
    assert event.data.winner in ("Essay A", "Essay B")


def test_an_error_result_has_its_code_as_outcome() -> None:
    event = parse_result_event(error_envelope())
    assert not event.data.is_success
    assert event.data.error_code in ("TIMEOUT", "RATE_LIMIT", "EXTERNAL_SERVICE_ERROR")
    assert event.data.outcome == event.data.error_code


def test_an_unknown_error_code_is_other_error() -> None:
    envelope = error_envelope()
    envelope["data"]["error_detail"]["error_code"] = "BRAND_NEW_CODE"
    event = parse_result_event(envelope)
    assert event.data.error_code == "BRAND_NEW_CODE"
    assert event.data.outcome == OTHER_ERROR
    assert outcome_label("RATE_LIMIT") == "RATE_LIMIT"
    assert outcome_label(None) == "success"


def test_a_mapping_that_is_not_a_dict_is_accepted() -> None:
    from types import MappingProxyType

    assert parse_result_event(MappingProxyType(success_envelope())).data.is_success


def test_unknown_keys_are_ignored() -> None:
    envelope = with_data(success_envelope(), new_field_from_lps=1)
    envelope["new_envelope_field"] = {"x": 1}
    assert parse_result_event(envelope).data.is_success


def test_a_naive_datetime_is_utc_and_turnaround_is_in_seconds() -> None:
    envelope = with_data(
        success_envelope(), requested_at="2026-02-02T08:00:00", completed_at="2026-02-02T08:01:30Z"
    )
    data = parse_result_event(envelope).data
    assert data.requested_at == datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
    assert data.turnaround_seconds == 90.0


def test_turnaround_is_never_negative() -> None:
    envelope = with_data(
        success_envelope(), requested_at="2026-02-02T08:01:00Z", completed_at="2026-02-02T08:00:00Z"
    )
    assert parse_result_event(envelope).data.turnaround_seconds == 0.0


# --- the arm of a result ----------------------------------------------------------------


def test_the_arm_comes_from_the_echoed_metadata() -> None:
    envelope = success_envelope(cj_source="eng5_runner", comparison_iteration=2)
    envelope["data"]["request_metadata"]["cj_request_type"] = "cj_retry"
    assert parse_result_event(envelope).data.arm == ResultArm(
        mode="serial_bundle",
        decided_by="flag",
        cj_source="eng5_runner",
        cj_batch_id="42",
        comparison_iteration=2,
        cj_request_type="cj_retry",
    )


@pytest.mark.parametrize("spelling", ["provider_serial_bundle", "serial_bundle", "SERIAL_BUNDLE "])
def test_both_serial_spellings_report_the_wire_value(spelling: str) -> None:
    assert arm_of({"cj_llm_batching_mode": spelling}).mode == "serial_bundle"


def test_a_result_without_our_keys_is_the_unknown_arm() -> None:
    arm = parse_result_event(foreign_envelope()).data.arm
    assert (arm.mode, arm.decided_by, arm.cj_source) == (UNKNOWN, UNKNOWN, UNKNOWN)
    assert not arm.known
    assert not arm.randomised


def test_only_flag_decided_results_are_randomised() -> None:
    assert arm_of(request_metadata(1, "per_request", decided_by="flag")).randomised
    assert not arm_of(request_metadata(1, "per_request", decided_by="override")).randomised
    assert not arm_of(request_metadata(1, "per_request", decided_by="default")).randomised


@pytest.mark.parametrize(
    ("key", "value", "field", "expected"),
    [
        ("cj_llm_batching_decided_by", ["flag"], "decided_by", UNKNOWN),
        ("cj_llm_batching_decided_by", "coin", "decided_by", UNKNOWN),
        ("cj_source", "\x1b[31mred", "cj_source", UNKNOWN),
        ("cj_source", "x" * 65, "cj_source", UNKNOWN),
        ("cj_batch_id", {"id": 1}, "cj_batch_id", None),
        ("cj_batch_id", 7, "cj_batch_id", "7"),
        ("cj_batch_id", True, "cj_batch_id", None),
        ("comparison_iteration", "1", "comparison_iteration", None),
        ("comparison_iteration", -1, "comparison_iteration", None),
    ],
)
def test_malformed_arm_keys_read_as_unknown(
    key: str, value: Any, field: str, expected: Any
) -> None:
    metadata = {**request_metadata(1, "per_request"), key: value}
    assert getattr(arm_of(metadata), field) == expected


# --- what is refused, and why -----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json at all", "not_json"),
        (b"\xff\xfe\x00", "not_json"),
        ("\ud800", "not_json"),
        (b"{" * 10_000, "not_json"),
        (42, "not_json"),
        (None, "not_json"),
        (b"[1, 2]", "not_envelope"),
        (b'"text"', "not_envelope"),
        ({"event_id": "nope"}, "not_envelope"),
    ],
)
def test_bad_input_names_the_phase_that_failed(raw: Any, reason: str) -> None:
    assert reason_of(raw) == reason


def test_an_oversized_event_is_refused_before_parsing() -> None:
    raw = b" " * (MAX_EVENT_BYTES + 1)
    with pytest.raises(ResultEventError, match="1,048,577 bytes") as caught:
        parse_result_event(raw)
    assert caught.value.reason == "not_json"


def test_an_envelope_error_names_the_field() -> None:
    envelope = success_envelope()
    del envelope["event_id"]
    with pytest.raises(ResultEventError, match="event_id: Field required"):
        parse_result_event(envelope)


def test_data_must_be_an_object() -> None:
    envelope = success_envelope()
    envelope["data"] = [1]
    assert reason_of(envelope) == "not_envelope"


def test_a_later_schema_version_is_refused_with_the_version_named() -> None:
    envelope = {**success_envelope(), "schema_version": 2}
    with pytest.raises(ResultEventError, match=r"schema_version: Input should be 1 \(got 2\)"):
        parse_result_event(envelope)


def test_invalid_data_names_field_and_value_and_keeps_the_event_id() -> None:
    envelope = with_data(success_envelope(), confidence=9)
    with pytest.raises(ResultEventError, match=r"data\.confidence: .*5 \(got 9\)") as caught:
        parse_result_event(envelope)
    assert caught.value.reason == "invalid_data"
    assert str(caught.value.event_id) == envelope["event_id"]


@pytest.mark.parametrize(
    "changes",
    [
        {"justification": None},  # a success missing one of its three fields
        {"winner": None, "justification": None, "confidence": None},  # neither
        {"error_detail": error_envelope()["data"]["error_detail"]},  # both
        {"winner": "Essay C"},
        {"justification": "x" * 501},
        {"response_time_ms": -1},
        {"response_time_ms": 2**60},
        {"cost_estimate": float("nan")},
        {"cost_estimate": 1e300},
        {"provider": "not-a-provider"},
        {"correlation_id": "not-a-uuid"},
        {"token_usage": {"prompt_tokens": -5}},
        {"requested_at": "yesterday"},
    ],
    ids=",".join,
)
def test_invalid_data_is_refused(changes: dict[str, Any]) -> None:
    assert reason_of(with_data(success_envelope(), **changes)) == "invalid_data"


def test_an_error_result_carrying_a_winner_is_refused_with_the_rule() -> None:
    envelope = with_data(error_envelope(), winner="Essay A")
    with pytest.raises(ResultEventError, match="a success or an error, not both"):
        parse_result_event(envelope)


def test_nan_written_in_the_json_text_is_refused() -> None:
    line = to_line(success_envelope()).replace(b'"cost_estimate":', b'"cost_estimate":NaN,"x":')
    assert reason_of(line) == "invalid_data"


# --- fuzzing: only ResultEventError, whatever the input ---------------------------------


class _HostileMapping(Mapping[str, Any]):
    """A mapping whose methods fail in the ways a buggy caller's object might."""

    def __init__(self, failure: BaseException | None, data: dict[str, Any]) -> None:
        self._failure = failure
        self._data = data

    def __getitem__(self, key: str) -> Any:
        if self._failure is not None:
            raise self._failure
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        if isinstance(self._failure, StopIteration):
            raise RuntimeError("iteration broke")
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


_HOSTILE_VALUES: list[Any] = [
    *(None, True, -1, 2**70, 1e309, float("nan"), "", "x" * 5000, "\x00\x1b[2J"),
    *([], {}, [[[]]], {"a": {}}, "9999-99-99", "Essay A"),
]


def _random_bytes(rng: random.Random, base: dict[str, Any]) -> Any:
    return bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 200)))


def _truncated(rng: random.Random, base: dict[str, Any]) -> Any:
    line = to_line(base)
    return line[: rng.randrange(len(line))]


def _flipped_bytes(rng: random.Random, base: dict[str, Any]) -> Any:
    mutated = bytearray(to_line(base))
    for _ in range(rng.randrange(1, 6)):
        mutated[rng.randrange(len(mutated))] = rng.getrandbits(8)
    return bytes(mutated)


def _hostile_envelope_field(rng: random.Random, base: dict[str, Any]) -> Any:
    envelope = copy.deepcopy(base)
    envelope[rng.choice(list(envelope))] = rng.choice(_HOSTILE_VALUES)
    return envelope if rng.random() < 0.5 else json.dumps(envelope, default=str)


def _hostile_data_field(rng: random.Random, base: dict[str, Any]) -> Any:
    envelope = copy.deepcopy(base)
    name = rng.choice(list(envelope["data"]))
    if rng.random() < 0.3:
        del envelope["data"][name]
    else:
        envelope["data"][name] = rng.choice(_HOSTILE_VALUES)
    return envelope


def _hostile_metadata(rng: random.Random, base: dict[str, Any]) -> Any:
    envelope = copy.deepcopy(base)
    deep: Any = {}
    for _ in range(rng.randrange(1, 300)):
        deep = {"k": deep}
    envelope["data"]["request_metadata"] = rng.choice(
        [deep, {str(i): i for i in range(2000)}, {1: 2}, "text", [1]]
    )
    return envelope


def _raising_mapping(rng: random.Random, base: dict[str, Any]) -> Any:
    failure = rng.choice([KeyError("x"), TypeError("t"), RuntimeError("r"), StopIteration(), None])
    return _HostileMapping(failure, copy.deepcopy(base))


def _odd_type(rng: random.Random, base: dict[str, Any]) -> Any:
    return rng.choice([0, 1.5, [base], (base,), {base["event_id"]}, object(), b"", ""])


_MUTATIONS = (
    _random_bytes,
    _truncated,
    _flipped_bytes,
    _hostile_envelope_field,
    _hostile_data_field,
    _hostile_metadata,
    _raising_mapping,
    _odd_type,
)


def _outcome(raw: Any) -> str:
    """`parsed`, or the reason of the ResultEventError; any other exception escapes."""
    try:
        event = parse_result_event(raw)
    except ResultEventError as exc:
        return exc.reason if len(str(exc)) < 1_000 else "message too long"
    arm_of(event.data.request_metadata)  # never raises on content either
    return "parsed"


def test_fuzzed_input_only_ever_raises_result_event_error() -> None:
    rng = random.Random(20260202)
    bases = [success_envelope(), error_envelope(), foreign_envelope()]
    outcomes = [_outcome(rng.choice(_MUTATIONS)(rng, base)) for base in bases for _ in range(400)]
    assert set(outcomes) <= {"parsed", "not_json", "not_envelope", "invalid_data"}
    assert outcomes.count("parsed") > 10  # both paths were exercised
    assert len(outcomes) - outcomes.count("parsed") > 900


def test_a_self_referencing_mapping_is_refused() -> None:
    envelope = success_envelope()
    envelope["data"]["error_detail"] = envelope["data"]
    assert reason_of(envelope) == "invalid_data"


# --- recent ids (at-least-once delivery) ------------------------------------------------


def test_an_id_is_new_once_then_forgotten_oldest_first() -> None:
    recent = RecentIds(2)
    assert recent.first_time("a")
    assert not recent.first_time("a")
    assert recent.first_time("b")
    assert recent.first_time("c")  # forgets "a"
    assert recent.first_time("a")
    assert not recent.first_time("c")
    assert len(recent) == 2


@pytest.mark.parametrize("size", [0, -1, 10_000_001, True, 2.5])
def test_recent_ids_size_is_bounded(size: Any) -> None:
    with pytest.raises((ValueError, TypeError), match="maxsize"):
        RecentIds(size)


def test_two_threads_see_each_id_new_exactly_once() -> None:
    recent = RecentIds(100_000)
    firsts: list[int] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        firsts.append(sum(recent.first_time(i) for i in range(20_000)))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(firsts) == 20_000
