"""Validate a whole flagd flag-definition document before it replaces the live one.

flagd-core loads most broken documents without complaint and only fails (or silently
serves the default) at evaluation time, so every new version is checked up front, in
linear time whatever its content. Each check is a module:

- `shape`: data JSON can carry, finite numbers, bounded nesting;
- `structure`: top-level keys, flags, states, variants, metadata, `$evaluators`;
- `targeting`: operators, operand counts, `$ref`s, flagd's own operators;
- `variants`: every literal a targeting can return names a variant;
- `cost`: `$ref` expansion, loading and single evaluations within their bounds;
- `schema`: the official flagd schema as a backstop.

An `error` refuses the document; a `warning` is reported and the document is used.
"""

from __future__ import annotations

from collections.abc import Iterator

from flags.validation._text import show
from flags.validation.cost import cost_problems, evaluation_steps
from flags.validation.limits import MAX_DEPTH, MAX_PROBLEMS
from flags.validation.problem import Problem, Severity, errors_first
from flags.validation.schema import schema_problems
from flags.validation.scope import Scope
from flags.validation.shape import shape_problems
from flags.validation.structure import document_problems
from flags.validation.targeting import targeting_problems
from flags.validation.variants import returned_variant_problems

__all__ = ["MAX_DEPTH", "Problem", "Severity", "evaluation_steps", "validate_document"]


def validate_document(document: object) -> list[Problem]:
    """Every problem in a parsed flag document: errors first, then warnings, each sorted by
    path; no errors means flagd-core can serve it as written."""
    try:
        problems = errors_first(_all_problems(document))
    except Exception as exc:  # never raise: a validator bug must not break a flag reload
        message = f"validator failed ({type(exc).__name__}: {show(str(exc))}); treat as invalid"
        return [Problem("", message)]
    if len(problems) <= MAX_PROBLEMS:
        return problems
    rest = problems[MAX_PROBLEMS:]
    errors = sum(problem.is_error for problem in rest)
    note = Problem(
        "",
        f"{len(rest):,} more problems not listed ({errors:,} errors, {len(rest) - errors:,} "
        "warnings); fix the ones above first",
        "error" if errors else "warning",
    )
    return [*problems[:MAX_PROBLEMS], note]


def _all_problems(document: object) -> Iterator[Problem]:
    shape = list(shape_problems(document))
    yield from shape
    scope = Scope.of(document) if isinstance(document, dict) else Scope({})
    found = [
        *document_problems(document, scope),
        *targeting_problems(document, scope),
        *returned_variant_problems(document, scope),
    ]
    yield from found
    if shape:  # the cost walk and the schema need a finite JSON tree
        return
    costs = list(cost_problems(document, scope))
    yield from costs
    if not any(problem.is_error for problem in (*found, *costs)):
        yield from schema_problems(document, found)
