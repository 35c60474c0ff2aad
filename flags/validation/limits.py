"""Every bound a flag document is held to, in one place (README, "Limits", explains each).

The bounds keep a document that validates from hanging anything that reads it: the
parser (size, nesting), flagd-core's loader (which pastes `$evaluators` in as text) and
every single evaluation (a static cost estimate of the targeting).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CONTEXT_CHARS",
    "CONTEXT_ITEMS",
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_EVALUATION_STEPS",
    "MAX_EXPANDED_BYTES",
    "MAX_EXPANDED_DEPTH",
    "MAX_LOAD_SCAN_BYTES",
    "MAX_PROBLEMS",
    "MAX_SCHEMA_NODES",
    "MAX_SEMVER_LENGTH",
    "MAX_SUGGESTED_NAME",
    "MAX_SUGGESTION_STEPS",
    "MAX_WEIGHT_SUM",
    "STEP_SECONDS",
]

MAX_DOCUMENT_BYTES: Final = 1024 * 1024
"""A flag file (or document text) larger than this is refused before it is parsed."""

MAX_DEPTH: Final = 64
"""Nesting levels of mappings and lists; deeper documents are not validated further."""

MAX_PROBLEMS: Final = 1000
"""Problems listed for one document; the rest are counted in a last line."""

MAX_SUGGESTION_STEPS: Final = 2_000_000
"""What one document may spend on "did you mean" hints: comparing a name with a choice
costs about len(name) x len(choice) steps of ~0.1 µs, so ~0.2 s; the first mistakes get a
hint, and a document with 70 000 of them still validates in time."""

MAX_SUGGESTED_NAME: Final = 64
"""Longest unknown name (operator, key, `$ref`) that gets a "did you mean" hint."""

MAX_WEIGHT_SUM: Final = 2**31 - 1
"""flagd-core's `fractional` returns no variant when the weights add up to more."""

MAX_SEMVER_LENGTH: Final = 256
"""Longest version string a `sem_ver` rule may compare with (npm's limit too)."""

MAX_EXPANDED_BYTES: Final = 2 * MAX_DOCUMENT_BYTES
"""JSON size of `flags` after flagd-core has pasted every referenced evaluator in."""

MAX_EXPANDED_DEPTH: Final = 2 * MAX_DEPTH
"""Nesting of a flag once its `$ref`s are expanded: json_logic recurses through it (about
two Python frames per level), and so does the cost estimate."""

MAX_LOAD_SCAN_BYTES: Final = 64 * MAX_DOCUMENT_BYTES
"""flagd-core substitutes each evaluator with one regex pass over the whole `flags` text:
evaluators x (expanded size + 32 KiB for compiling the pattern) is what a load scans,
~130 ms at the limit (at most 2 048 evaluators however small the flags)."""

STEP_SECONDS: Final = 1e-7
"""What one step of the evaluation cost estimate stands for (0.1 µs, measured here)."""

MAX_EVALUATION_STEPS: Final = 30_000
"""Estimated steps one evaluation of one flag may take (~3 ms), so that no accepted
document makes an evaluation take more than 10 ms."""

CONTEXT_ITEMS: Final = 64
CONTEXT_CHARS: Final = 4096
"""What the cost estimate assumes a value read from the evaluation context (`var`) is at
most: 64 list items and 4 KiB of text (CJ's context holds three short strings)."""

MAX_SCHEMA_NODES: Final = 6_000
"""Rule nodes the official-schema check runs on; it costs ~0.1 ms per node, so larger
documents get a warning that only the built-in checks ran."""
