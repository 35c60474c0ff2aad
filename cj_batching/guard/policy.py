"""The rollout guard's knobs for one flag set version: the settings, overlaid by the
mode flag's flat `guard_*` metadata keys (flat so flagd and its schema accept them)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, get_args

import annotated_types
from pydantic import TypeAdapter, ValidationError

from cj_batching._text import short_repr
from cj_batching.bounds import GuardAlpha, GuardErrorRateIncrease, GuardMinResults
from cj_batching.modes import LLMBatchingMode
from cj_batching.settings import Settings

__all__ = ["METADATA_KEYS", "METADATA_PREFIX", "GuardPolicy", "parse_guard_metadata"]

METADATA_PREFIX: Final = "guard_"


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """What the guard compares and when it trips.

    An arm trips when it and the control each have `min_results` flag-decided results,
    its error rate exceeds the control's by more than `max_error_rate_increase`, and
    the always-valid test rejects "no worse than the control" at level `alpha`.
    """

    enabled: bool
    control: LLMBatchingMode
    max_error_rate_increase: float
    min_results: int
    alpha: float

    def __post_init__(self) -> None:
        for key, (name, adapter, allowed) in _KNOBS.items():
            value = getattr(self, name)
            try:
                adapter.validate_python(value, strict=True)
            except ValidationError:
                raise ValueError(
                    f"{name} ({key}): {short_repr(value)} is not allowed; use {allowed}"
                ) from None

    @classmethod
    def from_settings(cls, settings: Settings) -> GuardPolicy:
        """The policy of a flag set without `guard_*` metadata (control: the env default)."""
        return cls(
            enabled=settings.GUARD_ENABLED,
            control=settings.LLM_BATCHING_MODE,
            max_error_rate_increase=settings.GUARD_MAX_ERROR_RATE_INCREASE,
            min_results=settings.GUARD_MIN_RESULTS,
            alpha=settings.GUARD_ALPHA,
        )

    def with_metadata(self, metadata: Mapping[str, object]) -> tuple[GuardPolicy, list[str]]:
        """This policy overlaid by the `guard_*` keys of a flag's metadata; a bad key is
        skipped (its value stays) and described in the returned problems."""
        values, problems = parse_guard_metadata(metadata)
        # GUARD_ENABLED=false is the operator's word: metadata may switch a guard off,
        # never back on.
        values["enabled"] = self.enabled and values.get("enabled", True)
        return replace(self, **values), [f"{key}: {message}" for key, message in problems]

    def to_dict(self) -> dict[str, Any]:
        """The knobs under their metadata names, JSON-ready."""
        return {
            f"{METADATA_PREFIX}enabled": self.enabled,
            f"{METADATA_PREFIX}control": self.control.value,
            f"{METADATA_PREFIX}max_error_rate_increase": self.max_error_rate_increase,
            f"{METADATA_PREFIX}min_results": self.min_results,
            f"{METADATA_PREFIX}alpha": self.alpha,
        }


_BOUND_WORDS: Final = (
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Ge, "ge", ">="),
    (annotated_types.Lt, "lt", "<"),
    (annotated_types.Le, "le", "<="),
)


def _range(kind: Any, noun: str) -> str:
    """`kind`'s bounds in words, read from its annotation: "a fraction > 0 and < 1"."""
    parts = [
        f"{word} {getattr(bound, attribute)}"
        for field in get_args(kind)[1:]
        for bound in getattr(field, "metadata", ())
        for cls, attribute, word in _BOUND_WORDS
        if isinstance(bound, cls)
    ]
    return f"{noun} {' and '.join(parts)}"


# Metadata key -> (policy field, parser, what is allowed). The bounds come from the
# types `Settings` uses (cj_batching.bounds), so a knob has one range wherever it is set.
_KNOBS: Final[Mapping[str, tuple[str, TypeAdapter[Any], str]]] = {
    f"{METADATA_PREFIX}{name}": (name, TypeAdapter(kind), allowed)
    for name, kind, allowed in (
        ("enabled", bool, "true or false"),
        ("control", LLMBatchingMode, f"a batching mode: {LLMBatchingMode.allowed()}"),
        (
            "max_error_rate_increase",
            GuardErrorRateIncrease,
            _range(GuardErrorRateIncrease, "a fraction") + ", e.g. 0.05 for 5 points",
        ),
        ("min_results", GuardMinResults, _range(GuardMinResults, "an integer") + ", e.g. 200"),
        ("alpha", GuardAlpha, _range(GuardAlpha, "a probability") + ", e.g. 0.01"),
    )
}
METADATA_KEYS: Final = tuple(_KNOBS)


def parse_guard_metadata(
    metadata: Mapping[str, object],
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The valid `guard_*` values of `metadata` by policy field, and (key, message) for
    every bad or unknown one. Other keys (version, flagSetId, ...) are not the guard's.

    Strict types: flagd metadata is typed JSON, so `"200"` or `true` where a number
    belongs is a mistake to report, not a value to coerce.
    """
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in metadata.items():
        if not isinstance(key, str) or not key.startswith(METADATA_PREFIX):
            continue
        knob = _KNOBS.get(key)
        if knob is None:
            close = difflib.get_close_matches(key, METADATA_KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            known = ", ".join(METADATA_KEYS)
            problems.append((key, f"unknown guard setting{hint}; known: {known}"))
            continue
        name, adapter, allowed = knob
        try:
            values[name] = adapter.validate_python(value, strict=True)
        except ValidationError:
            problems.append((key, f"{short_repr(value)} is not allowed; use {allowed}"))
    return values, problems
