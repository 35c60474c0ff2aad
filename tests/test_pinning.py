"""Pins: a batch keeps the mode of its first wave; records round-trip; kill switches win."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from cj_batching import (
    BatchConfigOverrides,
    BatchContext,
    LLMBatchingMode,
    LLMProviderType,
    Resolution,
)

from .conftest import ResolverFactory
from .documents import allow_list_flag, batching_document, document, mode_flag

BATCH_API = LLMBatchingMode.PROVIDER_BATCH_API
SERIAL = LLMBatchingMode.SERIAL_BUNDLE
PER_REQUEST = LLMBatchingMode.PER_REQUEST
DECIDED_AT = datetime(2026, 11, 30, 8, 15, 0, 123000, tzinfo=UTC)


def pin(
    mode: LLMBatchingMode = BATCH_API,
    decided_by: Any = "flag",
    provider: LLMProviderType = LLMProviderType.OPENAI,
) -> Resolution:
    record = Resolution(
        mode,
        decided_by,
        mode,
        provider,
        flag_variant=mode.value,
        flag_set_version="v1",
        decided_at=DECIDED_AT,
    ).to_record()
    restored = Resolution.from_record(record)
    assert restored is not None
    return restored


def ctx(
    batch_id: int = 1,
    *,
    source: str = "els",
    provider: str = "openai",
    pinned: Resolution | None = None,
    override: LLMBatchingMode | None = None,
) -> BatchContext:
    overrides = BatchConfigOverrides(llm_batching_mode_override=override) if override else None
    return BatchContext(batch_id, source, provider, overrides=overrides, pinned=pinned)


# --- records ---------------------------------------------------------------------------


def test_record_round_trips_through_json() -> None:
    original = Resolution(
        BATCH_API,
        "flag",
        BATCH_API,
        LLMProviderType.ANTHROPIC,
        flag_variant="batch",
        flag_set_version="2026-11-25.1",
        decided_at=DECIDED_AT,
    )
    restored = Resolution.from_record(json.loads(json.dumps(original.to_record())))
    assert restored is not None
    assert (restored.mode, restored.decided_by, restored.llm_provider) == (
        BATCH_API,
        "flag",
        LLMProviderType.ANTHROPIC,
    )
    assert (restored.flag_variant, restored.flag_set_version) == ("batch", "2026-11-25.1")
    assert restored.decided_at == DECIDED_AT
    assert restored.pinned


def test_record_holds_only_json_scalars() -> None:
    record = pin().to_record()
    assert all(isinstance(value, str | int | type(None)) for value in record.values())
    assert record["decided_at"] == "2026-11-30T08:15:00.123Z"
    assert record["mode"] == "provider_batch_api"


def test_record_accepts_the_old_mode_spelling() -> None:
    record = {**pin(SERIAL).to_record(), "mode": "provider_serial_bundle"}
    restored = Resolution.from_record(record)
    assert restored is not None
    assert restored.mode is SERIAL


@pytest.mark.parametrize(
    ("change", "named"),
    [
        pytest.param({"mode": "turbo"}, "mode", id="bad-mode"),
        pytest.param({"mode": None}, "mode", id="no-mode"),
        pytest.param({"decided_by": "magic"}, "decided_by", id="bad-decided-by"),
        pytest.param({"llm_provider": "azure"}, "llm_provider", id="bad-provider"),
        pytest.param({"decided_at": "yesterday"}, "decided_at", id="bad-time"),
        pytest.param({"decided_at": "2026-11-30T08:15:00"}, "decided_at", id="naive-time"),
        pytest.param({"decided_at": 1733000000}, "decided_at", id="number-time"),
        pytest.param({"flag_variant": "a\nforged line"}, "flag_variant", id="control-char"),
        pytest.param({"flag_set_version": "v" * 10_000}, "flag_set_version", id="huge"),
        pytest.param({"record_version": 2}, "record_version", id="future-version"),
        pytest.param({"record_version": True}, "record_version", id="bool-version"),
    ],
)
def test_bad_record_is_ignored_with_one_warning_naming_the_field(
    caplog: pytest.LogCaptureFixture, change: dict[str, Any], named: str
) -> None:
    record = {**pin().to_record(), **change}
    with caplog.at_level(logging.WARNING, logger="cj_batching.resolution"):
        assert Resolution.from_record(record) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert named in warnings[0].getMessage()
    assert len(warnings[0].getMessage()) < 400  # a 10 KB value is cut, not echoed


def test_no_record_is_no_pin_and_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="cj_batching.resolution"):
        assert Resolution.from_record(None) is None
    assert caplog.records == []


@pytest.mark.parametrize("decided_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_at_the_edge_of_the_calendar_is_ignored_not_raised(decided_at: str) -> None:
    assert Resolution.from_record({**pin().to_record(), "decided_at": decided_at}) is None


class _Hostile(dict[str, Any]):
    def get(self, *_args: object, **_kwargs: object) -> Any:
        raise KeyError("boom")


def test_a_hostile_mapping_is_ignored_not_raised() -> None:
    assert Resolution.from_record(_Hostile(pin().to_record())) is None


@pytest.mark.parametrize("record", ["record", 42, ["mode"], {}])
def test_record_that_is_not_a_record_is_ignored(record: object) -> None:
    assert Resolution.from_record(record) is None


def test_a_pin_must_be_a_resolution() -> None:
    with pytest.raises(ValueError, match="pinned"):
        BatchContext(1, pinned={"mode": "per_request"})  # type: ignore[arg-type]


# --- the chain -------------------------------------------------------------------------


def test_pin_beats_the_flag(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver()
    resolution = resolver.resolve(ctx(source="bos", pinned=pin(PER_REQUEST)))
    assert (resolution.mode, resolution.decided_by, resolution.pinned) == (
        PER_REQUEST,
        "flag",
        True,
    )
    assert (resolution.flag_variant, resolution.flag_set_version) == ("per_request", "v1")
    assert resolution.decided_at == DECIDED_AT


def test_pin_keeps_its_original_decided_by(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver()
    resolution = resolver.resolve(ctx(source="bos", pinned=pin(PER_REQUEST, "default")))
    assert (resolution.decided_by, resolution.pinned) == ("default", True)


def test_override_beats_the_pin(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver()
    resolution = resolver.resolve(ctx(pinned=pin(BATCH_API), override=PER_REQUEST))
    assert (resolution.mode, resolution.decided_by, resolution.pinned) == (
        PER_REQUEST,
        "override",
        False,
    )


def test_disabled_flag_takes_the_pin_back(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver(
        document(mode_flag(default_variant="provider_batch_api", state="DISABLED")),
        LLM_BATCHING_MODE="per_request",
    )
    resolution = resolver.resolve(ctx(pinned=pin(BATCH_API)))
    assert (resolution.mode, resolution.decided_by, resolution.pinned) == (
        PER_REQUEST,
        "default",
        False,
    )


def test_disabled_flag_leaves_an_override_alone(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver(document(mode_flag(state="DISABLED")))
    resolution = resolver.resolve(ctx(pinned=pin(SERIAL), override=BATCH_API))
    assert (resolution.mode, resolution.decided_by) == (BATCH_API, "override")


def test_allow_list_applies_to_a_pin(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver(
        document(mode_flag(), allow_list_flag("openai")), LLM_BATCHING_MODE="per_request"
    )
    pinned = pin(BATCH_API, provider=LLMProviderType.ANTHROPIC)
    resolution = resolver.resolve(ctx(provider="anthropic", pinned=pinned))
    assert (resolution.requested_mode, resolution.mode) == (BATCH_API, PER_REQUEST)
    assert (resolution.guardrail_applied, resolution.pinned) == (True, True)


def test_unusable_flags_leave_the_pin_in_place(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver(document(None))  # the mode flag is missing
    resolution = resolver.resolve(ctx(source="bos", pinned=pin(PER_REQUEST)))
    assert (resolution.mode, resolution.pinned) == (PER_REQUEST, True)


def test_pinned_and_unpinned_waves_are_cached_apart(make_resolver: ResolverFactory) -> None:
    resolver, _ = make_resolver()
    assert resolver.resolve(ctx(source="bos")).mode is SERIAL
    assert resolver.resolve(ctx(source="bos", pinned=pin(PER_REQUEST))).mode is PER_REQUEST
    assert resolver.resolve(ctx(source="bos", pinned=pin(BATCH_API))).mode is BATCH_API


def _first_wave_records(resolver: Any, batches: range) -> dict[int, dict[str, Any]]:
    return {batch: resolver.resolve(ctx(batch)).to_record() for batch in batches}


def test_narrowing_a_rollout_mid_batch_keeps_pinned_batches(
    make_resolver: ResolverFactory,
) -> None:
    # No cache: each wave is minutes apart in production, far beyond any TTL.
    resolver, provider = make_resolver(
        batching_document(batch_api_share=50), RESOLUTION_CACHE_TTL_SECONDS=0
    )
    batches = range(2_000)
    records = _first_wave_records(resolver, batches)
    provider.update(batching_document(batch_api_share=10, version="test-2"))
    later = {
        batch: resolver.resolve(ctx(batch, pinned=Resolution.from_record(record))).mode.value
        for batch, record in records.items()
    }
    assert later == {batch: record["mode"] for batch, record in records.items()}


def test_narrowing_a_rollout_moves_unpinned_batches(make_resolver: ResolverFactory) -> None:
    """The control for the test above: without pins the same edit moves batches."""
    # No cache: each wave is minutes apart in production, far beyond any TTL.
    resolver, provider = make_resolver(
        batching_document(batch_api_share=50), RESOLUTION_CACHE_TTL_SECONDS=0
    )
    batches = range(2_000)
    records = _first_wave_records(resolver, batches)
    provider.update(batching_document(batch_api_share=10, version="test-2"))
    moved = sum(
        resolver.resolve(ctx(batch)).mode.value != record["mode"]
        for batch, record in records.items()
    )
    assert moved > 600  # ~40 % of 2 000 leave the batch API arm
