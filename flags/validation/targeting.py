"""Targeting rules: operators, operand counts, `$ref`s and flagd's own operators.

JsonLogic as flagd-core 2.x runs it (panzi-json-logic plus fractional, sem_ver,
starts_with and ends_with) is the judge: a rule it fails on, or evaluates otherwise than the
rule reads (a missing operand filled with null, an ignored one, a comparison that can never
match), is an error; a rule it evaluates as written that the flagd schema does not allow
(a version "v1.2", a bare `$ref`) is a warning.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Final

from json_logic.builtins import BUILTINS
from openfeature.contrib.tools.flagd.core.targeting.custom_ops import normalize_version

from flags.validation._text import join, show
from flags.validation.limits import MAX_DEPTH, MAX_SEMVER_LENGTH, MAX_WEIGHT_SUM
from flags.validation.problem import Problem
from flags.validation.scope import Scope, ref_name

__all__ = ["SEM_VER_OPERATORS", "targeting_problems"]

# json_logic.apply() evaluates these forms itself, so they are not in BUILTINS.
_SPECIAL_FORMS = ("if", "?:", "and", "or", "filter", "reduce", "map", "all", "some", "none")
_FLAGD_OPERATORS = ("fractional", "starts_with", "ends_with", "sem_ver")
_KNOWN_OPERATORS = frozenset([*BUILTINS, *_SPECIAL_FORMS, *_FLAGD_OPERATORS])
SEM_VER_OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "^", "~")
"""The comparisons flagd-core's sem_ver knows; with any other it returns null."""
_FLAGD_VARS = ("$flagd.flagKey", "$flagd.timestamp")
# Operand counts the flagd schema allows (low, high; None: no limit). json_logic fills
# missing operands with null and ignores extra ones, so outside them a rule does not do what
# it reads; `var` and `missing` take several forms and are checked on their own.
_ARITY: Final[Mapping[str, tuple[int, int | None]]] = {
    **dict.fromkeys(
        ("==", "===", "!=", "!==", ">", ">=", "%", "/", "in", "map", "filter", "all", "some"),
        (2, 2),
    ),
    **dict.fromkeys(("none", "starts_with", "ends_with", "missing_some"), (2, 2)),
    **dict.fromkeys(("substr", "<", "<="), (2, 3)),
    **dict.fromkeys(("or", "and", "+", "-", "max", "min", "merge", "cat", "if", "?:"), (1, None)),
    **dict.fromkeys(("!", "!!"), (1, 1)),
    "*": (2, None),
    "reduce": (3, 3),
    "sem_ver": (3, 3),
    "fractional": (1, None),
}
# Fewer operands than the schema asks for, but evaluated as written: {"*": [x]} is x, and
# reduce without an initial value starts from null.
_SHORT_BUT_AS_WRITTEN: Final = {"*": 1, "reduce": 2}
_BARE_REF = (
    "a targeting that is only a $ref is rejected by the flagd schema; wrap it in a rule, e.g. "
    '{{"if": [{{"$ref": "x"}}, ...]}}, or {{"or": [{{"$ref": "x"}}]}} to return what the '
    "evaluator returns; got {value}"
)


def targeting_problems(document: object, scope: Scope) -> Iterator[Problem]:
    """Problems in every evaluator's rule and every flag's targeting."""
    if not isinstance(document, dict):
        return
    for name, rule in scope.evaluators.items():
        path = join("/$evaluators", name)
        if ref_name(rule) is not None:
            message = _BARE_REF.format(value=show(rule)).replace("targeting", "$evaluators entry")
            yield Problem(path, message, "warning")
        yield from _rule_problems(rule, path, scope.inside(name), 2)
    flags = document.get("flags")
    if not isinstance(flags, dict):
        return
    for key, flag in flags.items():
        if isinstance(flag, dict) and "targeting" in flag:
            path = join(join("/flags", key), "targeting")
            yield from _flag_targeting_problems(path, flag["targeting"], scope)


def _flag_targeting_problems(path: str, targeting: object, scope: Scope) -> Iterator[Problem]:
    if not isinstance(targeting, dict):
        if targeting:
            yield Problem(
                path,
                f"targeting must be a JsonLogic rule object ({{}} for none); got "
                f"{show(targeting)} (flagd-core fails every evaluation of the flag)",
            )
        else:  # flagd-core serves a falsy targeting as none at all
            message = f"{show(targeting)} counts as no targeting; write {{}} or leave it out"
            yield Problem(path, message, "warning")
        return
    name = ref_name(targeting)
    if name is not None and scope.resolves(name):
        rule = scope.evaluators[name]
        if isinstance(rule, dict) and rule:
            yield Problem(path, _BARE_REF.format(value=show(targeting)), "warning")
        else:
            yield Problem(
                path,
                f"targeting is only a $ref to {name!r}, which is not a rule object "
                f"({show(rule)}): flagd-core fails every evaluation of the flag",
            )
    if targeting:
        yield from _rule_problems(targeting, path, scope, 3)


def _rule_problems(node: object, path: str, scope: Scope, depth: int) -> Iterator[Problem]:
    """Malformed rule objects, unknown operators, operand counts, dangling $refs, and the
    operands of flagd's own operators."""
    if depth > MAX_DEPTH:
        return
    if isinstance(node, list):
        for index, item in enumerate(node):
            if isinstance(item, dict | list):  # a scalar is a literal: nothing to check
                yield from _rule_problems(item, join(path, index), scope, depth + 1)
    elif isinstance(node, dict):
        if len(node) != 1:
            message = f"a rule object must have exactly one operator key; got {show(node)}"
            yield Problem(path, f"{message} (JsonLogic would treat it as a literal value)")
        for operator, args in node.items():
            yield from _operator_problems(operator, args, path, scope, depth)


def _operator_problems(
    operator: object, args: object, path: str, scope: Scope, depth: int
) -> Iterator[Problem]:
    if operator == "$ref":
        yield from _ref_problems(args, path, scope)
        return
    if not isinstance(operator, str) or operator not in _KNOWN_OPERATORS:
        known = "JsonLogic operators or fractional, starts_with, ends_with, sem_ver"
        message = f"unknown operator {show(operator)}{scope.suggest(operator, _KNOWN_OPERATORS)}"
        yield Problem(path, f"{message}; flagd-core fails evaluation on it (allowed: {known})")
        return
    if operator == "log":
        yield Problem(
            path,
            "operator 'log' prints its value to the service's stdout on every evaluation; "
            "flagd's schema rejects it and so do we",
        )
    elif operator == "?:":
        message = "operator '?:' is not part of flagd's targeting language; use 'if' instead"
        yield Problem(path, message, "warning")
    args_path = join(path, operator)
    operands = args if isinstance(args, list) else [args]
    yield from _arity_problems(operator, operands, args_path)
    yield from _operand_problems(operator, args, operands, args_path)
    if operator == "reduce" and len(operands) >= 3:  # the initial value is data, not a rule
        yield from _rule_problems(operands[:2], args_path, scope, depth + 1)
    else:
        yield from _rule_problems(args, args_path, scope, depth + 1)


def _arity_problems(operator: str, operands: Sequence[object], path: str) -> Iterator[Problem]:
    if operator not in _ARITY:
        return
    low, high = _ARITY[operator]
    count = len(operands)
    wanted = _operand_count(low, high)
    if count < low:
        if _SHORT_BUT_AS_WRITTEN.get(operator) == count:
            message = f"{operator!r} takes {wanted} operands by the flagd schema; got {count}"
            yield Problem(path, f"{message} (flagd-core evaluates it as written)", "warning")
        else:
            yield Problem(
                path,
                f"{operator!r} takes {wanted} operand(s); got {count}: flagd-core fills the "
                "missing ones with null, so the rule does not do what it reads",
            )
    elif high is not None and count > high:
        yield Problem(
            path,
            f"{operator!r} takes {wanted} operand(s); got {count}: flagd-core ignores the rest, "
            "so the rule does not do what it reads",
        )


def _operand_count(low: int, high: int | None) -> str:
    if high is None:
        return f"at least {low}"
    return str(low) if low == high else f"{low} or {high}"


def _operand_problems(
    operator: str, args: object, operands: Sequence[object], path: str
) -> Iterator[Problem]:
    if operator == "fractional":
        yield from _fractional_problems(args, path)
    elif operator == "sem_ver" and len(operands) == 3:
        yield from _sem_ver_problems(operands, path)
    elif operator in ("starts_with", "ends_with"):
        yield from _string_compare_problems(operator, operands, path)
    elif operator == "var":
        yield from _var_problems(args, operands, path)
    elif operator == "in" and len(operands) == 2:
        haystack = operands[1]
        if not isinstance(haystack, str | list | dict):
            yield Problem(
                _operand_path(args, path, 1),
                f"'in' looks in a list or a string; got {show(haystack)}, so it is never true",
            )
    elif operator == "missing" and not isinstance(args, list):
        message = f"the flagd schema wants a list of keys; flagd-core reads {show(args)} as one"
        yield Problem(path, message, "warning")
    elif operator == "reduce" and len(operands) >= 3 and ref_name(operands[2]) is None:
        initial = operands[2]
        if isinstance(initial, dict) and len(initial) == 1:
            yield Problem(
                _operand_path(args, path, 2),
                f"flagd-core does not evaluate reduce's initial value: the rule {show(initial)} "
                "would start the reduction as a literal mapping; write a literal value",
            )


def _operand_path(args: object, path: str, index: int) -> str:
    return join(path, index) if isinstance(args, list) else path


def _ref_problems(name: object, path: str, scope: Scope) -> Iterator[Problem]:
    if not isinstance(name, str):
        yield Problem(path, f"$ref must be an evaluator name (a string); got {show(name)}")
    elif name not in scope.evaluators:
        hint = scope.suggest(name, scope.evaluators)
        message = f"$ref {show(name)} names no evaluator in $evaluators{hint}"
        yield Problem(path, f"{message}; defined: {show(list(scope.evaluators))}")
    elif ref_name({"$ref": name}) is None:
        pass  # the evaluator's own name problem says why this cannot resolve
    elif not scope.resolves(name):
        yield Problem(
            path,
            f"evaluator {scope.owner!r} refers to {name!r}, which is defined at or before it; "
            "flagd-core 2.0.0 resolves $refs in $evaluators order, so this one stays unresolved "
            f"(define {name!r} after {scope.owner!r})",
        )


def _var_problems(args: object, operands: Sequence[object], path: str) -> Iterator[Problem]:
    key = operands[0] if operands else None
    if args == [] or key is None:
        message = "var without a name reads the whole evaluation context (the flagd schema "
        yield Problem(path, f"{message}wants a name)", "warning")
    elif isinstance(key, str) and key.startswith("$flagd.") and key not in _FLAGD_VARS:
        yield Problem(
            _operand_path(args, path, 0),
            f"$flagd holds only {' and '.join(_FLAGD_VARS)}; {show(key)} is always null",
        )


def _string_compare_problems(
    operator: str, operands: Sequence[object], path: str
) -> Iterator[Problem]:
    for index, operand in enumerate(operands[:2]):
        if not isinstance(operand, str | dict):
            yield Problem(
                join(path, index),
                f"{operator} compares strings only; with {show(operand)} the rule never matches "
                "(flagd-core returns null)",
            )


def _sem_ver_problems(operands: Sequence[object], path: str) -> Iterator[Problem]:
    operator = operands[1]
    if not isinstance(operator, dict) and operator not in SEM_VER_OPERATORS:
        yield Problem(
            join(path, 1),
            f"sem_ver operator {show(operator)} is not one of {' '.join(SEM_VER_OPERATORS)}; "
            "flagd-core returns null, so the rule never matches",
        )
    for index in (0, 2):
        yield from _version_problems(operands[index], join(path, index))


def _version_problems(version: object, path: str) -> Iterator[Problem]:
    if isinstance(version, dict):
        if set(version) != {"var"}:
            yield Problem(
                path,
                "the flagd schema allows only a version string or a var here; flagd-core "
                f"compares what {show(version)} computes",
                "warning",
            )
        return
    text = str(version)
    if len(text) > MAX_SEMVER_LENGTH:
        message = f"a version longer than {MAX_SEMVER_LENGTH} characters; got {show(version)}"
        yield Problem(path, message)
        return
    try:
        normal = str(normalize_version(version))
    except ValueError:
        yield Problem(
            path,
            f"{show(version)} is not a version flagd-core can read (semver MAJOR.MINOR.PATCH, "
            "optionally with a leading v or fewer parts); the rule never matches",
        )
        return
    if not isinstance(version, str):
        yield Problem(
            path,
            f"a number where the flagd schema wants a version string; flagd-core reads "
            f"{version!r} as {normal}: quote it",
            "warning",
        )
    elif normal != version:
        yield Problem(
            path,
            f"{version!r} is not a full semantic version (the flagd schema wants "
            f"MAJOR.MINOR.PATCH); flagd-core reads it as {normal}",
            "warning",
        )


def _fractional_problems(args: object, path: str) -> Iterator[Problem]:
    """Bucket shapes, weights and the total, as flagd-core's fractional operator reads them."""
    buckets = list(enumerate(args if isinstance(args, list) else [args]))
    if buckets and not isinstance(buckets[0][1], list):  # a bucketing expression comes first
        if not isinstance(buckets[0][1], dict):
            yield Problem(
                _operand_path(args, path, 0),
                "fractional's first argument must be a [variant, weight] bucket or a bucketing "
                f'rule such as {{"var": "email"}}; got {show(buckets[0][1])}, so every key '
                "lands in the same bucket",
            )
        buckets = buckets[1:]
    if not buckets:
        message = f"fractional needs at least one [variant, weight] bucket; got {show(args)}"
        yield Problem(path, message)
        return
    weights: list[int] = []
    for index, bucket in buckets:
        problem, weight = _bucket_weight(bucket, join(path, index))
        if problem is not None:
            yield problem
        if weight is not None:
            weights.append(max(0, weight))
    if len(weights) == len(buckets) and not 0 < sum(weights) <= MAX_WEIGHT_SUM:
        yield Problem(
            path,
            f"the total fractional weight must be between 1 and {MAX_WEIGHT_SUM}; got "
            f"{sum(weights)}, so flagd-core returns no variant (the split is off)",
        )


def _bucket_weight(bucket: object, path: str) -> tuple[Problem | None, int | None]:
    """A problem with one fractional bucket, and its weight when known before evaluation."""
    if not isinstance(bucket, list) or not 1 <= len(bucket) <= 2:
        message = f"a fractional bucket must be [variant] or [variant, weight]; got {show(bucket)}"
        return Problem(path, message), None
    weight = bucket[1] if len(bucket) == 2 else 1
    if isinstance(weight, dict):
        return None, None  # computed at evaluation time, e.g. a progressive rollout
    if isinstance(weight, int) and not isinstance(weight, bool):
        if weight < 0:
            message = f"a negative weight counts as 0 in flagd-core; got {weight}"
            return Problem(join(path, 1), f"{message}: write 0", "warning"), weight
        return None, weight
    hint = " (flagd-core silently skips the whole split)"
    message = f"a fractional weight must be a non-negative integer; got {show(weight)}{hint}"
    return Problem(join(path, 1), message), None
