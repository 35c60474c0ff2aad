"""Read, parse and validate a flagd-format flag document from bytes or a file.

Parsing is strict on purpose: a flag file is production configuration, so the size is
capped, YAML goes through a safe loader without aliases (no alias bombs) or timestamps
(a `version: 2026-11-25` stays a string, as in JSON), and duplicate keys are errors
rather than silently taking the last one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node

from flags.validation import Problem, validate_document

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "DocumentCheck",
    "DocumentError",
    "check_document",
    "document_format",
    "load_document",
    "parse_document",
    "read_document_bytes",
]

MAX_DOCUMENT_BYTES: Final = 1024 * 1024

DocumentFormat = Literal["json", "yaml"]
DocumentCheck = Callable[[Mapping[str, Any]], list[Problem]]
"""An extra, caller-specific check run after `validate_document` (e.g. domain values)."""


class DocumentError(ValueError):
    """A flag document that cannot be used; `problems` says every reason."""

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        if len(self.problems) == 1:
            super().__init__(f"{source}: {self.problems[0]}")
        else:
            lines = "".join(f"\n  {problem}" for problem in self.problems)
            super().__init__(f"{source}: {len(self.problems)} problems:{lines}")


def document_format(path: Path) -> DocumentFormat:
    """JSON or YAML by file extension (`.json`, `.yaml`, `.yml`)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise DocumentError(
        str(path), [Problem("", f"unsupported extension {suffix!r}; use .json, .yaml or .yml")]
    )


def read_document_bytes(path: Path) -> bytes:
    """The file's bytes, refusing files over `MAX_DOCUMENT_BYTES` before reading them."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise DocumentError(str(path), [Problem("", "file not found")]) from None
    except OSError as exc:
        raise DocumentError(str(path), [Problem("", f"cannot read: {exc.strerror}")]) from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentError(
            str(path), [Problem("", f"file is over the {MAX_DOCUMENT_BYTES}-byte limit")]
        )
    return data


def parse_document(
    data: bytes | str,
    fmt: DocumentFormat,
    *,
    source: str = "<document>",
    checks: Sequence[DocumentCheck] = (),
) -> dict[str, Any]:
    """Parse and validate a whole document; raise `DocumentError` listing every problem."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentError(source, [Problem("", f"over the {MAX_DOCUMENT_BYTES}-byte limit")])
    try:
        document = _parse_json(data) if fmt == "json" else _parse_yaml(data)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        raise DocumentError(source, [Problem("", _syntax_message(fmt, exc))]) from None
    return check_document(document, source=source, checks=checks)


def check_document(
    document: object, *, source: str = "<document>", checks: Sequence[DocumentCheck] = ()
) -> dict[str, Any]:
    """Validate a parsed document whole; raise `DocumentError` listing every problem."""
    problems = validate_document(document)
    if not problems and isinstance(document, Mapping):
        for check in checks:
            problems.extend(check(document))
    if problems or not isinstance(document, Mapping):
        raise DocumentError(source, problems or [Problem("", "not a mapping")])
    return dict(document)


def load_document(path: Path, *, checks: Sequence[DocumentCheck] = ()) -> dict[str, Any]:
    """Read, parse and validate the flag file at `path`."""
    return parse_document(
        read_document_bytes(path), document_format(path), source=str(path), checks=checks
    )


def _syntax_message(fmt: DocumentFormat, exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to parse"
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        context = f" ({exc.context})" if exc.context else ""
        return f"YAML syntax error at line {mark.line + 1}, column {mark.column + 1}: " + (
            f"{exc.problem}{context}"
        )
    return " ".join(f"{fmt.upper()} syntax error: {exc}".split())


def _parse_json(data: bytes | str) -> object:
    return json.loads(data, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


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


def _parse_yaml(data: bytes | str) -> object:
    return yaml.load(data, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
