"""flags.inspection: what a flag gives one context, and what changed between documents."""

from __future__ import annotations

from typing import Any

import pytest
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

from flags import Change, FlagdMemoryProvider, Outcome, document_changes, flag_outcome

from .documents import document, mode_flag, source_is
from .helpers import cpu_seconds

ELS = {"cj_source": "els"}


def outcome(targeting: Any, **flag: Any) -> Outcome | None:
    return flag_outcome(document(mode_flag(targeting, **flag)), "llm-batching-mode", ELS)


def test_a_fractional_rule_is_a_split_in_list_order() -> None:
    split = {"fractional": [["serial_bundle", 3], ["per_request", 1]]}
    assert outcome({"if": [source_is("els"), split, None]}) == Outcome(
        "split", weights=(("serial_bundle", 3), ("per_request", 1))
    )


def test_shares_of_a_split() -> None:
    split = Outcome("split", weights=(("a", 1), ("b", 3)))
    assert split.shares() == {"a": 0.25, "b": 0.75}


def test_a_weightless_bucket_weighs_one() -> None:
    result = outcome({"fractional": [["per_request"], ["serial_bundle"]]})
    assert result is not None
    assert result.weights == (("per_request", 1), ("serial_bundle", 1))


def test_a_variant_in_several_buckets_weighs_their_sum_as_in_flagd() -> None:
    split = {"fractional": [["per_request", 10], ["serial_bundle", 80], ["per_request", 10]]}
    result = outcome(split)
    assert result is not None
    assert result.weights == (("per_request", 20), ("serial_bundle", 80))


def test_a_negative_weight_counts_as_zero_as_in_flagd() -> None:
    result = outcome({"fractional": [["per_request", -5], ["serial_bundle", 1]]})
    assert result is not None
    assert result.shares() == {"per_request": 0.0, "serial_bundle": 1.0}


def test_only_the_rule_that_applies_reports_its_weights() -> None:
    rules = {
        "if": [
            source_is("bos"),
            {"fractional": [["per_request", 1], ["serial_bundle", 1]]},
            {"fractional": [["provider_batch_api", 5], ["serial_bundle", 95]]},
        ]
    }
    result = outcome(rules)
    assert result is not None
    assert result.weights == (("provider_batch_api", 5), ("serial_bundle", 95))


def test_a_bucketing_expression_is_reported() -> None:
    result = outcome(
        {"fractional": [{"var": "cj_source"}, ["per_request", 1], ["serial_bundle", 1]]}
    )
    assert result is not None
    assert result.bucket_by == {"var": "cj_source"}


@pytest.mark.parametrize(
    ("targeting", "flag", "expected"),
    [
        ({"if": [source_is("els"), "per_request", None]}, {}, Outcome("variant", "per_request")),
        ({"if": [source_is("bos"), "per_request", None]}, {}, Outcome("default")),
        (None, {"default_variant": "serial_bundle"}, Outcome("default", "serial_bundle")),
        ({}, {"default_variant": "serial_bundle"}, Outcome("default", "serial_bundle")),
        ({"if": [True, "per_request"]}, {"state": "DISABLED"}, Outcome("disabled")),
        (
            {"if": [{"ends_with": [{"var": "targetingKey"}, "7"]}, "per_request", None]},
            {},
            Outcome("varies"),
        ),
    ],
)
def test_outcomes(targeting: Any, flag: dict[str, Any], expected: Outcome) -> None:
    assert outcome(targeting, **flag) == expected


DIVIDES_BY_SIZE = {"==": [{"/": [1, {"var": "cj_batch_size"}]}, 1]}  # 1/null: no number


def test_a_rule_that_fails_to_evaluate_is_an_error() -> None:
    result = outcome({"if": [DIVIDES_BY_SIZE, "per_request", None]})
    assert result is not None
    assert result.kind == "error"
    assert str(result.error).startswith("ZeroDivisionError: ")


def test_a_failing_rule_fails_the_same_way_for_every_key() -> None:
    result = outcome({"if": [DIVIDES_BY_SIZE, "per_request", None]})
    assert result is not None
    assert result.same_for_every_key


def test_a_rule_that_fails_after_reading_the_key_varies() -> None:
    rule = {"/": [1, {"-": [{"var": "targetingKey"}, 0]}]}  # key "0" fails, others do not
    assert outcome({"if": [rule, "per_request", None]}) == Outcome("varies")


def test_the_provider_fails_where_the_outcome_says_it_does() -> None:
    provider = FlagdMemoryProvider(
        document(mode_flag({"if": [DIVIDES_BY_SIZE, "per_request", None]}))
    )
    details = provider.resolve_string_details(
        "llm-batching-mode", "env", EvaluationContext("7", ELS)
    )
    assert (details.value, details.error_code) == ("env", ErrorCode.GENERAL)


def test_refs_are_expanded() -> None:
    doc = document(
        mode_flag({"if": [{"$ref": "from_els"}, "per_request", None]}),
        evaluators={"from_els": source_is("els")},
    )
    assert flag_outcome(doc, "llm-batching-mode", ELS) == Outcome("variant", "per_request")


def test_a_missing_flag_has_no_outcome() -> None:
    assert flag_outcome(document(), "llm-batching-mode", ELS) is None


def test_changes_locate_each_difference() -> None:
    old = {"a": {"b": 1, "c": [1, 2]}, "gone": True}
    new = {"a": {"b": 2, "c": [1, 3]}, "added": None}
    assert document_changes(old, new) == [
        Change("/a/b", 1, 2),
        Change("/a/c/1", 2, 3),
        Change("/gone", True, None, "removed"),
        Change("/added", None, None, "added"),
    ]


def test_an_inserted_list_item_is_one_change() -> None:
    assert document_changes({"if": ["x", "y", None]}, {"if": ["x", "q", "y", None]}) == [
        Change("/if/1", None, "q", "added")
    ]


def test_an_item_appended_to_a_long_list_of_repeats_is_one_change() -> None:
    old, new = {"items": ["x"] * 30_000}, {"items": ["x"] * 30_001}
    changes: list[Change] = []
    cpu_seconds(lambda: changes.extend(document_changes(old, new)), cutoff=5)  # never a hang
    assert changes == [Change("/items/30000", None, "x", "added")]


def test_a_block_replaced_inside_a_long_list_is_located() -> None:
    old = {"tenants": [f"t{i}" for i in range(20_000)]}
    new = {"tenants": [*old["tenants"][:500], "new-1", "new-2", *old["tenants"][501:]]}
    assert document_changes(old, new) == [
        Change("/tenants/500", "t500", "new-1"),
        Change("/tenants/501", None, "new-2", "added"),
    ]


def test_a_list_too_costly_to_align_is_one_change() -> None:
    old = {"items": ["x", "y"] * 2_000}  # every item matches half of the other list
    new = {"items": ["y", "x"] * 2_000 + ["z"]}
    assert document_changes(old, new) == [Change("/items", old["items"], new["items"])]


def test_types_matter() -> None:
    assert document_changes({"w": 20}, {"w": 20.0}) == [Change("/w", 20, 20.0)]
    assert document_changes({"w": 1}, {"w": True}) == [Change("/w", 1, True)]


def test_pointer_escaping() -> None:
    assert document_changes({"a/b~c": 1}, {"a/b~c": 2}) == [Change("/a~1b~0c", 1, 2)]


def test_equal_documents_have_no_changes() -> None:
    assert document_changes({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}) == []


@pytest.mark.parametrize(
    "condition",
    [
        {"==": [{"var": "targetingKey"}, "5000"]},  # one key among thousands
        {">": [{"var": "$flagd.timestamp"}, 0]},  # the time
        {"in": ["5000", {"cat": [{"var": ""}, ""]}]},  # the whole context
        {"==": [{"var": {"cat": ["targeting", "Key"]}}, "7"]},  # a computed path
    ],
    ids=["key", "time", "whole-context", "computed-path"],
)
def test_a_rule_that_reads_the_key_or_the_time_varies(condition: Any) -> None:
    result = outcome({"if": [condition, "per_request", None]})
    assert result == Outcome("varies")
    assert not result.same_for_every_key


def test_a_rule_on_context_attributes_is_the_same_for_every_key() -> None:
    result = outcome({"if": [{"in": [{"var": "cj_source"}, ["els", "bos"]]}, "per_request", None]})
    assert result == Outcome("variant", "per_request")
    assert result.same_for_every_key


def test_bucketing_by_the_key_itself_is_still_a_split() -> None:
    split = {"fractional": [{"var": "targetingKey"}, ["per_request", 1], ["serial_bundle", 1]]}
    result = outcome(split)
    assert result is not None
    assert (result.kind, result.bucket_by) == ("split", {"var": "targetingKey"})
