"""A seeded generator of adversarial flag documents: rules built to make one evaluation as
slow as possible (iteration over long arrays, nested iterations, growing reduce
accumulators, big-number arithmetic, long strings, $ref chains), for the fault suite."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

from flags import MAX_DOCUMENT_BYTES

# The evaluation context the documents are evaluated with: at the sizes the cost estimate
# assumes for context values (limits.CONTEXT_ITEMS items, CONTEXT_CHARS characters).
CONTEXT_ATTRIBUTES: dict[str, Any] = {
    "s": "x" * 4000,
    "xs": [f"item-{i:03d}" for i in range(63)],
    "ns": list(range(2**50, 2**50 + 63)),
    "n": 2**62,
    "tier": "gold",
    "version": "2.1.0",
}
_VARS = tuple(CONTEXT_ATTRIBUTES)
_LENGTHS = (3, 30, 300, 3000, 20_000)
_LENGTH_WEIGHTS = (4, 4, 3, 2, 1)
# One list object per kind and length, shared by every document (building 20 000-item
# lists for each would be most of the generator's time; the documents only read them).
_ARRAYS = {
    (kind, length): make(length)
    for length in _LENGTHS
    for kind, make in (
        ("numbers", lambda n: list(range(n))),
        ("strings", lambda n: [f"s{i}" for i in range(n)]),
        ("big", lambda n: [2**62] * n),
    )
}
_ITERATIONS = ("map", "filter", "all", "some", "none")
_GROWTH = ("cat", "merge", "*", "+")
Rule = Any


class Generator:
    """Random rules from a grammar biased towards the expensive constructs."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def document(self) -> dict[str, Any]:
        """One document: a flag whose targeting is an adversarial rule, maybe with $refs."""
        rng = self.rng
        evaluators: dict[str, Any] = {}
        if rng.random() < 0.25:
            evaluators = self._chain(rng.randint(2, 40))
        targeting: Rule = {"if": [self.rule(4), "b", "a"]}
        if evaluators and rng.random() < 0.7:
            targeting = {"if": [{"or": [{"$ref": "e0"}, self.rule(2)]}, "b", "a"]}
        doc: dict[str, Any] = {
            "flags": {
                "f": {
                    "state": "ENABLED",
                    "variants": {"a": "a", "b": "b"},
                    "defaultVariant": "a",
                    "targeting": targeting,
                }
            }
        }
        if evaluators:
            doc["$evaluators"] = evaluators
        if rng.random() < 0.05:
            doc["metadata"] = {f"k{i}": "v" * 20 for i in range(rng.choice((100, 10_000, 30_000)))}
        return doc if len(json.dumps(doc)) <= MAX_DOCUMENT_BYTES else self.document()

    def _chain(self, length: int) -> dict[str, Any]:
        """Evaluators e0..eN, each using the next `fan` times (fan 2: the doubling chain)."""
        fan = self.rng.choice((1, 2, 2, 3))
        chain: dict[str, Any] = {}
        for index in range(length):
            uses = [{"$ref": f"e{index + 1}"}] * fan if index + 1 < length else [self.rule(2)]
            chain[f"e{index}"] = {self.rng.choice(("or", "and", "if")): [*uses, self.leaf()]}
        return chain

    def rule(self, depth: int) -> Rule:
        rng = self.rng
        if depth <= 0 or rng.random() < 0.15:
            return self.leaf()
        makers: tuple[Callable[[int], Rule], ...] = (
            self._iteration,
            self._iteration,
            self._reduce,
            self._reduce,
            self._growth,
            self._membership,
            self._comparison,
            self._flagd_operator,
            self._missing,
        )
        return rng.choice(makers)(depth - 1)

    def leaf(self) -> Rule:
        rng = self.rng
        choice = rng.random()
        if choice < 0.35:
            return {"var": rng.choice(_VARS)}
        if choice < 0.55:
            return self.array()
        if choice < 0.7:
            return "y" * rng.choice((1, 10, 1000, 20_000))
        if choice < 0.85:
            return rng.choice((0, 1, 7, 2**31, 2**62))
        return rng.choice((True, None, {"var": ["absent", 3]}))

    def array(self) -> Rule:
        rng = self.rng
        if rng.random() < 0.2:
            return {"var": rng.choice(("xs", "ns"))}
        (length,) = rng.choices(_LENGTHS, _LENGTH_WEIGHTS)
        return _ARRAYS[rng.choice(("numbers", "strings", "big")), length]

    def _iteration(self, depth: int) -> Rule:
        return {self.rng.choice(_ITERATIONS): [self.array(), self.rule(depth)]}

    def _reduce(self, depth: int) -> Rule:
        rng = self.rng
        growth = rng.choice(_GROWTH)
        accumulator = {"var": "accumulator"}
        shape = rng.random()
        if shape < 0.4:  # doubling: the accumulator with itself
            body: Rule = {growth: [accumulator, accumulator]}
        elif shape < 0.7:  # linear growth
            body = {growth: [accumulator, {"var": "current"}]}
        else:
            body = {growth: [accumulator, self.rule(depth)]}
        initial = rng.choice(("x", 2, [1], 0, ""))
        return {"reduce": [self.array(), body, initial]}

    def _growth(self, depth: int) -> Rule:
        count = self.rng.choice((2, 5, 20))
        return {self.rng.choice(_GROWTH): [self.rule(depth) for _ in range(count)]}

    def _membership(self, depth: int) -> Rule:
        haystack = self.rng.choice((self.array(), {"var": "s"}, "z" * 50_000, self.rule(depth)))
        return {"in": [self.rule(depth), haystack]}

    def _comparison(self, depth: int) -> Rule:
        operator = self.rng.choice(("==", "<", "!=", ">=", "==="))
        return {operator: [self.rule(depth), self.rule(depth)]}

    def _flagd_operator(self, depth: int) -> Rule:
        rng = self.rng
        choice = rng.random()
        if choice < 0.4:
            return {"sem_ver": [{"var": "version"}, rng.choice((">=", "^", "~")), "1.2.3"]}
        if choice < 0.7:
            return {"starts_with": [{"var": "s"}, self.rule(depth)]}
        bucketing = {"cat": [{"var": "s"}, self.rule(depth)]}
        return {"fractional": [bucketing, ["a", 50], ["b", 50]]}

    def _missing(self, depth: int) -> Rule:
        keys = [f"key{i}" for i in range(self.rng.choice((3, 300, 3000)))]
        return {self.rng.choice(("missing", "missing_some")): [1, keys] if depth % 2 else keys}


def documents(seed: int, count: int) -> Iterator[dict[str, Any]]:
    """`count` adversarial documents, the same ones for the same seed."""
    generator = Generator(seed)
    for _ in range(count):
        yield generator.document()
