"""1 000 000 distinct batch ids through `resolve()`: the cache stays bounded.

Every id is a cache miss that is then cached, so the TTL cache must evict to stay at
`RESOLUTION_CACHE_MAXSIZE` (10 000) and the process must not grow with the ids seen.
RSS (VmRSS) is read before the first and after the last resolution, after a full
garbage collection each time; the cache size is sampled every 50 000 ids.

Provider: a `FlagdMemoryProvider` with a one-flag document (the mode flag, no targeting,
`defaultVariant: serial_bundle`), so each miss is one cheap flagd evaluation and
the run measures the resolver and its cache, not json-logic (a miss on the shipped rules
costs ~30-50 µs, which would make this run minutes long for the same memory answer).
The cache-size figure's baseline column is the configured maxsize; the RSS figure has
no baseline, only its limit (50 MB).
"""

from __future__ import annotations

import gc
import time
import uuid
from typing import Any, Final

from prometheus_client import CollectorRegistry

from benchmarks._measure import Figure, Run, progress, rss_bytes
from benchmarks._setup import bench_settings
from cj_batching import BatchContext, BatchingMetrics, BatchingModeResolver
from flags import FlagdMemoryProvider, bind_provider

__all__ = ["run"]

RSS_LIMIT_MB = 50.0
_SAMPLE_EVERY = 50_000

CHEAP_DOCUMENT: Final[dict[str, Any]] = {
    "metadata": {"version": "bench-distinct-ids"},
    "flags": {
        "llm-batching-mode": {
            "state": "ENABLED",
            "variants": {
                "per_request": "per_request",
                "serial_bundle": "serial_bundle",
                "provider_batch_api": "provider_batch_api",
            },
            "defaultVariant": "serial_bundle",
        }
    },
}


def run(options: Run) -> list[Figure]:
    count = options.pick(1_000_000, 100_000)
    settings = bench_settings()
    maxsize = settings.RESOLUTION_CACHE_MAXSIZE
    provider = FlagdMemoryProvider(CHEAP_DOCUMENT)
    client = bind_provider(provider, f"bench-ids-{uuid.uuid4().hex[:8]}")
    resolver = BatchingModeResolver(settings, client, metrics=BatchingMetrics(CollectorRegistry()))
    cache = resolver._cache  # private: the only way to see the cache's size
    try:
        gc.collect()
        before = rss_bytes()
        largest = 0
        progress(f"distinct_ids: resolving {count:,} distinct batch ids")
        started = time.perf_counter()
        for batch_id in range(count):
            resolver.resolve(BatchContext(batch_id, "els", "openai"))
            if batch_id % _SAMPLE_EVERY == 0:
                largest = max(largest, len(cache))
        elapsed = time.perf_counter() - started
        largest = max(largest, len(cache))
        final_size = len(cache)
        gc.collect()
        after = rss_bytes()
    finally:
        resolver.close()
        provider.shutdown()
    growth_mb = (after - before) / 1e6
    details = {
        "ids": count,
        "provider": "FlagdMemoryProvider, one static flag (no targeting)",
        "seconds": elapsed,
        "per_resolve_seconds": elapsed / count,
        "rss_before_mb": before / 1e6,
        "rss_after_mb": after / 1e6,
        "largest_cache_size_seen": largest,
        "maxsize": maxsize,
    }
    return [
        Figure(
            "distinct_ids.cache_size",
            float(max(final_size, largest)),
            float(maxsize),
            "entries",
            "equal",
            float(maxsize),
            {**details, "final_cache_size": final_size},
        ),
        Figure(
            "distinct_ids.rss_growth",
            growth_mb,
            None,
            "MB",
            "max",
            RSS_LIMIT_MB,
            details,
        ),
    ]
