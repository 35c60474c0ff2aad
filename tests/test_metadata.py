"""The batching keys CJ adds to every LPS request's metadata (LPS echoes them back)."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from cj_batching import (
    BatchConfigOverrides,
    BatchContext,
    LLMBatchingMode,
    LLMProviderType,
    Resolution,
    build_request_metadata,
)
from cj_batching.metadata import check_extra, comparison_metadata, merge_extra
from cj_batching.resolution import DecidedBy

from .conftest import ResolverFactory

SERIAL = LLMBatchingMode.SERIAL_BUNDLE
PER_REQUEST = LLMBatchingMode.PER_REQUEST

# Spelled out (not imported) so that dropping a key from the reserved set fails a test.
RESERVED = (
    "cj_batch_id",
    "cj_source",
    "cj_llm_batching_mode",
    "cj_request_type",
    "cj_llm_batching_decided_by",
    "cj_llm_batching_pinned",
    "comparison_iteration",
    "preferred_bundle_size",
    "reasoning_effort",
    "output_verbosity",
)
# What LPS writes into the metadata it echoes, over whatever CJ sent.
LPS_WRITES = (
    "resolved_provider",
    "resolved_model",
    "queue_processing_mode",
    "prompt_sha256",
    "usage",
    "cache_read_tokens",
    "cache_anything",
)


def resolution(mode: LLMBatchingMode = SERIAL, decided_by: DecidedBy = "flag") -> Resolution:
    return Resolution(
        mode=mode, decided_by=decided_by, requested_mode=mode, llm_provider=LLMProviderType.OPENAI
    )


def test_every_batching_key_with_its_type() -> None:
    metadata = build_request_metadata(
        BatchContext(4711, cj_source="eng5_runner"), resolution(PER_REQUEST, "default")
    )
    assert metadata == {
        "cj_batch_id": "4711",
        "cj_source": "eng5_runner",
        "cj_llm_batching_mode": "per_request",
        "cj_request_type": "cj_comparison",
        "cj_llm_batching_decided_by": "default",
        "comparison_iteration": 0,
    }
    assert type(metadata["cj_batch_id"]) is str
    assert type(metadata["cj_llm_batching_mode"]) is str  # the plain value, not the enum
    # What LPS receives and echoes back is exactly this, after a JSON round trip.
    assert json.loads(json.dumps(metadata)) == metadata


def test_string_batch_id_is_sent_stripped() -> None:
    metadata = build_request_metadata(BatchContext(" cj-2024.7 "), resolution())
    assert metadata["cj_batch_id"] == "cj-2024.7"


def test_source_is_normalised_and_defaults_to_els() -> None:
    assert (
        build_request_metadata(BatchContext(1, cj_source=" BOS "), resolution())["cj_source"]
        == "bos"
    )
    assert build_request_metadata(BatchContext(1, cj_source=""), resolution())["cj_source"] == (
        "els"
    )


def test_mode_is_the_canonical_value_even_for_an_alias_override(
    make_resolver: ResolverFactory,
) -> None:
    resolver, _ = make_resolver()
    overrides = BatchConfigOverrides.model_validate({"llm_batching_mode_override": "serial_bundle"})
    context = BatchContext(9, overrides=overrides)
    metadata = build_request_metadata(context, resolver.resolve(context))
    assert metadata["cj_llm_batching_mode"] == "serial_bundle"
    assert metadata["cj_llm_batching_decided_by"] == "override"


def test_a_pinned_wave_says_so() -> None:
    record = resolution(PER_REQUEST, "flag").to_record()
    pinned = Resolution.from_record(record)
    assert pinned is not None
    metadata = build_request_metadata(BatchContext(1, pinned=pinned), pinned)
    assert metadata["cj_llm_batching_pinned"] is True
    assert metadata["cj_llm_batching_decided_by"] == "flag"


def test_an_unpinned_wave_carries_no_pin_key() -> None:
    assert "cj_llm_batching_pinned" not in build_request_metadata(BatchContext(1), resolution())


@pytest.mark.parametrize("decided_by", ["override", "flag", "default", "guard"])
def test_decided_by_is_carried(decided_by: DecidedBy) -> None:
    metadata = build_request_metadata(BatchContext(1), resolution(decided_by=decided_by))
    assert metadata["cj_llm_batching_decided_by"] == decided_by


def test_request_type_comes_from_the_context() -> None:
    context = BatchContext(1, request_type=" CJ_Retry ")
    assert build_request_metadata(context, resolution())["cj_request_type"] == "cj_retry"


@pytest.mark.parametrize("iteration", [0, 1, 7])
def test_comparison_iteration_comes_from_the_context(iteration: int) -> None:
    context = BatchContext(1, request_type="cj_retry", comparison_iteration=iteration)
    metadata = build_request_metadata(context, resolution())
    assert metadata["comparison_iteration"] == iteration
    assert type(metadata["comparison_iteration"]) is int


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        pytest.param(None, None, id="not-given"),
        pytest.param(0, None, id="zero"),
        pytest.param(-1, None, id="negative"),
        pytest.param(1, 1, id="one"),
        pytest.param(12, 12, id="typical-wave"),
        pytest.param(64, 64, id="at-cap"),
        pytest.param(65, 64, id="just-over-cap"),
        pytest.param(10_000, 64, id="far-over-cap"),
    ],
)
def test_preferred_bundle_size_only_when_positive_and_capped_at_64(
    given: int | None, sent: int | None
) -> None:
    metadata = build_request_metadata(BatchContext(1), resolution(), preferred_bundle_size=given)
    if sent is None:
        assert "preferred_bundle_size" not in metadata
    else:
        assert metadata["preferred_bundle_size"] == sent
        assert type(metadata["preferred_bundle_size"]) is int


def test_extra_is_merged_and_each_comparison_adds_its_essays() -> None:
    base = build_request_metadata(
        BatchContext(5), resolution(), preferred_bundle_size=3, extra={"bos_batch_id": "bos-99"}
    )
    metadata = comparison_metadata(base, "essay-1", "essay-2")
    assert metadata == {
        "essay_a_id": "essay-1",
        "essay_b_id": "essay-2",
        "bos_batch_id": "bos-99",
        "cj_batch_id": "5",
        "cj_source": "els",
        "cj_llm_batching_mode": "serial_bundle",
        "cj_request_type": "cj_comparison",
        "cj_llm_batching_decided_by": "flag",
        "comparison_iteration": 0,
        "preferred_bundle_size": 3,
    }


@pytest.mark.parametrize("key", ["essay_a_id", "essay_b_id"])
def test_extra_may_not_set_a_tasks_own_key(key: str) -> None:
    """Each comparison's essay ids are its own: a wave-wide one would overwrite them."""
    with pytest.raises(ValueError, match=f"may not set {key}: each comparison carries its own"):
        build_request_metadata(BatchContext(1), resolution(), extra={key: "WRONG"})


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"bos_batch_id": object()}, "metadata['bos_batch_id']"),
        ({"x": float("nan")}, "metadata['x']"),
        ({"x": {"nested": {1, 2}}}, "metadata['x']"),
        ({7: "x"}, "key 7 must be a string"),
        ({"essay_a_id": "e"}, "essay_a_id"),
        ({"usage": 1}, "usage"),
    ],
)
def test_check_extra_names_what_cannot_go_out(extra: dict[Any, Any], named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        check_extra(extra)


def test_check_extra_accepts_json_metadata() -> None:
    check_extra({"bos_batch_id": "b", "experiment": None, "tags": ["a", 1, 2.5, {"k": True}]})


@pytest.mark.parametrize("key", LPS_WRITES)
def test_extra_may_not_set_a_key_lps_writes(key: str) -> None:
    with pytest.raises(ValueError, match=f"may not set {key}: LPS writes these keys"):
        build_request_metadata(BatchContext(1), resolution(), extra={"bos_batch_id": "b", key: 1})


@pytest.mark.parametrize("key", RESERVED)
def test_extra_may_not_set_a_reserved_key(key: str) -> None:
    with pytest.raises(ValueError, match=key):
        build_request_metadata(
            BatchContext(1), resolution(), extra={"bos_batch_id": "b1", key: "sneaky"}
        )


@pytest.mark.parametrize("key", RESERVED)
def test_merge_extra_refuses_reserved_keys_even_if_base_lacks_them(key: str) -> None:
    with pytest.raises(ValueError, match=key):
        merge_extra({"bos_batch_id": "b1"}, {key: "sneaky"})


def test_merge_extra_refuses_a_key_of_the_base() -> None:
    base = build_request_metadata(BatchContext(1), resolution(), extra={"bos_batch_id": "b1"})
    with pytest.raises(ValueError, match="bos_batch_id"):
        merge_extra(base, {"experiment": "e1", "bos_batch_id": "b2"})


def test_merge_extra_names_every_clash() -> None:
    with pytest.raises(ValueError, match="cj_batch_id, cj_source") as caught:
        merge_extra({"cj_batch_id": "1"}, {"cj_source": "x", "cj_batch_id": "2", "ok": 1})
    assert "ok" not in str(caught.value).split("reserved:")[0]


def test_caller_extra_is_not_mutated() -> None:
    extra: dict[str, Any] = {"bos_batch_id": "bos-1", "nested": {"essays": ["a", "b"]}}
    snapshot = copy.deepcopy(extra)
    metadata = build_request_metadata(
        BatchContext(3), resolution(), preferred_bundle_size=8, extra=extra
    )
    assert extra == snapshot
    metadata["bos_batch_id"] = "changed"
    metadata["added"] = True
    assert extra == snapshot


def test_caller_extra_is_not_mutated_when_refused() -> None:
    extra = {"bos_batch_id": "bos-1", "cj_source": "mine"}
    with pytest.raises(ValueError, match="cj_source"):
        build_request_metadata(BatchContext(3), resolution(), extra=extra)
    assert extra == {"bos_batch_id": "bos-1", "cj_source": "mine"}


def test_each_call_returns_a_fresh_dict() -> None:
    context, chosen = BatchContext(3), resolution()
    first = build_request_metadata(context, chosen)
    first["cj_source"] = "tampered"
    assert build_request_metadata(context, chosen)["cj_source"] == "els"


def test_comparison_metadata_adds_the_pair_to_the_wave_base() -> None:
    base = build_request_metadata(BatchContext(5), resolution(), extra={"bos_batch_id": "b"})
    metadata = comparison_metadata(base, "essay-1", "essay-2")
    assert metadata == {**base, "essay_a_id": "essay-1", "essay_b_id": "essay-2"}
    assert "reasoning_effort" not in metadata
    assert "output_verbosity" not in metadata


def test_comparison_metadata_copies_reasoning_and_verbosity_when_set() -> None:
    base = build_request_metadata(BatchContext(5), resolution())
    metadata = comparison_metadata(base, "a", "b", reasoning_effort="high", output_verbosity="low")
    assert (metadata["reasoning_effort"], metadata["output_verbosity"]) == ("high", "low")
    assert "reasoning_effort" not in base  # the wave's base is shared: never mutated


@pytest.mark.parametrize("bad", [-1, 2**31, True, 1.0, "3", None])
def test_comparison_iteration_is_an_int_from_0(bad: object) -> None:
    with pytest.raises(ValueError, match="comparison_iteration"):
        BatchContext(1, comparison_iteration=bad)  # type: ignore[arg-type]
