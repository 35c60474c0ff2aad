"""The JSON shape of a document: only data JSON can carry, finite numbers, bounded nesting.

Runs first: the other checks, the cost estimate and the schema walk the document as a
finite JSON tree, which only this check establishes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from flags.validation._text import join, show
from flags.validation.limits import MAX_DEPTH
from flags.validation.problem import Problem

__all__ = ["shape_problems"]

_JSON_SCALARS = (str, int, float, bool, type(None))


def shape_problems(document: object) -> Iterator[Problem]:
    """Non-string keys, non-JSON values (dates, sets, ...), NaN and infinities, and nesting
    past `MAX_DEPTH` (which also stops a cyclic structure)."""
    if not isinstance(document, dict | list):
        yield from _scalar_problems(document, "")
        return
    # Paths are built only for containers and for problems: a 1 MiB document holds ~10^6
    # scalars, and joining a path for each would be most of the walk.
    stack: list[tuple[dict[Any, Any] | list[Any], str, int]] = [(document, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth >= MAX_DEPTH:
            yield Problem(path, f"nested deeper than {MAX_DEPTH} levels; not validated further")
            return
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(node, dict) and not isinstance(key, str):
                message = f"keys must be strings; got {show(key)} ({type(key).__name__})"
                yield Problem(join(path, key), f"{message}; quote it in YAML")
            if isinstance(value, dict | list):
                stack.append((value, join(path, key), depth + 1))
            elif not _plain(value):
                yield from _scalar_problems(value, join(path, key))


def _plain(value: object) -> bool:
    """A JSON scalar that needs no further look (the common case, checked first)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, _JSON_SCALARS)


def _scalar_problems(value: object, path: str) -> Iterator[Problem]:
    if isinstance(value, float) and not math.isfinite(value):
        yield Problem(
            path,
            f"numbers must be finite; got {value!r} (NaN and infinities, spelled Infinity, "
            "NaN, 1e999, .inf or .nan, are refused wherever they appear)",
        )
    elif not isinstance(value, _JSON_SCALARS):
        yield Problem(
            path,
            f"{show(value)} is a {type(value).__name__}, which JSON cannot hold; use a string, "
            "number, boolean, null, list or mapping (quote dates and times in YAML)",
        )
