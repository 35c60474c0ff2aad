"""The strict YAML reading of flag files (imported on first use; see flags.loading).

A SafeLoader without aliases (no alias bombs), timestamps (a `version: 2026-11-25`
stays a string, as in JSON) or duplicate keys, that reads `1e3` as a number as YAML 1.2
does.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node

__all__ = ["parse_yaml"]


def parse_yaml(data: bytes | str) -> object:
    """The document `data` holds; ValueError saying where its syntax is wrong."""
    try:
        return yaml.load(data, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        if exc.problem_mark is None:
            raise ValueError(str(exc)) from None
        mark = exc.problem_mark
        context = f" ({exc.context})" if exc.context else ""
        raise ValueError(
            f"at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}{context}"
        ) from None
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


class _StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader without aliases, timestamps or duplicate keys (see module docstring)."""

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None,
                None,
                "YAML aliases (*name) are not allowed in flag files; "
                "share rules with $evaluators and {$ref: name} instead",
                mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key if isinstance(key, str) else id(key_node))
        return super().construct_mapping(node, deep=deep)


_StrictSafeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# YAML 1.2 (and so the flagd daemon, and JSON) reads 1e3 as a number; PyYAML's YAML 1.1
# rules want a dot. Without this, `1e999` would be the string "1e999" here and infinity
# there, and would slip past the refusal of non-finite numbers.
_StrictSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)
