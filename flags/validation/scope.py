"""`Scope`: the evaluators a rule may `$ref`, in the order flagd-core substitutes them, and
the validation's "did you mean" hints (one budget per document)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flags.validation._text import Suggestions

__all__ = ["Scope", "ref_name"]


@dataclass(frozen=True, slots=True)
class Scope:
    """The document's evaluators, the evaluator a rule belongs to (None: a flag), and the
    hints every check of this document shares."""

    evaluators: Mapping[str, object]
    owner: str | None = None
    _order: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    suggest: Suggestions = field(default_factory=Suggestions, compare=False, repr=False)

    @classmethod
    def of(cls, document: Mapping[Any, Any]) -> Scope:
        """The scope of the document's flags."""
        found = document.get("$evaluators")
        evaluators = (
            {name: rule for name, rule in found.items() if isinstance(name, str)}
            if isinstance(found, dict)
            else {}
        )
        return cls(evaluators, None, {name: index for index, name in enumerate(evaluators)})

    def inside(self, owner: str) -> Scope:
        """The scope of the rule of evaluator `owner`."""
        return Scope(self.evaluators, owner, self._order, self.suggest)

    def resolves(self, name: str) -> bool:
        """Whether `{"$ref": name}` here is substituted: flagd-core pastes evaluators in, in
        `$evaluators` order, so an evaluator sees only the ones defined after it."""
        if name not in self._order:
            return False
        return self.owner is None or self._order[name] > self._order[self.owner]


def ref_name(node: object) -> str | None:
    """The evaluator `node` refers to when it is exactly `{"$ref": "name"}` with a name that
    flagd-core's text substitution can match (JSON writes it unescaped), else None."""
    if not isinstance(node, dict) or len(node) != 1:
        return None
    name = node.get("$ref")
    if not isinstance(name, str) or json.dumps(name) != f'"{name}"':
        return None
    return name
