"""Reading what a flag document declares, for previews and summaries: what a flag's
rules give one evaluation context (a split, one variant, the default), and what changed
between two documents. Generic: any flagd document, any flag, any attributes."""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from json_logic import jsonLogic
from openfeature.contrib.tools.flagd.core.targeting.custom_ops import fractional
from openfeature.contrib.tools.flagd.core.targeting.targeting import OPERATORS

__all__ = ["Change", "ChangeKind", "Outcome", "OutcomeKind", "document_changes", "flag_outcome"]

OutcomeKind = Literal["disabled", "split", "variant", "default", "varies"]

# Targeting keys a rule is tried with: enough to tell "the same for every key" from a
# rule that tests the key itself (e.g. `starts_with` on it), cheap (~20 µs per key).
SAMPLE_KEYS: Final = tuple(str(key) for key in (*range(1, 41), 1000, 123456, 10**12))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a flag gives every evaluation of one context, whatever its targeting key.

    - `disabled`: the flag is DISABLED (callers get their default);
    - `split`: a `fractional` rule; `weights` in list order, sticky per targeting key
      (`bucket_by` None) or per the value of the `bucket_by` expression;
    - `variant`: the same `variant` for every key;
    - `default`: no rule gives a variant, so `defaultVariant` applies (`variant`; None:
      callers get their default);
    - `varies`: the variant depends on the targeting key some other way.
    """

    kind: OutcomeKind
    variant: str | None = None
    weights: tuple[tuple[str, int], ...] = ()
    bucket_by: Any = None

    def shares(self) -> dict[str, float]:
        """A split's variants with their share of keys (0..1), in list order."""
        total = sum(weight for _, weight in self.weights)
        return {name: weight / total if total else 0.0 for name, weight in self.weights}


def flag_outcome(
    document: Mapping[str, Any],
    flag_key: str,
    attributes: Mapping[str, Any],
    *,
    sample_keys: Sequence[str] = SAMPLE_KEYS,
) -> Outcome | None:
    """What `flag_key` gives a context with `attributes`, or None without such a flag.

    The targeting is evaluated the way flagd-core does (its operators, `$ref`s
    expanded, `$flagd` properties set) once per sample key, with every `fractional`
    instrumented, so whichever rule applies to the context reports its own weights.
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
    splits: list[tuple[int, tuple[Any, ...]]] = []
    fractions: list[Any] = []
    rule = _instrument(_expand(targeting, document.get("$evaluators") or {}), fractions)
    operators = {**OPERATORS, **_recorders(fractions, splits)}
    seen: set[tuple[str | None, tuple[int, tuple[Any, ...]] | None]] = set()
    now = int(time.time())
    for key in sample_keys:
        splits.clear()
        data = {**attributes, "targetingKey": key}
        data["$flagd"] = {"flagKey": flag_key, "timestamp": now}
        variant = _variant_name(jsonLogic(rule, data, operators))
        seen.add((variant, _freeze(splits[-1]) if splits else None))
    return _judge(seen, fractions, default)


def _judge(
    seen: set[tuple[str | None, tuple[int, tuple[Any, ...]] | None]],
    fractions: list[Any],
    default: str | None,
) -> Outcome:
    reached = {split for _, split in seen}
    split = next(iter(reached))
    if len(reached) == 1 and split is not None:
        node, args = split
        weights = _weights(args)
        if {variant for variant, _ in seen} <= {name for name, _ in weights}:
            raw = fractions[node]
            bucket_by = raw[0] if raw and not isinstance(raw[0], list) else None
            return Outcome("split", weights=weights, bucket_by=bucket_by)
    if len(seen) != 1 or reached != {None}:
        return Outcome("varies")
    ((variant, _),) = seen
    return Outcome("default", default) if variant is None else Outcome("variant", variant)


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
        fractions.append(node["fractional"])
        name = f"fractional#{len(fractions) - 1}"
        return {name: _instrument(node["fractional"], fractions)}
    return {key: _instrument(value, fractions) for key, value in node.items()}


def _recorders(fractions: list[Any], splits: list[tuple[int, tuple[Any, ...]]]) -> dict[str, Any]:
    def recorder(node: int) -> Any:
        def record(data: Any, *args: Any) -> Any:
            splits.append((node, args))
            return fractional(data, *args)

        return record

    return {f"fractional#{node}": recorder(node) for node in range(len(fractions))}


def _freeze(split: tuple[int, tuple[Any, ...]]) -> tuple[int, tuple[Any, ...]]:
    node, args = split
    return node, tuple(json.dumps(arg, sort_keys=True) for arg in args if isinstance(arg, list))


def _weights(frozen_args: tuple[Any, ...]) -> tuple[tuple[str, int], ...]:
    buckets = [json.loads(arg) for arg in frozen_args]
    return tuple(
        (str(bucket[0]), int(bucket[1]) if len(bucket) > 1 else 1) for bucket in buckets if bucket
    )


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


def document_changes(old: Any, new: Any) -> list[Change]:
    """Every difference between `old` and `new`, as small as it can be located: mapping
    keys compared one by one; list items aligned (an inserted rule is one change at its
    new index, a removed one at its old index); anything else by value."""
    return list(_changes("", old, new))


def _changes(path: str, old: Any, new: Any) -> Iterator[Change]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in [*old, *(key for key in new if key not in old)]:
            yield from _changes(
                f"{path}/{_escape(str(key))}", old.get(key, _ABSENT), new.get(key, _ABSENT)
            )
    elif isinstance(old, list) and isinstance(new, list):
        yield from _list_changes(path, old, new)
    elif old is _ABSENT:
        yield Change(path or "/", None, new, "added")
    elif new is _ABSENT:
        yield Change(path or "/", old, None, "removed")
    elif not _same(old, new):
        yield Change(path or "/", old, new)


def _list_changes(path: str, old: list[Any], new: list[Any]) -> Iterator[Change]:
    if len(old) == len(new):
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            yield from _changes(f"{path}/{index}", before, after)
        return
    matcher = difflib.SequenceMatcher(
        a=[_canonical(item) for item in old], b=[_canonical(item) for item in new], autojunk=False
    )
    for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        if tag == "equal":
            continue
        pairs = min(old_end - old_start, new_end - new_start) if tag == "replace" else 0
        for offset in range(pairs):
            yield from _changes(
                f"{path}/{new_start + offset}", old[old_start + offset], new[new_start + offset]
            )
        for index in range(old_start + pairs, old_end):
            yield Change(f"{path}/{index}", old[index], None, "removed")
        for index in range(new_start + pairs, new_end):
            yield Change(f"{path}/{index}", None, new[index], "added")


def _same(old: Any, new: Any) -> bool:
    # 1 == 1.0 == True in Python, but not in a flag document (a float weight turns a
    # split off; a boolean variant is not a number).
    return type(old) is type(new) and old == new


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
