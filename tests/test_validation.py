"""validate_document: what a flag-file author is told when a flagd document is wrong."""

from __future__ import annotations

import copy
import datetime
import functools
import hashlib
import json
import random
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ParseError
from openfeature.flag_evaluation import Reason
from referencing import Registry, Resource

from flags.validation import Problem, validate_document
from flags.validation._text import Suggestions
from flags.validation.problem import errors_first
from flags.validation.schema import schema_accepts

VENDORED_SCHEMA = resources.files("flags") / "schema"
SHARED_SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "flagd-schema"
# The official files as vendored (flagd's schema/v0, sha256): a changed copy fails here on
# any clone; where the official checkout is at hand (../shared) it is compared byte for byte.
SCHEMA_SHA256 = {
    "flags.json": "a9b065cc3e140d10a5e139a3f2bbd2f24d4fe8a728ce824a5f2a1231ed60680b",
    "targeting.json": "4194aeab5611f80ce8650a10bed5b18483754587bfb2d7ef093e75a0609a2e75",
    "LICENSE": "f964c4c458fcc3741ac1639dc28bef1e42c016b37cab9fe84400fc3b597dc5ab",
}
MODE = "llm-batching-mode"
ALLOW = "llm-batch-api-allowed-providers"
TARGETING = ("flags", MODE, "targeting")
DELETE = object()


def sample() -> dict[str, Any]:
    """A realistic valid document, as flags.yaml holds it; a fresh copy for every use."""
    return {
        "$schema": "https://flagd.dev/schema/v0/flags.json",
        "metadata": {"version": "2026-11-25.1"},
        "$evaluators": {"is_eng5": {"==": [{"var": "cj_source"}, "eng5_runner"]}},
        "flags": {
            MODE: {
                "state": "ENABLED",
                "variants": {
                    "per_request": "per_request",
                    "serial_bundle": "serial_bundle",
                    "provider_batch_api": "provider_batch_api",
                },
                "defaultVariant": None,
                "targeting": {
                    "if": [
                        {"$ref": "is_eng5"},
                        "provider_batch_api",
                        {"==": [{"var": "cj_source"}, "els"]},
                        {
                            "fractional": [
                                ["provider_batch_api", 20],
                                ["serial_bundle", 80],
                            ]
                        },
                        None,
                    ]
                },
            },
            ALLOW: {
                "state": "ENABLED",
                "variants": {
                    "default": {"providers": ["openai", "anthropic"]},
                    "openai_only": {"providers": ["openai"]},
                },
                "defaultVariant": "default",
                "metadata": {"owner": "cj-platform", "ticket": 1234},
            },
        },
    }


def edited(where: tuple[Any, ...], value: object, document: Any = None) -> Any:
    """A copy of `document` (default: the sample) with the value at `where` set or deleted."""
    document = copy.deepcopy(sample() if document is None else document)
    *parents, last = where
    node = document
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return document


def messages_at(problems: list[Problem], path: str) -> list[str]:
    return [problem.message for problem in problems if problem.path == path]


def errors(problems: list[Problem]) -> list[Problem]:
    return [problem for problem in problems if problem.is_error]


@functools.cache
def official_schema() -> Draft7Validator:
    """The official schema (the package's vendored copy, checked against flagd's files
    below) in jsonschema, the reference implementation of draft 7: the test oracle."""
    schemas = [
        json.loads((VENDORED_SCHEMA / name).read_text("utf-8"))
        for name in ("flags.json", "targeting.json")
    ]
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )
    # Enter flags.json through the registry: draft 7 ignores a root "$id" next to "$ref", so
    # only then is its "./targeting.json" resolved against https://flagd.dev/schema/v0/.
    return Draft7Validator({"$ref": schemas[0]["$id"]}, registry=registry)


# --- a valid document --------------------------------------------------------------------------


def test_realistic_document_has_no_problems() -> None:
    assert validate_document(sample()) == []


def test_shipped_flags_file_has_no_problems() -> None:
    shipped = Path(__file__).resolve().parent.parent / "flags.yaml"
    assert validate_document(yaml.safe_load(shipped.read_text())) == []


def test_realistic_document_is_what_flagd_core_evaluates() -> None:
    core = FlagdCore()
    core.set_flags(sample())  # set_flags mutates its argument: hand it a fresh copy
    result = core.resolve_string_value(
        MODE, "x", EvaluationContext("7", {"cj_source": "eng5_runner"})
    )
    assert (result.value, result.reason) == ("provider_batch_api", Reason.TARGETING_MATCH)


def test_yaml_document_has_no_problems() -> None:
    text = """
    metadata: {version: "2026-11-25.1"}
    $evaluators:
      from_els: {"==": [{var: cj_source}, els]}
    flags:
      llm-batching-mode:
        state: ENABLED
        variants: {per_request: per_request, provider_batch_api: provider_batch_api}
        defaultVariant: null
        targeting:
          if:
            - $ref: from_els
            - fractional: [[provider_batch_api, 20], [per_request, 80]]
            - null
    """
    assert validate_document(yaml.safe_load(text)) == []


@pytest.mark.parametrize(
    ("where", "value"),
    [
        pytest.param((*TARGETING, "if", 1), {"var": "mode"}, id="computed result"),
        pytest.param((*TARGETING, "if"), [{"var": "x"}, "per_request"], id="if without else"),
        pytest.param((*TARGETING, "if", 4), {"or": [{"var": "m"}, "per_request"]}, id="or"),
        pytest.param(
            (*TARGETING, "if", 3, "fractional"),
            [{"var": "email"}, ["per_request", {"var": "w"}], ["provider_batch_api"]],
            id="fractional with bucketing rule and computed weight",
        ),
        pytest.param(
            ("$evaluators", "is_eng5"),
            {"and": [{"$ref": "later"}, {"sem_ver": [{"var": "v"}, "^", "2.0.0"]}]},
            id="evaluator referring to a later evaluator",
        ),
        pytest.param(("flags", ALLOW, "defaultVariant"), None, id="null defaultVariant"),
        pytest.param(("flags", MODE, "targeting"), {}, id="empty targeting"),
    ],
)
def test_valid_variations_have_no_problems(where: tuple[Any, ...], value: object) -> None:
    document = edited(where, value)
    document["$evaluators"]["later"] = {"starts_with": [{"var": "email"}, "ops"]}
    assert validate_document(document) == []
    assert official_schema().is_valid(document)


def test_boolean_results_of_a_boolean_flag_are_its_variants() -> None:
    flag = {
        "state": "ENABLED",
        "variants": {"true": True, "false": False},
        "defaultVariant": "false",
        "targeting": {"if": [{"in": [{"var": "p"}, ["openai"]]}, True, False]},
    }
    assert validate_document({"flags": {"batch-api": flag}}) == []


# --- structure ---------------------------------------------------------------------------------

FLAG = ("flags", MODE)


@pytest.mark.parametrize(
    ("where", "value", "path", "offending", "allowed"),
    [
        pytest.param(("flags",), DELETE, "", "'flags'", "mapping", id="flags missing"),
        pytest.param(("flags",), [], "/flags", "[]", "mapping", id="flags not a mapping"),
        pytest.param(FLAG, "on", f"/flags/{MODE}", "'on'", "mapping", id="flag not a mapping"),
        pytest.param(
            (*FLAG, "default_variant"),
            "x",
            f"/flags/{MODE}/default_variant",
            "'default_variant'",
            "defaultVariant",
            id="unknown flag key",
        ),
        pytest.param(
            (*FLAG, "state"), DELETE, f"/flags/{MODE}", "'state'", "ENABLED", id="state missing"
        ),
        pytest.param(
            (*FLAG, "state"),
            "enabled",
            f"/flags/{MODE}/state",
            "'enabled'",
            "'ENABLED' or 'DISABLED'",
            id="state not allowed",
        ),
        pytest.param(
            (*FLAG, "variants"), DELETE, f"/flags/{MODE}", "'variants'", "name", id="no variants"
        ),
        pytest.param(
            (*FLAG, "variants"),
            {},
            f"/flags/{MODE}/variants",
            "{}",
            "non-empty",
            id="variants empty",
        ),
        pytest.param(
            (*FLAG, "variants", "per_request"),
            1,
            f"/flags/{MODE}/variants",
            "'per_request': 1",
            "one type",
            id="variants of mixed types",
        ),
        pytest.param(
            (*FLAG, "variants", "per_request"),
            None,
            f"/flags/{MODE}/variants/per_request",
            "None",
            "string, number, boolean or object",
            id="variant value not allowed",
        ),
        pytest.param(
            ("flags", ALLOW, "defaultVariant"),
            True,
            f"/flags/{ALLOW}/defaultVariant",
            "True",
            "quote it: 'true'",
            id="defaultVariant a boolean that is no variant",
        ),
        pytest.param(
            ("flags", ALLOW, "defaultVariant"),
            7,
            f"/flags/{ALLOW}/defaultVariant",
            "7",
            "a variant name or null",
            id="defaultVariant a number",
        ),
        pytest.param(
            ("metadata",), "v1", "/metadata", "'v1'", "string -> ", id="metadata not a mapping"
        ),
        pytest.param(
            ("flags", ALLOW, "metadata", "owner"),
            ["cj"],
            f"/flags/{ALLOW}/metadata/owner",
            "['cj']",
            "strings, numbers or booleans",
            id="metadata value not allowed",
        ),
        pytest.param(
            ("$evaluators",),
            ["is_eng5"],
            "/$evaluators",
            "['is_eng5']",
            "name -> rule",
            id="$evaluators not a mapping",
        ),
        pytest.param(
            TARGETING,
            "per_request",
            f"/flags/{MODE}/targeting",
            "'per_request'",
            "rule object",
            id="targeting not a rule",
        ),
    ],
)
def test_structure_problem_names_path_value_and_what_is_allowed(
    where: tuple[Any, ...], value: object, path: str, offending: str, allowed: str
) -> None:
    messages = messages_at(errors(validate_document(edited(where, value))), path)
    assert any(offending in message and allowed in message for message in messages), messages


@pytest.mark.parametrize("document", [None, ["flags"], "flags: {}", 3.5])
def test_document_that_is_not_a_mapping(document: object) -> None:
    (problem,) = validate_document(document)
    assert problem.path == ""
    assert repr(document) in problem.message
    assert "mapping" in problem.message


def test_targeting_that_is_only_a_ref_gets_a_clear_warning() -> None:
    document = edited(TARGETING, {"$ref": "pick"})
    document["$evaluators"]["pick"] = {"if": [True, "per_request"]}
    problems = validate_document(document)
    assert [str(problem) for problem in problems] == [
        f"/flags/{MODE}/targeting: warning: a targeting that is only a $ref is rejected by the "
        'flagd schema; wrap it in a rule, e.g. {"if": [{"$ref": "x"}, ...]}, or {"or": [{"$ref": '
        "\"x\"}]} to return what the evaluator returns; got {'$ref': 'pick'}"
    ]


def test_long_offending_values_are_shortened() -> None:
    (problem,) = validate_document(edited((*FLAG, "state"), "x" * 5000))
    assert len(problem.message) < 200
    assert "'xxxx" in problem.message


def test_problem_str_shows_root_as_slash_and_marks_warnings() -> None:
    assert str(Problem("", "bad")) == "/: bad"
    assert str(Problem("/flags/a", "bad")) == "/flags/a: bad"
    assert str(Problem("/flags/a", "odd", "warning")) == "/flags/a: warning: odd"


def test_problem_severity_is_error_or_warning() -> None:
    assert Problem("/a", "x").severity == "error"
    with pytest.raises(ValueError, match="severity: 'fatal'"):
        Problem("/a", "x", "fatal")  # type: ignore[arg-type]


def test_all_problems_are_reported_errors_first_sorted_by_path_without_duplicates() -> None:
    document = edited((*FLAG, "state"), "on")
    document["flags"][ALLOW]["defaultVariant"] = "nobody"
    document["flags"][MODE]["targeting"]["if"][1] = "turbo"
    document["flags"][MODE]["targeting"]["if"][4] = "turbo"
    document["extra"] = 1  # a warning
    problems = validate_document(document)
    assert [(problem.path, problem.severity) for problem in problems] == [
        (f"/flags/{ALLOW}/defaultVariant", "error"),
        (f"/flags/{MODE}/state", "error"),
        (f"/flags/{MODE}/targeting/if/1", "error"),
        (f"/flags/{MODE}/targeting/if/4", "error"),
        ("/extra", "warning"),
    ]
    assert len(set(problems)) == len(problems)


def test_a_flood_of_problems_is_cut_with_a_count() -> None:
    document = {"flags": {f"f{i}": {"state": "on", "variants": {"a": 1}} for i in range(1500)}}
    problems = validate_document(document)
    assert len(problems) == 1001
    assert problems[-1].path == ""
    assert problems[-1].message.startswith("500 more problems not listed (500 errors")


def test_yaml_pitfalls_are_explained() -> None:
    text = """
    metadata: {version: 2026-11-25}
    flags:
      1: {state: ENABLED, variants: {a: a}}
      f: {state: ENABLED, variants: {"on": 1, "off": 0}, defaultVariant: on}
    """
    problems = validate_document(yaml.safe_load(text))
    assert any("quote" in m for m in messages_at(problems, "/metadata/version"))
    assert any("quote" in m for m in messages_at(problems, "/flags/1"))
    assert any("quote it: 'true'" in m for m in messages_at(problems, "/flags/f/defaultVariant"))


# --- semantics ---------------------------------------------------------------------------------

IF = (*TARGETING, "if")
SPLIT = (*IF, 3, "fractional")
IF_PATH = f"/flags/{MODE}/targeting/if"


@pytest.mark.parametrize(
    ("where", "value", "path", "offending", "schema_misses_it"),
    [
        pytest.param(
            ("flags", ALLOW, "defaultVariant"),
            "everyone",
            f"/flags/{ALLOW}/defaultVariant",
            "'everyone'",
            True,
            id="defaultVariant not a variant",
        ),
        pytest.param(
            (*IF, 1), "provider_batch", f"{IF_PATH}/1", "'provider_batch'", True, id="then branch"
        ),
        pytest.param((*IF, 4), "batch_api", f"{IF_PATH}/4", "'batch_api'", True, id="else branch"),
        pytest.param(
            (*IF, 4),
            {"if": [{"var": "x"}, "serial"]},
            f"{IF_PATH}/4/if/1",
            "'serial'",
            True,
            id="nested if",
        ),
        pytest.param(
            (*SPLIT, 1, 0), "serial", f"{IF_PATH}/3/fractional/1/0", "'serial'", True, id="bucket"
        ),
        pytest.param((*IF, 1), True, f"{IF_PATH}/1", "'true'", True, id="boolean result"),
        pytest.param(
            (*IF, 0, "$ref"), "is_eng6", f"{IF_PATH}/0", "'is_eng6'", True, id="undefined $ref"
        ),
        pytest.param(
            (*SPLIT, 0, 1), 20.0, f"{IF_PATH}/3/fractional/0/1", "20.0", True, id="float weight"
        ),
        pytest.param(
            SPLIT,
            [["provider_batch_api", 0], ["per_request", 0]],
            f"{IF_PATH}/3/fractional",
            "got 0",
            True,
            id="zero total weight",
        ),
        pytest.param(
            (*SPLIT, 0),
            ["provider_batch_api", 20, 1],
            f"{IF_PATH}/3/fractional/0",
            "1]",
            False,
            id="bucket shape",
        ),
        pytest.param(
            (*IF, 2),
            {"startswith": [{"var": "cj_source"}, "e"]},
            f"{IF_PATH}/2",
            "'startswith'",
            False,
            id="unknown operator",
        ),
        pytest.param(
            (*IF, 2), {"==": [1, 1], "!=": [1, 2]}, f"{IF_PATH}/2", "'!='", False, id="two keys"
        ),
    ],
)
def test_semantic_problem_is_reported(
    where: tuple[Any, ...], value: object, path: str, offending: str, schema_misses_it: bool
) -> None:
    document = edited(where, value)
    messages = messages_at(errors(validate_document(document)), path)
    assert any(offending in message for message in messages), messages
    if schema_misses_it:
        assert official_schema().is_valid(document)  # only the hand-written checks catch it


@pytest.mark.parametrize(
    ("where", "value", "path", "says"),
    [
        pytest.param(
            ("flag",), {}, "/flag", "unknown top-level key 'flag' (did you mean 'flags'?)"
        ),
        pytest.param(("flags", ""), {"state": "ENABLED", "variants": {"a": 1}}, "/flags/", "empty"),
        pytest.param(("$evaluators", "is_eng5"), "yes", "/$evaluators/is_eng5", "constant 'yes'"),
        pytest.param((*SPLIT, 0, 1), -5, f"{IF_PATH}/3/fractional/0/1", "counts as 0"),
        pytest.param(("metadata", "version"), 20261125, "/metadata/version", "quote it"),
        pytest.param(TARGETING, None, f"/flags/{MODE}/targeting", "counts as no targeting"),
    ],
    ids=[
        "unknown top-level key",
        "empty flag key",
        "constant evaluator",
        "negative weight",
        "numeric version",
        "null targeting",
    ],
)
def test_what_flagd_core_serves_as_written_is_only_a_warning(
    where: tuple[Any, ...], value: object, path: str, says: str
) -> None:
    problems = validate_document(edited(where, value))
    assert errors(problems) == []
    assert any(says in message for message in messages_at(problems, path)), problems


def test_unknown_operator_suggests_the_right_one() -> None:
    document = edited((*IF, 2), {"startswith": [{"var": "cj_source"}, "e"]})
    (message,) = messages_at(validate_document(document), f"{IF_PATH}/2")
    assert "did you mean 'starts_with'?" in message


EVALUATORS = {f"evaluator_{i:03d}": {"==": [{"var": "tier"}, i]} for i in range(500)}


def test_a_repeated_mistake_gets_its_hint_every_time() -> None:
    refs = [{"$ref": "evaluator_001x"}] * 900  # more than the budget could hint at one by one
    problems = validate_document(one_rule_document({"or": refs}, EVALUATORS))
    hinted = [p for p in problems if "(did you mean 'evaluator_001'?)" in p.message]
    assert len(hinted) == len(refs)


def test_with_too_many_mistakes_to_hint_at_the_first_ones_get_hints() -> None:
    refs = [{"$ref": f"evaluator_{i:03d}x"} for i in range(900)]  # none exists
    problems = validate_document(one_rule_document({"or": refs}, EVALUATORS))
    path = "/flags/f/targeting/if/0/or"
    (first,) = messages_at(problems, f"{path}/0")
    (last,) = messages_at(problems, f"{path}/899")
    assert "(did you mean 'evaluator_000'?)" in first
    assert "did you mean" not in last
    assert "names no evaluator" in last  # the problem itself is still reported


def test_hints_stop_when_their_budget_is_spent_but_known_ones_stay() -> None:
    choices = ("map", "filter", "some")
    hints = Suggestions(budget=(4 + 5) * len("mapfiltersome"))  # two lookups' worth
    assert hints("mapp", choices) == " (did you mean 'map'?)"
    assert hints("filtr", choices) == " (did you mean 'filter'?)"
    assert hints("somee", choices) == ""
    assert hints("mapp", choices) == " (did you mean 'map'?)"


def test_a_name_longer_than_64_characters_gets_no_hint() -> None:
    hints = Suggestions()
    assert hints("n" * 63 + "x", ["n" * 64]) == f" (did you mean {'n' * 64!r}?)"
    assert hints("n" * 64 + "x", ["n" * 65]) == ""


def one_rule_document(rule: Any, evaluators: dict[str, Any] | None = None) -> dict[str, Any]:
    flag = {"state": "ENABLED", "variants": {"a": "a"}, "defaultVariant": "a"}
    document: dict[str, Any] = {"flags": {"f": {**flag, "targeting": {"if": [rule, "a", None]}}}}
    if evaluators is not None:
        document["$evaluators"] = evaluators
    return document


def test_variant_returned_through_an_evaluator_is_checked() -> None:
    document = edited(TARGETING, {"or": [{"$ref": "pick"}]})
    document["$evaluators"]["pick"] = {"if": [{"$ref": "is_eng5"}, "turbo", None]}
    document["$evaluators"]["is_eng5"] = document["$evaluators"].pop("is_eng5")  # after "pick"
    (problem,) = validate_document(document)
    assert problem.path == f"/flags/{MODE}/targeting/or/0"
    assert "'turbo'" in problem.message
    assert "/$evaluators/pick/if/1" in problem.message


# The checks below exist because of flagd-core 2.0.0 behaviour; each case also shows that
# flagd-core really misbehaves on the document, so the check can go when flagd-core changes.


def evaluate(document: dict[str, Any]) -> str | None:
    """The reason flagd-core gives for the mode flag of an ELS batch."""
    core = FlagdCore()
    core.set_flags(copy.deepcopy(document))  # set_flags mutates the dict it is given
    context = EvaluationContext("batch-1", {"cj_source": "els"})
    return core.resolve_string_value(MODE, "x", context).reason


def test_evaluator_referring_to_an_earlier_evaluator_is_reported() -> None:
    document = edited(("$evaluators", "not_eng5"), {"!": {"$ref": "is_eng5"}})
    document["flags"][MODE]["targeting"]["if"][0] = {"$ref": "not_eng5"}
    (problem,) = validate_document(document)
    assert problem.path == "/$evaluators/not_eng5/!"
    assert "'is_eng5'" in problem.message
    with pytest.raises(ParseError, match="Invalid targeting"):
        evaluate(document)


def test_evaluator_with_non_ascii_text_is_reported() -> None:
    document = edited(("$evaluators", "is_eng5", "==", 1), "éng5")
    (problem,) = validate_document(document)
    assert problem.path == "/$evaluators/is_eng5"
    assert "\\\\u00e9" in problem.message
    with pytest.raises(re.error, match="bad escape"):
        evaluate(document)


def test_float_weight_really_turns_the_split_off() -> None:
    good, bad = sample(), edited((*SPLIT, 0, 1), 20.0)
    assert validate_document(bad) != []
    assert (evaluate(good), evaluate(bad)) == (Reason.TARGETING_MATCH, Reason.DEFAULT)


# --- garbage never raises ----------------------------------------------------------------------


def nested(levels: int, leaf: object = "x") -> object:
    node = leaf
    for index in range(levels):
        node = {"if": [node]} if index % 2 else [node]
    return node


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def cyclic() -> dict[str, Any]:
    document: dict[str, Any] = {}
    document["flags"] = document
    return document


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(None, id="None"),
        pytest.param(1, id="int"),
        pytest.param("x", id="str"),
        pytest.param([], id="list"),
        pytest.param(b"flags", id="bytes"),
        pytest.param({"flags": None}, id="flags None"),
        pytest.param({"flags": {"f": None}}, id="flag None"),
        pytest.param({"flags": {"f": {"state": "ENABLED", "variants": None}}}, id="variants None"),
        pytest.param(nested(10_000), id="10000 levels at the root"),
        pytest.param(edited(TARGETING, nested(10_000)), id="10000 levels in targeting"),
        pytest.param(edited(("$evaluators", "deep"), nested(10_000)), id="10000 levels evaluator"),
        pytest.param({1: 2, None: 3, (1, 2): 4}, id="non-string keys"),
        pytest.param(
            yaml.safe_load("flags:\n  1: {state: ENABLED, variants: {true: 1}}"), id="yaml"
        ),
        pytest.param(edited((*FLAG, "variants", "per_request"), float("nan")), id="NaN variant"),
        pytest.param(edited((*SPLIT, 0, 1), float("inf")), id="inf weight"),
        pytest.param(edited(("metadata", "at"), datetime.datetime(2026, 1, 1)), id="datetime"),
        pytest.param(edited((*IF, 2), {"==": [{1, 2}, 1]}), id="set in rule"),
        pytest.param(edited((*IF, 1), Unprintable()), id="unprintable value"),
        pytest.param(edited(TARGETING, {"fractional": {"x": 1}}), id="fractional mapping"),
        pytest.param(edited(TARGETING, {"if": "per_request"}), id="if with a scalar"),
        pytest.param(edited(TARGETING, {"$ref": ["x"]}), id="$ref list"),
        pytest.param(cyclic(), id="cyclic"),
    ],
)
def test_garbage_never_raises(document: object) -> None:
    problems = validate_document(document)
    assert problems
    assert all(isinstance(problem, Problem) for problem in problems)
    assert problems == errors_first(problems)


def test_excessive_nesting_is_reported_at_the_deep_end() -> None:
    problems = validate_document(edited(TARGETING, nested(10_000)))
    assert any("nested deeper than 64 levels" in problem.message for problem in problems)


# --- the official schema as an oracle ----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCHEMA_SHA256))
def test_vendored_schema_is_the_official_one(name: str) -> None:
    vendored = (VENDORED_SCHEMA / name).read_bytes()
    assert hashlib.sha256(vendored).hexdigest() == SCHEMA_SHA256[name]
    if (SHARED_SCHEMA / name).is_file():  # the official checkout, where the lead keeps one
        assert vendored == (SHARED_SCHEMA / name).read_bytes()


def boolean_document() -> dict[str, Any]:
    return {
        "$evaluators": {
            "new_client": {"sem_ver": [{"var": "version"}, ">=", "2.4.0"]},
            "internal": {"ends_with": [{"var": "email"}, "@example.org"]},
        },
        "flags": {
            "batch-api": {
                "state": "DISABLED",
                "variants": {"on": True, "off": False},
                "defaultVariant": "off",
                "targeting": {
                    "if": [
                        {"and": [{"$ref": "new_client"}, {"!": {"var": "opted_out"}}]},
                        "on",
                        {"$ref": "internal"},
                        {
                            "fractional": [
                                {"cat": [{"var": "$flagd.flagKey"}, {"var": "tenant"}]},
                                ["on", 10],
                                ["off", 90],
                            ]
                        },
                    ]
                },
                "metadata": {"owner": "ops", "critical": True},
            }
        },
    }


def number_document() -> dict[str, Any]:
    return {
        "metadata": {"flagSetId": "limits", "version": "3"},
        "flags": {
            "max-batch": {
                "state": "ENABLED",
                "variants": {"small": 8, "large": 128.5},
                "defaultVariant": "small",
                "targeting": {
                    "if": [
                        {"in": [{"var": "provider"}, ["openai", "anthropic"]]},
                        "large",
                        {"<=": [0, {"var": "depth"}, 10]},
                        "small",
                        {"starts_with": [{"var": "source"}, "eng"]},
                        "large",
                    ]
                },
            }
        },
    }


BASES = (sample, boolean_document, number_document)
REPLACEMENTS: tuple[object, ...] = (
    None,
    True,
    0,
    -1,
    2.5,
    "",
    "x",
    "$flagd.foo",
    [],
    ["x"],
    {},
    {"x": 1},
    {"var": "x"},
)
RULE = (*IF, 2)
TARGETED: list[tuple[tuple[Any, ...], object]] = [
    ((*FLAG, "state"), "enabled"),
    ((*FLAG, "state"), "ENABLED "),
    (("flags",), [{"key": MODE, **sample()["flags"][MODE]}]),
    ((*RULE, "==", 0, "var"), "$flagd.foo"),
    ((*RULE, "==", 0, "var"), "$flagd.flagKey"),
    ((*RULE, "==", 0, "var"), ["cj_source", "els"]),
    ((*RULE, "==", 0, "var"), []),
    ((*RULE, "==", 0, "var"), [1]),
    (RULE, {"sem_ver": [{"var": "v"}, ">=", "1.2"]}),
    (RULE, {"sem_ver": [{"var": "v"}, ">=", "v1.2.0"]}),
    (RULE, {"sem_ver": [{"var": "v"}, ">=", "01.2.0"]}),
    (RULE, {"sem_ver": [{"var": "v"}, "=>", "1.2.0"]}),
    (RULE, {"sem_ver": [{"var": "v"}, "~", "1.2.0-rc.1+build.5"]}),
    (RULE, {"sem_ver": [{"var": "v"}, "1.2.0"]}),
    (RULE, {"sem_ver": ["1.2.0", "=", "1.2.0", "x"]}),
    (RULE, {"==": [1]}),
    (RULE, {"==": [1, 2, 3]}),
    (RULE, {"!": [1, 2]}),
    (RULE, {"!": 1}),
    (RULE, {"substr": ["abc"]}),
    (RULE, {"substr": ["abc", 1, 2, 3]}),
    (RULE, {"reduce": [[1], {"var": "current"}]}),
    (RULE, {"in": ["a", ["a"], 3]}),
    (RULE, {"missing_some": [1]}),
    (RULE, {"missing": "x"}),
    (RULE, {"starts_with": ["a"]}),
    (RULE, {"starts_with": [1, "a"]}),
    (RULE, {"<": [1, 2, 3]}),
    (RULE, {"<": [1]}),
    (RULE, {"*": [1]}),
    (RULE, {"and": []}),
    (RULE, {"map": [[1]]}),
    (RULE, {"log": "x"}),
    (RULE, {"?:": [True, "a", "b"]}),
    (RULE, {"foo": 1}),
    (RULE, {}),
    (RULE, {"==": [1, 1], "!=": [1, 2]}),
    (RULE, {"$ref": 1}),
    (RULE, {"$ref": "is_eng5", "x": 1}),
    (TARGETING, {"$ref": "is_eng5"}),
    (TARGETING, None),
    (TARGETING, []),
    (SPLIT, []),
    (SPLIT, "provider_batch_api"),
    (SPLIT, ["provider_batch_api", 50]),
    (SPLIT, [{"var": "email"}]),
    (SPLIT, [["provider_batch_api"]]),
    (SPLIT, [["provider_batch_api", 1, 2]]),
    (SPLIT, [[]]),
    ((*SPLIT, 0, 1), 1.5),
    ((*SPLIT, 0, 1), 20.0),
    ((*SPLIT, 0, 1), True),
    ((*SPLIT, 0, 1), "50"),
    ((*SPLIT, 0, 1), {"var": "w"}),
    ((*SPLIT, 0, 1), 2**40),
    ((*FLAG, "defaultVariant"), ""),
    ((*FLAG, "defaultVariant"), 1),
    (("flags", ALLOW, "variants", "x"), "y"),
    (("flags", ALLOW, "variants", ""), {}),
    (("metadata", "flagSetId"), False),
    (("metadata", "nested"), {"a": 1}),
    (("$evaluators", ""), {"var": "x"}),
    (("$evaluators",), []),
]


def paths(node: object, where: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], object]]:
    yield where, node
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in children:
        yield from paths(child, (*where, key))


def mutants(base: dict[str, Any], rng: random.Random) -> Iterator[Any]:
    """Every node deleted, retyped (a few random replacements), extended and shortened."""
    for where, node in paths(base):
        for value in rng.sample(REPLACEMENTS, 2):
            yield edited(where, value, base) if where else value
        if where:
            yield edited(where, DELETE, base)
        if isinstance(node, dict):
            yield edited((*where, "unexpected"), 1, base)
        if isinstance(node, list) and node:
            yield edited(where, [*node, node[-1]], base)
            yield edited(where, node[:-1], base)


@functools.cache
def corpus() -> tuple[Any, ...]:
    rng = random.Random(20261125)
    documents = [edited(where, value) for where, value in TARGETED]
    for base in BASES:
        documents.extend(mutants(base(), rng))
    unique = {json.dumps(document, sort_keys=True, default=str): document for document in documents}
    return tuple(unique.values())


@functools.cache
def official_verdicts() -> tuple[tuple[Any, bool], ...]:
    """Each corpus document with whether the official schema accepts it (slow: computed once)."""
    official = official_schema()
    return tuple((document, official.is_valid(document)) for document in corpus())


def test_every_document_the_official_schema_rejects_gets_a_problem() -> None:
    verdicts = official_verdicts()
    missed = [
        document for document, valid in verdicts if not valid and not validate_document(document)
    ]
    accepted = sum(valid for _, valid in verdicts)
    assert len(verdicts) >= 300
    assert 50 <= accepted <= len(verdicts) - 50  # both kinds, so this cannot pass vacuously
    assert missed == []


def test_the_runtime_schema_library_agrees_with_jsonschema() -> None:
    disagreements = [doc for doc, valid in official_verdicts() if schema_accepts(doc) != valid]
    assert disagreements == []
