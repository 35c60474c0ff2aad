"""Complexity bounds: what loading a document and evaluating one flag may cost, worked out
statically, in linear time, without expanding anything.

- `$ref` expansion: flagd-core pastes each evaluator's JSON text over every `{"$ref": name}`
  in the `flags` text, one regex pass per evaluator. A chain of evaluators that each use
  the next twice doubles the text at every step (the `$ref` form of a YAML alias bomb).
  Expanded sizes and depths come from per-evaluator values computed once each, last
  evaluator first (a `$ref` only resolves to a later one), and are bounded.
- Evaluation: an abstract interpretation of the targeting as json_logic runs it, over upper
  bounds of value sizes instead of values, counting steps of ~0.1 µs (`STEP_SECONDS`).
  Every operand is priced as evaluated (an `if` as if all its branches ran); iteration
  operators multiply their body's cost by the length of the array they walk; `reduce` is
  unrolled on the bounds until a fixed point, because its accumulator can grow (`cat`,
  `merge` or `*` of the accumulator with itself doubles it at each step). Values read from
  the context are assumed to be at most `CONTEXT_ITEMS` items and `CONTEXT_CHARS`
  characters. Every node the walk visits spends steps, and the walk stops when the budget
  is spent, so its own time is bounded too.

The weights below were measured on this machine (docs/performance.md, "Evaluation cost
model") and err on the high side; tests/fault/test_complexity_bombs.py checks them against
real evaluations of adversarial documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from openfeature.contrib.tools.flagd.core.targeting.custom_ops import normalize_version

from flags.validation._text import join
from flags.validation.limits import (
    CONTEXT_CHARS,
    CONTEXT_ITEMS,
    MAX_EVALUATION_STEPS,
    MAX_EXPANDED_BYTES,
    MAX_EXPANDED_DEPTH,
    MAX_LOAD_SCAN_BYTES,
    STEP_SECONDS,
)
from flags.validation.problem import Problem
from flags.validation.scope import Scope, ref_name
from flags.validation.targeting import SEM_VER_OPERATORS

__all__ = ["cost_problems", "evaluation_steps"]

# Steps (~0.1 µs each) of json_logic work, measured with flagd-core 2.0 / panzi-json-logic.
_LITERAL = 1.5  # apply() on a scalar or a literal mapping: ~0.12 µs
_OPERATOR = 15.0  # apply() on an operator node, its operand list and the call: ~1-1.5 µs
_PER_ITEM = 1.0  # Python-level work per list item an operator touches (to_string, loops)
_PER_KEY = 6.0  # missing / missing_some: one var lookup per key, ~0.4 µs
_PER_CHAR = 0.01  # C-level work per character or number byte (copy, compare, hash)
_PER_BYTE_PAIR = 0.003  # schoolbook big-integer multiplication, per byte x byte
_SEM_VER = 100.0  # semver parsing of two literal versions: ~8 µs
# A version that does not parse (a var missing from the context, say) makes flagd-core log
# the exception with its traceback, on every evaluation: ~180 µs.
_SEM_VER_FAILING = 2000.0
_FRACTIONAL = 250.0  # CBOR encoding and murmur3 hashing, or two error lines: ~12-24 µs
_RESOLVE = 150.0  # flagd-core's own work around one evaluation: context, metadata, result
_PER_METADATA = 1.0  # flagd-core copies the flag-set and flag metadata on every evaluation
_NUMBER_BYTES = 8
_STRINGIFY_RATIO = 3  # decimal characters per byte of an integer (2.41, rounded up)
_FLOAT_CHARS = 24  # the longest '%.15g' of a float, or true/false/null
_REDUCE_CONTEXT_CHARS = 20  # the "accumulator" and "current" keys of reduce's data
# Loading: flagd-core compiles and applies one substitution per evaluator (~56 µs each, as
# long as scanning 32 KiB of text takes).
_PER_EVALUATOR_BYTES = 32 * 1024

_ITERATIONS = frozenset(("map", "filter", "all", "some", "none"))
_ARITHMETIC = frozenset(("+", "-", "min", "max", "*", "/", "%"))


class Size(NamedTuple):
    """Upper bounds of a value: list items (nested, itself included), characters of its
    strings, bytes of all its numbers, and bytes of its widest number."""

    items: int
    chars: int
    digits: int
    widest: int

    def join(self, other: Size) -> Size:
        """A bound of either value."""
        return Size(*(max(mine, theirs) for mine, theirs in zip(self, other, strict=True)))

    def plus(self, other: Size) -> Size:
        """A bound of both values together."""
        return Size(
            self.items + other.items,
            self.chars + other.chars,
            self.digits + other.digits,
            max(self.widest, other.widest),
        )


def _number(width: int) -> Size:
    return Size(1, 0, width, width)


_NOTHING = Size(0, 0, 0, 0)
_SCALAR = Size(1, 0, 0, 0)
_NUMBER = _number(_NUMBER_BYTES)
_CONTEXT = Size(CONTEXT_ITEMS, CONTEXT_CHARS, CONTEXT_ITEMS * _NUMBER_BYTES, _NUMBER_BYTES)


def cost_problems(document: object, scope: Scope) -> Iterator[Problem]:
    """Documents whose loading or single evaluations would cost more than the limits allow."""
    flags = document.get("flags") if isinstance(document, dict) else None
    if not isinstance(document, dict) or not isinstance(flags, dict):
        return
    deep: set[object] = set()
    if scope.evaluators:  # without evaluators flagd-core loads the flags as they are
        loading = _Loading(flags, scope)
        yield from loading.problems()
        if loading.too_large:
            return  # the estimates would walk what cannot be loaded
        deep = loading.deep
    shared = _metadata_entries(document.get("metadata"))
    for key, flag in flags.items():
        if isinstance(flag, dict) and key not in deep:
            path = join("/flags", key)
            try:
                _flag_steps(flag, path, scope, shared)
            except _OverBudget as over:
                yield _over_budget_problem(over.path)


class _Loading:
    """What flagd-core's text substitution of the evaluators makes of the flags."""

    def __init__(self, flags: Mapping[Any, Any], scope: Scope) -> None:
        expansion = _Expansion(scope, flags)
        self._scope = scope
        self._expanded = {key: expansion.of(flag, scope) for key, flag in flags.items()}
        self._total = 2 + sum(
            _json_length(key) + 4 + size for key, (size, _) in self._expanded.items()
        )
        self.too_large = self._total > MAX_EXPANDED_BYTES
        self.deep = {
            key for key, (_, depth) in self._expanded.items() if depth > MAX_EXPANDED_DEPTH
        }

    def problems(self) -> Iterator[Problem]:
        if self.too_large:
            sizes = {key: size for key, (size, _) in self._expanded.items()}
            yield _expansion_problem(sizes, self._total)
            return
        for key in self.deep:
            yield Problem(
                join("/flags", key),
                f"nested {self._expanded[key][1]} levels deep once its $refs are expanded "
                f"(limit {MAX_EXPANDED_DEPTH}): json_logic recurses through every level; "
                "flatten the rules",
            )
        count = len(self._scope.evaluators)
        scanned = count * (self._total + _PER_EVALUATOR_BYTES)
        if scanned > MAX_LOAD_SCAN_BYTES:
            yield Problem(
                "/$evaluators",
                f"{count:,} evaluators over {_size(self._total)} of flags: flagd-core compiles "
                "a pattern for each evaluator and runs it over the whole text, the work of "
                f"scanning {_size(scanned)} at every load (limit {_size(MAX_LOAD_SCAN_BYTES)}); "
                "use fewer evaluators",
            )


def evaluation_steps(document: Mapping[str, Any], flag_key: str) -> float | None:
    """The estimated steps of one evaluation of `flag_key` (None: past the budget); the
    fault suite checks the estimate against real evaluations with it."""
    scope = Scope.of(document)
    flag = document["flags"][flag_key]
    try:
        return _flag_steps(flag, "", scope, _metadata_entries(document.get("metadata")))
    except _OverBudget:
        return None


def _metadata_entries(metadata: object) -> int:
    return len(metadata) if isinstance(metadata, dict) else 0


def _flag_steps(flag: Mapping[str, Any], path: str, scope: Scope, shared_metadata: int) -> float:
    estimate = _Estimate(scope)
    own_metadata = _metadata_entries(flag.get("metadata"))
    estimate.spend(_RESOLVE + _PER_METADATA * (shared_metadata + own_metadata), path)
    targeting = flag.get("targeting")
    if isinstance(targeting, dict) and targeting:
        estimate.rule(targeting, join(path, "targeting"), scope, _CONTEXT)
    return estimate.spent


def _over_budget_problem(path: str) -> Problem:
    return Problem(
        path,
        f"one evaluation of this flag may take more than {MAX_EVALUATION_STEPS:,} steps "
        f"(~{MAX_EVALUATION_STEPS * STEP_SECONDS * 1e3:.0f} ms) by a static estimate, which "
        "passes its limit here: iteration operators (map, filter, reduce, all, some, none) "
        "over long arrays, nested iterations or a growing reduce accumulator cost too much "
        "for a flag evaluated on every request; simplify the rule",
    )


def _expansion_problem(sizes: Mapping[str, int], total: int) -> Problem:
    why = (
        "flagd-core pastes every referenced evaluator's text in, so evaluators that each use "
        "the next more than once grow exponentially"
    )
    key, largest = max(sizes.items(), key=lambda item: item[1])
    if largest * 2 > MAX_EXPANDED_BYTES:
        return Problem(
            join("/flags", key),
            f"this flag expands through $ref to {_size(largest)} of rules (limit "
            f"{_size(MAX_EXPANDED_BYTES)} for all flags together): {why}",
        )
    return Problem(
        "/flags",
        f"the flags expand through $ref to {_size(total)} of rules (limit "
        f"{_size(MAX_EXPANDED_BYTES)}): {why}",
    )


def _size(size: int) -> str:
    units = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))
    for scale, unit in units:
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size} bytes"


class _Expansion:
    """(JSON text size, nesting depth) of values once flagd-core has substituted every
    `$ref` in them that resolves; each evaluator's is computed once."""

    def __init__(self, scope: Scope, roots: object) -> None:
        self._evaluators: dict[str, tuple[int, int]] = {}
        used = _used_evaluators(roots, scope)  # the others are never pasted in
        for name in reversed(list(scope.evaluators)):  # later evaluators are all known by then
            if name in used:
                self._evaluators[name] = self.of(scope.evaluators[name], scope.inside(name))

    def of(self, node: object, scope: Scope) -> tuple[int, int]:
        name = ref_name(node)
        if name is not None and scope.resolves(name):
            return self._evaluators[name]
        if isinstance(node, dict):
            parts = [self.of(value, scope) for value in node.values()]
            keys = sum(_json_length(key) + 2 for key in node)
            return _container(keys, parts, len(node))
        if isinstance(node, list):
            return _container(0, [self.of(item, scope) for item in node], len(node))
        return _json_length(node), 0


def _used_evaluators(roots: object, scope: Scope) -> set[str]:
    """The evaluators flagd-core pastes into `roots`, directly or through other evaluators."""
    used: set[str] = set()
    stack: list[tuple[object, Scope]] = [(roots, scope)]
    while stack:
        node, where = stack.pop()
        name = ref_name(node)
        if name is not None and where.resolves(name):
            if name not in used:
                used.add(name)
                stack.append((scope.evaluators[name], scope.inside(name)))
        elif isinstance(node, dict):
            stack.extend((value, where) for value in node.values())
        elif isinstance(node, list):
            stack.extend((item, where) for item in node)
    return used


def _json_length(value: object) -> int:
    """len(json.dumps(value)) of a scalar, without encoding the common plain cases."""
    if isinstance(value, str):
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return len(value) + 2
        return len(json.dumps(value))
    if value is None or value is True:
        return 4
    if value is False:
        return 5
    return len(repr(value)) if isinstance(value, int | float) else len(json.dumps(value))


def _container(keys: int, parts: Sequence[tuple[int, int]], count: int) -> tuple[int, int]:
    size = 2 + keys + sum(size for size, _ in parts) + 2 * max(0, count - 1)
    return size, 1 + max((depth for _, depth in parts), default=0)


class _OverBudget(Exception):
    """The estimate passed the budget at `path` (a signal that ends the walk)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class _Estimate:
    """A running upper bound of one evaluation's steps, abandoned past the budget."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope
        self.spent = 0.0
        self._literals: dict[int, Size] = {}
        self._lists: dict[int, Size | None] = {}

    def spend(self, steps: float, path: str) -> None:
        self.spent += steps
        if self.spent > MAX_EVALUATION_STEPS:
            raise _OverBudget(path)

    def rule(self, node: object, path: str, scope: Scope, data: Size) -> Size:
        """Spend what `apply(node, data)` costs; return a bound of its value."""
        if isinstance(node, list):  # json_logic applies every item
            literal = self._literal_list(node)
            if literal is not None:  # scalars only: priced in one go
                self.spend(_LITERAL * (1 + len(node)), path)
                return literal
            self.spend(_LITERAL, path)
            result = _SCALAR
            for index, item in enumerate(node):
                result = result.plus(self.rule(item, join(path, index), scope, data))
            return result
        name = ref_name(node)
        if name is not None:
            return self._ref(name, path, scope, data)
        if isinstance(node, dict) and len(node) == 1:
            return self._operator(node, path, scope, data)
        self.spend(_LITERAL, path)  # a scalar or a literal mapping comes back as it is
        return self._literal(node)

    def _ref(self, name: str, path: str, scope: Scope, data: Size) -> Size:
        self.spend(_LITERAL, path)
        if not scope.resolves(name):
            return _SCALAR  # unresolved: json_logic fails on it at once
        # flagd-core pastes the evaluator in: it costs what its rule costs, at every use.
        rule = self._scope.evaluators[name]
        return self.rule(rule, join("/$evaluators", name), self._scope.inside(name), data)

    def _operator(self, node: dict[Any, Any], path: str, scope: Scope, data: Size) -> Size:
        ((operator, args),) = node.items()
        operands = args if isinstance(args, list) else [args]
        path = join(path, operator)
        self.spend(_OPERATOR, path)
        if operator in _ITERATIONS:
            return self._iteration(operator, operands, path, scope, data)
        if operator == "reduce":
            return self._reduce(operands, path, scope, data)
        sizes = [
            self.rule(item, join(path, index), scope, data) for index, item in enumerate(operands)
        ]
        total = _NOTHING
        for size in sizes:
            total = total.plus(size)
        if operator in ("if", "?:", "and", "or"):  # one operand's value becomes the result
            return _join_all(sizes)
        if operator == "sem_ver":
            self.spend(_SEM_VER if _literal_versions(operands) else _SEM_VER_FAILING, path)
        elif operator == "in" and len(sizes) == 2 and not isinstance(operands[1], list):
            # the haystack may be a string: substring search is n x m at worst
            self.spend(_PER_CHAR * sizes[1].chars * min(sizes[0].chars, 64), path)
        self.spend(_builtin_steps(str(operator), sizes, total), path)
        result = _BUILTIN_RESULTS.get(str(operator), _scalar_result)
        return result(sizes, total, data)

    def _iteration(
        self, operator: str, operands: Sequence[object], path: str, scope: Scope, data: Size
    ) -> Size:
        items = self.rule(operands[0], join(path, 0), scope, data) if operands else _SCALAR
        if len(operands) < 2:
            return _SCALAR
        before = self.spent
        body = self.rule(operands[1], join(path, 1), scope, items)  # its data: one element
        once = self.spent - before + _PER_ITEM
        self.spend(once * max(0, items.items - 1), path)  # the other elements
        if operator == "map":
            count = items.items
            return Size(
                1 + count * body.items, count * body.chars, count * body.digits, body.widest
            )
        return items if operator == "filter" else _SCALAR

    def _reduce(self, operands: Sequence[object], path: str, scope: Scope, data: Size) -> Size:
        items = self.rule(operands[0], join(path, 0), scope, data) if operands else _SCALAR
        body = operands[1] if len(operands) > 1 else None
        # json_logic hands the initial value over as it is written, unevaluated.
        accumulator = self._literal(operands[2]) if len(operands) > 2 else _SCALAR
        for step in range(items.items):
            before = self.spent
            current = accumulator.plus(items).plus(Size(3, _REDUCE_CONTEXT_CHARS, 0, 0))
            grown = self.rule(body, join(path, 1), scope, current).join(accumulator)
            if grown == accumulator:  # a fixed point: every later step costs the same
                self.spend((self.spent - before) * (items.items - step - 1), path)
                break
            accumulator = grown
        return accumulator

    def _literal_list(self, node: list[Any]) -> Size | None:
        """The size of a list of scalars (remembered per list), None when it holds rules."""
        key = id(node)
        if key not in self._lists:
            scalars = not any(isinstance(item, dict | list) for item in node)
            self._lists[key] = _walk_size(node) if scalars else None
        return self._lists[key]

    def _literal(self, value: object) -> Size:
        """The size of a JSON value as written (walked once per node object)."""
        if not isinstance(value, dict | list):
            return _scalar_size(value)
        known = self._literals.get(id(value))
        if known is None:
            known = _walk_size(value)
            self._literals[id(value)] = known
        return known


def _literal_versions(operands: Sequence[object]) -> bool:
    """Whether a sem_ver rule compares two literal versions flagd-core can read with a known
    operator (then it cannot fail, and log, at evaluation time)."""
    if len(operands) != 3 or operands[1] not in SEM_VER_OPERATORS:
        return False
    try:
        for version in (operands[0], operands[2]):
            if isinstance(version, dict | list) or version is None:
                return False
            normalize_version(version)
    except ValueError:
        return False
    return True


def _join_all(sizes: Sequence[Size]) -> Size:
    result = _SCALAR
    for size in sizes:
        result = result.join(size)
    return result


def _builtin_steps(operator: str, sizes: Sequence[Size], total: Size) -> float:
    """What a built-in operator does with its evaluated operands, beyond the apply()."""
    steps = _PER_ITEM * total.items + _PER_CHAR * (total.chars + total.digits)
    if operator not in _ARITHMETIC:  # every other operator may turn numbers into text
        steps += _PER_BYTE_PAIR * sum(size.digits * size.widest for size in sizes)
    if operator == "fractional":  # normalize_numbers walks the bucketing value
        steps += _FRACTIONAL + _PER_ITEM * total.items
    elif operator in ("missing", "missing_some"):
        steps += _PER_KEY * total.items
    elif operator in ("/", "%"):
        steps += _PER_BYTE_PAIR * total.widest**2
    elif operator == "*":  # the product grows: each factor multiplies all before it
        product = 0
        for size in sizes:
            factor = max(size.widest, _NUMBER_BYTES)
            steps += _PER_BYTE_PAIR * product * factor
            product += factor
    return steps


def _scalar_result(_sizes: Sequence[Size], _total: Size, _data: Size) -> Size:
    return _SCALAR


def _number_result(sizes: Sequence[Size], _total: Size, _data: Size) -> Size:
    return _number(max((size.widest for size in sizes), default=0) + _NUMBER_BYTES)


def _product_result(sizes: Sequence[Size], _total: Size, _data: Size) -> Size:
    return _number(sum(max(size.widest, _NUMBER_BYTES) for size in sizes))


def _text(value: Size) -> Size:
    chars = value.chars + _STRINGIFY_RATIO * value.digits + _FLOAT_CHARS * value.items
    return Size(1, chars, 0, 0)


def _var_result(sizes: Sequence[Size], _total: Size, data: Size) -> Size:
    return data.join(sizes[1]) if len(sizes) > 1 else data


def _keys_result(_sizes: Sequence[Size], total: Size, _data: Size) -> Size:
    return Size(total.items, total.chars + _STRINGIFY_RATIO * total.digits, 0, 0)


_Result = Callable[[Sequence[Size], Size, Size], Size]
_BUILTIN_RESULTS: Mapping[str, _Result] = {
    **dict.fromkeys(("+", "-", "min", "max", "/", "%"), _number_result),
    "*": _product_result,
    "cat": lambda _sizes, total, _data: _text(total),
    "substr": lambda sizes, _total, _data: _text(sizes[0] if sizes else _SCALAR),
    "merge": lambda _sizes, total, _data: total,
    "fractional": lambda _sizes, total, _data: total,  # one bucket's variant comes back
    "missing": _keys_result,
    "missing_some": _keys_result,
    "var": _var_result,
}
"""A bound of each built-in's value; boolean results, sem_ver and unknown operators
(which fail at once) give a scalar."""


def _scalar_size(value: object) -> Size:
    if isinstance(value, str):
        return Size(1, len(value), 0, 0)
    if isinstance(value, bool) or value is None:
        return _SCALAR
    if isinstance(value, int):
        return _number(value.bit_length() // 8 + 1)
    return _NUMBER if isinstance(value, float) else _SCALAR


def _walk_size(value: object) -> Size:
    stack = [value]
    total = _NOTHING
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            total = total.plus(Size(1, sum(len(str(key)) for key in node), 0, 0))
            stack.extend(node.values())
        elif isinstance(node, list):
            total = total.plus(_SCALAR)
            stack.extend(node)
        else:
            total = total.plus(_scalar_size(node))
    return total
