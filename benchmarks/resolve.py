"""`BatchingModeResolver.resolve` on the shipped rules: cache hits and cache misses.

- hit vs OpenFeature: `resolve(ctx)` answered from the cache against one
  `client.get_string_details` of the mode flag on the same provider, with the
  `EvaluationContext` the resolver builds (built once, outside the timing).
- hit vs dict: the same cache hit against `table[ctx.cache_key]` on a plain dict.
- miss: `resolve_uncached(ctx)` (the whole chain: flag evaluations, guardrail, the
  resolution counter) against the bare OpenFeature evaluations it wraps, once for a batch
  whose mode is `provider_batch_api` (the allow-list flag is consulted too) and once for
  a batch where only the mode flag is evaluated.
"""

from __future__ import annotations

from typing import Any

from benchmarks._measure import Figure, Run, progress, time_pair
from benchmarks._setup import Shipped, context, shipped_resolver
from cj_batching import BatchContext
from cj_batching.resolver import flag_evaluation_context

__all__ = ["run"]

HIT_FASTER_THAN_OPENFEATURE = 20.0
HIT_SLOWER_THAN_DICT = 15.0
MISS_OVER_OPENFEATURE = 1.3

_MODE_ONLY = "client.get_string_details(mode_key, mode_default, evaluation)"
_MODE_AND_ALLOW_LIST = f"{_MODE_ONLY}; client.get_object_details(allow_key, {{}}, evaluation)"


def _namespace(shipped: Shipped, ctx: BatchContext) -> dict[str, Any]:
    settings = shipped.settings
    provider = ctx.provider or settings.DEFAULT_LLM_PROVIDER
    return {
        "resolver": shipped.resolver,
        "client": shipped.client,
        "ctx": ctx,
        "evaluation": flag_evaluation_context(ctx, provider),
        "mode_key": settings.LLM_BATCHING_FLAG_KEY,
        "mode_default": settings.LLM_BATCHING_MODE.value,
        "allow_key": settings.LLM_BATCH_API_ALLOWED_PROVIDERS_FLAG_KEY,
        "table": {ctx.cache_key: shipped.resolver.resolve(ctx)},
    }


def _mode_only_context(shipped: Shipped) -> BatchContext:
    """An ELS batch that the 20 % rollout keeps on the serial bundle (no allow list)."""
    for batch_id in range(42, 1042):
        ctx = context(batch_id, "els", "openai")
        resolution = shipped.resolver.resolve_uncached(ctx)
        if resolution.decided_by == "flag" and resolution.allowed_providers_source is None:
            return ctx
    raise RuntimeError("flags.yaml: no ELS batch in 42..1041 decided by the flag without guardrail")


def run(options: Run) -> list[Figure]:
    figures: list[Figure] = []
    with shipped_resolver() as shipped:
        ctx = context(42, "els", "openai")
        namespace = _namespace(shipped, ctx)
        resolution = shipped.resolver.resolve(ctx)
        where = {
            "batch": "42 / els / openai",
            "mode": resolution.mode.value,
            "decided_by": resolution.decided_by,
        }

        progress("resolve: cache hit vs OpenFeature get_string_details")
        pair = time_pair("resolver.resolve(ctx)", _MODE_ONLY, namespace, options)
        figures.append(
            Figure(
                "resolve.hit_vs_openfeature",
                pair.ours_median,
                pair.baseline_median,
                "s",
                "faster",
                HIT_FASTER_THAN_OPENFEATURE,
                {**pair.details(), **where},
            )
        )

        progress("resolve: cache hit vs dict lookup")
        pair = time_pair("resolver.resolve(ctx)", "table[ctx.cache_key]", namespace, options)
        figures.append(
            Figure(
                "resolve.hit_vs_dict",
                pair.ours_median,
                pair.baseline_median,
                "s",
                "slower",
                HIT_SLOWER_THAN_DICT,
                {**pair.details(), **where},
            )
        )

        cases = (
            ("resolve.miss_with_allow_list", context(42, "eng5_runner", "openai"), True),
            ("resolve.miss_mode_flag_only", _mode_only_context(shipped), False),
        )
        for name, case, consults_allow_list in cases:
            resolution = shipped.resolver.resolve_uncached(case)
            consulted = resolution.allowed_providers_source == "flag"
            if consulted != consults_allow_list:
                raise RuntimeError(
                    f"{name}: expected the allow-list flag {'' if consults_allow_list else 'not '}"
                    f"to be consulted for {case}, got {resolution}"
                )
            progress(f"resolve: cache miss ({name}) vs the bare evaluations")
            baseline = _MODE_AND_ALLOW_LIST if consults_allow_list else _MODE_ONLY
            pair = time_pair(
                "resolver.resolve_uncached(ctx)", baseline, _namespace(shipped, case), options
            )
            figures.append(
                Figure(
                    name,
                    pair.ours_median,
                    pair.baseline_median,
                    "s",
                    "ratio",
                    MISS_OVER_OPENFEATURE,
                    {
                        **pair.details(),
                        "batch": f"{case.batch_key} / {case.cj_source} / {resolution.llm_provider}",
                        "mode": resolution.mode.value,
                        "baseline_statement": baseline,
                    },
                )
            )
    return figures
