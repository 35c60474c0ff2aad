"""Error or warning: the evaluator is the judge.

Every case is a document with one questionable construct. A warning case is evaluated
through our provider (it accepts the document) and must serve what the rule reads; an
error case is evaluated by flagd-core itself (our provider refuses it) and must show that
flagd-core fails or does something other than what the rule reads. When flagd-core
changes its behaviour, the case that no longer holds says which severity to revisit.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import OpenFeatureError

from flags import DocumentError, FlagdMemoryProvider, validate_document

CONTEXT = EvaluationContext("batch-7", {"version": "2.1.0", "n": 5, "s": "abc", "tier": "gold"})
AB = {"a": "a", "b": "b"}


def flag(targeting: Any = None, *, variants: Any = None, default: Any = "a", **extra: Any) -> Any:
    body: dict[str, Any] = {
        "state": "ENABLED",
        "variants": AB if variants is None else variants,
        "defaultVariant": default,
    }
    if targeting is not None:
        body["targeting"] = targeting
    return {"flags": {"f": {**body, **extra}}}


def when(condition: Any) -> Any:
    """A flag serving "b" when `condition` holds, else "a"."""
    return flag({"if": [condition, "b", "a"]})


def with_evaluators(document: Any, **evaluators: Any) -> Any:
    return {"$evaluators": evaluators, **document}


@dataclass(frozen=True)
class Case:
    """A construct, the severity we give it, and what flagd-core does with it."""

    document: Any
    path: str
    says: str
    # warning: what our provider serves (value); error: a check of flagd-core's outcome
    serves: Any = None
    shows: Callable[[Any], bool] = field(default=lambda _: False)
    kind: str = "string"
    default: Any = "D"


def outcome(document: Any, kind: str = "string", default: Any = "D") -> Any:
    """What flagd-core makes of `document`'s flag f: ("load", error) when it cannot load
    it, ("eval", error) when the evaluation fails, else (value, variant, reason)."""
    core = FlagdCore()
    try:
        core.set_flags(copy.deepcopy(document))
    except Exception as exc:
        return ("load", type(exc).__name__)
    try:
        result = getattr(core, f"resolve_{kind}_value")("f", default, CONTEXT)
    except OpenFeatureError as exc:
        return ("eval", str(exc.error_code))
    except Exception as exc:
        return ("eval", type(exc).__name__)
    return (result.value, result.variant, str(result.reason))


def fails_to_load(result: Any) -> bool:
    return result[0] == "load"


def fails_to_evaluate(result: Any) -> bool:
    return result[0] == "eval"


def serves_a(result: Any) -> bool:
    """The rule's condition never held: the else branch (or the default) came back."""
    return result[0] in ("a", "D")


WARNINGS = {
    "sem_ver v-prefix": Case(
        when({"sem_ver": [{"var": "version"}, ">=", "v2.0.0"]}),
        "/flags/f/targeting/if/0/sem_ver/2",
        "flagd-core reads it as 2.0.0",
        serves="b",
    ),
    "sem_ver partial version": Case(
        when({"sem_ver": [{"var": "version"}, "^", "2"]}),
        "/flags/f/targeting/if/0/sem_ver/2",
        "reads it as 2.0.0",
        serves="b",
    ),
    "sem_ver number": Case(
        when({"sem_ver": [{"var": "version"}, ">", 2]}),
        "/flags/f/targeting/if/0/sem_ver/2",
        "a number where the flagd schema wants a version string",
        serves="b",
    ),
    "sem_ver computed version": Case(
        when({"sem_ver": [{"cat": ["2.", "1.0"]}, "=", "2.1.0"]}),
        "/flags/f/targeting/if/0/sem_ver/0",
        "only a version string or a var",
        serves="b",
    ),
    "?: instead of if": Case(
        flag({"?:": [{"==": [{"var": "s"}, "abc"]}, "b", "a"]}),
        "/flags/f/targeting",
        "use 'if' instead",
        serves="b",
    ),
    "bare $ref targeting": Case(
        with_evaluators(flag({"$ref": "pick"}), pick={"if": [True, "b"]}),
        "/flags/f/targeting",
        "only a $ref is rejected by the flagd schema",
        serves="b",
    ),
    "constant evaluator": Case(
        with_evaluators(when({"$ref": "on"}), on=True),
        "/$evaluators/on",
        "pastes it in as the constant True",
        serves="b",
    ),
    "empty evaluator name": Case(
        with_evaluators(when({"$ref": ""}), **{"": {"==": [1, 1]}}),
        "/$evaluators/",
        "empty evaluator name",
        serves="b",
    ),
    "unknown top-level key": Case(
        {**when(True), "owner": "ops"}, "/owner", "ignored by flagd", serves="b"
    ),
    "daemon-only flag key": Case(
        flag(source="file:flags.json"), "/flags/f/source", "flagd daemon field", serves="a"
    ),
    "list variant": Case(
        flag(variants={"a": ["x", "y"]}),
        "/flags/f/variants/a",
        "a list value",
        serves=["x", "y"],
        kind="object",
        default={},
    ),
    "boolean defaultVariant": Case(
        flag(variants={"true": "on", "false": "off"}, default=True),
        "/flags/f/defaultVariant",
        "reads it as 'true': quote it",
        serves="on",
    ),
    "empty defaultVariant": Case(
        flag(default=""), "/flags/f/defaultVariant", "means null", serves="D"
    ),
    "null targeting": Case(
        {
            "flags": {
                "f": {"state": "ENABLED", "variants": AB, "defaultVariant": "a", "targeting": None}
            }
        },
        "/flags/f/targeting",
        "counts as no targeting",
        serves="a",
    ),
    "numeric flag-set version": Case(
        {**flag(), "metadata": {"version": 3}}, "/metadata/version", "quote it", serves="a"
    ),
    "single-operand *": Case(
        when({"==": [{"*": [{"var": "n"}]}, 5]}),
        "/flags/f/targeting/if/0/==/0/*",
        "flagd-core evaluates it as written",
        serves="b",
    ),
    "reduce without initial value": Case(
        when(
            {
                "==": [
                    {"reduce": [[1, 2], {"+": [{"var": "accumulator"}, {"var": "current"}]}]},
                    3,
                ]
            }
        ),
        "/flags/f/targeting/if/0/==/0/reduce",
        "evaluates it as written",
        serves="b",
    ),
    "missing with one key": Case(
        when({"missing": "absent"}),
        "/flags/f/targeting/if/0/missing",
        "reads 'absent' as one",
        serves="b",
    ),
    "var without a name": Case(
        when({"var": []}), "/flags/f/targeting/if/0/var", "whole evaluation context", serves="b"
    ),
    "number result": Case(
        flag({"if": [True, 1]}, variants={"1": "one", "a": "a"}),
        "/flags/f/targeting/if/1",
        "looks it up as '1'",
        serves="one",
    ),
    "negative weight": Case(
        flag({"fractional": [["a", -5], ["b", 10]]}),
        "/flags/f/targeting/fractional/0/1",
        "counts as 0",
        serves="b",
    ),
}


@pytest.mark.parametrize("case", WARNINGS.values(), ids=WARNINGS.keys())
def test_warning_is_served_as_written(case: Case) -> None:
    problems = validate_document(case.document)
    assert [p for p in problems if p.is_error] == []
    assert any(p.path == case.path and case.says in p.message for p in problems), problems
    provider = FlagdMemoryProvider(case.document)  # accepted: warnings do not refuse
    assert provider.warnings == tuple(problems)
    resolve = getattr(provider, f"resolve_{case.kind}_details")
    details = resolve("f", case.default, CONTEXT)
    assert (details.value, details.error_code) == (case.serves, None)


ERRORS = {
    "unknown flag key": Case(
        flag(targetting={"if": [True, "b"]}),
        "/flags/f/targetting",
        "did you mean 'targeting'?",
        shows=fails_to_load,
    ),
    "targeting not a rule": Case(
        flag("b"), "/flags/f/targeting", "fails every evaluation", shows=fails_to_evaluate
    ),
    "bare $ref to a constant": Case(
        with_evaluators(flag({"$ref": "x"}), x="b"),
        "/flags/f/targeting",
        "not a rule object",
        shows=fails_to_evaluate,
    ),
    "defaultVariant not a variant": Case(
        flag(default="c"),
        "/flags/f/defaultVariant",
        "not one of the variants",
        shows=fails_to_evaluate,
    ),
    "defaultVariant 0": Case(
        flag(variants={"0": "zero", "a": "a"}, default=0),
        "/flags/f/defaultVariant",
        "a variant name or null",
        shows=lambda result: result[2] == "DEFAULT",  # reads as variant "0", serves null
    ),
    "variant named ''": Case(
        flag({"if": [True, ""]}, variants={"": "x", "a": "a"}),
        "/flags/f/variants/",
        "can never be served",
        shows=fails_to_evaluate,
    ),
    "null variant": Case(
        flag(variants={"a": None}),
        "/flags/f/variants/a",
        "must be a string",
        shows=fails_to_evaluate,
    ),
    "mixed variant types": Case(
        flag({"if": [True, "b"]}, variants={"a": "a", "b": 1}),
        "/flags/f/variants",
        "mix value types",
        shows=fails_to_evaluate,
    ),
    "metadata list": Case(
        flag(metadata={"owners": ["ops"]}),
        "/flags/f/metadata/owners",
        "refuses the document",
        shows=fails_to_load,
    ),
    "unknown operator": Case(
        when({"startswith": [{"var": "s"}, "a"]}),
        "/flags/f/targeting/if/0",
        "did you mean 'starts_with'?",
        shows=fails_to_evaluate,
    ),
    "dangling $ref": Case(
        when({"$ref": "nowhere"}),
        "/flags/f/targeting/if/0",
        "names no evaluator",
        shows=fails_to_evaluate,
    ),
    "$ref to an earlier evaluator": Case(
        with_evaluators(when({"$ref": "second"}), first={"==": [1, 1]}, second={"$ref": "first"}),
        "/$evaluators/second",
        "defined at or before it",
        shows=fails_to_evaluate,
    ),
    "evaluator name needing escapes": Case(
        with_evaluators(when({"$ref": "é"}), **{"é": {"==": [1, 1]}}),
        "/$evaluators/é",
        "cannot be matched",
        shows=fails_to_evaluate,
    ),
    "starts_with a number": Case(
        when({"starts_with": [{"var": "s"}, 1]}),
        "/flags/f/targeting/if/0/starts_with/1",
        "never matches",
        shows=serves_a,
    ),
    "sem_ver unknown operator": Case(
        when({"sem_ver": [{"var": "version"}, "=>", "1.0.0"]}),
        "/flags/f/targeting/if/0/sem_ver/1",
        "never matches",
        shows=serves_a,
    ),
    "sem_ver unreadable version": Case(
        when({"sem_ver": [{"var": "version"}, "!=", "01.0.0"]}),
        "/flags/f/targeting/if/0/sem_ver/2",
        "not a version flagd-core can read",
        shows=serves_a,  # "2.1.0" != anything should hold, but it never matches
    ),
    "missing operand": Case(
        when({"==": [{"var": "missing_attribute"}]}),
        "/flags/f/targeting/if/0/==",
        "fills the missing ones with null",
        shows=lambda result: result[0] == "b",  # compares null with null: true
    ),
    "ignored operand": Case(
        when({"==": [1, 1, 2]}),
        "/flags/f/targeting/if/0/==",
        "ignores the rest",
        shows=lambda result: result[0] == "b",  # 1 == 1 == 2 reads false
    ),
    "literal bucketing value": Case(
        flag({"fractional": ["tenant", ["a", 50], ["b", 50]]}),
        "/flags/f/targeting/fractional/0",
        "every key lands in the same bucket",
        shows=lambda _: True,  # shown over many keys below
    ),
    "float weight": Case(
        flag({"fractional": [["a", 50.0], ["b", 50]]}),
        "/flags/f/targeting/fractional/0/1",
        "non-negative integer",
        shows=lambda result: result[2] == "DEFAULT",
    ),
    "zero total weight": Case(
        flag({"fractional": [["a", 0], ["b", 0]]}),
        "/flags/f/targeting/fractional",
        "the split is off",
        shows=lambda result: result[2] == "DEFAULT",
    ),
    "unknown $flagd property": Case(
        when({"var": "$flagd.flagkey"}),
        "/flags/f/targeting/if/0/var",
        "always null",
        shows=serves_a,
    ),
    "reduce initial value as a rule": Case(
        when(
            {
                "==": [
                    {
                        "reduce": [
                            [1, 2],
                            {"+": [{"var": "accumulator"}, {"var": "current"}]},
                            {"var": "n"},
                        ]
                    },
                    8,
                ]
            }
        ),
        "/flags/f/targeting/if/0/==/0/reduce/2",
        "does not evaluate reduce's initial value",
        shows=serves_a,  # 5 + 1 + 2 reads 8; it starts from the mapping, giving NaN
    ),
    "in a number": Case(
        when({"in": [{"var": "n"}, 5]}),
        "/flags/f/targeting/if/0/in/1",
        "never true",
        shows=serves_a,
    ),
    "unknown variant returned": Case(
        flag({"if": [True, "c"]}),
        "/flags/f/targeting/if/1",
        "not one of the variants",
        shows=fails_to_evaluate,
    ),
    "list returned": Case(
        flag({"if": [True, ["b"]]}),
        "/flags/f/targeting/if/1",
        "cannot name a variant",
        shows=fails_to_evaluate,
    ),
}


@pytest.mark.parametrize("case", ERRORS.values(), ids=ERRORS.keys())
def test_error_is_what_flagd_core_fails_or_misreads(case: Case) -> None:
    problems = validate_document(case.document)
    assert any(p.is_error and p.path == case.path and case.says in p.message for p in problems), (
        problems
    )
    with pytest.raises(DocumentError):
        FlagdMemoryProvider(case.document)
    assert case.shows(outcome(case.document, case.kind, case.default))


def test_a_literal_bucketing_value_puts_every_key_in_one_bucket() -> None:
    core = FlagdCore()
    core.set_flags(copy.deepcopy(ERRORS["literal bucketing value"].document))
    served = {
        core.resolve_string_value("f", "D", EvaluationContext(f"batch-{i}")).value
        for i in range(200)
    }
    assert len(served) == 1


def test_log_prints_every_evaluation_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    document = when({"log": True})
    problems = validate_document(document)
    assert any(
        p.is_error and "prints its value to the service's stdout" in p.message for p in problems
    )
    assert outcome(document)[0] == "b"
    assert capsys.readouterr().out == "true\n"
