"""Reading what a flag document declares, for previews: the fractional split in effect."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from json_logic import jsonLogic
from openfeature.contrib.tools.flagd.core.targeting.custom_ops import fractional
from openfeature.contrib.tools.flagd.core.targeting.targeting import OPERATORS
from openfeature.evaluation_context import EvaluationContext

__all__ = ["declared_fractions"]


def declared_fractions(
    document: Mapping[str, Any], flag_key: str, context: EvaluationContext
) -> dict[str, int] | None:
    """The `fractional` weights the flag's targeting reaches in `context`, or None.

    The targeting is evaluated the way flagd-core does (same operators, `$ref`s
    expanded) with `fractional` instrumented, so whichever rule applies to that
    context (say, the one for `cj_source == "els"`) reports its own weights.
    """
    flag = document.get("flags", {}).get(flag_key)
    if not isinstance(flag, Mapping) or not isinstance(flag.get("targeting"), Mapping):
        return None
    targeting = _expand(flag["targeting"], document.get("$evaluators") or {})
    reached: list[tuple[Any, ...]] = []

    def record(data: Any, *args: Any) -> Any:
        reached.append(args)
        return fractional(data, *args)

    data: dict[str, Any] = dict(context.attributes)
    data["targetingKey"] = context.targeting_key
    data["$flagd"] = {"flagKey": flag_key, "timestamp": 0}
    jsonLogic(targeting, data, {**OPERATORS, "fractional": record})
    return _weights(reached[-1]) if reached else None


def _expand(node: Any, evaluators: Mapping[str, Any]) -> Any:
    if isinstance(node, list):
        return [_expand(item, evaluators) for item in node]
    if not isinstance(node, Mapping):
        return node
    if set(node) == {"$ref"} and node["$ref"] in evaluators:
        return _expand(evaluators[node["$ref"]], evaluators)
    return {key: _expand(value, evaluators) for key, value in node.items()}


def _weights(args: tuple[Any, ...]) -> dict[str, int]:
    buckets = [arg for arg in args if isinstance(arg, list) and arg]
    return {str(bucket[0]): int(bucket[1]) if len(bucket) > 1 else 1 for bucket in buckets}
