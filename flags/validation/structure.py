"""The document's structure: top-level keys, flags, states, variants, default variants,
metadata and the `$evaluators` container (their rules are targeting, in targeting.py).

Severities follow what flagd-core 2.x does: what it refuses to load or fails to serve is an
error; what it ignores or serves as written (though the flagd schema rejects it) is a
warning. tests/test_validation.py evaluates each case to show it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from flags.validation._text import join, show
from flags.validation.problem import Problem
from flags.validation.scope import Scope

__all__ = ["document_problems", "variant_kind"]

_TOP_KEYS = ("$schema", "$evaluators", "metadata", "flags")
_FLAG_KEYS = ("state", "variants", "defaultVariant", "targeting", "metadata")
_DAEMON_FLAG_KEYS = ("source", "selector")  # the flagd daemon's; flagd-core drops them
_STATES = ("ENABLED", "DISABLED")
_STRING_ONLY_METADATA = ("flagSetId", "version")  # typed as strings by the flagd schema
# flagd-core pastes evaluators in with re.sub(), which rewrites or rejects these escapes.
_UNSAFE_ESCAPE = re.compile(r'\\[^"]')


def document_problems(document: object, scope: Scope) -> Iterator[Problem]:
    """Every structural problem of a parsed document (its rules excepted)."""
    if not isinstance(document, dict):
        kind = type(document).__name__
        message = f"a flag document must be a mapping with a 'flags' key; got {show(document)}"
        yield Problem("", f"{message} ({kind})")
        return
    for key in document:
        if key not in _TOP_KEYS:
            hint = scope.suggest(key, _TOP_KEYS)
            yield Problem(
                join("", key),
                f"unknown top-level key {show(key)}{hint}, ignored by flagd; "
                f"known: {', '.join(_TOP_KEYS)}",
                "warning",
            )
    if "$evaluators" in document:
        yield from _evaluators_problems(document["$evaluators"])
    if "metadata" in document:
        yield from _flag_set_metadata_problems(document["metadata"])
    if "flags" not in document:
        yield Problem("", "missing required key 'flags' (a mapping of flag key -> flag)")
    else:
        yield from _flags_problems(document["flags"], scope)


def _flags_problems(flags: object, scope: Scope) -> Iterator[Problem]:
    if not isinstance(flags, dict):
        hint = " (the array form is for the flagd daemon only)" if isinstance(flags, list) else ""
        message = f"flags must be a mapping of flag key -> flag; got {show(flags)}{hint}"
        yield Problem("/flags", message)
        return
    for key, flag in flags.items():
        path = join("/flags", key)
        if key == "":
            message = "an empty flag key is rejected by the flagd schema; give the flag a name"
            yield Problem(path, message, "warning")
        yield from _flag_problems(path, flag, scope)


def _flag_problems(path: str, flag: object, scope: Scope) -> Iterator[Problem]:
    if not isinstance(flag, dict):
        message = f"a flag must be a mapping with 'state' and 'variants'; got {show(flag)}"
        yield Problem(path, message)
        return
    for key in flag:
        if key in _DAEMON_FLAG_KEYS:
            message = f"{key!r} is a flagd daemon field; in-process evaluation ignores it"
            yield Problem(join(path, key), message, "warning")
        elif key not in _FLAG_KEYS:
            hint = scope.suggest(key, _FLAG_KEYS)
            yield Problem(
                join(path, key),
                f"unknown flag key {show(key)}{hint}: flagd-core refuses a document with it; "
                f"allowed: {', '.join(_FLAG_KEYS)}",
            )
    yield from _state_problems(path, flag)
    yield from _variants_problems(path, flag)
    yield from _default_variant_problems(path, flag)
    if "metadata" in flag:
        yield from _flag_metadata_problems(join(path, "metadata"), flag["metadata"])


def _state_problems(path: str, flag: Mapping[Any, Any]) -> Iterator[Problem]:
    if "state" not in flag:
        yield Problem(path, "missing required key 'state' ('ENABLED' or 'DISABLED')")
    elif flag["state"] not in _STATES:
        message = f"state must be 'ENABLED' or 'DISABLED'; got {show(flag['state'])}"
        yield Problem(join(path, "state"), message)


def variant_kind(value: object) -> str | None:
    """The flag type a variant value makes (None: no flag can serve it)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict | list) else None


def _variants_problems(path: str, flag: Mapping[Any, Any]) -> Iterator[Problem]:
    if "variants" not in flag:
        yield Problem(path, "missing required key 'variants' (a mapping of name -> value)")
        return
    variants, path = flag["variants"], join(path, "variants")
    if not isinstance(variants, dict) or not variants:
        message = f"variants must be a non-empty mapping of name -> value; got {show(variants)}"
        yield Problem(path, message)
        return
    first_of_kind: dict[str, Any] = {}  # value kind -> the first variant name of that kind
    for name, value in variants.items():
        kind = variant_kind(value)
        if name == "":
            yield Problem(
                join(path, name),
                "a variant named '' can never be served (flagd-core reads '' "
                "as no variant); give it a name",
            )
        if kind is None:
            allowed = "a string, number, boolean or object"
            yield Problem(join(path, name), f"a variant value must be {allowed}; got {show(value)}")
            continue
        if isinstance(value, list):
            yield Problem(
                join(path, name),
                f"a list value is rejected by the flagd schema (object flags hold mappings); "
                f"flagd-core serves it to object evaluations; got {show(value)}",
                "warning",
            )
        first_of_kind.setdefault(kind, name)
    if len(first_of_kind) > 1:
        mixed = ", ".join(
            f"{kind} ({show(name)}: {show(variants[name])})" for kind, name in first_of_kind.items()
        )
        yield Problem(
            path,
            f"variants mix value types: {mixed}; all values must be of one type (strings, "
            "numbers, booleans or objects), or evaluations of the other type fail",
        )


def _default_variant_problems(path: str, flag: Mapping[Any, Any]) -> Iterator[Problem]:
    default, variants = flag.get("defaultVariant"), flag.get("variants")
    path = join(path, "defaultVariant")
    names = variants if isinstance(variants, dict) else None
    if default is None:
        return
    if default == "":
        message = "defaultVariant '' means null to flagd-core (the caller's default); write null"
        yield Problem(path, message, "warning")
    elif isinstance(default, bool):
        name = str(default).lower()
        if names is not None and name in names:
            message = f"defaultVariant {default!r} is not a string (the flagd schema wants one)"
            yield Problem(path, f"{message}; flagd-core reads it as {name!r}: quote it", "warning")
        else:
            yield Problem(path, _not_a_variant(repr(default), names, f" (quote it: '{name}')"))
    elif not isinstance(default, str):
        message = f"defaultVariant must be a variant name or null; got {show(default)}"
        yield Problem(path, message)
    elif names is not None and default not in names:
        yield Problem(path, _not_a_variant(show(default), names, ""))


def _not_a_variant(shown: str, names: Mapping[Any, Any] | None, hint: str) -> str:
    known = "" if names is None else f" {show(list(names))}"
    return (
        f"defaultVariant {shown} is not one of the variants{known}{hint}; use null to serve "
        "the caller's default"
    )


def _flag_set_metadata_problems(metadata: object) -> Iterator[Problem]:
    if not isinstance(metadata, dict):
        yield Problem("/metadata", _metadata_shape(metadata))
        return
    yield from _metadata_entry_problems("/metadata", metadata)
    for key in _STRING_ONLY_METADATA:
        value = metadata.get(key)
        if value is not None and not isinstance(value, str) and _is_metadata_value(value):
            yield Problem(
                join("/metadata", key),
                f"flag-set metadata {key!r} should be a string (the flagd schema says so); got "
                f"{show(value)}: quote it in YAML",
                "warning",
            )


def _flag_metadata_problems(path: str, metadata: object) -> Iterator[Problem]:
    if not isinstance(metadata, dict):
        if metadata:
            yield Problem(path, _metadata_shape(metadata))
        else:  # flagd-core skips a falsy one: no metadata, as written
            message = f"{show(metadata)} counts as no metadata; write {{}} or leave it out"
            yield Problem(path, message, "warning")
        return
    yield from _metadata_entry_problems(path, metadata)


def _metadata_shape(metadata: object) -> str:
    return (
        f"metadata must be a mapping of string -> string/number/boolean; got {show(metadata)} "
        "(flagd-core refuses the document)"
    )


def _is_metadata_value(value: object) -> bool:
    return isinstance(value, str | int | float)  # bool is an int


def _metadata_entry_problems(path: str, metadata: Mapping[Any, Any]) -> Iterator[Problem]:
    for key, value in metadata.items():
        key_path = join(path, key)
        if key == "":
            yield Problem(key_path, "metadata keys must be non-empty strings; got ''")
        if not _is_metadata_value(value):
            yield Problem(
                key_path,
                f"metadata values must be strings, numbers or booleans; got {show(value)} "
                "(flagd-core refuses the document)",
            )


def _evaluators_problems(evaluators: object) -> Iterator[Problem]:
    if not isinstance(evaluators, dict):
        if evaluators:
            message = f"$evaluators must be a mapping of name -> rule; got {show(evaluators)}"
            yield Problem("/$evaluators", f"{message} (flagd-core fails to load the document)")
        else:
            message = f"{show(evaluators)} counts as no evaluators; write {{}} or leave it out"
            yield Problem("/$evaluators", message, "warning")
        return
    for name, rule in evaluators.items():
        path = join("/$evaluators", name)
        yield from _evaluator_name_problems(path, name)
        if not isinstance(rule, dict):
            yield Problem(
                path,
                f"an evaluator that is not a rule object is rejected by the flagd schema; "
                f"flagd-core pastes it in as the constant {show(rule)}",
                "warning",
            )
        yield from _substitution_problems(path, rule)


def _evaluator_name_problems(path: str, name: object) -> Iterator[Problem]:
    if name == "":
        message = "an empty evaluator name is rejected by the flagd schema; give it a name"
        yield Problem(path, message, "warning")
    elif isinstance(name, str) and json.dumps(name) != f'"{name}"':
        yield Problem(
            path,
            f"evaluator name {show(name)} cannot be matched by flagd-core's $ref substitution, so "
            "every $ref to it fails; use ASCII without quotes, backslashes or control characters",
        )


def _substitution_problems(path: str, rule: object) -> Iterator[Problem]:
    """What flagd-core 2.0.0's regex-based $ref substitution cannot paste in."""
    try:
        text = json.dumps(rule)
    except (TypeError, ValueError, RecursionError):
        return  # not JSON: the shape check reports it
    if found := _UNSAFE_ESCAPE.search(text):
        excerpt = text[max(0, found.start() - 30) : found.end() + 30]
        yield Problem(
            path,
            f"evaluator contains a backslash, control or non-ASCII character (near {excerpt!r}); "
            "flagd-core 2.0.0 pastes evaluators in with re.sub, which rejects or rewrites it",
        )
