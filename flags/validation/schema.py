"""The official flagd schema as a backstop: a document it rejects always gets a problem.

The hand-written checks know the mistakes that matter and say them clearly; the schema is
the official definition of a valid document, so running it guarantees that nothing it
rejects passes silently. Its findings are warnings (the schema lags behind the evaluator:
flagd itself only logs them), dropped where a hand-written problem already covers the spot.

One library runs it: fastjsonschema compiles the vendored schema once (~60 ms, on first
use) into Python code that checks flags.yaml in ~2 ms. jsonschema, which explains every
error, needs ~20 ms for flags.yaml and ~45 s for a 1 MiB document, so it only serves the
tests as the reference. Even fastjsonschema costs ~0.1 ms per rule node (every anyOf
branch raises an exception), so a document with more than `MAX_SCHEMA_NODES` rule nodes
gets a warning instead: validation stays within its time bound at the 1 MiB cap.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from typing import Any

from flags.validation._text import join, show
from flags.validation.limits import MAX_SCHEMA_NODES
from flags.validation.problem import Problem

__all__ = ["schema_problems"]

_SCHEMA_FILES = ("flags.json", "targeting.json")
_ROOT_ID = "https://flagd.dev/schema/v0/flags.json"


def schema_problems(document: object, found: Sequence[Problem]) -> Iterator[Problem]:
    """A warning when the official schema rejects `document` where `found` says nothing."""
    nodes = _rule_nodes(document)
    if nodes > MAX_SCHEMA_NODES:
        yield Problem(
            "",
            f"more than {MAX_SCHEMA_NODES:,} rule nodes: too large to check against the official "
            "flagd schema in time; only the built-in checks ran",
            "warning",
        )
        return
    from fastjsonschema import JsonSchemaValueException

    try:
        _validator()(document)
    except JsonSchemaValueException as error:
        parts = _resolve(document, error.name or "data")
        path = "".join(join("", part) for part in parts)
        if not any(_overlaps(path, problem.path) for problem in found):
            yield Problem(path, f"rejected by the flagd schema: {_message(error)}", "warning")
    except Exception as error:  # e.g. RecursionError: report it, never fail validation
        message = f"the flagd schema check failed ({type(error).__name__}); not checked"
        yield Problem("", message, "warning")


@functools.cache
def _validator() -> Callable[[Any], object]:
    import fastjsonschema

    folder = resources.files("flags") / "schema"
    schemas = {
        schema["$id"]: schema
        for schema in (json.loads((folder / name).read_text("utf-8")) for name in _SCHEMA_FILES)
    }
    # Every $ref resolves to the vendored copies: nothing is fetched over the network.
    return fastjsonschema.compile(schemas[_ROOT_ID], handlers={"https": schemas.__getitem__})


def schema_accepts(document: object) -> bool:
    """Whether the official schema accepts `document` (for the tests' oracle comparison)."""
    from fastjsonschema import JsonSchemaException

    try:
        _validator()(document)
    except (JsonSchemaException, RecursionError):
        return False
    return True


def _rule_nodes(document: object) -> int:
    """What the schema check costs, in rule nodes: flags, their variants and metadata,
    and every rule object and operand in targeting and $evaluators (stops past the limit)."""
    if not isinstance(document, dict):
        return 0
    stack: list[object] = []
    count = 0
    flags = document.get("flags")
    if isinstance(flags, dict):
        for flag in flags.values():
            count += 1
            if isinstance(flag, dict):
                count += sum(
                    len(flag[key]) for key in ("variants", "metadata") if _sized(flag, key)
                )
                stack.append(flag.get("targeting"))
    evaluators = document.get("$evaluators")
    if isinstance(evaluators, dict):
        stack.extend(evaluators.values())
    while stack and count <= MAX_SCHEMA_NODES:
        node = stack.pop()
        if isinstance(node, dict):
            count += 1
            for operands in node.values():
                if isinstance(operands, list):
                    count += len(operands)
                    stack.extend(operands)
                else:
                    stack.append(operands)
        elif isinstance(node, list):
            stack.extend(node)
    return count


def _sized(flag: dict[Any, Any], key: str) -> bool:
    return isinstance(flag.get(key), dict)


def _resolve(document: object, name: str) -> list[object]:
    """The keys and indices fastjsonschema's dotted name ("data.flags.my.flag[0]") means:
    keys may hold dots themselves, so each step takes the longest key that fits."""
    rest, node = name.removeprefix("data"), document
    parts: list[object] = []
    while rest:
        if rest.startswith("[") and isinstance(node, list) and "]" in rest:
            index, _, rest = rest[1:].partition("]")
            if not index.isdigit() or int(index) >= len(node):
                break
            node = node[int(index)]
            parts.append(int(index))
        elif rest.startswith(".") and isinstance(node, dict):
            fits = [k for k in node if isinstance(k, str) and _names(rest[1:], k)]
            if not fits:
                break
            key = max(fits, key=len)
            node, rest = node[key], rest[1 + len(key) :]
            parts.append(key)
        else:
            break
    return parts


def _names(rest: str, key: str) -> bool:
    return rest == key or rest.startswith((f"{key}.", f"{key}["))


def _overlaps(schema_path: str, path: str) -> bool:
    """A hand-written problem at the schema error's spot, under it, or above it within the
    same flag field or evaluator covers it (the schema names the flag, we the rule)."""
    if path == schema_path or path.startswith(f"{schema_path}/"):
        return True
    parts = path.split("/")[1:]
    in_field = (parts[:1] == ["flags"] and len(parts) >= 3) or (
        parts[:1] == ["$evaluators"] and len(parts) >= 2
    )
    return in_field and schema_path.startswith(f"{path}/")


def _message(error: Any) -> str:
    """fastjsonschema's message without its own dotted name, plus what the schema calls the
    value it expected."""
    text = str(error.message).removeprefix(str(error.name)).strip()
    definition = error.definition if isinstance(error.definition, dict) else {}
    alternatives = definition.get("anyOf") or definition.get("oneOf") or []
    branches = [
        branch.get("title") or str(branch.get("$ref", "")).rpartition("/")[2]
        for branch in alternatives
        if isinstance(branch, dict)
    ]
    if all(branches) and branches:
        text = f"{text} (it matches none of: {', '.join(branches)})"
    elif about := definition.get("description") or definition.get("title"):
        text = f"{text} ({about})"
    if error.rule in ("enum", "type", "pattern", "const"):
        text = f"{text}; got {show(error.value)}"
    return text if len(text) <= 300 else f"{text[:297]}..."
