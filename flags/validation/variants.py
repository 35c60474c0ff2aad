"""Returned-variant analysis: every literal a targeting can return must name a variant.

flagd-core looks the targeting's result up in `variants` (booleans as "true"/"false",
numbers as `str(n)`) and fails the evaluation (GENERAL) when it finds none; values computed
at evaluation time (var, cat, ...) cannot be known and are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from flags.validation._text import join, show
from flags.validation.limits import MAX_DEPTH
from flags.validation.problem import Problem
from flags.validation.scope import Scope, ref_name

__all__ = ["returned_variant_problems"]

_Result = tuple[str, object, str]  # (where it is returned, the literal, where it is written)


def returned_variant_problems(document: object, scope: Scope) -> Iterator[Problem]:
    """A problem for each literal some flag's targeting can return that is not a variant."""
    flags = document.get("flags") if isinstance(document, dict) else None
    if not isinstance(flags, dict):
        return
    results = _Results(scope)
    for key, flag in flags.items():
        if not isinstance(flag, dict) or not isinstance(flag.get("variants"), dict):
            continue
        if isinstance(flag.get("targeting"), dict):
            path = join(join("/flags", key), "targeting")
            yield from _check(results.of(flag["targeting"], path, scope, 3), flag["variants"])


def _check(found: Iterator[_Result], variants: Mapping[Any, Any]) -> Iterator[Problem]:
    names = show(list(variants))
    for where, value, origin in found:
        if value is None:
            continue  # null: the default variant (or the caller's default)
        via = "" if origin == where else f" via the evaluator at {origin}"
        if isinstance(value, list | dict):
            message = f"targeting can return {show(value)}{via}, which cannot name a variant"
            yield Problem(where, f"{message} ({names})")
            continue
        name = str(value).lower() if isinstance(value, bool) else str(value)
        if name not in variants:
            as_variant = "" if isinstance(value, str) else f" (looked up as {name!r})"
            message = f"targeting can return {show(value)}{as_variant}{via}"
            yield Problem(where, f"{message}, which is not one of the variants {names}")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield Problem(
                where,
                f"targeting returns the number {value!r}{via}; flagd-core looks it up as "
                f"{name!r}, but the flagd schema leaves numbers undefined: return the string",
                "warning",
            )


class _Results:
    """The literals a rule can return; an evaluator's are worked out once (a chain of
    evaluators that each use the next twice would otherwise take exponential time)."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope
        self._evaluators: dict[str, list[tuple[object, str]]] = {}

    def of(self, node: object, path: str, scope: Scope, depth: int) -> Iterator[_Result]:
        if depth > MAX_DEPTH:
            return
        if not isinstance(node, dict):
            yield path, node, path
            return
        if len(node) != 1:
            return
        name = ref_name(node)
        if name is not None:
            if scope.resolves(name):
                for value, written in self._evaluator(name, depth):
                    yield path, value, written
            return
        ((operator, args),) = node.items()
        for slot, slot_path in _result_slots(operator, args, join(path, operator)):
            yield from self.of(slot, slot_path, scope, depth + 1)

    def _evaluator(self, name: str, depth: int) -> list[tuple[object, str]]:
        if name not in self._evaluators:
            self._evaluators[name] = []  # resolvable refs only point later: no cycle
            origin = join("/$evaluators", name)
            rule = self._scope.evaluators[name]
            inner = self.of(rule, origin, self._scope.inside(name), depth + 1)
            self._evaluators[name] = [(value, written) for _, value, written in inner]
        return self._evaluators[name]


def _result_slots(operator: object, args: object, path: str) -> list[tuple[object, str]]:
    """The arguments of `operator` whose value can become the rule's result, with their paths."""
    items = args if isinstance(args, list) else [args]
    paths = [join(path, index) if isinstance(args, list) else path for index in range(len(items))]
    last = len(items) - 1
    if operator in ("if", "?:"):  # [cond, then, cond2, then2, ..., else]
        picks = [*range(1, last + 1, 2), *([last] if last % 2 == 0 else [])]
    elif operator in ("and", "or"):  # the first falsy (and) / truthy (or) argument, or the last
        picks = [
            index
            for index, item in enumerate(items)
            if index == last or isinstance(item, dict) or bool(item) == (operator == "or")
        ]
    elif operator == "fractional":  # the variant of each [variant, weight] bucket
        return [
            (bucket[0], join(paths[index], 0))
            for index, bucket in enumerate(items)
            if isinstance(bucket, list) and bucket
        ]
    else:
        picks = []
    return [(items[index], paths[index]) for index in picks]
