"""Validate a whole flagd flag-definition document before it replaces the live one.

flagd-core loads most broken documents without complaint and only fails (or silently serves the
default) at evaluation time, so every new document version is checked up front.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import reprlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import fastjsonschema
from json_logic.builtins import BUILTINS
from jsonschema import Draft7Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

__all__ = ["MAX_DEPTH", "Problem", "validate_document"]

MAX_DEPTH = 64
_MAX_WEIGHT_SUM = 2**31 - 1  # flagd-core's fractional returns no variant above MaxInt32
_TOP_KEYS = ("$schema", "$evaluators", "metadata", "flags")
_FLAG_KEYS = ("state", "variants", "defaultVariant", "targeting", "metadata")
_STATES = ("ENABLED", "DISABLED")
# json_logic.apply() evaluates these forms itself, so they are not in BUILTINS.
_SPECIAL_FORMS = ("if", "?:", "and", "or", "filter", "reduce", "map", "all", "some", "none")
_FLAGD_OPERATORS = ("fractional", "starts_with", "ends_with", "sem_ver")
# json_logic implements these, but flagd's schema does not allow them.
_NOT_IN_FLAGD = {"log": "it prints every evaluation to stdout", "?:": "use 'if' instead"}
_KNOWN_OPERATORS = frozenset([*BUILTINS, *_SPECIAL_FORMS, *_FLAGD_OPERATORS])
_JSON_SCALARS = (str, int, float, bool, type(None))
_STRING_ONLY_METADATA = ("flagSetId", "version")  # typed as strings by the flagd schema
_COMBINATORS = ("anyOf", "oneOf")
_MISFITS = ("type", "additionalProperties")  # an anyOf/oneOf branch meant for another shape
_SCHEMA_FILES = ("flags.json", "targeting.json")
_LIMITS = ("minItems", "maxItems", "minLength", "minProperties", "minimum")  # not in the messages
# flagd-core pastes evaluators in with re.sub(), which rewrites or rejects these escapes.
_UNSAFE_ESCAPE = re.compile(r'\\[^"]')
_BARE_REF = (
    "a {what} that is only a $ref is rejected by the flagd schema; wrap it in a rule, e.g. "
    '{{"if": [{{"$ref": "x"}}, ...]}}, or {{"or": [{{"$ref": "x"}}]}} to return what the '
    "evaluator returns; got {value}"
)

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist = 3, 4, 4
_REPR.maxstring, _REPR.maxother = 60, 60


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a flag document."""

    path: str  # JSON pointer, e.g. "/flags/llm-batching-mode/defaultVariant"; "" for the root
    message: str  # what is wrong, the offending value and what is allowed

    def __str__(self) -> str:
        return f"{self.path or '/'}: {self.message}"


@dataclass(frozen=True, slots=True)
class _Scope:
    """The evaluators a rule may $ref, and the evaluator the rule belongs to (None: a flag)."""

    evaluators: Mapping[str, object]
    owner: str | None = None

    def resolves(self, name: str) -> bool:
        """flagd-core substitutes $refs in $evaluators order: an evaluator sees only later ones."""
        names = list(self.evaluators)
        return self.owner is None or names.index(name) > names.index(self.owner)


def validate_document(document: object) -> list[Problem]:
    """Every problem in a parsed flag document, sorted by path; an empty list means valid."""
    try:
        problems = _all_problems(document)
    except Exception as exc:  # never raise: a validator bug must not break a flag reload
        message = f"validator failed ({type(exc).__name__}: {_show(str(exc))}); treat as invalid"
        problems = [Problem("", message)]
    return sorted(set(problems), key=lambda problem: (problem.path, problem.message))


def _all_problems(document: object) -> list[Problem]:
    shape = list(_shape_problems(document))
    own = shape + list(_document_problems(document))
    if shape:  # the schema cannot run safely on non-JSON data or runaway nesting
        return own
    try:
        return own + list(_schema_problems(document, own))
    except RecursionError:
        message = "nested too deeply for the flagd schema check; flatten the targeting rules"
        return [*own, Problem("", message)]


# --- helpers -------------------------------------------------------------------------------


def _show(value: object) -> str:
    """A short repr for messages: at most 80 characters, and cheap even for huge values."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a hostile __repr__ must not break validation
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else f"{text[:77]}..."


def _join(path: str, key: object) -> str:
    """`path` plus one JSON-pointer segment (escaped as RFC 6901 says)."""
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def _pointer(parts: Iterable[object]) -> str:
    return "".join(_join("", part) for part in parts)


def _suggest(word: object, choices: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _dumps(value: object) -> str | None:
    try:
        return json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return None


def _unknown_keys(
    path: str, mapping: Mapping[Any, Any], allowed: Sequence[str], what: str
) -> Iterator[Problem]:
    for key in mapping:
        if key not in allowed:
            message = f"unknown {what} {_show(key)}{_suggest(key, allowed)}"
            yield Problem(_join(path, key), f"{message}; allowed: {', '.join(allowed)}")


# --- JSON shape and depth --------------------------------------------------------------------


def _shape_problems(document: object) -> Iterator[Problem]:
    """Data JSON cannot carry (non-string keys, dates, ...) and nesting past MAX_DEPTH."""
    stack: list[tuple[object, str, int]] = [(document, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            yield Problem(path, f"nested deeper than {MAX_DEPTH} levels; not validated further")
            return
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    message = f"keys must be strings; got {_show(key)} ({type(key).__name__})"
                    yield Problem(_join(path, key), f"{message}; quote it in YAML")
                stack.append((value, _join(path, key), depth + 1))
        elif isinstance(node, list):
            stack.extend((item, _join(path, index), depth + 1) for index, item in enumerate(node))
        elif not isinstance(node, _JSON_SCALARS):
            yield Problem(
                path,
                f"{_show(node)} is a {type(node).__name__}, which JSON cannot hold; use a string, "
                "number, boolean, null, list or mapping (quote dates and times in YAML)",
            )


# --- document, flags, metadata ---------------------------------------------------------------


def _document_problems(document: object) -> Iterator[Problem]:
    if not isinstance(document, dict):
        kind = type(document).__name__
        message = f"a flag document must be a mapping with a 'flags' key; got {_show(document)}"
        yield Problem("", f"{message} ({kind})")
        return
    yield from _unknown_keys("", document, _TOP_KEYS, "top-level key")
    scope = _Scope(_defined_evaluators(document))
    if "$evaluators" in document:
        yield from _evaluators_problems(document["$evaluators"], scope)
    if "metadata" in document:
        yield from _metadata_problems("/metadata", document["metadata"], flag_set=True)
    if "flags" not in document:
        yield Problem("", "missing required key 'flags' (a mapping of flag key -> flag)")
    else:
        yield from _flags_problems(document["flags"], scope)


def _defined_evaluators(document: Mapping[Any, Any]) -> dict[str, object]:
    evaluators = document.get("$evaluators")
    if not isinstance(evaluators, dict):
        return {}
    return {name: rule for name, rule in evaluators.items() if isinstance(name, str)}


def _flags_problems(flags: object, scope: _Scope) -> Iterator[Problem]:
    if not isinstance(flags, dict):
        hint = " (the array form is for the flagd daemon only)" if isinstance(flags, list) else ""
        message = f"flags must be a mapping of flag key -> flag; got {_show(flags)}{hint}"
        yield Problem("/flags", message)
        return
    for key, flag in flags.items():
        path = _join("/flags", key)
        if key == "":
            yield Problem(path, "flag keys must be non-empty strings; got ''")
        yield from _flag_problems(path, flag, scope)


def _flag_problems(path: str, flag: object, scope: _Scope) -> Iterator[Problem]:
    if not isinstance(flag, dict):
        message = f"a flag must be a mapping with 'state' and 'variants'; got {_show(flag)}"
        yield Problem(path, message)
        return
    yield from _unknown_keys(path, flag, _FLAG_KEYS, "flag key")
    yield from _state_problems(path, flag)
    yield from _variants_problems(path, flag)
    yield from _default_variant_problems(path, flag)
    yield from _targeting_problems(path, flag, scope)
    if "metadata" in flag:
        yield from _metadata_problems(_join(path, "metadata"), flag["metadata"], flag_set=False)


def _state_problems(path: str, flag: Mapping[Any, Any]) -> Iterator[Problem]:
    if "state" not in flag:
        yield Problem(path, "missing required key 'state' ('ENABLED' or 'DISABLED')")
    elif flag["state"] not in _STATES:
        message = f"state must be 'ENABLED' or 'DISABLED'; got {_show(flag['state'])}"
        yield Problem(_join(path, "state"), message)


def _variant_kind(value: object) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, dict) else None


def _variants_problems(path: str, flag: Mapping[Any, Any]) -> Iterator[Problem]:
    if "variants" not in flag:
        yield Problem(path, "missing required key 'variants' (a mapping of name -> value)")
        return
    variants, path = flag["variants"], _join(path, "variants")
    if not isinstance(variants, dict) or not variants:
        message = f"variants must be a non-empty mapping of name -> value; got {_show(variants)}"
        yield Problem(path, message)
        return
    first_of_kind: dict[str, Any] = {}  # value kind -> the first variant name of that kind
    for name, value in variants.items():
        kind = _variant_kind(value)
        if name == "":
            yield Problem(_join(path, name), "variant names must be non-empty strings; got ''")
        if kind is None:
            allowed = "a string, number, boolean or object"
            yield Problem(
                _join(path, name), f"a variant value must be {allowed}; got {_show(value)}"
            )
        else:
            first_of_kind.setdefault(kind, name)
    if len(first_of_kind) > 1:
        mixed = ", ".join(
            f"{kind} ({_show(name)}: {_show(variants[name])})"
            for kind, name in first_of_kind.items()
        )
        message = f"variants mix value types: {mixed}; all values must be of one type"
        yield Problem(path, f"{message} (strings, numbers, booleans or objects)")


def _default_variant_problems(path: str, flag: Mapping[Any, Any]) -> Iterator[Problem]:
    default, variants = flag.get("defaultVariant"), flag.get("variants")
    path = _join(path, "defaultVariant")
    if default is None:
        return
    if not isinstance(default, str):
        hint = f" (quote it: '{str(default).lower()}')" if isinstance(default, bool) else ""
        message = f"defaultVariant must be a variant name or null; got {_show(default)}{hint}"
        yield Problem(path, message)
    elif isinstance(variants, dict) and default not in variants:
        names = _show(list(variants))
        message = f"defaultVariant {_show(default)} is not one of the variants {names}"
        yield Problem(path, f"{message}; use null to serve the caller's default")


def _metadata_problems(path: str, metadata: object, *, flag_set: bool) -> Iterator[Problem]:
    if not isinstance(metadata, dict):
        message = (
            f"metadata must be a mapping of string -> string/number/boolean; got {_show(metadata)}"
        )
        yield Problem(path, message)
        return
    for key, value in metadata.items():
        key_path = _join(path, key)
        if key == "":
            yield Problem(key_path, "metadata keys must be non-empty strings; got ''")
        if flag_set and key in _STRING_ONLY_METADATA and not isinstance(value, str):
            message = f"flag-set metadata {key!r} must be a string; got {_show(value)}"
            yield Problem(key_path, f"{message} (quote it in YAML)")
        elif not isinstance(value, str | int | float):  # bool is an int
            message = f"metadata values must be strings, numbers or booleans; got {_show(value)}"
            yield Problem(key_path, message)


# --- evaluators and targeting rules ----------------------------------------------------------


def _evaluators_problems(evaluators: object, scope: _Scope) -> Iterator[Problem]:
    if not isinstance(evaluators, dict):
        message = f"$evaluators must be a mapping of name -> rule; got {_show(evaluators)}"
        yield Problem("/$evaluators", message)
        return
    for name, rule in evaluators.items():
        path = _join("/$evaluators", name)
        if not isinstance(rule, dict):
            yield Problem(path, f"an evaluator must be a rule object; got {_show(rule)}")
            continue
        if _is_bare_ref(rule):
            yield Problem(path, _BARE_REF.format(what="$evaluators entry", value=_show(rule)))
        yield from _substitution_problems(path, name, rule)
        if rule and isinstance(name, str):
            yield from _rule_problems(rule, path, _Scope(scope.evaluators, name), 2)


def _substitution_problems(path: str, name: object, rule: object) -> Iterator[Problem]:
    """What flagd-core 2.0.0's regex-based $ref substitution cannot handle."""
    if name == "" or (isinstance(name, str) and json.dumps(name) != f'"{name}"'):
        message = (
            f"evaluator name {_show(name)} cannot be matched by flagd-core's $ref substitution"
        )
        yield Problem(path, f"{message}; use non-empty ASCII without quotes or backslashes")
    text = _dumps(rule) or ""
    if found := _UNSAFE_ESCAPE.search(text):
        excerpt = text[max(0, found.start() - 30) : found.end() + 30]
        yield Problem(
            path,
            f"evaluator contains a backslash, control or non-ASCII character (near {excerpt!r}); "
            "flagd-core 2.0.0 pastes evaluators in with re.sub, which rejects or rewrites it",
        )


def _is_bare_ref(rule: Mapping[Any, Any]) -> bool:
    return list(rule) == ["$ref"]


def _targeting_problems(path: str, flag: Mapping[Any, Any], scope: _Scope) -> Iterator[Problem]:
    if "targeting" not in flag:
        return
    targeting, path = flag["targeting"], _join(path, "targeting")
    if not isinstance(targeting, dict):
        message = (
            f"targeting must be a JsonLogic rule object ({{}} for none); got {_show(targeting)}"
        )
        yield Problem(path, message)
    elif _is_bare_ref(targeting):
        yield Problem(path, _BARE_REF.format(what="targeting", value=_show(targeting)))
    if isinstance(targeting, dict) and targeting:
        yield from _rule_problems(targeting, path, scope, 3)
    variants = flag.get("variants")
    if isinstance(variants, dict):
        yield from _returned_variant_problems(targeting, path, variants, scope)


def _rule_problems(node: object, path: str, scope: _Scope, depth: int) -> Iterator[Problem]:
    """Malformed rule objects, unknown operators, dangling $refs and bad fractional splits."""
    if depth > MAX_DEPTH:
        return
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _rule_problems(item, _join(path, index), scope, depth + 1)
    elif isinstance(node, dict):
        if len(node) != 1:
            message = f"a rule object must have exactly one operator key; got {_show(node)}"
            yield Problem(path, f"{message} (JsonLogic would treat it as a literal value)")
        for operator, args in node.items():
            yield from _operator_problems(operator, args, path, scope, depth)


def _operator_problems(
    operator: object, args: object, path: str, scope: _Scope, depth: int
) -> Iterator[Problem]:
    if operator == "$ref":
        yield from _ref_problems(args, path, scope)
        return
    if operator not in _KNOWN_OPERATORS:
        known = "JsonLogic operators or fractional, starts_with, ends_with, sem_ver"
        message = f"unknown operator {_show(operator)}{_suggest(operator, _KNOWN_OPERATORS)}"
        yield Problem(path, f"{message}; flagd-core fails evaluation on it (allowed: {known})")
    elif operator in _NOT_IN_FLAGD:
        message = f"operator {operator!r} is not part of flagd's targeting language"
        yield Problem(path, f"{message} (the flagd schema rejects it); {_NOT_IN_FLAGD[operator]}")
    args_path = _join(path, operator)
    if operator == "fractional":
        yield from _fractional_problems(args, args_path)
    yield from _rule_problems(args, args_path, scope, depth + 1)


def _ref_problems(name: object, path: str, scope: _Scope) -> Iterator[Problem]:
    if not isinstance(name, str):
        yield Problem(path, f"$ref must be an evaluator name (a string); got {_show(name)}")
    elif name not in scope.evaluators:
        hint = _suggest(name, scope.evaluators)
        message = f"$ref {_show(name)} names no evaluator in $evaluators{hint}"
        yield Problem(path, f"{message}; defined: {_show(list(scope.evaluators))}")
    elif not scope.resolves(name):
        yield Problem(
            path,
            f"evaluator {scope.owner!r} refers to {name!r}, which is defined at or before it; "
            "flagd-core 2.0.0 resolves $refs in $evaluators order, so this one stays unresolved "
            f"(define {name!r} after {scope.owner!r})",
        )


def _fractional_problems(args: object, path: str) -> Iterator[Problem]:
    """Bucket shapes, weights and the total, as flagd-core's fractional operator accepts them."""
    buckets = list(enumerate(args if isinstance(args, list) else [args]))
    if buckets and not isinstance(buckets[0][1], list):  # a bucketing expression comes first
        if not isinstance(buckets[0][1], dict):
            yield Problem(
                _join(path, 0) if isinstance(args, list) else path,
                "fractional's first argument must be a [variant, weight] bucket or a bucketing "
                f'rule such as {{"var": "email"}}; got {_show(buckets[0][1])}',
            )
        buckets = buckets[1:]
    if not buckets:
        message = f"fractional needs at least one [variant, weight] bucket; got {_show(args)}"
        yield Problem(path, message)
        return
    weights: list[int] = []
    for index, bucket in buckets:
        problem, weight = _bucket_weight(bucket, _join(path, index))
        if problem is not None:
            yield problem
        if weight is not None:
            weights.append(weight)
    if len(weights) == len(buckets) and not 0 < sum(weights) <= _MAX_WEIGHT_SUM:
        message = f"the total fractional weight must be between 1 and {_MAX_WEIGHT_SUM}"
        yield Problem(path, f"{message}; got {sum(weights)}")


def _bucket_weight(bucket: object, path: str) -> tuple[Problem | None, int | None]:
    """A problem with one fractional bucket, and its weight when known before evaluation."""
    if not isinstance(bucket, list) or not 1 <= len(bucket) <= 2:
        message = f"a fractional bucket must be [variant] or [variant, weight]; got {_show(bucket)}"
        return Problem(path, message), None
    weight = bucket[1] if len(bucket) == 2 else 1
    if isinstance(weight, dict):
        return None, None  # computed at evaluation time, e.g. a progressive rollout
    if isinstance(weight, int) and not isinstance(weight, bool) and weight >= 0:
        return None, weight
    hint = " (flagd-core silently skips the whole split)" if isinstance(weight, float) else ""
    message = f"a fractional weight must be a non-negative integer; got {_show(weight)}{hint}"
    return Problem(_join(path, 1), message), None


# --- variants a targeting can return ---------------------------------------------------------


def _returned_variant_problems(
    targeting: object, path: str, variants: Mapping[Any, Any], scope: _Scope
) -> Iterator[Problem]:
    for where, value, origin in _results(targeting, path, scope, 3, frozenset()):
        name = str(value).lower() if isinstance(value, bool) else value
        if not isinstance(name, str) or name in variants:
            continue
        as_variant = f" (looked up as {name!r})" if isinstance(value, bool) else ""
        via = "" if origin == where else f" via the evaluator at {origin}"
        message = f"targeting can return {_show(value)}{as_variant}{via}"
        yield Problem(where, f"{message}, which is not one of the variants {_show(list(variants))}")


def _results(
    node: object, path: str, scope: _Scope, depth: int, seen: frozenset[str]
) -> Iterator[tuple[str, object, str]]:
    """(path, literal, where it is written) for each literal a rule can return; values computed
    at evaluation time (var, cat, ...) cannot be known and are skipped."""
    if depth > MAX_DEPTH:
        return
    if not isinstance(node, dict):
        yield path, node, path
        return
    if len(node) != 1:
        return
    ((operator, args),) = node.items()
    if operator == "$ref":
        if isinstance(args, str) and args in scope.evaluators and args not in seen:
            origin = _join("/$evaluators", args)
            inner = _results(scope.evaluators[args], origin, scope, depth + 1, seen | {args})
            yield from ((path, value, written) for _, value, written in inner)
        return
    for slot, slot_path in _result_slots(operator, args, _join(path, operator)):
        yield from _results(slot, slot_path, scope, depth + 1, seen)


def _result_slots(operator: object, args: object, path: str) -> list[tuple[object, str]]:
    """The arguments of `operator` whose value can become the rule's result, with their paths."""
    items = args if isinstance(args, list) else [args]
    paths = [_join(path, index) if isinstance(args, list) else path for index in range(len(items))]
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
            (bucket[0], _join(paths[index], 0))
            for index, bucket in enumerate(items)
            if isinstance(bucket, list) and bucket
        ]
    else:
        picks = []
    return [(items[index], paths[index]) for index in picks]


# --- the official flagd schema ---------------------------------------------------------------
# Why run the schema at all: it is the official definition of a valid document, so running it
# guarantees that every document it rejects gets at least one problem, even for mistakes the
# hand-written checks do not know about. The hand-written checks give the clear messages, and the
# semantic checks (variants, $refs, weights) the schema cannot express; a schema error is dropped
# where a hand-written problem already explains that spot.


@functools.cache
def _schema_registry() -> tuple[Registry[Any], str]:
    """The vendored flags.json and targeting.json by their $ids, and the $id to start from."""
    folder = resources.files("flags") / "schema"
    schemas = [json.loads((folder / name).read_text("utf-8")) for name in _SCHEMA_FILES]
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas
    )
    return registry, schemas[0]["$id"]


@functools.cache
def _schema_validator() -> Draft7Validator:
    registry, root = _schema_registry()
    # Enter flags.json through the registry: draft 7 ignores a root "$id" next to "$ref", so only
    # then is its "./targeting.json" resolved against https://flagd.dev/schema/v0/ (offline).
    return Draft7Validator({"$ref": root}, registry=registry)


def _schema_problems(document: object, own: Sequence[Problem]) -> Iterator[Problem]:
    if _schema_accepts(document):
        return
    explained = {problem.path for problem in own}
    for error in _schema_validator().iter_errors(document):
        for leaf in _explain(error):
            path = _pointer(leaf.absolute_path)
            if not _is_explained(path, explained):
                yield Problem(path, f"rejected by the flagd schema: {_schema_message(leaf)}")


def _explain(error: ValidationError) -> Iterator[ValidationError]:
    """The errors that explain `error`: for anyOf/oneOf, those of the branch that came closest,
    e.g. the string-flag branch for a flag with string variants, or the sem_ver rule (and not
    the var rule) for {"sem_ver": [...]} with a bad argument."""
    if error.validator not in _COMBINATORS or not error.context:
        yield error
        return
    branches: dict[object, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    for sub in min(branches.values(), key=_distance):
        yield from _explain(sub)


def _distance(errors: Sequence[ValidationError]) -> tuple[bool, int, int]:
    """How far a failed branch is from matching: a misfit first, then the number of errors,
    then how shallow they are."""
    return any(_misfit(error) for error in errors), len(errors), -_deepest(errors)


def _misfit(error: ValidationError) -> bool:
    """The instance itself has the wrong shape for the schema (wrong type, unexpected keys)."""
    if error.relative_path:
        return False
    if error.validator in _COMBINATORS:
        return all(_misfit(sub) for sub in error.context)
    return error.validator in _MISFITS


def _deepest(errors: Sequence[ValidationError]) -> int:
    return max((max(len(e.absolute_path), _deepest(e.context)) for e in errors), default=0)


def _is_explained(path: str, explained: set[str]) -> bool:
    """Whether a hand-written problem sits at `path`, or above or below it inside the same flag
    field or evaluator (e.g. both inside /flags/x/targeting)."""
    return path in explained or any(
        _within_field(path, other) or _within_field(other, path) for other in explained
    )


def _within_field(outer: str, inner: str) -> bool:
    """`inner` is below `outer`, and `outer` is at or below a flag field or an evaluator."""
    parts = outer.split("/")[1:]
    in_field = (parts[:1] == ["flags"] and len(parts) >= 3) or (
        parts[:1] == ["$evaluators"] and len(parts) >= 2
    )
    return in_field and inner.startswith(f"{outer}/")


def _schema_message(error: ValidationError) -> str:
    """jsonschema's message with a short repr, a regex replaced by the schema's own words."""
    if error.validator == "pattern":
        text = f"{_show(error.instance)} does not have the required format"
    else:
        text = error.message.replace(repr(error.instance), _show(error.instance))
    if error.validator in _LIMITS:
        text = f"{text} ({error.validator} {error.validator_value})"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if about := schema.get("description") or schema.get("title"):
        text = f"{text} ({about})"
    return text if len(text) <= 300 else f"{text[:297]}..."


# --- a fast yes/no check with the schema's draft 7 meaning --------------------------------------
# jsonschema needs ~60 ms for a 2.5 KB document (every anyOf/oneOf branch runs in full), too
# slow for every reload; fastjsonschema compiles the schema once (~65 ms) into Python code that
# answers "valid?" in ~2 ms for flags.yaml. jsonschema then runs only on rejected documents, to
# explain why. tests/test_validation.py checks that both agree on the oracle corpus.


def _schema_accepts(document: object) -> bool:
    try:
        _schema_check()(document)
    except fastjsonschema.JsonSchemaException:
        return False
    except Exception:  # e.g. RecursionError on absurd nesting: let jsonschema explain
        return False
    return True


@functools.cache
def _schema_check() -> Callable[[Any], object]:
    folder = resources.files("flags") / "schema"
    schemas = {
        schema["$id"]: schema
        for schema in (json.loads((folder / name).read_text("utf-8")) for name in _SCHEMA_FILES)
    }
    root = schemas[_schema_registry()[1]]
    # Every $ref resolves to the vendored copies: nothing is fetched over the network.
    return fastjsonschema.compile(root, handlers={"https": schemas.__getitem__})
