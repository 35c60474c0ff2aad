"""The experiment report as a library: reading exports, arms, comparisons, bad lines."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cj_batching.report import (
    ExperimentReport,
    InputError,
    ReportBuilder,
    ReportOptions,
    read_lines,
)

from .callbacks import ArmProfile, CallbackSimulator, foreign_envelope, request_metadata, to_line

_PROFILES = {
    "serial_bundle": ArmProfile(),
    "provider_batch_api": ArmProfile(success_rate=0.8, turnaround_s=3600),
    "per_request": ArmProfile(),
}


def simulator(seed: int = 1, **kwargs: Any) -> CallbackSimulator:
    return CallbackSimulator(_PROFILES, seed=seed, **kwargs)


def write_jsonl(path: Path, envelopes: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(to_line(e) for e in envelopes))
    return path


def build(envelopes: list[dict[str, Any]], **options: Any) -> ExperimentReport:
    builder = ReportBuilder(ReportOptions(**options))
    builder.add_lines(to_line(e) for e in envelopes)
    return builder.build()


def rollout(batches: int = 60, seed: int = 1, **kwargs: Any) -> list[dict[str, Any]]:
    weights = {"serial_bundle": 50, "provider_batch_api": 50}
    return list(simulator(seed).experiment(batches=batches, weights=weights, **kwargs))


def arm(report: ExperimentReport, mode: str, decided_by: str = "flag", source: str = "els") -> Any:
    (found,) = [
        a for a in report.arms if (a.mode, a.decided_by, a.source) == (mode, decided_by, source)
    ]
    return found


def success(batch_id: int, mode: str = "serial_bundle", **changes: Any) -> dict[str, Any]:
    envelope = CallbackSimulator({mode: ArmProfile(success_rate=1.0)}, seed=batch_id).callback_for(
        request_metadata(batch_id, mode)
    )
    envelope["data"].update(changes)
    return envelope


# --- reading exports --------------------------------------------------------------------


def test_plain_and_gzip_files_read_the_same(tmp_path: Path) -> None:
    envelopes = rollout(5)
    plain = write_jsonl(tmp_path / "r.jsonl", envelopes)
    zipped = tmp_path / "r.jsonl.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    assert list(read_lines(plain)) == list(read_lines(zipped))
    assert len(list(read_lines(zipped))) == len(envelopes)


def test_gzip_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(gzip.compress(to_line(success(1))))
    assert ExperimentReport.from_files([path]).results == 1


def test_stdin_is_read_for_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = b"".join(to_line(e) for e in rollout(3))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(lines)))
    assert ExperimentReport.from_files(["-"]).results == 36


def test_blank_lines_and_crlf_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\n" + to_line(success(1)).replace(b"\n", b"\r\n") + b"\n\n")
    report = ExperimentReport.from_files([path])
    assert (report.results, report.bad_lines) == (1, 0)


def test_an_oversized_line_is_skipped_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(to_line(success(1)) + b"x" * 3_000_000 + b"\n" + to_line(success(2)))
    report = ExperimentReport.from_files([path])
    assert report.results == 2
    assert [(b.line, b.reason) for b in report.bad_line_examples] == [(2, "not_json")]


def test_a_truncated_gzip_keeps_what_came_before(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl.gz"
    data = gzip.compress(b"".join(to_line(e) for e in rollout(20)))
    path.write_bytes(data[: len(data) // 2])
    report = ExperimentReport.from_files([path])
    assert report.results > 0
    assert report.bad_line_examples[-1].reason == "unreadable"


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_an_unreadable_path_is_an_input_error(tmp_path: Path, make: str) -> None:
    path = tmp_path / "x.jsonl"
    if make == "directory":
        path.mkdir()
    with pytest.raises(InputError, match=str(path)):
        ExperimentReport.from_files([path])


# --- per arm ----------------------------------------------------------------------------


def test_an_arm_counts_comparisons_batches_and_successes() -> None:
    events = [success(b) for b in (1, 2, 3)] + simulator(9).batch(7, "serial_bundle", comparisons=5)
    summary = arm(build(events), "serial_bundle")
    assert summary.comparisons == 8
    assert summary.batches == 4
    assert summary.successes == sum(1 for e in events if e["data"]["error_detail"] is None)
    assert summary.success_rate == summary.successes / 8


def test_percentiles_are_observed_values_over_all_results() -> None:
    events = [success(1, response_time_ms=ms) for ms in (100, 200, 300, 400, 1000)]
    for number, event in enumerate(events):
        event["event_id"] = f"00000000-0000-4000-8000-{number:012d}"
    summary = arm(build(events), "serial_bundle")
    assert summary.response_ms_p50 == 300
    assert summary.response_ms_p95 == 1000


def test_turnaround_cost_and_tokens_per_comparison() -> None:
    events = []
    for number, (minutes, cost) in enumerate([(1, 0.001), (3, 0.003)]):
        event = success(number, cost_estimate=cost)
        event["data"]["requested_at"] = "2026-02-02T08:00:00Z"
        event["data"]["completed_at"] = f"2026-02-02T08:0{minutes}:00Z"
        event["data"]["token_usage"] = {
            "prompt_tokens": 100 * (number + 1),
            "completion_tokens": 10,
            "total_tokens": 0,
        }
        events.append(event)
    summary = arm(build(events), "serial_bundle")
    assert summary.turnaround_s_p50 == 60
    assert summary.turnaround_s_p95 == 180
    assert summary.mean_cost_usd == pytest.approx(0.002)
    assert summary.mean_prompt_tokens == 150
    assert summary.mean_completion_tokens == 10


def test_errors_are_listed_by_frequency() -> None:
    never = CallbackSimulator({"serial_bundle": ArmProfile(success_rate=0.0)}, seed=2)
    events = never.batch(1, "serial_bundle", comparisons=40)
    report = build(events)
    errors = arm(report, "serial_bundle").errors
    assert sum(errors.values()) == 40
    assert list(errors.values()) == sorted(errors.values(), reverse=True)


def test_both_serial_spellings_are_one_arm() -> None:
    events = simulator().batch(1, "serial_bundle") + simulator().batch(2, "provider_serial_bundle")
    assert arm(build(events), "serial_bundle").batches == 2


# --- only randomised batches are compared -----------------------------------------------


def test_override_and_default_results_are_listed_apart() -> None:
    events = rollout(40)
    events += simulator().batch(900, "provider_batch_api", decided_by="override")
    events += simulator().batch(901, "serial_bundle", decided_by="default")
    events += simulator().batch(902, "serial_bundle", decided_by="guard")
    report = build(events)
    assert {(a.mode, a.decided_by) for a in report.listed_apart} == {
        ("provider_batch_api", "override"),
        ("serial_bundle", "default"),
        ("serial_bundle", "guard"),
    }
    assert all(c.mode != "serial_bundle" for c in report.versus_control)


def test_results_listed_apart_never_change_the_comparison() -> None:
    randomised = rollout(40)
    doomed = CallbackSimulator({"provider_batch_api": ArmProfile(success_rate=0.0)}, seed=5)
    overridden = doomed.batch(900, "provider_batch_api", decided_by="override", comparisons=300)
    assert build(randomised).versus_control == build(randomised + overridden).versus_control


def test_a_foreign_result_is_the_unknown_arm_listed_apart() -> None:
    report = build([*rollout(5), foreign_envelope()])
    unknown = arm(report, "unknown", "unknown", "unknown")
    assert (unknown.comparisons, unknown.batches) == (1, 0)
    assert not unknown.randomised


def test_every_randomised_arm_is_compared_with_the_control() -> None:
    weights = {"serial_bundle": 40, "provider_batch_api": 30, "per_request": 30}
    report = build(list(simulator().experiment(batches=60, weights=weights)))
    assert sorted(c.mode for c in report.versus_control) == ["per_request", "provider_batch_api"]
    assert {c.control for c in report.versus_control} == {"serial_bundle"}


def test_another_control_can_be_chosen() -> None:
    report = build(rollout(30), control="provider_batch_api")
    assert [(c.mode, c.control) for c in report.versus_control] == [
        ("serial_bundle", "provider_batch_api")
    ]


def test_a_source_without_a_control_arm_gets_a_note_not_a_comparison() -> None:
    only_batch_api = simulator().experiment(
        batches=5, weights={"provider_batch_api": 1}, source="eng5_runner"
    )
    report = build(list(only_batch_api))
    assert report.versus_control == ()
    assert any("eng5_runner: no flag-decided serial_bundle arm" in n for n in report.notes)


def test_sources_are_compared_separately() -> None:
    events = rollout(20) + list(
        simulator(2).experiment(
            batches=20,
            weights={"serial_bundle": 1, "per_request": 1},
            source="bos",
            first_batch_id=500,
        )
    )
    report = build(events)
    assert sorted((c.source, c.mode) for c in report.versus_control) == [
        ("bos", "per_request"),
        ("els", "provider_batch_api"),
    ]


# --- delivery, filters and bad lines ----------------------------------------------------


def test_a_redelivered_event_is_counted_once() -> None:
    events = rollout(3)
    report = build(events + events[:5])
    assert (report.results, report.duplicates) == (len(events), 5)


def test_the_source_filter_keeps_only_the_named_sources() -> None:
    events = rollout(5) + simulator().batch(77, "serial_bundle", source="bos")
    report = build(events, sources=["bos"])
    assert {a.source for a in report.arms} == {"bos"}
    assert report.filtered_out == 60


def test_since_and_until_select_by_request_time() -> None:
    start = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
    events = rollout(30)  # a batch every 20 s from 08:00
    report = build(events, since=start + timedelta(minutes=2), until=start + timedelta(minutes=4))
    assert report.results == 6 * 12  # batches 7..12 (08:02:00 .. 08:03:40)
    assert report.requested_from == start + timedelta(minutes=2)
    assert report.filtered_out == len(events) - 72


def test_since_must_be_before_until() -> None:
    with pytest.raises(ValueError, match=r"since .* must be before until"):
        ReportOptions(since="2026-02-02T09:00Z", until="2026-02-02T08:00Z")


def test_bad_lines_are_counted_with_the_first_few_positions() -> None:
    builder = ReportBuilder(ReportOptions(bad_line_examples=2))
    good = [to_line(e) for e in rollout(1)]
    builder.add_lines([b"{oops", *good, b"[]", b'{"event_id": 1}'], file="x.jsonl")
    report = builder.build()
    assert report.results == 12
    assert report.bad_lines == 3
    assert [(b.file, b.line, b.reason) for b in report.bad_line_examples] == [
        ("x.jsonl", 1, "not_json"),
        ("x.jsonl", 14, "not_envelope"),
    ]


def test_a_file_of_nothing_usable_gives_an_empty_report(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"garbage\n" * 10)
    report = ExperimentReport.from_files([path])
    assert (report.results, report.bad_lines, report.arms) == (0, 10, ())


def test_sources_beyond_the_cap_count_as_other() -> None:
    events = [
        CallbackSimulator({"serial_bundle": ArmProfile()}, seed=n).batch(
            n, "serial_bundle", comparisons=1, source=f"s{n:03d}"
        )[0]
        for n in range(70)
    ]
    sources = {a.source for a in build(events).arms}
    assert len(sources) == 65
    assert "other" in sources


def test_a_batch_in_two_arms_is_noted() -> None:
    events = simulator().batch(5, "serial_bundle") + simulator().batch(
        5, "per_request", decided_by="override"
    )
    report = build(events)
    assert report.batches_in_several_arms == 1
    assert any("1 batches have results in more than one arm" in n for n in report.notes)


# --- output -----------------------------------------------------------------------------


def test_the_json_has_every_documented_key() -> None:
    data = json.loads(build(rollout(30)).to_json())
    assert {"arms", "versus_control", "bad_lines", "method"} <= data.keys()
    assert {
        "source", "mode", "decided_by", "comparisons", "batches", "success_rate",
        "success_rate_ci", "response_ms_p50", "response_ms_p95", "turnaround_s_p50",
        "turnaround_s_p95", "mean_cost_usd", "errors",
    } <= data["arms"][0].keys()  # fmt: skip
    assert {
        "source", "mode", "control", "success_rate_diff", "success_rate_diff_ci",
        "response_ms_p50_diff", "response_ms_p50_diff_ci", "mean_cost_diff",
        "mean_cost_diff_ci",
    } <= data["versus_control"][0].keys()  # fmt: skip
    assert 0 <= data["arms"][0]["success_rate"] <= 1
    assert "cluster bootstrap over batches" in data["method"]
    assert "decided_by=flag" in data["method"]


def test_the_same_seed_gives_the_same_report() -> None:
    events = rollout(30)
    assert build(events).to_json() == build(events).to_json()
    assert build(events, seed=1).to_json() != build(events, seed=2).to_json()


def test_the_text_says_what_is_compared_and_how() -> None:
    events = rollout(30) + simulator().batch(900, "serial_bundle", decided_by="override")
    text = build(events).to_text()
    assert "Only randomised batches are compared" in text
    assert "listed apart (not randomised, never compared)" in text
    assert "serial_bundle, decided by override" in text
    assert "versus serial_bundle (control)" in text
    flowing = " ".join(text.split())  # the method paragraph is wrapped
    assert "cluster bootstrap over batches (1000 replicates, seed 20260202)" in flowing


def test_an_arm_of_one_batch_has_no_interval() -> None:
    report = build(simulator().batch(1, "serial_bundle") + rollout(20, first_batch_id=10))
    one = arm(report, "serial_bundle", source="els")
    assert one.success_rate_ci is not None
    single = build(simulator().batch(1, "serial_bundle"))
    assert arm(single, "serial_bundle").success_rate_ci is None
    assert "[n/a]" in single.to_text()
    assert json.loads(single.to_json())["arms"][0]["success_rate_ci"] is None
