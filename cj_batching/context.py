"""What the resolver needs to know about one CJ batch, validated and normalised once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from cj_batching._text import short_repr
from cj_batching.bounds import ComparisonIteration, check
from cj_batching.modes import LLMBatchingMode, LLMProviderType, parse_provider
from cj_batching.overrides import BatchConfigOverrides
from cj_batching.resolution import Resolution

__all__ = [
    "KNOWN_SOURCES",
    "REQUEST_TYPES",
    "BatchContext",
    "CacheKey",
    "normalise_batch_id",
    "normalise_token",
]

KNOWN_SOURCES: Final = ("els", "bos", "eng5_runner")
REQUEST_TYPES: Final = ("cj_comparison", "cj_retry")

# Sources and request types travel to LPS, into flag rules and into logs: keep them to
# short printable tokens so a 10 KB or control-character value is refused at the edge.
_TOKEN = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,63}")
_BATCH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
# ASCII digits only: int() also reads "1_0" and non-ASCII digits.
_NUMERIC_ID = re.compile(r"[0-9]{1,128}")
_MAX_BATCH_ID = 10**18 - 1
_EXAMPLES = {"cj_source": KNOWN_SOURCES, "request_type": REQUEST_TYPES}

PinKey = tuple[LLMBatchingMode, str, str | None, str | None, object]
CacheKey = tuple[str, str, LLMProviderType | None, str, LLMBatchingMode | None, PinKey | None]


@dataclass(frozen=True, slots=True)
class BatchContext:
    """One CJ batch as the resolution chain sees it.

    `cj_source` and `request_type` are stripped and lower-cased (an empty source means
    `els`); `llm_provider` is parsed to `LLMProviderType` (None means the settings'
    default provider). `pinned` is the resolution the CJ service stored after the batch's
    previous wave (`Resolution.from_record`): the batch keeps that mode unless an
    override, the allow list, a DISABLED flag or a tripped guard says otherwise.
    `comparison_iteration` is the batch's wave number (0 for the first), sent to LPS in
    the metadata. Anything else is a `ValueError` naming the field, the value and what is
    allowed.

    Batch ids: CJ batch ids are integer keys, so a numeric id becomes the int itself,
    whatever its spelling: `1`, `"1"`, `"01"` and `" 1"` are one batch, with one
    targeting key (`"1"`) and so one rollout arm. Any other string (1-128 letters,
    digits and `_ . : -`, starting with a letter or digit; surrounding whitespace
    ignored) is an opaque id used exactly as given (`"b-7"` and `"B-7"` differ).
    """

    cj_batch_id: int | str
    cj_source: str = "els"
    llm_provider: LLMProviderType | str | None = None
    request_type: str = "cj_comparison"
    overrides: BatchConfigOverrides | None = None
    pinned: Resolution | None = None
    comparison_iteration: int = 0
    cache_key: CacheKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        batch_id = normalise_batch_id(self.cj_batch_id)
        source = normalise_token("cj_source", self.cj_source, empty="els")
        request_type = normalise_token("request_type", self.request_type, empty=None)
        provider = (
            None
            if self.llm_provider is None
            else parse_provider(self.llm_provider, field="llm_provider")
        )
        if not isinstance(self.overrides, BatchConfigOverrides | None):
            raise ValueError(
                f"overrides: {short_repr(self.overrides)} must be a BatchConfigOverrides or None"
            )
        check(ComparisonIteration, "comparison_iteration", self.comparison_iteration)
        override = self.overrides.llm_batching_mode_override if self.overrides else None
        if not isinstance(self.pinned, Resolution | None):
            raise ValueError(
                f"pinned: {short_repr(self.pinned)} must be a Resolution or None "
                "(Resolution.from_record(stored_record))"
            )
        pin = self.pinned
        pin_key = (
            None
            if pin is None
            else (pin.mode, pin.decided_by, pin.flag_variant, pin.flag_set_version, pin.decided_at)
        )
        object.__setattr__(self, "cj_batch_id", batch_id)
        object.__setattr__(self, "cj_source", source)
        object.__setattr__(self, "request_type", request_type)
        object.__setattr__(self, "llm_provider", provider)
        # Precomputed: the cache-hit path of resolve() must stay a single dict probe.
        key = (str(batch_id), source, provider, request_type, override, pin_key)
        object.__setattr__(self, "cache_key", key)

    @property
    def batch_key(self) -> str:
        """The batch id as the flag targeting key and as LPS metadata (a string)."""
        return self.cache_key[0]

    @property
    def provider(self) -> LLMProviderType | None:
        """The parsed provider (None: the settings' default)."""
        return self.cache_key[2]


def normalise_batch_id(value: object) -> int | str:
    """The one rule for batch ids (see `BatchContext`): numeric ids to their int."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(
            f"cj_batch_id: {short_repr(value)} must be an int or a str (the CJ batch primary key)"
        )
    if isinstance(value, str):
        text = value.strip()
        if not _NUMERIC_ID.fullmatch(text):
            if not _BATCH_ID.fullmatch(text):
                raise ValueError(
                    f"cj_batch_id: {short_repr(value)} is not a usable batch id; allowed: an "
                    "integer, or 1-128 characters from letters, digits and _ . : - (starting "
                    "with a letter/digit)"
                )
            return text
        value = int(text)
    if not 0 <= value <= _MAX_BATCH_ID:
        raise ValueError(f"cj_batch_id: {short_repr(value)} must be in 0..10**18-1")
    return value


def normalise_token(name: str, value: object, *, empty: str | None) -> str:
    """A source or request type stripped and lower-cased; `empty` replaces a blank one."""
    if not isinstance(value, str):
        raise ValueError(f"{name}: {short_repr(value)} must be a string")
    text = value.strip().lower()
    if not text and empty is not None:
        return empty
    if not _TOKEN.fullmatch(text):
        examples = ", ".join(_EXAMPLES.get(name, KNOWN_SOURCES))
        raise ValueError(
            f"{name}: {short_repr(value)} is not allowed; use 1-64 characters from a-z, 0-9 "
            f"and _ . : - (starting with a letter or digit), e.g. {examples}"
        )
    return text
