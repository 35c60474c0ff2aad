"""Bucketing across evaluators: our flagd-core 2.x evaluator against the flagd daemon's
string-hash `fractional`, for the shipped ELS 20/80 rule (issue 10, section 3).

The number measured here is quoted in docs/guarded-rollouts.md and the runbook: a move
between in-process evaluation and a flagd daemon (RPC, OFREP, in-process sync) moves
this share of batch ids to another arm, so it starts a new experiment.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from openfeature.evaluation_context import EvaluationContext

from cj_batching import LLMBatchingMode
from flags import FlagdMemoryProvider, flag_outcome, load_document

from .flagd_daemon_bucketing import bucket_variant, daemon_variant

ROOT = Path(__file__).resolve().parent.parent
FLAG_KEY = "llm-batching-mode"
BATCH_IDS = range(1, 20_001)
MEASURED_DIFFERENT = 6_391  # docs/guarded-rollouts.md quotes it

SUITS = {"clubs": 25, "diamonds": 25, "hearts": 25, "spades": 25}


# The flagd-testbed's v2 vectors (evaluator/gherkin/fractional.feature with
# evaluator/flags/testkit-flags.json), the daemon's behaviour as its own suite pins it.
@pytest.mark.parametrize(
    ("bucketing_value", "weights", "expected"),
    [
        ("fractional-flagjack", SUITS, "hearts"),
        ("fractional-flagqueen", SUITS, "spades"),
        ("fractional-flagten", SUITS, "clubs"),
        ("fractional-flagnine", SUITS, "diamonds"),
        ("fractional-flag3", SUITS, "clubs"),
        ("shared-seedseven", SUITS, "hearts"),
        ("shared-seedeight", SUITS, "diamonds"),
        ("shared-seednine", SUITS, "clubs"),
        ("shared-seedtwo", SUITS, "spades"),
        # Keys whose hashes sit at the boundaries of a 50/50 split.
        ("ejOoVL", {"lower": 50, "upper": 50}, "lower"),
        ("bY9fO-", {"lower": 50, "upper": 50}, "lower"),
        ("SI7p-", {"lower": 50, "upper": 50}, "lower"),
        ("6LvT0", {"lower": 50, "upper": 50}, "upper"),
        ("ceQdGm", {"lower": 50, "upper": 50}, "upper"),
    ],
)
def test_reference_matches_the_flagd_testbed_vectors(
    bucketing_value: str, weights: dict[str, int], expected: str
) -> None:
    assert bucket_variant(bucketing_value, weights) == expected


@pytest.mark.parametrize(
    ("targeting_key", "expected"), [("jon@company.com", "heads"), ("jane@company.com", "tails")]
)
def test_reference_shorthand_hashes_flag_key_and_targeting_key(
    targeting_key: str, expected: str
) -> None:
    weights = {"heads": 1, "tails": 1}  # testbed: [["heads"], ["tails", 1]]
    assert daemon_variant("fractional-flag-shorthand", targeting_key, weights) == expected


def _els_context(batch_id: int) -> EvaluationContext:
    # What the resolver sends (cj_batching.resolver.flag_evaluation_context).
    attributes = {"cj_source": "els", "llm_provider": "openai", "cj_request_type": "cj_comparison"}
    return EvaluationContext(str(batch_id), attributes)


@pytest.fixture(scope="module")
def arms() -> Counter[tuple[str, str]]:
    """(our arm, the daemon's arm) per ELS batch id 1..20 000 under the shipped flags.yaml."""
    document = load_document(ROOT / "flags.yaml")
    outcome = flag_outcome(document, FLAG_KEY, _els_context(1).attributes)
    assert outcome is not None
    weights = dict(outcome.weights)
    assert weights == {"provider_batch_api": 20, "serial_bundle": 80}
    provider = FlagdMemoryProvider(document)
    try:
        pairs: Counter[tuple[str, str]] = Counter()
        for batch_id in BATCH_IDS:
            ours = provider.resolve_string_details(FLAG_KEY, "unset", _els_context(batch_id))
            theirs = daemon_variant(FLAG_KEY, str(batch_id), weights)
            assert theirs is not None
            pairs[str(ours.value), theirs] += 1
        return pairs
    finally:
        provider.shutdown()


def test_both_evaluators_keep_the_declared_split(arms: Counter[tuple[str, str]]) -> None:
    batch_api = LLMBatchingMode.PROVIDER_BATCH_API.value
    ours = sum(count for (mode, _), count in arms.items() if mode == batch_api)
    theirs = sum(count for (_, mode), count in arms.items() if mode == batch_api)
    assert 0.19 < ours / len(BATCH_IDS) < 0.21
    assert 0.19 < theirs / len(BATCH_IDS) < 0.21


def test_a_third_of_batch_ids_land_in_another_arm_on_the_daemon(
    arms: Counter[tuple[str, str]],
) -> None:
    different = sum(count for (ours, theirs), count in arms.items() if ours != theirs)
    # Two independent 20/80 draws disagree for 2 * 0.2 * 0.8 = 32 % of ids: the hashes
    # are unrelated. The exact count is documented; a change means the bucketing changed.
    assert different == MEASURED_DIFFERENT, (
        f"{different} of {len(BATCH_IDS)} ids differ; update docs/guarded-rollouts.md"
    )
