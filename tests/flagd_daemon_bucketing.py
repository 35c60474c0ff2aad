"""A reference of the flagd daemon's `fractional` bucketing (the string hash), to measure
how far our in-process evaluator (openfeature-flagd-core 2.x) disagrees with it.

Written from the flagd `fractional` specification as the Go daemon 0.16 and the
JavaScript flagd-core 4.x implement it (the flagd-testbed calls it "v2"): the bucketing
value is the string flag key + targeting key (shorthand form), hashed with 32-bit
MurmurHash3 (x86, seed 0, unsigned); `bucket = hash * total_weight >> 32`, and the
variant is the first whose cumulative weight exceeds the bucket. flagd-core 2.x hashes
a CBOR encoding of [flag key, targeting key] instead ("v3"), hence the disagreement.
A measuring instrument for tests, not library code.
"""

from __future__ import annotations

from collections.abc import Mapping

import mmh3


def bucket_variant(bucketing_value: str, weights: Mapping[str, int]) -> str | None:
    """The variant the daemon's `fractional` picks for `bucketing_value` (weights in
    declaration order); None when the weights sum to zero."""
    total = sum(weights.values())
    if total <= 0:
        return None
    bucket = (mmh3.hash(bucketing_value.encode("utf-8"), 0, signed=False) * total) >> 32
    end = 0
    for variant, weight in weights.items():
        end += weight
        if bucket < end:
            return variant
    return None  # unreachable: bucket < total


def daemon_variant(flag_key: str, targeting_key: str, weights: Mapping[str, int]) -> str | None:
    """The shorthand `fractional` (no explicit bucketing value): flag key + targeting key."""
    return bucket_variant(flag_key + targeting_key, weights)
