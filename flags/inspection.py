"""Reading what a flag document declares, for previews and summaries: what a flag's
rules give one evaluation context (a split, one variant, the default), and what changed
between two documents. Generic: any flagd document, any flag, any attributes."""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from json_logic import jsonLogic
from json_logic.builtins import BUILTINS
from openfeature.contrib.tools.flagd.core.targeting.custom_ops import fractional
from openfeature.contrib.tools.flagd.core.targeting.targeting import OPERATORS

from flags.validation._text import join

_op_var = BUILTINS["var"]

__all__ = ["Change", "ChangeKind", "Outcome", "OutcomeKind", "document_changes", "flag_outcome"]

OutcomeKind = Literal["disabled", "split", "variant", "default", "error", "varies"]

# What an evaluation reads of its context that differs from one targeting key to the
# next: the key itself and the `$flagd` properties (the timestamp); `var` of "" is all.
_PER_KEY: Final = frozenset({"", "targetingKey", "$flagd"})
_ANY_KEY: Final = "0"  # the evaluation below never reads it, or it says it did


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a flag gives every evaluation of one context, whatever its targeting key.

    - `disabled`: the flag is DISABLED (callers get their default);
    - `split`: a `fractional` rule; `weights` one per variant in order of first
      appearance (a variant in several buckets weighs their sum, as in flagd-core),
      sticky per targeting key (`bucket_by` None) or per the value of `bucket_by`;
    - `variant`: the same `variant` for every key;
    - `default`: no rule gives a variant, so `defaultVariant` applies (`variant`; None:
      callers get their default);
    - `error`: the rule fails to evaluate (`error` says how, e.g. a division by zero):
      flagd-core answers with an error and callers get their default;
    - `varies`: the rule reads the targeting key (or the time) some other way.

    Every kind but `split` and `varies` is exact: the same answer for every key.
    """

    kind: OutcomeKind
    variant: str | None = None
    weights: tuple[tuple[str, int], ...] = ()
    bucket_by: Any = None
    error: str | None = None

    @property
    def same_for_every_key(self) -> bool:
        """Whether every targeting key gets the same answer (proven, not sampled)."""
        return self.kind in ("disabled", "variant", "default", "error")

    def shares(self) -> dict[str, float]:
        """A split's variants with their share of keys (0..1), in list order."""
        total = sum(weight for _, weight in self.weights)
        return {name: weight / total if total else 0.0 for name, weight in self.weights}


def flag_outcome(
    document: Mapping[str, Any], flag_key: str, attributes: Mapping[str, Any]
) -> Outcome | None:
    """What `flag_key` gives a context with `attributes`, or None without such a flag.

    The targeting is evaluated once the way flagd-core does (its operators, `$ref`s
    expanded, `$flagd` properties set), with `fractional` and `var` instrumented: the
    rule that applies to the context reports its weights, and an evaluation that never
    reads the targeting key or the time (outside a split) is the same for every key. A
    rule that raises is an `error` outcome, never an exception.
    """
    flag = (document.get("flags") or {}).get(flag_key)
    if not isinstance(flag, Mapping):
        return None
    if flag.get("state") == "DISABLED":
        return Outcome("disabled")
    default = flag.get("defaultVariant")
    default = None if default is None else str(default)
    targeting = flag.get("targeting")
    if not isinstance(targeting, Mapping) or not targeting:
        return Outcome("default", default)
    return _targeting_outcome(document, flag_key, targeting, attributes, default)


def _targeting_outcome(
    document: Mapping[str, Any],
    flag_key: str,
    targeting: Mapping[str, Any],
    attributes: Mapping[str, Any],
    default: str | None,
) -> Outcome:
    fractions: list[Any] = []
    rule = _instrument(_expand(targeting, document.get("$evaluators") or {}), fractions)
    trace = _Trace()
    data = {**attributes, "targetingKey": _ANY_KEY}
    data["$flagd"] = {"flagKey": flag_key, "timestamp": int(time.time())}
    try:
        result = jsonLogic(rule, data, {**OPERATORS, **trace.operators(fractions)})
    except Exception as exc:  # flagd-core lets json_logic's exceptions out: an error answer
        if trace.read_per_key or trace.splits:  # another key may not fail
            return Outcome("varies")
        return Outcome("error", error=f"{type(exc).__name__}: {exc}")
    variant = _variant_name(result)
    if trace.read_per_key or len(trace.splits) > 1:
        return Outcome("varies")
    if trace.splits:
        node, args = trace.splits[0]
        raw = fractions[node]
        bucket_by = raw[0] if raw and not isinstance(raw[0], list) else None
        return Outcome("split", weights=_weights(args), bucket_by=bucket_by)
    return Outcome("default", default) if variant is None else Outcome("variant", variant)


class _Trace:
    """What one instrumented evaluation reached (splits) and read (per-key data)."""

    def __init__(self) -> None:
        self.splits: list[tuple[int, tuple[Any, ...]]] = []
        self.read_per_key = False

    def operators(self, fractions: list[Any]) -> dict[str, Any]:
        def split(node: int) -> Any:
            def record(data: Any, *args: Any) -> Any:
                self.splits.append((node, args))
                return fractional(data, *args)

            return record

        def read(data: Any = None, key: Any = None, default: Any = None) -> Any:
            if key is None or str(key).split(".")[0] in _PER_KEY:
                self.read_per_key = True
            return _op_var(data, key, default)

        def bucket_value(data: Any = None, key: Any = None, default: Any = None) -> Any:
            return _op_var(data, key, default)  # a split's own bucketing: not a "read"

        operators = {f"fractional#{node}": split(node) for node in range(len(fractions))}
        return {**operators, "var": read, "var#bucket": bucket_value}


def _expand(node: Any, evaluators: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_expand(item, evaluators) for item in node]
    if not isinstance(node, Mapping):
        return node
    if set(node) == {"$ref"} and node["$ref"] in evaluators:
        return _expand(evaluators[node["$ref"]], evaluators)
    return {key: _expand(value, evaluators) for key, value in node.items()}


def _instrument(node: Any, fractions: list[Any]) -> Any:
    """Rename each `fractional` node to its own operator, so a recording tells which
    node (and so which raw bucketing expression) an evaluation reached."""
    if isinstance(node, list):
        return [_instrument(item, fractions) for item in node]
    if not isinstance(node, Mapping):
        return node
    if set(node) == {"fractional"}:
        args = node["fractional"]
        fractions.append(args)
        name = f"fractional#{len(fractions) - 1}"
        if isinstance(args, list) and args and _is_var(args[0]):
            # A bucketing value that is a plain `var` (e.g. of targetingKey) is the
            # split's own business: it must not count as a rule reading the key.
            return {name: [{"var#bucket": args[0]["var"]}, *_instrument(args[1:], fractions)]}
        return {name: _instrument(args, fractions)}
    return {key: _instrument(value, fractions) for key, value in node.items()}


def _is_var(node: Any) -> bool:
    return isinstance(node, Mapping) and set(node) == {"var"}


def _weights(args: tuple[Any, ...]) -> tuple[tuple[str, int], ...]:
    """One weight per variant as flagd-core's fractional reads the buckets: a variant in
    several buckets gets them all (their sum), a negative weight counts as 0."""
    weights: dict[str, int] = {}
    for bucket in args:
        if isinstance(bucket, list) and bucket:
            name = str(bucket[0])
            weight = int(bucket[1]) if len(bucket) > 1 else 1
            weights[name] = weights.get(name, 0) + max(0, weight)
    return tuple(weights.items())


def _variant_name(result: Any) -> str | None:
    """A targeting result as flagd-core reads it: a variant key, or None (no variant)."""
    if result is None or result == "":
        return None
    if isinstance(result, bool):
        return "true" if result else "false"
    return str(result)


ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two documents at the JSON pointer `path`: `old` and `new`
    are the values (None on the side where `kind` says there is nothing)."""

    path: str
    old: Any
    new: Any
    kind: ChangeKind = "changed"

    def to_dict(self) -> dict[str, Any]:
        """`{"path", "old", "new"}` (null on a side that has nothing at `path`)."""
        return {"path": self.path, "old": self.old, "new": self.new}


_ABSENT: Final = object()
# Aligning lists of n and m items that differ costs up to n x m steps of ~80 ns (difflib's
# SequenceMatcher is quadratic when items repeat), so one comparison may spend this many
# (~0.2 s); a list past what is left is reported as one change.
_ALIGNMENT_STEPS: Final = 2_000_000


def document_changes(old: Any, new: Any) -> list[Change]:
    """Every difference between `old` and `new`, as small as it can be located: mapping
    keys compared one by one; lists of the same length item by item; other lists aligned
    (an inserted rule is one change at its new index, a removed one at its old index), or,
    when the part that differs is too long to align in time, one change of the whole list;
    anything else by value."""
    return list(_Comparison().changes("", old, new))


class _Comparison:
    """One `document_changes` call: what is left of its alignment budget."""

    def __init__(self) -> None:
        self._steps_left = _ALIGNMENT_STEPS

    def changes(self, path: str, old: Any, new: Any) -> Iterator[Change]:
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            for key in [*old, *(key for key in new if key not in old)]:
                yield from self.changes(
                    join(path, key), old.get(key, _ABSENT), new.get(key, _ABSENT)
                )
        elif isinstance(old, list) and isinstance(new, list):
            yield from self._list_changes(path, old, new)
        elif old is _ABSENT:
            yield Change(path or "/", None, new, "added")
        elif new is _ABSENT:
            yield Change(path or "/", old, None, "removed")
        elif not _same(old, new):
            yield Change(path or "/", old, new)

    def _list_changes(self, path: str, old: list[Any], new: list[Any]) -> Iterator[Change]:
        if len(old) == len(new):
            for index, (before, after) in enumerate(zip(old, new, strict=True)):
                yield from self.changes(join(path, index), before, after)
            return
        before, after = [_canonical(item) for item in old], [_canonical(item) for item in new]
        # The same items at both ends are no change (an append, an insertion or a removal
        # of one block costs nothing to align); only the part between is aligned.
        start = 0
        while start < min(len(old), len(new)) and before[start] == after[start]:
            start += 1
        end = 0
        while end < min(len(old), len(new)) - start and before[-1 - end] == after[-1 - end]:
            end += 1
        before, after = before[start : len(old) - end], after[start : len(new) - end]
        cost = len(before) * len(after)
        if cost > self._steps_left:
            yield Change(path or "/", old, new)
            return
        self._steps_left -= cost
        matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
        for tag, *span in matcher.get_opcodes():
            if tag == "equal":
                continue
            old_start, old_end, new_start, new_end = (index + start for index in span)
            pairs = min(old_end - old_start, new_end - new_start) if tag == "replace" else 0
            for offset in range(pairs):
                yield from self.changes(
                    join(path, new_start + offset), old[old_start + offset], new[new_start + offset]
                )
            for index in range(old_start + pairs, old_end):
                yield Change(join(path, index), old[index], None, "removed")
            for index in range(new_start + pairs, new_end):
                yield Change(join(path, index), None, new[index], "added")


def _same(old: Any, new: Any) -> bool:
    # 1 == 1.0 == True in Python, but not in a flag document (a float weight turns a
    # split off; a boolean variant is not a number).
    return type(old) is type(new) and old == new


def _canonical(value: Any) -> tuple[type, Any]:
    """A hashable key equal for equal items, type-strict as `_same` (a scalar keyed by its
    type and itself: 5x faster than JSON text, which lists of 200 000 strings notice)."""
    if isinstance(value, str | int | float | None):
        return type(value), value
    return object, json.dumps(value, sort_keys=True, default=str)
