"""The JSON shape of a document: only data JSON can carry, finite numbers, bounded nesting.

Runs first: the other checks, the cost estimate and the schema walk the document as a
finite JSON tree, which only this check establishes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from flags.validation._text import join, show
from flags.validation.limits import MAX_DEPTH
from flags.validation.problem import Problem

__all__ = ["shape_problems"]

_JSON_SCALARS = (str, int, float, bool, type(None))


def shape_problems(document: object) -> Iterator[Problem]:
    """Non-string keys, non-JSON values (dates, sets, ...), NaN and infinities, and nesting
    past `MAX_DEPTH` (which also stops a cyclic structure)."""
    stack: list[tuple[object, str, int]] = [(document, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            yield Problem(path, f"nested deeper than {MAX_DEPTH} levels; not validated further")
            return
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    message = f"keys must be strings; got {show(key)} ({type(key).__name__})"
                    yield Problem(join(path, key), f"{message}; quote it in YAML")
                stack.append((value, join(path, key), depth + 1))
        elif isinstance(node, list):
            stack.extend((item, join(path, index), depth + 1) for index, item in enumerate(node))
        elif isinstance(node, float) and not math.isfinite(node):
            yield Problem(
                path,
                f"numbers must be finite; got {node!r} (NaN and infinities, spelled Infinity, "
                "NaN, 1e999, .inf or .nan, are refused wherever they appear)",
            )
        elif not isinstance(node, _JSON_SCALARS):
            yield Problem(
                path,
                f"{show(node)} is a {type(node).__name__}, which JSON cannot hold; use a string, "
                "number, boolean, null, list or mapping (quote dates and times in YAML)",
            )
