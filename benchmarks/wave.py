"""Preparing a 10 000-comparison wave: request metadata and counters, no HTTP.

Ours, per wave: `build_request_metadata` once (with the bundle hint), then per
comparison `comparison_metadata(base, essay_a_id, essay_b_id)` and
`metrics.record_requests(mode)` (each comparison is counted when its first POST goes
out). Baseline: a plain 5-key dict literal per comparison (the two essay ids and three
batch values), what a hand-rolled caller with no checks and no counter would build. Both
build the list of per-comparison dicts; the figure is per comparison (wave time / 10 000).
"""

from __future__ import annotations

from typing import Any

from benchmarks._measure import Figure, Run, progress, time_pair
from benchmarks._setup import context, shipped_resolver
from cj_batching.metadata import build_request_metadata, comparison_metadata
from cj_batching.metrics import BatchingMetrics
from cj_batching.resolution import Resolution

__all__ = ["run"]

WAVE_SIZE = 10_000
OVER_PLAIN_DICT = 6.0


def _prepare_wave(
    ctx: Any, resolution: Resolution, metrics: BatchingMetrics, pairs: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    base = build_request_metadata(ctx, resolution, preferred_bundle_size=len(pairs))
    mode = resolution.mode
    wave = []
    for a, b in pairs:
        wave.append(comparison_metadata(base, a, b))
        metrics.record_requests(mode)
    return wave


def _plain_wave(
    batch_id: str, source: str, mode: str, pairs: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    return [
        {
            "essay_a_id": a,
            "essay_b_id": b,
            "cj_batch_id": batch_id,
            "cj_source": source,
            "cj_llm_batching_mode": mode,
        }
        for a, b in pairs
    ]


def run(options: Run) -> list[Figure]:
    with shipped_resolver() as shipped:
        ctx = context(42, "els", "openai")
        resolution = shipped.resolver.resolve(ctx)
        pairs = [(f"essay-{i:05d}-a", f"essay-{i:05d}-b") for i in range(WAVE_SIZE)]
        namespace = {
            "prepare": _prepare_wave,
            "plain": _plain_wave,
            "ctx": ctx,
            "resolution": resolution,
            "metrics": shipped.metrics,
            "pairs": pairs,
            "batch_id": ctx.batch_key,
            "source": ctx.cj_source,
            "mode": resolution.mode.value,
        }
        sample = _prepare_wave(ctx, resolution, shipped.metrics, pairs[:1])[0]
        progress(f"wave: preparing {WAVE_SIZE} comparisons vs plain dicts")
        pair = time_pair(
            "prepare(ctx, resolution, metrics, pairs)",
            "plain(batch_id, source, mode, pairs)",
            namespace,
            options,
            repeats=options.pick(31, 7),
            repeat_seconds=0.03 if not options.quick else 0.01,
        )
    return [
        Figure(
            "wave.prepare_per_comparison",
            pair.ours_median / WAVE_SIZE,
            pair.baseline_median / WAVE_SIZE,
            "s",
            "ratio",
            OVER_PLAIN_DICT,
            {
                **pair.details(),
                "wave_size": WAVE_SIZE,
                "per": "comparison (wave time / wave size); min/max above are per wave",
                "ours_keys_per_comparison": len(sample),
                "baseline_keys_per_comparison": 5,
            },
        )
    ]
